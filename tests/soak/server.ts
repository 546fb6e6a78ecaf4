/**
 * The soak's server: a real HTTP server (@hono/node-server) in its own process, so its RSS is its own.
 * `session()`, `loginRequired()` and `idempotency()` sit on every /api request. Configured by env:
 *   SOAK_STORE      memory | file | redis | postgres   (sessions and idempotency records)
 *   SOAK_DIR        fileStore directory (file)
 *   SOAK_REDIS_URL  redis://host:port (redis)        SOAK_PREFIX  key prefix (redis)
 *   SOAK_PG_URL     postgres://… (postgres)
 * It prints `READY <port>` once it listens. `GET /__soak/stats` reports RSS and the counters below.
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { Redis } from 'ioredis'
import pg from 'pg'
import { getUserId, idempotency, login, loginRequired, memoryStore, session } from '../../src/server/index.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { fileStore } from '../../src/server/stores/file.ts'
import { redisStore } from '../../src/server/stores/redis.ts'
import { postgresStore } from '../../src/server/stores/postgres.ts'

/** The cap of the memory store that takes the anonymous flood (one new session per anonymous visit). */
export const FLOOD_CAP = 1000
/** How many recent write keys the server remembers to spot a second run of the same key. */
const RECENT_KEYS = 10_000

const kind = process.env.SOAK_STORE ?? 'memory'
let storeErrors = 0
const onStoreError = () => {
  storeErrors++
}

async function stores(): Promise<{ main: SessionStore; idem: SessionStore; close(): Promise<void> }> {
  if (kind === 'memory') return { main: memoryStore(), idem: memoryStore({ maxEntries: 2000 }), close: async () => {} }
  if (kind === 'file') {
    const dir = process.env.SOAK_DIR!
    return { main: fileStore({ dir: `${dir}/sessions` }), idem: fileStore({ dir: `${dir}/idempotency` }), close: async () => {} }
  }
  if (kind === 'redis') {
    const { hostname, port } = new URL(process.env.SOAK_REDIS_URL!)
    // Fail fast during an outage (a 503 at once) instead of queueing commands until Redis is back.
    const client = new Redis({ host: hostname, port: Number(port), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 50, 200) })
    client.on('error', () => {})
    await client.connect()
    const prefix = process.env.SOAK_PREFIX ?? 'bw-soak:'
    return { main: redisStore({ client, prefix: `${prefix}s:` }), idem: redisStore({ client, prefix: `${prefix}i:` }), close: async () => void client.disconnect() }
  }
  if (kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: process.env.SOAK_PG_URL!, max: 8, connectionTimeoutMillis: 1000 })
    pool.on('error', () => {})
    const store = postgresStore({ pool })
    await store.migrate()
    return { main: store, idem: store, close: () => pool.end() }
  }
  throw new Error(`unknown SOAK_STORE ${kind}`)
}

const { main, idem } = await stores()

// The flood store: wrapped so its size is checked after every write, not only when sampled.
const flood = memoryStore({ maxEntries: FLOOD_CAP })
let floodMax = 0
const floodStore: SessionStore = {
  load: (k) => flood.load(k),
  delete: (k) => flood.delete(k),
  async create(k, d, e) {
    const ok = await flood.create(k, d, e)
    floodMax = Math.max(floodMax, flood.size)
    return ok
  },
  async update(k, d, e) {
    const ok = await flood.update(k, d, e)
    floodMax = Math.max(floodMax, flood.size)
    return ok
  },
}

let runs = 0
let duplicates = 0
const recent = new Set<string>()

const app = new Hono()
app.use('/anon/*', session({ store: floodStore, onStoreError }))
app.get('/anon/visit', (c) => {
  c.var.session.set('seen', 1)
  return c.text('ok')
})
app.use('/login', session({ store: main, onStoreError }))
app.post('/login', async (c) => {
  await login(c, c.req.query('user') ?? 'anon')
  return c.body(null, 204)
})
app.use('/api/*', session({ store: main, onStoreError }), loginRequired(), idempotency({ store: idem, ttl: 120, onStoreError }))
app.get('/api/me', (c) => c.json({ user: getUserId(c), writes: c.var.session.get('writes', 0) }))
app.post('/api/items', async (c) => {
  const key = c.req.header('Idempotency-Key') ?? ''
  const scoped = `${getUserId(c)} ${key}`
  if (recent.has(scoped)) duplicates++
  else {
    recent.add(scoped)
    if (recent.size > RECENT_KEYS) recent.delete(recent.values().next().value as string)
  }
  runs++
  const body = await c.req.json<{ n: number }>()
  c.var.session.set('writes', c.var.session.get<number>('writes', 0) + 1)
  return c.json({ ok: true, n: body.n }, 201)
})
app.get('/__soak/stats', (c) => {
  // ?gc=1: a full collection first (the server runs with --expose-gc), so heapUsed is what is live.
  if (c.req.query('gc') === '1') (globalThis as { gc?: () => void }).gc?.()
  const { rss, heapUsed } = process.memoryUsage()
  return c.json({ rss, heapUsed, floodSize: flood.size, floodMax, floodCap: FLOOD_CAP, runs, duplicates, storeErrors })
})

const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
  console.log(`READY ${info.port}`)
})
process.on('SIGTERM', () => {
  server.close()
  process.exit(0)
})
