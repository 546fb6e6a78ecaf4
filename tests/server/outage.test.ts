/**
 * Store outages: a private Redis (and a private PostgreSQL cluster) is started, killed and started
 * again on the same port while one Hono app keeps serving. The shared servers are never touched.
 * While the store is down, requests get a 503 problem+json and the process stays up; once the store
 * is back, the same app (same client, same pool) serves again without being rebuilt.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { inspect } from 'node:util'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import pg from 'pg'
import { session } from '../../src/server/index.ts'
import { redisStore } from '../../src/server/stores/redis.ts'
import { postgresStore } from '../../src/server/stores/postgres.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { postgresPing, redisPing } from '../helpers/services.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

const children = new Set<ChildProcess>()
afterAll(async () => {
  for (const child of children) await stop(child, 'SIGKILL')
})

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => {
      children.delete(child)
      resolve()
    })
    child.kill(signal)
  })
}

async function until(ready: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${ms} ms`)
    await sleep(20)
  }
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

const hasRedisServer = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

describe.skipIf(!hasRedisServer && !process.env.CI)(hasRedisServer ? 'Redis outage' : 'Redis outage (skipped: redis-server is not installed)', () => {
  async function startRedis(port: number): Promise<ChildProcess> {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' })
    children.add(child)
    await until(async () => (await redisPing(`redis://127.0.0.1:${port}`)).ok, `private redis-server on ${port}`)
    return child
  }

  it('ioredis: 503 while Redis is down, then recovery on the same client', async () => {
    const port = await freePort()
    let server = await startRedis(port)
    // Fail fast instead of queueing commands until Redis is back; reconnect at most every 200 ms.
    // Without the offline queue a command sent before the first connect fails too, hence lazyConnect + connect().
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (times) => Math.min(times * 50, 200) })
    client.on('error', () => {})
    await client.connect()
    try {
      const { hit, storeErrors } = counterApp(redisStore({ client }))
      const result = await outage(
        'Redis (ioredis)',
        hit,
        () => stop(server, 'SIGKILL'),
        async () => {
          server = await startRedis(port)
        },
      )
      expect(result.unavailable).toBeGreaterThanOrEqual(10)
      expect(result.n).toBe(1) // --save "": the restarted Redis is empty, so a fresh session starts
      expect(storeErrors.every((e) => (e as { code?: string }).code === 'STORE_UNAVAILABLE')).toBe(true)
    } finally {
      client.disconnect()
      await stop(server, 'SIGKILL')
    }
  })

  it('a Redis out of memory gives 503, and the logged error holds no session data', async () => {
    const port = await freePort()
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory', '1', '--daemonize', 'no'], { stdio: 'ignore' })
    children.add(child)
    await until(async () => (await redisPing(`redis://127.0.0.1:${port}`)).ok, `private redis-server on ${port}`)
    const io = new Redis({ host: '127.0.0.1', port })
    const node = createClient({ url: `redis://127.0.0.1:${port}` })
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
      await stop(child, 'SIGKILL')
    }
  })

  it('node-redis: 503 while Redis is down, then recovery on the same client', async () => {
    const port = await freePort()
    let server = await startRedis(port)
    const client = createClient({ url: `redis://127.0.0.1:${port}`, disableOfflineQueue: true, socket: { reconnectStrategy: (retries) => Math.min(retries * 50, 200) } })
    client.on('error', () => {})
    await client.connect()
    try {
      const { hit, storeErrors } = counterApp(redisStore({ client }))
      const result = await outage(
        'Redis (node-redis)',
        hit,
        () => stop(server, 'SIGKILL'),
        async () => {
          server = await startRedis(port)
        },
      )
      expect(result.unavailable).toBeGreaterThanOrEqual(10)
      expect(storeErrors.every((e) => (e as { code?: string }).code === 'STORE_UNAVAILABLE')).toBe(true)
    } finally {
      client.destroy()
      await stop(server, 'SIGKILL')
    }
  })
})

/** A private PostgreSQL cluster needs the server binaries and, since initdb refuses root, the postgres user. */
const pgBin = (() => {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0]
  return version === undefined ? undefined : join(root, version, 'bin')
})()
const pgUser = (() => {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  try {
    return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) }
  } catch {
    return undefined
  }
})()
const pgSkip = pgBin === undefined ? 'PostgreSQL server binaries not found' : pgUser === undefined ? 'running as root and there is no postgres user for initdb' : ''

describe.skipIf(pgSkip !== '' && !process.env.CI)(pgSkip === '' ? 'PostgreSQL outage' : `PostgreSQL outage (skipped: ${pgSkip})`, () => {
  it('503 while PostgreSQL is down, then recovery on the same pool with the session intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-pg-'))
    chownSync(dir, pgUser!.uid, pgUser!.gid)
    const data = join(dir, 'data')
    const as = { uid: pgUser!.uid, gid: pgUser!.gid }
    execFileSync(join(pgBin!, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions'], { ...as, stdio: 'ignore' })
    const port = await freePort()
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`
    async function startPostgres(): Promise<ChildProcess> {
      const child = spawn(join(pgBin!, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'shared_buffers=16MB'], { ...as, stdio: 'ignore' })
      children.add(child)
      await until(async () => (await postgresPing(url)).ok, `private postgres on ${port}`)
      return child
    }
    let server = await startPostgres()
    const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 1000 })
    pool.on('error', () => {})
    try {
      const store = postgresStore({ pool })
      await store.migrate()
      const { hit, storeErrors } = counterApp(store)
      const result = await outage(
        'PostgreSQL',
        hit,
        () => stop(server, 'SIGQUIT'), // immediate shutdown: the nearest thing to a crash that still allows a restart
        async () => {
          server = await startPostgres()
        },
      )
      expect(result.unavailable).toBeGreaterThanOrEqual(10)
      expect(result.n).toBe(3) // the row survived the crash: the same session goes on
      expect(storeErrors.every((e) => (e as { code?: string }).code === 'STORE_UNAVAILABLE')).toBe(true)
    } finally {
      await pool.end()
      await stop(server, 'SIGINT')
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
