/**
 * Store outages: a private Redis (and a private PostgreSQL cluster) is started, killed and started
 * again on the same port while one Hono app keeps serving. The shared servers are never touched.
 * While the store is down, requests get a 503 problem+json and the process stays up; once the store
 * is back, the same app (same client, same pool) serves again without being rebuilt.
 */
import { inspect } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import pg from 'pg'
import { session } from '../../src/server/index.ts'
import { redisStore } from '../../src/server/stores/redis.ts'
import { postgresStore } from '../../src/server/stores/postgres.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { hasRedisServer, postgresSkip, privatePostgres, privateRedis, sleep, type PrivateServer } from '../helpers/private-stores.ts'

/** Every private server started here, disposed of at the end even when a test stops half-way. */
const servers = new Set<PrivateServer>()
afterAll(async () => {
  for (const server of servers) await server.dispose()
})
async function started(server: Promise<PrivateServer>): Promise<PrivateServer> {
  const s = await server
  servers.add(s)
  return s
}

/** The session app under test: each request reads and bumps a counter in the session. */
function counterApp(store: SessionStore) {
  const storeErrors: unknown[] = []
  const app = new Hono()
  app.use(session({ store, onStoreError: (error) => storeErrors.push(error) }))
  app.get('/n', (c) => {
    const n = c.var.session.get<number>('n', 0) + 1
    c.var.session.set('n', n)
    return c.json({ n })
  })
  let cookie = ''
  async function hit(): Promise<Response> {
    const res = await app.request('/n', { headers: cookie === '' ? {} : { cookie } })
    const set = res.headers.get('set-cookie')
    if (set !== null) cookie = set.split(';')[0]!
    return res
  }
  return { hit, storeErrors }
}

async function expectUnavailable(res: Response): Promise<void> {
  expect(res.status).toBe(503)
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  expect(await res.json()).toMatchObject({ type: 'urn:backward:store-unavailable', status: 503 })
}

/** Kills the store, checks the 503s, restarts it, and measures how long until a request succeeds. */
async function outage(label: string, hit: () => Promise<Response>, kill: () => Promise<void>, restart: () => Promise<void>) {
  expect(await (await hit()).json()).toEqual({ n: 1 })
  expect(await (await hit()).json()).toEqual({ n: 2 })

  await kill()
  let unavailable = 0
  const downStarted = performance.now()
  for (let i = 0; i < 10; i++) {
    await expectUnavailable(await hit())
    unavailable++
  }
  const downMs = performance.now() - downStarted

  const restarted = performance.now()
  await restart()
  const answering = performance.now() // the server answers its own ping; now the app's client must catch up
  let res: Response
  for (;;) {
    res = await hit()
    if (res.status === 200) break
    await expectUnavailable(res)
    unavailable++
    if (performance.now() - restarted > 20_000) throw new Error(`${label} did not recover within 20 s`)
    await sleep(25)
  }
  const recoveryMs = performance.now() - restarted
  const catchUpMs = performance.now() - answering
  const body = (await res.json()) as { n: number }
  console.log(
    `[outage] ${label}: ${unavailable} requests got 503 (the 10 while down took ${downMs.toFixed(0)} ms); ` +
      `first 200 came ${recoveryMs.toFixed(0)} ms after the restart began, ${catchUpMs.toFixed(0)} ms after the server answered (n=${body.n})`,
  )
  return { unavailable, recoveryMs, n: body.n }
}

const redisInstalled = hasRedisServer()

describe.skipIf(!redisInstalled && !process.env.CI)(redisInstalled ? 'Redis outage' : 'Redis outage (skipped: redis-server is not installed)', () => {
  it('ioredis: 503 while Redis is down, then recovery on the same client', async () => {
    const server = await started(privateRedis({ aof: false }))
    const { port } = new URL(server.url)
    // Fail fast instead of queueing commands until Redis is back; reconnect at most every 200 ms.
    // Without the offline queue a command sent before the first connect fails too, hence lazyConnect + connect().
    const client = new Redis({ host: '127.0.0.1', port: Number(port), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (times) => Math.min(times * 50, 200) })
    client.on('error', () => {})
    await client.connect()
    try {
      const { hit, storeErrors } = counterApp(redisStore({ client }))
      const result = await outage(
        'Redis (ioredis)',
        hit,
        () => server.kill(),
        () => server.start(),
      )
      expect(result.unavailable).toBeGreaterThanOrEqual(10)
      expect(result.n).toBe(1) // --save "": the restarted Redis is empty, so a fresh session starts
      expect(storeErrors.every((e) => (e as { code?: string }).code === 'STORE_UNAVAILABLE')).toBe(true)
    } finally {
      client.disconnect()
      await server.dispose()
    }
  })

  it('a Redis out of memory gives 503, and the logged error holds no session data', async () => {
    const server = await started(privateRedis({ aof: false, args: ['--maxmemory', '1'] }))
    const io = new Redis(server.url)
    const node = createClient({ url: server.url })
    node.on('error', () => {})
    await node.connect()
    try {
      for (const client of [io, node]) {
        const storeErrors: unknown[] = []
        const app = new Hono()
        app.use(session({ store: redisStore({ client }), onStoreError: (error) => storeErrors.push(error) }))
        app.get('/', (c) => (c.var.session.set('card', 'SECRET-4111'), c.text('ok')))
        await expectUnavailable(await app.request('/'))
        expect(storeErrors).toHaveLength(1)
        const logged = inspect(storeErrors[0], { depth: 10 })
        expect(logged).toMatch(/OOM/)
        expect(logged).not.toContain('SECRET-4111')
      }
    } finally {
      io.disconnect()
      await node.quit()
      await server.dispose()
    }
  })

  it('node-redis: 503 while Redis is down, then recovery on the same client', async () => {
    const server = await started(privateRedis({ aof: false }))
    const client = createClient({ url: server.url, disableOfflineQueue: true, socket: { reconnectStrategy: (retries) => Math.min(retries * 50, 200) } })
    client.on('error', () => {})
    await client.connect()
    try {
      const { hit, storeErrors } = counterApp(redisStore({ client }))
      const result = await outage(
        'Redis (node-redis)',
        hit,
        () => server.kill(),
        () => server.start(),
      )
      expect(result.unavailable).toBeGreaterThanOrEqual(10)
      expect(storeErrors.every((e) => (e as { code?: string }).code === 'STORE_UNAVAILABLE')).toBe(true)
    } finally {
      client.destroy()
      await server.dispose()
    }
  })
})

describe.skipIf(postgresSkip !== '' && !process.env.CI)(postgresSkip === '' ? 'PostgreSQL outage' : `PostgreSQL outage (skipped: ${postgresSkip})`, () => {
  it('503 while PostgreSQL is down, then recovery on the same pool with the session intact', async () => {
    const server = await started(privatePostgres())
    const pool = new pg.Pool({ connectionString: server.url, max: 4, connectionTimeoutMillis: 1000 })
    pool.on('error', () => {})
    try {
      const store = postgresStore({ pool })
      await store.migrate()
      const { hit, storeErrors } = counterApp(store)
      const result = await outage(
        'PostgreSQL',
        hit,
        () => server.kill(), // SIGQUIT, an immediate shutdown: the nearest thing to a crash that still allows a restart
        () => server.start(),
      )
      expect(result.unavailable).toBeGreaterThanOrEqual(10)
      expect(result.n).toBe(3) // the row survived the crash: the same session goes on
      expect(storeErrors.every((e) => (e as { code?: string }).code === 'STORE_UNAVAILABLE')).toBe(true)
    } finally {
      await pool.end()
      await server.dispose()
    }
  })
})
