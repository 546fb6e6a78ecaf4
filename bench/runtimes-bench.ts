/**
 * The runtime bench's measured code, runtime-neutral: in-process loops of `app.fetch()` for bare Hono
 * and for Hono + session() on one runtime, each for a fixed time. bench/runtimes.ts bundles it once and
 * runs it on Node, Bun, Deno, workerd and edge-runtime, so every ratio compares two figures from the
 * same runtime. No load generator, no sockets: this measures the middleware, not the HTTP server.
 */
import { Hono } from 'hono'
import { cookieStore, memoryStore, session, type BackwardEnv, type CookieSessionStore, type SessionStore } from '../src/server/index.ts'

const SECRET = 'b'.repeat(32)

export interface RuntimeCase {
  name: string
  /** Requests per second, the median of the rounds. */
  rps: number
}

export interface RuntimeBenchReport {
  runtime: string
  roundMs: number
  rounds: number
  cases: RuntimeCase[]
}

type Target = { name: string; app: Hono<BackwardEnv>; cookie: string }

async function sessionTarget(name: string, store: SessionStore | CookieSessionStore, write: boolean): Promise<Target> {
  const app = new Hono<BackwardEnv>()
  app.use(session({ store, secret: SECRET }))
  app.get('/', (c) => {
    const n = (c.var.session.get('n') as number | undefined) ?? 0
    if (write) c.var.session.set('n', n + 1)
    return c.text(String(n))
  })
  app.get('/start', (c) => (c.var.session.set('n', 0), c.text('ok')))
  const started = await app.fetch(new Request('http://localhost/start'))
  const cookie = started.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')
  return { name, app, cookie }
}

async function targets(): Promise<Target[]> {
  const bare = new Hono<BackwardEnv>()
  bare.get('/', (c) => c.text('0'))
  return [
    { name: 'bare Hono', app: bare, cookie: '' },
    await sessionTarget('session(), memoryStore, read-only', memoryStore(), false),
    await sessionTarget('session(), memoryStore, read+write', memoryStore(), true),
    await sessionTarget('session(), cookieStore, read+write', cookieStore({ secrets: [SECRET] }), true),
  ]
}

/**
 * Runs `target` for about `ms`. workerd only advances its clock on I/O (a Spectre mitigation), so the
 * loop yields to a timer between batches and reads the clock after it; the yield costs the same on
 * every target.
 */
async function measure({ app, cookie }: Target, ms: number): Promise<number> {
  const headers = cookie ? { Cookie: cookie } : undefined
  const begin = Date.now()
  let count = 0
  let elapsed = 0
  while (elapsed < ms) {
    for (let i = 0; i < 200; i++) {
      const res = await app.fetch(new Request('http://localhost/', { headers }))
      if (res.status !== 200) throw new Error(`[bench] ${res.status} from the bench app`)
      await res.arrayBuffer()
    }
    count += 200
    await new Promise((resolve) => setTimeout(resolve, 0))
    elapsed = Date.now() - begin
  }
  return (count * 1000) / elapsed
}

/** Warms every target, then measures them round-robin so that noise spreads over all; medians. */
export async function runBench(runtime: string, { roundMs = 1000, rounds = 3 } = {}): Promise<RuntimeBenchReport> {
  const all = await targets()
  for (const target of all) await measure(target, Math.min(300, roundMs))
  const samples = all.map(() => [] as number[])
  for (let round = 0; round < rounds; round++) {
    for (const [i, target] of all.entries()) samples[i]!.push(await measure(target, roundMs))
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  return { runtime, roundMs, rounds, cases: all.map((target, i) => ({ name: target.name, rps: Math.round(median(samples[i]!)) })) }
}
