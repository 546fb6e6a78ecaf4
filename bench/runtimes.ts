/**
 * Server throughput on each runtime: bench/runtimes-bench.ts bundled once with esbuild and run in-process on
 * Node, Bun, Deno, workerd (miniflare, no nodejs_compat) and edge-runtime. Each row compares session() with
 * bare Hono on the same runtime. `npm run bench` includes it (BENCH_ONLY=runtimes for this part alone);
 * `tsx bench/runtimes.ts` runs it alone and rewrites only the "Runtimes" section of bench/RESULTS.md.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { COMPATIBILITY_DATE, ROOT, RUNTIMES, runEdge, runProcess, runWorkerd, type RuntimeName } from '../tests/runtimes/runners.ts'
import type { RuntimeBenchReport } from './runtimes-bench.ts'

export interface RuntimeRow extends RuntimeBenchReport {
  version: string
}

const ROUND_MS = Number(process.env.BENCH_RUNTIME_MS ?? 1000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)

const entries = {
  cli: `import { runBench } from './bench/runtimes-bench.ts'
const version = typeof Bun !== 'undefined' ? 'bun ' + Bun.version : typeof Deno !== 'undefined' ? 'deno ' + Deno.version.deno : 'node ' + process.version
const runtime = version.split(' ')[0]
const [roundMs, rounds] = (globalThis.Deno ? Deno.args : process.argv.slice(2)).map(Number)
console.log(JSON.stringify({ ...(await runBench(runtime, { roundMs, rounds })), version }))`,
  worker: `import { runBench } from './bench/runtimes-bench.ts'
export default { async fetch(request) {
  const url = new URL(request.url)
  const report = await runBench('workerd', { roundMs: Number(url.searchParams.get('ms')), rounds: Number(url.searchParams.get('rounds')) })
  return new Response(JSON.stringify(report))
} }`,
  edge: `import { runBench } from './bench/runtimes-bench.ts'
addEventListener('fetch', (event) => {
  const url = new URL(event.request.url)
  event.respondWith(runBench('edge-runtime', { roundMs: Number(url.searchParams.get('ms')), rounds: Number(url.searchParams.get('rounds')) }).then((r) => new Response(JSON.stringify(r))))
})`,
}

async function bundleAll(outdir: string) {
  const common = { bundle: true, write: true, logLevel: 'silent', target: 'es2022', legalComments: 'none' } as const
  const one = (name: keyof typeof entries, format: 'esm' | 'iife') =>
    build({ ...common, stdin: { contents: entries[name], resolveDir: ROOT, loader: 'ts', sourcefile: `${name}.ts` }, format, platform: format === 'esm' ? 'neutral' : 'browser', mainFields: ['module', 'main'], outfile: join(outdir, `${name}.${format === 'esm' ? 'mjs' : 'js'}`) })
  await Promise.all([one('cli', 'esm'), one('worker', 'esm'), one('edge', 'iife')])
}

function packageVersion(name: string): string {
  return (createRequire(join(ROOT, 'package.json'))(`${name}/package.json`) as { version: string }).version
}

/** Runs the bench on every runtime in turn; a runtime that fails is reported in its row, not thrown. */
export async function runRuntimes(log: (line: string) => void = console.log): Promise<(RuntimeRow | { runtime: RuntimeName; error: string })[]> {
  const outdir = mkdtempSync(join(tmpdir(), 'backward-bench-runtimes-'))
  const rows: (RuntimeRow | { runtime: RuntimeName; error: string })[] = []
  try {
    await bundleAll(outdir)
    const query = `/?ms=${ROUND_MS}&rounds=${ROUNDS}`
    const timeoutMs = 60_000 + ROUND_MS * ROUNDS * 8
    for (const runtime of RUNTIMES) {
      log(`[bench] runtimes: ${runtime}`)
      try {
        const row =
          runtime === 'workerd'
            ? { ...((await runWorkerd(join(outdir, 'worker.mjs'), { path: query, timeoutMs })) as RuntimeBenchReport), version: `workerd (miniflare ${packageVersion('miniflare')}, compatibility date ${COMPATIBILITY_DATE})` }
            : runtime === 'edge-runtime'
              ? { ...((await runEdge(join(outdir, 'edge.js'), { path: query })) as RuntimeBenchReport), version: `edge-runtime ${packageVersion('edge-runtime')}` }
              : ((await runProcess(runtime, join(outdir, 'cli.mjs'), { timeoutMs, args: [String(ROUND_MS), String(ROUNDS)] })) as RuntimeRow)
        rows.push(row)
        log(`  ${row.cases.map((c) => `${c.name}: ${c.rps.toLocaleString('en-US')} req/s`).join(' · ')}`)
      } catch (error) {
        rows.push({ runtime, error: (error as Error).message.split('\n')[0]! })
        log(`  failed: ${(error as Error).message}`)
      }
    }
  } finally {
    rmSync(outdir, { recursive: true, force: true })
  }
  return rows
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

/** The "## Runtimes" section of bench/RESULTS.md. */
export function renderRuntimes(rows: Awaited<ReturnType<typeof runRuntimes>>): string {
  const ok = rows.find((r): r is RuntimeRow => 'cases' in r)
  const sessionCases = ok?.cases.slice(1).map((c) => c.name) ?? []
  const header = ['runtime', 'bare Hono', ...sessionCases.map((name) => name.replace('session(), ', ''))]
  const lines = [
    '## Runtimes',
    '',
    `The same bundle (bench/runtimes-bench.ts, built once by esbuild for the neutral platform) on each runtime: in-process \`app.fetch()\` loops, no sockets and no load generator, ${ROUNDS} rounds of ${ROUND_MS} ms per target round-robin, medians. req/s, and in brackets the share of bare Hono's throughput on the same runtime. Compare ratios within a row: the runtimes differ in how they run \`Request\`, timers and crypto (Node, Bun and Deno hash and seal with \`node:crypto\` through \`process.getBuiltinModule\`; workerd without \`nodejs_compat\` and edge-runtime use Web Crypto, edge-runtime's from the polyfills of its Node \`vm\` sandbox), and workerd runs under miniflare on this machine, not on Cloudflare's. One session is read (and written) by every request, so the stores stay small. \`tsx bench/runtimes.ts\` reruns this section alone (knobs \`BENCH_ROUNDS\`, \`BENCH_RUNTIME_MS\`).`,
    '',
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
  ]
  for (const row of rows) {
    if (!('cases' in row)) {
      lines.push(`| ${row.runtime} | failed: ${row.error.replace(/\|/g, '\\|')} |${' |'.repeat(header.length - 2)}`)
      continue
    }
    const bare = row.cases[0]!.rps
    lines.push(`| ${row.version} | ${fmt(bare)} | ${row.cases.slice(1).map((c) => `${fmt(c.rps)} (${Math.round((c.rps / bare) * 100)} %)`).join(' | ')} |`)
  }
  return lines.join('\n') + '\n'
}

/** Puts `section` in place of the existing "## Runtimes" section, or before "## Running it". */
export function spliceRuntimes(markdown: string, section: string): string {
  const start = markdown.indexOf('\n## Runtimes\n')
  if (start !== -1) {
    const end = markdown.indexOf('\n## ', start + 1)
    return markdown.slice(0, start + 1) + section + (end === -1 ? '' : '\n' + markdown.slice(end + 1))
  }
  const running = markdown.indexOf('\n## Running it')
  return running === -1 ? markdown + '\n' + section : markdown.slice(0, running + 1) + section + '\n' + markdown.slice(running + 1)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await runRuntimes()
  const section = renderRuntimes(rows)
  const results = join(ROOT, 'bench', 'RESULTS.md')
  writeFileSync(results, spliceRuntimes(readFileSync(results, 'utf8'), section))
  console.log('\n' + section)
}
