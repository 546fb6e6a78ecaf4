// `npm run bench`: server throughput against peers, the client in real Chromium, and store cost at
// scale, in one invocation. Writes bench/RESULTS.md and bench/results.svg. Missed targets are
// reported there, never thrown: a benchmark is not a test.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { FULL } from './config.ts'
import { runThroughput, type ThroughputResult } from './server/throughput.ts'
import { runClient, type ClientResult } from './client/browser.ts'
import { runScale, type ScaleResult } from './scale/scale.ts'
import { renderMarkdown, type SizeRow } from './report/markdown.ts'
import { renderSvg } from './report/svg.ts'
import { serverVerdicts } from './report/targets.ts'
import { renderRuntimes, runRuntimes, spliceRuntimes } from './runtimes.ts'
import { renderCrypto, runCrypto, spliceCrypto, type CryptoRow } from './crypto.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const only = new Set((process.env.BENCH_ONLY ?? 'server,client,scale,runtimes,crypto').split(',').map((part) => part.trim()))
const began = performance.now()
const loadBefore = loadavg()
const log = (line: string) => console.log(line)
const skipped: string[] = []

function sizes(): SizeRow[] | null {
  const result = spawnSync(process.execPath, ['scripts/size.mjs', '--json'], { cwd: root, encoding: 'utf8' })
  if (result.status !== 0) {
    skipped.push(`bundle size (scripts/size.mjs failed: ${result.stderr.trim().split('\n').pop()})`)
    return null
  }
  return JSON.parse(result.stdout) as SizeRow[]
}

function chromium(): string | null {
  // scripts/chromium.mjs finds Debian's Chromium and installs it when missing (as root).
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', "import('./scripts/chromium.mjs').then((m) => console.log(m.ensureChromium()))"], { cwd: root, encoding: 'utf8' })
  return result.status === 0 ? result.stdout.trim().split('\n').pop()! : null
}

let throughput: ThroughputResult | null = null
let sizeRows: SizeRow[] | null = null
let client: ClientResult | null = null
let scale: ScaleResult | null = null
let runtimes: Awaited<ReturnType<typeof runRuntimes>> | null = null
let cryptoRows: CryptoRow[] | null = null

if (only.has('server')) {
  log('[bench] server throughput')
  throughput = await runThroughput(log)
}
if (only.has('client')) {
  log('[bench] client bundle size')
  sizeRows = sizes()
  const executable = chromium()
  if (executable === null) skipped.push('Chromium (not found; set CHROMIUM_PATH)')
  else {
    process.env.CHROMIUM_PATH = executable
    log('[bench] client in Chromium')
    client = await runClient(log, { requests: 1000, pairs: 100, saveTimes: 7, replayActions: 100, replayRuns: 3 })
  }
}
if (only.has('scale')) {
  log('[bench] store scale')
  scale = await runScale(log)
}
if (only.has('runtimes')) {
  log('[bench] runtimes (Node, Bun, Deno, workerd, edge-runtime)')
  runtimes = await runRuntimes(log)
}
if (only.has('crypto')) {
  log('[bench] crypto paths (node:crypto and WebCrypto)')
  cryptoRows = await runCrypto(log)
}

const info = {
  date: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC',
  node: process.version,
  cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
  cores: cpus().length,
  memoryGb: Math.round(totalmem() / 2 ** 30),
  loadBefore,
  loadAfter: loadavg(),
  seconds: (performance.now() - began) / 1000,
  full: FULL,
  skipped,
}
const markdown = renderMarkdown(info, throughput, sizeRows, client, scale)
const withRuntimes = runtimes === null ? markdown : spliceRuntimes(markdown, renderRuntimes(runtimes))
writeFileSync(new URL('./RESULTS.md', import.meta.url), cryptoRows === null ? withRuntimes : spliceCrypto(withRuntimes, renderCrypto(cryptoRows)))
writeFileSync(new URL('./results.svg', import.meta.url), renderSvg(throughput, scale))

if (throughput !== null) {
  console.log('\nread+write ratios to bare Hono and peer checks:')
  for (const v of serverVerdicts(throughput)) console.log(`  ${v.met === null ? 'ref   ' : v.met ? 'met   ' : 'MISSED'} ${v.label}: ${v.measured} (${v.goal})`)
}
console.log(`\n[bench] wrote bench/RESULTS.md and bench/results.svg in ${info.seconds.toFixed(0)} s`)
