// One benchmark target, run as its own child process so the load generator (the parent) and the
// server never share an event loop. `tsx bench/server/target.ts <name>` listens on 127.0.0.1 on a
// free port and prints `READY <port>`; SIGTERM closes it and removes what it created.
//
// Every target serves the same two routes:
//   GET /read   reads `count` from the session (an anonymous request has none)
//   GET /write  increments `count` in the session and saves it
// and answers `{"count":n}` as JSON, so only the session layer differs between targets.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { Hono, type Context } from 'hono'
import type { CookieOptions } from 'hono/utils/cookie'
import { generateCookie, getCookie, setCookie } from 'hono/cookie'
import { serve } from '@hono/node-server'
import { session, memoryStore, cookieStore } from '../../src/server/index.ts'
import { fileStore } from '../../src/server/stores/file.ts'
import { redisStore } from '../../src/server/stores/redis.ts'
import { postgresStore } from '../../src/server/stores/postgres.ts'
import { BENCH, REDIS_URL, PG_CONFIG } from '../config.ts'

type Close = () => Promise<void>
interface Built {
  server: Server
  cleanup: Close
}

const SECRET = 'bench-secret-0123456789-abcdefghijklmnop-0123456789'
const noop: Close = async () => {}

function listenHono(app: Hono): Promise<Server> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(server as Server))
  })
}

/** Hono with no session: the ceiling every other target is compared with. */
async function bare(): Promise<Built> {
  const app = new Hono()
  app.get('/read', (c) => c.json({ count: 0 }))
  app.get('/write', (c) => c.json({ count: 1 }))
  return { server: await listenHono(app), cleanup: noop }
}

/**
 * Hono + the exact headers backward's session() writes, with no session at all: `Vary: Cookie` on
 * every answer (set before the response exists, as session() does), and on /write a session
 * Set-Cookie of the same shape plus `Cache-Control: no-store`, added after the handler. On Node, a
 * response with more than one header goes through a `Headers` object instead of @hono/node-server's
 * plain-object fast path, so this is the ceiling of any cookie-setting middleware: what is left
 * between it and backward is backward's own work.
 */
async function sameHeaders(): Promise<Built> {
  const app = new Hono()
  const id = 'x'.repeat(43)
  app.use(async function headers(c, next) {
    c.header('Vary', 'Cookie', { append: true })
    await next()
    if (c.req.path !== '/write') return
    const maxAge = 1_209_600
    const headers = c.res.headers
    headers.append('Set-Cookie', generateCookie('sessionid', id, { path: '/', httpOnly: true, sameSite: 'Lax', secure: false, maxAge, expires: new Date(Date.now() + maxAge * 1000) }))
    headers.set('Cache-Control', 'no-store')
  })
  app.get('/read', (c) => c.json({ count: 0 }))
  app.get('/write', (c) => c.json({ count: 1 }))
  return { server: await listenHono(app), cleanup: noop }
}

/** Hono + backward's session() on the given store. */
async function backward(store: Parameters<typeof session>[0]['store'], cleanup: Close = noop): Promise<Built> {
  const app = new Hono()
  app.use(session({ store }))
  app.get('/read', (c) => c.json({ count: c.var.session.get<number>('count') ?? 0 }))
  app.get('/write', (c) => {
    const count = (c.var.session.get<number>('count') ?? 0) + 1
    c.var.session.set('count', count)
    return c.json({ count })
  })
  return { server: await listenHono(app), cleanup }
}

async function backwardRedis(): Promise<Built> {
  const { Redis } = await import('ioredis')
  const client = new Redis(REDIS_URL)
  const store = redisStore({ client, prefix: BENCH.redisServerPrefix })
  return backward(store, async () => {
    client.disconnect()
  })
}

async function backwardPostgres(): Promise<Built> {
  const { default: pg } = await import('pg')
  const pool = new pg.Pool({ ...PG_CONFIG, max: 10 })
  pool.on('error', () => {})
  const store = postgresStore({ pool, table: BENCH.pgServerTable })
  await store.migrate()
  return backward(store, async () => {
    await pool.query(`DROP TABLE IF EXISTS ${BENCH.pgServerTable}`)
    await pool.end()
  })
}

async function backwardFile(): Promise<Built> {
  const dir = mkdtempSync(join(tmpdir(), 'backward-bench-'))
  return backward(fileStore({ dir }), async () => rmSync(dir, { recursive: true, force: true }))
}

/** hono-sessions 0.8.1 as its README sets it up (encryptionKey given, as it recommends for every store). */
async function honoSessions(kind: 'memory' | 'cookie'): Promise<Built> {
  const { sessionMiddleware, MemoryStore, CookieStore } = await import('hono-sessions')
  const app = new Hono()
  app.use(
    sessionMiddleware({
      store: kind === 'memory' ? new MemoryStore() : new CookieStore(),
      encryptionKey: SECRET,
      expireAfterSeconds: 1_209_600,
      cookieOptions: { sameSite: 'Lax', path: '/', httpOnly: true },
    }),
  )
  type HS = { get(key: string): unknown; set(key: string, value: unknown): void }
  app.get('/read', (c) => c.json({ count: ((c.get('session' as never) as HS).get('count') as number | undefined) ?? 0 }))
  app.get('/write', (c) => {
    const s = c.get('session' as never) as HS
    const count = (((s.get('count') as number | undefined) ?? 0) + 1)
    s.set('count', count)
    return c.json({ count })
  })
  return { server: await listenHono(app), cleanup: noop }
}

/** Hono + iron-session 8 through its `cookies()` adapter form (the Next.js shape), mapped onto hono/cookie. */
async function ironSession(): Promise<Built> {
  const { getIronSession } = await import('iron-session')
  const app = new Hono()
  const options = { password: SECRET, cookieName: 'iron', cookieOptions: { secure: false } }
  // iron-session's `CookieStore` type: the shape of Next.js's cookies().
  type Jar = Extract<Parameters<typeof getIronSession>[0], { get: unknown }>
  const jar = (c: Context): Jar =>
    ({
      get: (name: string) => {
        const value = getCookie(c, name)
        return value === undefined ? undefined : { name, value }
      },
      set: (name: string, value: string, cookie?: Record<string, unknown>) => setCookie(c, name, value, cookie as CookieOptions),
    }) as Jar
  app.get('/read', async (c) => {
    const s = await getIronSession<{ count?: number }>(jar(c), options)
    return c.json({ count: s.count ?? 0 })
  })
  app.get('/write', async (c) => {
    const s = await getIronSession<{ count?: number }>(jar(c), options)
    s.count = (s.count ?? 0) + 1
    await s.save()
    return c.json({ count: s.count })
  })
  return { server: await listenHono(app), cleanup: noop }
}

/** express 5 + express-session 1.18, configured as its README recommends (no resave, no empty sessions). */
async function express(kind: 'memory' | 'redis'): Promise<Built> {
  const { default: expressApp } = await import('express')
  const { default: expressSession } = await import('express-session')
  let cleanup = noop
  let store: import('express-session').Store | undefined
  if (kind === 'redis') {
    // connect-redis 9 documents node-redis (`createClient`) as its client.
    const { createClient } = await import('redis')
    const { RedisStore } = await import('connect-redis')
    const client = createClient({ url: REDIS_URL })
    client.on('error', () => {})
    await client.connect()
    store = new RedisStore({ client, prefix: BENCH.connectRedisPrefix })
    cleanup = async () => {
      client.destroy()
    }
  }
  const app = expressApp()
  app.set('etag', false)
  app.use(expressSession({ secret: SECRET, resave: false, saveUninitialized: false, ...(store ? { store } : {}) }))
  type Counted = { count?: number }
  app.get('/read', (req, res) => {
    res.json({ count: (req.session as Counted).count ?? 0 })
  })
  app.get('/write', (req, res) => {
    const s = req.session as Counted
    s.count = (s.count ?? 0) + 1
    res.json({ count: s.count })
  })
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return { server, cleanup }
}

/** Target names, in the order the tables list them. */
export const TARGETS = {
  'hono (bare)': bare,
  'hono + same headers': sameHeaders,
  'backward memory': () => backward(memoryStore({ maxEntries: 100_000 })),
  'backward cookie': () => backward(cookieStore({ secrets: [SECRET] })),
  'backward file': backwardFile,
  'backward redis': backwardRedis,
  'backward postgres': backwardPostgres,
  'hono-sessions memory': () => honoSessions('memory'),
  'hono-sessions cookie': () => honoSessions('cookie'),
  'express-session memory': () => express('memory'),
  'express-session connect-redis': () => express('redis'),
  'hono + iron-session': ironSession,
} satisfies Record<string, () => Promise<Built>>

export type TargetName = keyof typeof TARGETS

