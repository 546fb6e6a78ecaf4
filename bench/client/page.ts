// Runs inside Chromium (bundled by esbuild with the client SDK). The Node side calls these through
// `page.evaluate`. Every measurement is wall time from `performance.now()`.
import { createBackward } from '../../src/client/index.ts'

const bw = createBackward({
  // Settle with the 401 instead of navigating away: the page must stay to be measured.
  onLoginRequired: () => false,
})

async function lock(on: boolean): Promise<void> {
  await fetch(`/bench/lock?on=${on ? 1 : 0}`, { method: 'POST' })
}

/** One block of `n` sequential requests; returns milliseconds. */
async function block(kind: 'fetch' | 'bw', method: 'GET' | 'POST', n: number): Promise<number> {
  const send = kind === 'fetch' ? fetch : bw.fetch
  const init: RequestInit = method === 'GET' ? {} : { method, headers: { 'content-type': 'application/json' }, body: '{"follow":42}' }
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const response = await send('/ok', init)
    if (response.status !== 200) throw new Error(`status ${response.status}`)
    await response.arrayBuffer()
  }
  return performance.now() - t0
}

/** Alternates blocks of plain fetch and bw.fetch (ABBA order), so drift cancels out. */
async function fetchOverhead(method: 'GET' | 'POST', n: number, pairs: number): Promise<{ fetch: number[]; bw: number[] }> {
  const out = { fetch: [] as number[], bw: [] as number[] }
  await block('fetch', method, 50)
  await block('bw', method, 50)
  for (let i = 0; i < pairs; i++) {
    const order: ('fetch' | 'bw')[] = i % 2 === 0 ? ['fetch', 'bw'] : ['bw', 'fetch']
    for (const kind of order) out[kind].push(await block(kind, method, n))
  }
  return out
}

/** Saving an action with a 1 MB file: a multipart POST answered 401, captured into IndexedDB. */
async function saveFile(times: number): Promise<{ bw: number[]; fetch: number[]; stored: number }> {
  await bw.clear()
  await lock(true)
  const bytes = new Uint8Array(1024 * 1024)
  crypto.getRandomValues(bytes.subarray(0, 65536)) // some entropy; the rest is zeros, like many files' padding
  const out = { bw: [] as number[], fetch: [] as number[], stored: 0 }
  const form = () => {
    const data = new FormData()
    data.append('caption', 'holiday')
    data.append('photo', new File([bytes], 'photo.jpg', { type: 'image/jpeg' }))
    return data
  }
  for (let i = 0; i < times; i++) {
    let t0 = performance.now()
    const plain = await fetch('/api/act', { method: 'POST', body: form() })
    await plain.arrayBuffer()
    out.fetch.push(performance.now() - t0)
    t0 = performance.now()
    const response = await bw.fetch('/api/act', { method: 'POST', body: form() })
    out.bw.push(performance.now() - t0)
    if (response.status !== 401) throw new Error(`expected 401, got ${response.status}`)
  }
  out.stored = (await bw.pending()).length
  await bw.clear()
  return out
}

/** Queues `n` actions (401), then logs in and times `bw.replay()` until the queue is empty. */
async function replay(n: number): Promise<{ queueMs: number; replayMs: number; left: number; served: number }> {
  await bw.clear()
  await lock(true)
  let t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const response = await bw.fetch('/api/act', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) })
    if (response.status !== 401) throw new Error(`expected 401, got ${response.status}`)
  }
  const queueMs = performance.now() - t0
  if ((await bw.pending()).length !== n) throw new Error('not every action was queued')
  await lock(false)
  const before = (await (await fetch('/bench/served')).json()) as number
  t0 = performance.now()
  await bw.replay()
  const replayMs = performance.now() - t0
  const served = ((await (await fetch('/bench/served')).json()) as number) - before
  return { queueMs, replayMs, left: (await bw.pending()).length, served }
}

Object.assign(globalThis, { bench: { fetchOverhead, saveFile, replay } })
