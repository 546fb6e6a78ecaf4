// bench/RESULTS.md: the tables behind the chart, with the conditions of the run.
import type { ThroughputResult, Workload } from '../server/throughput.ts'
import { WORKLOADS } from '../server/throughput.ts'
import type { ClientResult } from '../client/browser.ts'
import type { ScaleResult } from '../scale/scale.ts'
import { FETCH_RATIO_MAX, GZIP_BUDGET, fmt, pct, serverVerdicts, type Verdict } from './targets.ts'

export interface SizeRow {
  name: string
  raw: number
  gzip: number
  brotli: number
}

export interface RunInfo {
  date: string
  node: string
  cpu: string
  cores: number
  memoryGb: number
  loadBefore: number[]
  loadAfter: number[]
  seconds: number
  full: boolean
  skipped: string[]
}

const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`
const table = (head: string[], rows: (string | number)[][], align?: string[]) =>
  [row(head), row(align ?? head.map(() => '---')), ...rows.map(row)].join('\n')
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
const mark = (met: boolean | null) => (met === null ? '—' : met ? 'met' : '**missed**')
const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} KB`

function verdictTable(verdicts: Verdict[]): string {
  return table(['check', 'measured', 'goal', 'target'], verdicts.map((v) => [v.label, v.measured, v.goal, mark(v.met)]))
}

function server(t: ThroughputResult): string {
  const out: string[] = ['## Server throughput', '']
  out.push(
    `Each target is its own child process (one Node event loop), autocannon 8 runs in the parent, both on loopback. ` +
      `${t.rounds} rounds × ${t.duration} s per target and workload, ${t.connections} connections, targets in round-robin order ` +
      `(the first target rotates each round), after a 0.5 s warm-up of each. Figures are the **median of the rounds**; ` +
      `the ratio is taken against bare Hono **in the same round**, then the median of those ratios. The session cookie for the ` +
      `read-only and read+write workloads was created once per target before measuring and sent on every request ` +
      `(cookie stores reseal on every write, so each request does the full work). Routes: \`GET /read\` reads \`count\`, ` +
      `\`GET /write\` increments it; both answer \`{"count":n}\`.`,
    '',
  )
  const bad = t.targets.filter((name) => (['anonymous', 'read', 'write'] as Workload[]).some((w) => t.cells[name]![w].bad > 0))
  if (bad.length > 0) out.push(`⚠ Non-2xx answers or socket errors were seen on: ${bad.join(', ')} (column "errors").`, '')
  for (const workload of Object.keys(WORKLOADS) as Workload[]) {
    out.push(`### ${WORKLOADS[workload].label}`, '')
    out.push(
      table(
        ['target', 'req/s', 'p50 ms', 'p99 ms', 'ratio to bare Hono', 'ratio per round', 'errors'],
        t.targets.map((name) => {
          const c = t.cells[name]![workload]
          const label = name.startsWith('backward') ? `**${name}**` : name
          return [label, fmt(c.rps), c.p50, c.p99, pct(c.ratio), c.ratios.map((r) => pct(r)).join(', '), c.bad]
        }),
        ['---', '---:', '---:', '---:', '---:', '---', '---:'],
      ),
      '',
    )
  }
  out.push('### Targets', '', verdictTable(serverVerdicts(t)), '')
  out.push(
    'Peers are set up as their READMEs show: hono-sessions with an `encryptionKey` (required for its cookie store, ' +
      'recommended for the others) and its default `autoExtendExpiration`; express-session with `resave: false, saveUninitialized: false`; ' +
      'connect-redis 9 with a node-redis client (what its README documents; backward\'s Redis target uses ioredis); ' +
      'iron-session through its `cookies()` adapter form mapped onto `hono/cookie`. backward stores hash every session id ' +
      '(SHA-256) before the store sees it; hono-sessions memory keeps the id as-is and encrypts it in the cookie.',
    '',
  )
  return out.join('\n')
}

function client(sizes: SizeRow[] | null, c: ClientResult | null): string {
  const out: string[] = ['## Client', '']
  if (sizes !== null) {
    out.push('### Bundle size', '', 'From `scripts/size.mjs` (esbuild, minified, ESM, es2022; gzip level 9, brotli quality 11). The first row is what a page load downloads (idb-keyval included); chunks marked "on demand" load with `import()` on first use.', '')
    out.push(table(['bundle', 'min', 'gzip', 'brotli'], sizes.map((s) => [s.name.trim().startsWith('+') || s.name.trim().startsWith('=') ? `&nbsp;&nbsp;${s.name.trim()}` : s.name, kb(s.raw), kb(s.gzip), kb(s.brotli)]), ['---', '---:', '---:', '---:']), '')
    const entry = sizes[0]!
    out.push(verdictTable([{ label: 'client entry, gzip', measured: kb(entry.gzip), goal: `≤ ${kb(GZIP_BUDGET)}`, met: entry.gzip <= GZIP_BUDGET }]), '')
  }
  if (c !== null) {
    out.push(`### In real Chromium (${c.browser}, headless)`, '')
    out.push(
      `\`bw.fetch\` against plain \`fetch\`: ${c.fetch.GET.requests.toLocaleString('en-US')} sequential requests of each kind per method, answered 200 by a Hono server on loopback, ` +
        `in ${c.fetch.GET.pairs} adjacent pairs of ${c.fetch.GET.requests / c.fetch.GET.pairs}-request blocks (ABBA order) in the same page, so drift on the loaded machine cancels within each pair. The target is judged on the median of the per-pair ratios; the ratio of the totals is shown beside it; the times are per 1,000 requests.`,
      '',
    )
    out.push(
      table(
        ['request', 'fetch, ms per 1,000', 'bw.fetch, ms per 1,000', 'ratio (median of pairs)', 'ratio of totals', 'pair ratios (quartiles)', 'target ≤ 1.05'],
        (['GET', 'POST'] as const).map((m) => {
          const f = c.fetch[m]
          const q = [...f.ratios].sort((a, b) => a - b)
          const at = (p: number) => q[Math.min(q.length - 1, Math.floor(p * q.length))]!.toFixed(2)
          return [m === 'GET' ? 'GET' : 'POST, 13-byte JSON body', ms(f.fetchMs), ms(f.bwMs), f.ratio.toFixed(3), f.totalRatio.toFixed(3), `${at(0.25)} / ${at(0.5)} / ${at(0.75)}`, mark(f.ratio <= FETCH_RATIO_MAX)]
        }),
        ['---', '---:', '---:', '---:', '---:', '---', '---'],
      ),
      '',
    )
    out.push(
      table(
        ['measure', 'median', 'for comparison'],
        [
          [`save an action with a 1 MB file (multipart POST answered 401, captured into IndexedDB), ${c.saveFile.times} runs`, `${ms(c.saveFile.bwMs)} ms`, `plain fetch of the same 401: ${ms(c.saveFile.fetchMs)} ms; ${c.saveFile.stored} of ${c.saveFile.times} actions were in IndexedDB`],
          [`replay ${c.replay.actions} queued actions (JSON POSTs) after login, ${c.replay.runs} runs`, `${ms(c.replay.replayMs)} ms (${ms(c.replay.perActionMs)} ms per action)`, `queueing them took ${ms(c.replay.queueMs)} ms; ${c.replay.served} reached the server, ${c.replay.left} left in the queue`],
        ],
        ['---', '---:', '---'],
      ),
      '',
    )
  }
  return out.join('\n')
}

function scale(s: ScaleResult, full: boolean): string {
  const out: string[] = ['## Scale', '']
  out.push(
    `\`load\` and \`update\` are timed for ${s.opsMs} ms each on random existing sessions, with ${s.concurrency} calls in flight on PostgreSQL and Redis ` +
      `(a pg Pool of ${s.concurrency}, one ioredis connection) and one at a time on memoryStore. Sessions are ~100 bytes of JSON.`,
    '',
  )
  out.push('### PostgreSQL (`postgresStore`, table `bench_sessions`, dropped afterwards)', '')
  out.push(
    table(
      ['sessions', 'bulk insert (generate_series)', 'load/s', 'update/s', 'clearExpired, none expired', 'clearExpired, all expired', 'rows removed'],
      s.postgres.map((l) => [l.n.toLocaleString('en-US'), `${ms(l.insertMs)} ms`, fmt(l.loadPerSec), fmt(l.updatePerSec), `${ms(l.clearNoneMs)} ms`, `${ms(l.clearAllMs)} ms`, l.removed.toLocaleString('en-US')]),
      ['---:', '---:', '---:', '---:', '---:', '---:', '---:'],
    ),
    '',
  )
  out.push('### Redis (`redisStore`, ioredis, prefix `bench:backward:scale:`, deleted afterwards)', '')
  out.push(
    table(
      ['sessions', 'pipelined insert', 'load/s', 'update/s', 'clearExpired'],
      s.redis.map((l) => [l.n.toLocaleString('en-US'), `${ms(l.insertMs)} ms`, fmt(l.loadPerSec), fmt(l.updatePerSec), 'n/a (native TTL)']),
      ['---:', '---:', '---:', '---:', '---'],
    ),
    '',
  )
  if (!full) out.push('The 1M level on Redis runs with `BENCH_FULL=1` only (it adds about a minute of inserts and deletes on this machine).', '')
  const e = s.redisExpiry
  out.push(
    e.goneAfterMs === null
      ? `Expiry: Redis expires keys itself, so \`clearExpired()\` resolves 0. (The DBSIZE expiry probe was skipped: no empty logical database was free.)`
      : `Expiry: Redis expires keys itself, so \`clearExpired()\` resolves 0. Probe: ${e.keys.toLocaleString('en-US')} session keys with a ${e.ttlMs} ms TTL in an empty logical database were all gone from DBSIZE ${ms(e.goneAfterMs)} ms after their TTL started (an expired key is never returned by GET, even before active expiry reclaims it).`,
    '',
  )
  out.push('### memoryStore (own process, `--expose-gc`)', '')
  out.push(
    table(
      ['sessions', 'heap used', 'per 100k sessions', 'create/s', 'load/s', 'update/s', 'clearExpired, all expired'],
      s.memory.map((l) => [l.n.toLocaleString('en-US'), `${(l.heapBytes / 1e6).toFixed(1)} MB`, `${(l.bytesPer100k / 1e6).toFixed(1)} MB`, fmt(l.createPerSec), fmt(l.loadPerSec), fmt(l.updatePerSec), `${ms(l.clearMs)} ms`]),
      ['---:', '---:', '---:', '---:', '---:', '---:', '---:'],
    ),
    '',
  )
  return out.join('\n')
}

export function renderMarkdown(info: RunInfo, t: ThroughputResult | null, sizes: SizeRow[] | null, c: ClientResult | null, s: ScaleResult | null): string {
  const out: string[] = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/run.ts). Do not edit by hand. -->',
    '',
    '![Throughput ratios and scale curves](results.svg)',
    '',
    table(
      ['run', ''],
      [
        ['date', info.date],
        ['machine', `${info.cpu}, ${info.cores} cores, ${info.memoryGb} GB`],
        ['Node', info.node],
        ['load average before / after', `${info.loadBefore.map((l) => l.toFixed(2)).join(' ')} / ${info.loadAfter.map((l) => l.toFixed(2)).join(' ')}`],
        ['total run time', `${info.seconds.toFixed(0)} s`],
        ...(t !== null ? [['server rounds', `${t.rounds} × ${t.duration} s per target and workload (${t.seconds.toFixed(0)} s in all)`]] : []),
        ...(s !== null ? [['scale', `${s.seconds.toFixed(0)} s${info.full ? ' (BENCH_FULL=1)' : ''}`]] : []),
      ],
    ),
    '',
    '**Noise.** This is a shared 2-core machine: the load generator and the server each get about one core, and other ' +
      'work (test runs, type checks) may run at the same time, as the load averages above show. Targets alternate round-robin and ' +
      'every figure is a median so that such noise spreads over all of them, but single figures can still move by 10–20 % between ' +
      'runs (more when the load average is high); the server targets run as JavaScript compiled by esbuild, like the peers, not through tsx ' +
      '(whose keepNames transform adds a call to every function); ' +
      'compare ratios within one run, not absolute numbers across runs. A single autocannon process also caps what bare Hono ' +
      'can show, which flatters every ratio a little.',
    '',
  ]
  if (info.skipped.length > 0) out.push(`Skipped in this run: ${info.skipped.join('; ')}.`, '')
  if (t !== null) out.push(server(t))
  if (sizes !== null || c !== null) out.push(client(sizes, c))
  if (s !== null) out.push(scale(s, info.full))
  out.push(
    '## Running it',
    '',
    '`npm run bench` (needs Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 with user `postgres` and database `test`, and Chromium at ' +
      '`/usr/lib/chromium/chromium` or `CHROMIUM_PATH`). Knobs: `BENCH_ROUNDS` (default 3), `BENCH_DURATION` seconds (default 3), ' +
      '`BENCH_CONNECTIONS` (default 10), `BENCH_OPS_MS` (default 1000), `BENCH_FULL=1` (1M sessions on Redis too), ' +
      '`BENCH_ONLY=server,client,scale,runtimes,crypto` (a subset; the files are then written with only those parts). ' +
      '`tsx bench/profile.ts "<target>" <workload>` records a CPU profile of one target under load and prints where its time goes.',
    '',
  )
  return out.join('\n')
}
