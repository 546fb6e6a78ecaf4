// The two crypto paths side by side, in one process: Node's `node:crypto` (what Node, Bun, Deno and
// workerd with nodejs_compat use) and WebCrypto (workerd without nodejs_compat, edge-runtime),
// switched with setCryptoPath. Per operation (one at a time), and per session request through
// app.fetch from 10 clients at once, each with its own session (no socket: only the session layer is
// timed). Rounds alternate between the paths, so drift on a shared machine hits both; the median
// round is reported.
// `tsx bench/crypto.ts` runs it alone and rewrites the "Crypto paths" section of bench/RESULTS.md.
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Hono } from 'hono'
import { hashKey } from '../src/server/ids.ts'
import { hmac } from '../src/server/hmac.ts'
import { setCryptoPath } from '../src/server/node-crypto.ts'
import { session, type BackwardEnv } from '../src/server/session.ts'
import { cookieStore } from '../src/server/stores/cookie.ts'
import { memoryStore } from '../src/server/stores/memory.ts'
import type { SessionData } from '../src/server/store.ts'
import { median } from './stats.ts'

const SECRET = 'bench-secret-0123456789-abcdefghijklmnop-0123456789'
const ID = 'q3v0aR8-_yZ1xN4mB7cD2eF5gH6iJ9kL0oP3sT6uW8'
/** A logged-in session of typical size: the user, the login signal, a little app data. */
const DATA: SessionData = { _auth_user_id: 42, _backward_signal: 'Qm9vb2Jvb2Jvb2Jvb2Jvbw', cart: [1, 2, 3], theme: 'dark', count: 7 }
const ROUNDS = Number(process.env.BENCH_CRYPTO_ROUNDS ?? 7)
const ROUND_MS = Number(process.env.BENCH_CRYPTO_MS ?? 300)
const IN_FLIGHT = 10

type Path = 'node' | 'web'
type Work = () => Promise<unknown>
interface Case {
  label: string
  /** Made once per path (stores pick their path when made): gives each in-flight worker its work. */
  setup(): Promise<() => Promise<Work>>
  /** Workers running at once. */
  concurrency: number
}
export interface CryptoRow {
  label: string
  /** Median microseconds per unit of work, on each path. */
  node: number
  web: number
}

function sessionApp(store: ReturnType<typeof memoryStore> | ReturnType<typeof cookieStore>) {
  const app = new Hono<BackwardEnv>()
  app.use(session({ store, secret: SECRET }))
  app.get('/write', (c) => {
    const count = (c.var.session.get('count', 0) as number) + 1
    c.var.session.set('count', count)
    return c.json({ count })
  })
  return app
}

/** One app; each worker is a client with its own session, whose requests increment its counter. */
async function requestCase(store: ReturnType<typeof memoryStore> | ReturnType<typeof cookieStore>): Promise<() => Promise<Work>> {
  const app = sessionApp(store)
  return async () => {
    let cookie = ''
    return async () => {
      const res = await app.request('http://localhost/write', { headers: { cookie } })
      const next = res.headers.get('set-cookie')
      if (next !== null) cookie = next.split(';')[0]!
      if (res.status !== 200) throw new Error(`[bench] crypto: /write answered ${res.status}`)
    }
  }
}

/** The same operation for every worker. */
const op = (work: Work) => async () => work

const CASES: Case[] = [
  { label: 'hashKey (SHA-256 of the session id, hex)', concurrency: 1, setup: async () => op(() => hashKey(ID)) },
  { label: 'userTag (HMAC-SHA-256, base64url)', concurrency: 1, setup: async () => op(() => hmac(SECRET, 'backward-user:42', 22)) },
  {
    label: 'cookieStore seal (AES-256-GCM)',
    concurrency: 1,
    setup: async () => {
      const store = cookieStore({ secrets: [SECRET] })
      return op(() => store.seal(DATA, Date.now() + 60_000))
    },
  },
  {
    label: 'cookieStore unseal',
    concurrency: 1,
    setup: async () => {
      const store = cookieStore({ secrets: [SECRET] })
      const sealed = await store.seal(DATA, Date.now() + 3_600_000)
      return op(() => store.unseal(sealed))
    },
  },
  { label: `session read+write, memoryStore (app.fetch, ${IN_FLIGHT} clients)`, concurrency: IN_FLIGHT, setup: () => requestCase(memoryStore({ maxEntries: 100_000 })) },
  { label: `session read+write, cookieStore (app.fetch, ${IN_FLIGHT} clients)`, concurrency: IN_FLIGHT, setup: () => requestCase(cookieStore({ secrets: [SECRET] })) },
]

/** Microseconds per unit of work over one timed round of about `ms`. */
async function round(newWorker: () => Promise<Work>, concurrency: number, ms: number): Promise<number> {
  const works = await Promise.all(Array.from({ length: concurrency }, newWorker))
  let done = 0
  const began = performance.now()
  const end = began + ms
  const worker = async (work: Work) => {
    while (performance.now() < end) {
      await work()
      done++
    }
  }
  await Promise.all(works.map(worker))
  return ((performance.now() - began) * 1000) / done
}

async function withPath<T>(path: Path, fn: () => Promise<T>): Promise<T> {
  setCryptoPath(path === 'web' ? 'web' : 'auto')
  try {
    return await fn()
  } finally {
    setCryptoPath('auto')
  }
}

/** Every case on both paths: a warm-up round each, then `ROUNDS` alternating rounds. */
export async function runCrypto(log: (line: string) => void = console.log): Promise<CryptoRow[]> {
  const rows: CryptoRow[] = []
  for (const c of CASES) {
    const work = { node: await withPath('node', c.setup), web: await withPath('web', c.setup) }
    const times: Record<Path, number[]> = { node: [], web: [] }
    for (const path of ['node', 'web'] as const) await withPath(path, () => round(work[path], c.concurrency, ROUND_MS / 2))
    for (let i = 0; i < ROUNDS; i++) {
      const order: Path[] = i % 2 === 0 ? ['node', 'web'] : ['web', 'node']
      for (const path of order) times[path].push(await withPath(path, () => round(work[path], c.concurrency, ROUND_MS)))
    }
    const row = { label: c.label, node: median(times.node), web: median(times.web) }
    rows.push(row)
    log(`  ${row.label}: node:crypto ${row.node.toFixed(2)} µs, WebCrypto ${row.web.toFixed(2)} µs (×${(row.web / row.node).toFixed(2)})`)
  }
  return rows
}

const us = (value: number) => (value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0))

/** The "Crypto paths" section of bench/RESULTS.md. */
export function renderCrypto(rows: CryptoRow[]): string {
  const lines = [
    '## Crypto paths',
    '',
    `The same work on Node ${process.version}, once with \`node:crypto\` (Node, Bun, Deno, workerd with \`nodejs_compat\`) and once`,
    'with WebCrypto (workerd without `nodejs_compat`, edge-runtime), switched in one process. Both paths give the same',
    'results (tests/server/crypto-paths.test.ts). Median of ' + ROUNDS + ` alternating rounds of ${ROUND_MS} ms; operations one at a time,`,
    `session requests through \`app.fetch\` (no socket) from ${IN_FLIGHT} clients at once, each with its own session, reading and`,
    'writing a counter (so a request hashes the id, and with cookieStore opens and seals the cookie).',
    `\`tsx bench/crypto.ts\` reruns this section alone (knobs \`BENCH_CRYPTO_ROUNDS\`, \`BENCH_CRYPTO_MS\`; ${cpus().length} cores, 1-minute load ${loadavg()[0]!.toFixed(2)} when written).`,
    '',
    '| work | node:crypto (µs) | WebCrypto (µs) | WebCrypto / node:crypto |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.label} | ${us(r.node)} | ${us(r.web)} | ×${(r.web / r.node).toFixed(2)} |`),
    '',
    "On Node, a WebCrypto call is queued as a job and resolved on a later turn, so it costs tens of µs whatever the work:",
    'that is why backward takes `node:crypto` wherever the runtime has it. These ratios are Node\'s; workerd and',
    "edge-runtime have no `node:crypto` to compare with (see Runtimes for their session throughput next to bare Hono).",
    '',
  ]
  return lines.join('\n')
}

/** Puts `section` in place of the old "Crypto paths" section, or before "Runtimes" / "Running it". */
export function spliceCrypto(markdown: string, section: string): string {
  const start = markdown.indexOf('\n## Crypto paths\n')
  if (start !== -1) {
    const end = markdown.indexOf('\n## ', start + 1)
    return markdown.slice(0, start + 1) + section + (end === -1 ? '' : '\n' + markdown.slice(end + 1))
  }
  for (const heading of ['\n## Runtimes\n', '\n## Running it']) {
    const at = markdown.indexOf(heading)
    if (at !== -1) return markdown.slice(0, at + 1) + section + '\n' + markdown.slice(at + 1)
  }
  return markdown + '\n' + section
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const section = renderCrypto(await runCrypto())
  const results = new URL('./RESULTS.md', import.meta.url)
  writeFileSync(results, spliceCrypto(readFileSync(results, 'utf8'), section))
  console.log('\n' + section)
}
