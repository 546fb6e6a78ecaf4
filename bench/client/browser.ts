// Client benchmarks in real Chromium: bw.fetch against plain fetch, saving an action with a 1 MB
// file into IndexedDB, and replaying 100 queued actions. The page and its API are served by a small
// Hono server in this process; Chromium is the only client, so the server is not the bottleneck.
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { build } from 'esbuild'
import { Hono } from 'hono'
import { serve } from '@hono/node-server'
import { chromium } from 'playwright'
import { loginRequired } from '../../src/server/index.ts'
import { median } from '../stats.ts'

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
]

export interface ClientResult {
  browser: string
  /** `fetchMs`/`bwMs`: total time per 1,000 sequential requests; `ratio`: median of the per-pair ratios. */
  fetch: Record<'GET' | 'POST', { requests: number; pairs: number; fetchMs: number; bwMs: number; ratio: number; totalRatio: number; ratios: number[] }>
  saveFile: { times: number; bwMs: number; fetchMs: number; stored: number }
  replay: { actions: number; runs: number; replayMs: number; queueMs: number; perActionMs: number; left: number; served: number }
}

interface PageApi {
  fetchOverhead(method: 'GET' | 'POST', n: number, pairs: number): Promise<{ fetch: number[]; bw: number[] }>
  saveFile(times: number): Promise<{ bw: number[]; fetch: number[]; stored: number }>
  replay(n: number): Promise<{ queueMs: number; replayMs: number; left: number; served: number }>
}

async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./page.ts', import.meta.url))],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  })
  return result.outputFiles[0]!.text
}

function startServer(script: string): Promise<Server> {
  let locked = true
  let served = 0
  const app = new Hono()
  app.get('/', (c) => c.html('<!doctype html><meta charset="utf-8"><title>backward bench</title><script type="module" src="/page.js"></script>'))
  app.get('/page.js', (c) => c.body(script, 200, { 'content-type': 'text/javascript' }))
  app.on(['GET', 'POST'], '/ok', (c) => c.json({ ok: true }))
  app.post('/bench/lock', (c) => {
    locked = c.req.query('on') === '1'
    return c.body(null, 204)
  })
  app.get('/bench/served', (c) => c.json(served))
  app.post('/api/act', loginRequired({ isAuthenticated: () => !locked }), async (c) => {
    await c.req.arrayBuffer()
    served++
    return c.json({ ok: true })
  })
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(server as Server))
  })
}

export async function runClient(log: (line: string) => void, options: { requests: number; pairs: number; saveTimes: number; replayActions: number; replayRuns: number }): Promise<ClientResult> {
  const server = await startServer(await bundlePage())
  const { port } = server.address() as AddressInfo
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium'
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS })
  try {
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    await page.goto(`http://127.0.0.1:${port}/`)
    await page.waitForFunction(() => 'bench' in globalThis)
    const call = <K extends keyof PageApi>(name: K, ...args: Parameters<PageApi[K]>) =>
      page.evaluate(([n, a]) => ((globalThis as unknown as { bench: Record<string, (...x: unknown[]) => unknown> }).bench[n as string]!(...(a as unknown[]))), [name, args] as const) as ReturnType<PageApi[K]>

    const fetchResult = {} as ClientResult['fetch']
    for (const method of ['GET', 'POST'] as const) {
      // `requests` of each kind, in `pairs` adjacent blocks of both (ABBA): the ratio of each pair
      // cancels the drift of a loaded machine between pairs, and the median drops the outliers.
      const perBlock = Math.ceil(options.requests / options.pairs)
      const raw = await call('fetchOverhead', method, perBlock, options.pairs)
      const ratios = raw.bw.map((bw, i) => bw / raw.fetch[i]!)
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
      const per = (xs: number[]) => (sum(xs) / (perBlock * options.pairs)) * 1000
      fetchResult[method] = { requests: perBlock * options.pairs, pairs: options.pairs, fetchMs: per(raw.fetch), bwMs: per(raw.bw), ratio: median(ratios), totalRatio: sum(raw.bw) / sum(raw.fetch), ratios }
      log(`  ${method}: fetch ${per(raw.fetch).toFixed(0)} ms, bw.fetch ${per(raw.bw).toFixed(0)} ms per 1000 requests; median pair ratio ${median(ratios).toFixed(3)}`)
    }
    const save = await call('saveFile', options.saveTimes)
    log(`  1 MB file saved in ${median(save.bw).toFixed(1)} ms (plain fetch of the same 401: ${median(save.fetch).toFixed(1)} ms)`)
    const replays = []
    for (let i = 0; i < options.replayRuns; i++) replays.push(await call('replay', options.replayActions))
    const replayMs = median(replays.map((r) => r.replayMs))
    log(`  replay of ${options.replayActions}: ${replayMs.toFixed(0)} ms`)
    if (errors.length > 0) throw new Error(`[bench] page errors: ${errors.join('; ')}`)
    return {
      browser: `Chromium ${browser.version()}`,
      fetch: fetchResult,
      saveFile: { times: options.saveTimes, bwMs: median(save.bw), fetchMs: median(save.fetch), stored: save.stored },
      replay: {
        actions: options.replayActions,
        runs: options.replayRuns,
        replayMs,
        queueMs: median(replays.map((r) => r.queueMs)),
        perActionMs: replayMs / options.replayActions,
        left: Math.max(...replays.map((r) => r.left)),
        served: Math.min(...replays.map((r) => r.served)),
      },
    }
  } finally {
    await browser.close()
    server.close()
  }
}
