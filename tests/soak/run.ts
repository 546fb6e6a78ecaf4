/**
 * `npm run test:soak`: the long soak, kept out of `npm test`.
 *
 * 1. Per store (memory, file, Redis): a real HTTP server in a child process (tests/soak/server.ts),
 *    autocannon at saturation for SOAK_SECONDS (default 60) after a short warm-up, with a seeded mix of
 *    anonymous visits (a flood of new sessions into a memoryStore capped at FLOOD_CAP), anonymous
 *    writes (the 401 login wall), logged-in reads, and logged-in writes with an Idempotency-Key, some
 *    of them repeated (same body: the first answer) or reused (another body: 422). Asserts 0 errors, no 5xx, only the statuses each kind may get, no handler run
 *    twice for one key, RSS flat (end ≤ post-warm-up × RSS_BOUND), and the capped store never over its cap.
 * 2. Store restart under load (private Redis, private PostgreSQL): the store is killed mid-load and
 *    started again. Requests in the gap get 503 problem+json, the server stays up, 2xx resumes by itself.
 *
 * Prints a table and writes tests/soak/RESULTS.md. Exits 1 when any check fails.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { REDIS_URL, redisPing } from '../helpers/services.ts'
import { hasRedisServer, postgresSkip, privatePostgres, privateRedis, sleep, stop, type PrivateServer } from '../helpers/private-stores.ts'
import { mulberry32 } from '../helpers/prng.ts'

// ---- autocannon 8 (it ships no types): the part used here ----
interface AcContext {
  kind?: Kind
  key?: string
  cookie?: string
  body?: string
}
interface AcRequest {
  method?: string
  path?: string
  headers?: Record<string, string>
  body?: string
  setupRequest?: (req: AcRequest, context: AcContext) => AcRequest
  onResponse?: (status: number, body: string, context: AcContext, headers: Record<string, string>) => void
}
interface AcResult {
  requests: { average: number; total: number }
  latency: { p50: number; p99: number }
  errors: number
  timeouts: number
  resets: number
  '2xx': number
  '4xx': number
  '5xx': number
  statusCodeStats: Record<string, { count: number }>
}
interface AcInstance extends PromiseLike<AcResult> {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void
  stop(): void
}
const autocannon = createRequire(import.meta.url)('autocannon') as (options: {
  url: string
  connections: number
  duration: number
  requests: AcRequest[]
  timeout?: number
}) => AcInstance

// ---- settings ----
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60)
const WARMUP_SECONDS = 10
const CONNECTIONS = 32
const USERS = 20
const RSS_BOUND = 1.25
const SAMPLE_MS = 3000
const SEED = Number(process.env.SOAK_SEED ?? 20261122)
const RESTART = { seconds: 14, killAt: 4, restartAt: 7, connections: 16 }

type Kind = 'anon-visit' | 'anon-write' | 'read' | 'write' | 'repeat' | 'reuse'
/**
 * Share of each kind in the mix, and the statuses it may get. A repeat resends a write that already
 * got its 201 (same key, same body), so it must get that 201 again, marked `Idempotent-Replayed: true`.
 * A reuse sends such a key with another body: 422, and the handler does not run.
 */
const MIX: [Kind, number, number[]][] = [
  ['anon-visit', 0.2, [200]],
  ['anon-write', 0.1, [401]],
  ['read', 0.4, [200]],
  ['write', 0.25, [201]],
  ['repeat', 0.04, [201]],
  ['reuse', 0.01, [422]],
]
const FETCH = { 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Dest': 'empty', Accept: 'application/json', 'Content-Type': 'application/json' }

// ---- the server child ----
interface Server {
  child: ChildProcess
  base: string
  exitCode(): number | null
}

function startServer(env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, ['--conditions=source', '--expose-gc', '--import', 'tsx', 'tests/soak/server.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`soak server did not start: ${stderr}`)), 20_000)
    child.once('exit', (code) => reject(new Error(`soak server exited (${code}): ${stderr}`)))
    child.stdout!.on('data', (chunk: Buffer) => {
      const match = /READY (\d+)/.exec(chunk.toString())
      if (match !== null) {
        clearTimeout(timer)
        resolve({ child, base: `http://127.0.0.1:${match[1]}`, exitCode: () => child.exitCode ?? (child.signalCode === null ? null : -1) })
      }
    })
  })
}

interface Stats {
  rss: number
  heapUsed: number
  floodSize: number
  floodMax: number
  floodCap: number
  runs: number
  duplicates: number
  storeErrors: number
}
const stats = async (server: Server, gc = false): Promise<Stats> => (await fetch(`${server.base}/__soak/stats${gc ? '?gc=1' : ''}`)).json() as Promise<Stats>

async function logInUsers(server: Server): Promise<{ user: string; cookie: string }[]> {
  const users = []
  for (let i = 0; i < USERS; i++) {
    const user = `soak-user-${i}`
    const res = await fetch(`${server.base}/login?user=${user}`, { method: 'POST' })
    const line = res.headers.getSetCookie().find((l) => l.startsWith('sessionid='))
    if (res.status !== 204 || line === undefined) throw new Error(`login of ${user} failed: ${res.status}`)
    users.push({ user, cookie: line.split(';')[0]! })
  }
  return users
}

/** The seeded request mix, and the per-kind tally of statuses it saw. */
function mix(users: { user: string; cookie: string }[], seed: number, onEvent?: (kind: Kind, status: number) => void) {
  const random = mulberry32(seed) // seeded, so a run's request sequence can be replayed
  const recent: { cookie: string; key: string; body: string }[] = []
  let serial = 0
  const sent: Record<Kind, number> = { 'anon-visit': 0, 'anon-write': 0, read: 0, write: 0, repeat: 0, reuse: 0 }
  const unexpected: Record<string, number> = {}
  const examples: string[] = []
  const pick = (): Kind => {
    let r = random()
    for (const [kind, share] of MIX) if ((r -= share) < 0) return kind
    return 'read'
  }
  const request: AcRequest = {
    setupRequest(req, context) {
      let kind = pick()
      if ((kind === 'repeat' || kind === 'reuse') && recent.length === 0) kind = 'write'
      context.kind = kind
      sent[kind]++
      const who = users[Math.floor(random() * users.length)]!
      if (kind === 'anon-visit') return { ...req, method: 'GET', path: '/anon/visit', headers: { Accept: 'text/plain' }, body: '' }
      if (kind === 'anon-write') return { ...req, method: 'POST', path: '/api/items', headers: { ...FETCH, 'Idempotency-Key': `anon-${serial++}` }, body: '{"n":0}' }
      if (kind === 'read') return { ...req, method: 'GET', path: '/api/me', headers: { ...FETCH, Cookie: who.cookie }, body: '' }
      if (kind === 'write') {
        const key = `k-${seed}-${serial++}`
        const body = `{"n":${serial}}`
        context.key = key
        context.cookie = who.cookie
        context.body = body
        return { ...req, method: 'POST', path: '/api/items', headers: { ...FETCH, Cookie: who.cookie, 'Idempotency-Key': key }, body }
      }
      const again = recent[Math.floor(random() * recent.length)]!
      context.key = again.key
      const body = kind === 'repeat' ? again.body : '{"n":-1}'
      return { ...req, method: 'POST', path: '/api/items', headers: { ...FETCH, Cookie: again.cookie, 'Idempotency-Key': again.key }, body }
    },
    onResponse(status, _body, context, headers) {
      onEvent?.(context.kind!, status)
      const allowed = MIX.find(([kind]) => kind === context.kind)?.[2] ?? []
      const replayed = Object.entries(headers).some(([name, value]) => name.toLowerCase() === 'idempotent-replayed' && value === 'true')
      let label: string | null = allowed.includes(status) ? null : `${context.kind} → ${status}`
      if (label === null && context.kind === 'repeat' && !replayed) label = 'repeat → 201 without Idempotent-Replayed'
      if (label === null && context.kind === 'write' && replayed) label = 'write → a replayed answer'
      if (label !== null) {
        unexpected[label] = (unexpected[label] ?? 0) + 1
        if (status !== 503 && examples.length < 5) examples.push(`${label} (key ${context.key ?? '-'})`)
      }
      // Only a key whose first answer came back is repeated: a repeat that races its original may get 409.
      if (context.kind === 'write' && status === 201) {
        recent.push({ cookie: context.cookie!, key: context.key!, body: context.body! })
        if (recent.length > 64) recent.shift()
      }
    },
  }
  return { request, sent, unexpected, examples }
}

const mb = (bytes: number) => (bytes / 1048576).toFixed(1)

// ---- 1. soak per store ----
interface SoakRow {
  store: string
  seconds: number
  requests: number
  rps: number
  p99: number
  errors: number
  s5xx: number
  unexpected: Record<string, number>
  rssStart: number
  rssWarm: number
  rssEnd: number
  rssMax: number
  heapWarm: number
  heapEnd: number
  floodMax: number
  floodCap: number
  runs: number
  duplicates: number
  storeErrors: number
  sent: Record<Kind, number>
  failures: string[]
}

async function soak(store: string, env: Record<string, string>, seed: number): Promise<SoakRow> {
  console.log(`\n[soak] ${store}: ${WARMUP_SECONDS} s warm-up, then ${SECONDS} s at saturation (${CONNECTIONS} connections, seed ${seed})`)
  const server = await startServer({ SOAK_STORE: store, ...env })
  try {
    const users = await logInUsers(server)
    const rssStart = (await stats(server)).rss
    const url = server.base
    await autocannon({ url, connections: CONNECTIONS, duration: WARMUP_SECONDS, requests: [mix(users, seed + 1).request] })
    const warm = await stats(server, true)
    const rssWarm = warm.rss
    const load = mix(users, seed)
    const samples: number[] = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        await sleep(SAMPLE_MS)
        if (sampling) samples.push((await stats(server)).rss)
      }
    })()
    const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, requests: [load.request] })
    sampling = false
    await sampler
    const end = await stats(server, true)
    const row: SoakRow = {
      store,
      seconds: SECONDS,
      requests: result.requests.total,
      rps: Math.round(result.requests.average),
      p99: result.latency.p99,
      errors: result.errors + result.timeouts,
      s5xx: result['5xx'],
      unexpected: load.unexpected,
      rssStart,
      rssWarm,
      rssEnd: end.rss,
      rssMax: Math.max(...samples, end.rss),
      heapWarm: warm.heapUsed,
      heapEnd: end.heapUsed,
      floodMax: end.floodMax,
      floodCap: end.floodCap,
      runs: end.runs,
      duplicates: end.duplicates,
      storeErrors: end.storeErrors,
      sent: load.sent,
      failures: [],
    }
    const f = row.failures
    if (row.errors !== 0) f.push(`${row.errors} errors/timeouts`)
    if (row.s5xx !== 0) f.push(`${row.s5xx} 5xx answers`)
    if (Object.keys(row.unexpected).length > 0) f.push(`unexpected statuses ${JSON.stringify(row.unexpected)}, e.g. ${load.examples.join(', ')}`)
    if (row.rssEnd > row.rssWarm * RSS_BOUND) f.push(`RSS grew from ${mb(row.rssWarm)} MB to ${mb(row.rssEnd)} MB (bound ×${RSS_BOUND})`)
    if (row.heapEnd > row.heapWarm * RSS_BOUND) f.push(`live heap grew from ${mb(row.heapWarm)} MB to ${mb(row.heapEnd)} MB (bound ×${RSS_BOUND})`)
    if (row.floodMax > row.floodCap) f.push(`capped memoryStore reached ${row.floodMax} > ${row.floodCap}`)
    if (row.floodMax < row.floodCap) f.push(`the flood never filled the capped store (${row.floodMax} of ${row.floodCap}): the cap was not exercised`)
    if (row.duplicates !== 0) f.push(`${row.duplicates} handler runs repeated an Idempotency-Key`)
    if (row.storeErrors !== 0) f.push(`${row.storeErrors} store errors`)
    if (server.exitCode() !== null) f.push('the server exited')
    if (row.requests < 1000) f.push(`only ${row.requests} requests: not a saturation run`)
    return row
  } finally {
    await stop(server.child, 'SIGTERM')
  }
}

// ---- 2. store restart under load ----
interface RestartRow {
  store: string
  requests: number
  ok: number
  s503: number
  other5xx: number
  errors: number
  downMs: number
  firstOkAfterUpMs: number | null
  last503AfterUpMs: number | null
  rpsBefore: number
  rpsAfter: number
  problemJson: boolean
  failures: string[]
}

async function restartUnderLoad(label: string, env: Record<string, string>, server0: PrivateServer, storeKind: string): Promise<RestartRow> {
  console.log(`\n[soak] ${label} restart under load: kill at ${RESTART.killAt} s, start again at ${RESTART.restartAt} s, ${RESTART.seconds} s in all`)
  const server = await startServer({ SOAK_STORE: storeKind, ...env })
  try {
    const users = await logInUsers(server)
    // Events of logged-in reads and writes only: those are the requests that need the store.
    const events: [number, number][] = []
    let started = 0
    const load = mix(users, SEED + 7, (kind, status) => {
      if (kind === 'read' || kind === 'write' || kind === 'repeat' || kind === 'reuse') events.push([performance.now() - started, status])
    })
    started = performance.now()
    const instance = autocannon({ url: server.base, connections: RESTART.connections, duration: RESTART.seconds, requests: [load.request], timeout: 5 })
    let killedAt = 0
    let upAt = 0
    let problemJson = false
    const chaos = (async () => {
      await sleep(RESTART.killAt * 1000)
      await server0.kill()
      killedAt = performance.now() - started
      await sleep(500)
      // A request of our own in the gap: the answer must be the clear, retryable problem.
      const res = await fetch(`${server.base}/api/me`, { headers: { ...FETCH, Cookie: users[0]!.cookie } })
      const body = (await res.json()) as { type?: string }
      problemJson = res.status === 503 && (res.headers.get('Content-Type') ?? '').startsWith('application/problem+json') && body.type === 'urn:backward:store-unavailable' && res.headers.get('Retry-After') !== null
      await sleep(Math.max(0, RESTART.restartAt * 1000 - (performance.now() - started)))
      await server0.start()
      upAt = performance.now() - started
    })()
    const result = await instance
    await chaos
    const ok = events.filter(([, s]) => s >= 200 && s < 300)
    const afterUp = (t: number) => t >= upAt
    const firstOk = ok.find(([t]) => afterUp(t))
    const last503 = events.filter(([t, s]) => s === 503 && afterUp(t)).at(-1)
    const rate = (from: number, to: number) => Math.round(ok.filter(([t]) => t >= from && t < to).length / ((to - from) / 1000))
    const row: RestartRow = {
      store: label,
      requests: events.length,
      ok: ok.length,
      s503: events.filter(([, s]) => s === 503).length,
      other5xx: events.filter(([, s]) => s >= 500 && s !== 503).length,
      errors: result.errors + result.timeouts,
      downMs: Math.round(upAt - killedAt),
      firstOkAfterUpMs: firstOk === undefined ? null : Math.round(firstOk[0] - upAt),
      last503AfterUpMs: last503 === undefined ? null : Math.round(last503[0] - upAt),
      rpsBefore: rate(1000, killedAt),
      rpsAfter: rate(RESTART.seconds * 1000 - 4000, RESTART.seconds * 1000 - 500),
      problemJson,
      failures: [],
    }
    const f = row.failures
    if (row.s503 === 0) f.push('no 503 during the outage: the store was not really down')
    if (!row.problemJson) f.push('the gap answer was not a 503 application/problem+json store-unavailable with Retry-After')
    if (row.other5xx !== 0) f.push(`${row.other5xx} 5xx answers other than 503`)
    if (row.errors !== 0) f.push(`${row.errors} errors/timeouts`)
    if (row.firstOkAfterUpMs === null) f.push('2xx never resumed after the restart')
    if (row.rpsAfter < row.rpsBefore * 0.5) f.push(`throughput did not resume: ${row.rpsAfter} req/s after vs ${row.rpsBefore} before`)
    // In the gap, 503 is the expected answer; a repeat may get 409 when its original ran but the store
    // went down before the answer was recorded (the running record lives for the record ttl: never run twice).
    const unexpected = Object.entries(load.unexpected).filter(([k]) => !k.endsWith('→ 503') && k !== 'repeat → 409')
    if (unexpected.length > 0) f.push(`unexpected statuses ${JSON.stringify(Object.fromEntries(unexpected))}, e.g. ${load.examples.join(', ')}`)
    if ((await stats(server)).duplicates !== 0) f.push('a handler ran twice for one Idempotency-Key')
    if (server.exitCode() !== null) f.push('the server exited')
    return row
  } finally {
    await stop(server.child, 'SIGTERM')
  }
}

// ---- main ----
/** SOAK_ONLY=memory,file,redis,restart-redis,restart-postgres runs a subset (for development). */
const only = process.env.SOAK_ONLY?.split(',')
const wanted = (name: string) => only === undefined || only.includes(name)
const began = performance.now()
const soaks: SoakRow[] = []
const restarts: RestartRow[] = []
const skipped: string[] = []

if (wanted('memory')) soaks.push(await soak('memory', {}, SEED))
if (wanted('file')) {
  const fileDir = mkdtempSync(join(tmpdir(), 'bw-soak-file-'))
  try {
    soaks.push(await soak('file', { SOAK_DIR: fileDir }, SEED))
  } finally {
    rmSync(fileDir, { recursive: true, force: true })
  }
}
const redisUp = await redisPing(REDIS_URL)
if (!wanted('redis')) {
  // not asked for
} else if (redisUp.ok) {
  const prefix = `bw-soak-${process.pid}:`
  try {
    soaks.push(await soak('redis', { SOAK_REDIS_URL: REDIS_URL, SOAK_PREFIX: prefix }, SEED))
  } finally {
    const { hostname, port } = new URL(REDIS_URL)
    const client = new Redis({ host: hostname, port: Number(port) })
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
    client.disconnect()
  }
} else if (process.env.CI) {
  throw new Error(`[soak] Redis is required under CI: ${redisUp.reason}`)
} else skipped.push(`redis soak: ${redisUp.reason}`)

if (!wanted('restart-redis')) {
  // not asked for
} else if (hasRedisServer()) {
  const redis = await privateRedis({ aof: true })
  try {
    restarts.push(await restartUnderLoad('Redis', { SOAK_REDIS_URL: redis.url }, redis, 'redis'))
  } finally {
    await redis.dispose()
  }
} else skipped.push('Redis restart: redis-server is not installed')

if (!wanted('restart-postgres')) {
  // not asked for
} else if (postgresSkip === '') {
  const postgres = await privatePostgres()
  try {
    restarts.push(await restartUnderLoad('PostgreSQL', { SOAK_PG_URL: postgres.url }, postgres, 'postgres'))
  } finally {
    await postgres.dispose()
  }
} else skipped.push(`PostgreSQL restart: ${postgresSkip}`)

// ---- report ----
const totalSeconds = Math.round((performance.now() - began) / 1000)
const soakTable = [
  '| store | seconds | requests | req/s | p99 ms | errors | 5xx | unexpected | RSS start | RSS post-warm-up | RSS end | RSS max | RSS end / warm | live heap post-warm-up → end | capped store max / cap | handler runs | repeated runs | result |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |',
  ...soaks.map(
    (r) =>
      `| ${r.store} | ${r.seconds} | ${r.requests} | ${r.rps} | ${r.p99} | ${r.errors} | ${r.s5xx} | ${Object.values(r.unexpected).reduce((a, b) => a + b, 0)} | ${mb(r.rssStart)} MB | ${mb(r.rssWarm)} MB | ${mb(r.rssEnd)} MB | ${mb(r.rssMax)} MB | ${(r.rssEnd / r.rssWarm).toFixed(2)} | ${mb(r.heapWarm)} → ${mb(r.heapEnd)} MB | ${r.floodMax} / ${r.floodCap} | ${r.runs} | ${r.duplicates} | ${r.failures.length === 0 ? 'pass' : 'FAIL: ' + r.failures.join('; ')} |`,
  ),
]
const restartTable = [
  '| store | store-backed requests | 2xx | 503 | other 5xx | errors | store down for | first store-backed 2xx after store up | last 503 after store up | store-backed 2xx req/s before / after | gap answer is problem+json | result |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
  ...restarts.map(
    (r) =>
      `| ${r.store} | ${r.requests} | ${r.ok} | ${r.s503} | ${r.other5xx} | ${r.errors} | ${r.downMs} ms | ${r.firstOkAfterUpMs ?? '—'} ms | ${r.last503AfterUpMs ?? 'none'}${r.last503AfterUpMs === null ? '' : ' ms'} | ${r.rpsBefore} / ${r.rpsAfter} | ${r.problemJson ? 'yes' : 'no'} | ${r.failures.length === 0 ? 'pass' : 'FAIL: ' + r.failures.join('; ')} |`,
  ),
]
const mixLine = MIX.map(([kind, share, statuses]) => `${kind} ${Math.round(share * 100)} % (→ ${statuses.join('/')})`).join(', ')
const failed = [...soaks, ...restarts].filter((r) => r.failures.length > 0).length
const report = [
  '# Soak results',
  '',
  `Written by \`npm run test:soak\` (tests/soak/run.ts) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${totalSeconds} s in all. Seed ${SEED}.`,
  '',
  `Server: tests/soak/server.ts in its own process, @hono/node-server, with \`session()\`, \`loginRequired()\` and \`idempotency()\` on /api. Load: autocannon 8, ${CONNECTIONS} connections, ${WARMUP_SECONDS} s warm-up then ${SECONDS} s measured, ${USERS} logged-in users. Mix: ${mixLine}. Anonymous visits each create a new session in a \`memoryStore({ maxEntries: ${soaks[0]?.floodCap ?? 1000} })\`, whose size is checked after every write. "Flat": RSS and live heap (after a forced full GC) at the end ≤ their post-warm-up values × ${RSS_BOUND}; RSS is also sampled every ${SAMPLE_MS / 1000} s (RSS max).`,
  '',
  '## Soak at saturation',
  '',
  ...soakTable,
  '',
  '## Store restart under load',
  '',
  `The store is killed (Redis: SIGKILL, with an fsync-always AOF; PostgreSQL: SIGQUIT, an immediate stop) ${RESTART.killAt} s into a ${RESTART.seconds} s load of ${RESTART.connections} connections, and started again on the same port at ${RESTART.restartAt} s. The app, its client and its pool are never rebuilt.`,
  '',
  ...restartTable,
  '',
  ...(skipped.length > 0 ? ['Skipped: ' + skipped.join('; '), ''] : []),
  `${failed === 0 ? 'All checks passed.' : `${failed} run(s) failed.`}`,
  '',
]
console.log('\n' + soakTable.join('\n') + '\n\n' + restartTable.join('\n'))
for (const r of soaks) console.log(`[soak] ${r.store} requests sent by kind: ${JSON.stringify(r.sent)}`)
writeFileSync(new URL('./RESULTS.md', import.meta.url), report.join('\n'))
console.log(`\n[soak] ${totalSeconds} s; wrote tests/soak/RESULTS.md; ${failed === 0 ? 'all checks passed' : `${failed} run(s) FAILED`}`)
process.exit(failed === 0 ? 0 : 1)
