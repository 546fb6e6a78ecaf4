import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { idempotency } from '../../src/server/index.ts'
import { Cluster, Redis } from 'ioredis'
import { createClient, createCluster } from 'redis'
import { redisStore } from '../../src/server/stores/redis.ts'
import { REDIS_URL, redisPing, redisService, titled } from '../helpers/services.ts'
import { describeStoreContract, freshKey } from './store-contract.ts'

const service = await redisService()
const later = () => Date.now() + 60_000
const newPrefix = () => `bwtest:${randomBytes(6).toString('hex')}:`

type NodeRedis = ReturnType<typeof createClient>
let io: Redis
let node: NodeRedis
/** A second, independent connection: the "other request" of the concurrency tests, and a spy on raw keys. */
let spy: Redis

async function dropPrefix(prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await spy.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    if (keys.length > 0) await spy.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

describe.skipIf(!service.ok)(titled('redisStore', service), () => {
  beforeAll(async () => {
    io = new Redis(REDIS_URL)
    spy = new Redis(REDIS_URL)
    node = createClient({ url: REDIS_URL })
    node.on('error', () => {})
    await node.connect()
  })
  afterAll(async () => {
    await io?.quit()
    await spy?.quit()
    await node?.quit()
  })

  let ioPrefix = ''
  describeStoreContract(
    'redisStore (ioredis)',
    () => redisStore({ client: io, prefix: (ioPrefix = newPrefix()) }),
    () => dropPrefix(ioPrefix),
  )
  let nodePrefix = ''
  describeStoreContract(
    'redisStore (node-redis)',
    () => redisStore({ client: node, prefix: (nodePrefix = newPrefix()) }),
    () => dropPrefix(nodePrefix),
  )

  for (const [label, client] of [['ioredis', () => io], ['node-redis', () => node]] as const) {
    describe(`with ${label}`, () => {
      const prefix = newPrefix()
      afterAll(() => dropPrefix(prefix))

      it('does not resurrect a session deleted from a second connection', async () => {
        const store = redisStore({ client: client(), prefix })
        const key = await freshKey()
        expect(await store.create(key, { user: 'u1' }, later())).toBe(true)
        await spy.del(prefix + key) // another app instance logs the user out
        expect(await store.update(key, { user: 'u1', cart: 3 }, later())).toBe(false)
        expect(await store.load(key)).toBeNull()
        expect(await spy.exists(prefix + key)).toBe(0)
      })

      it('stores one string key per session, with the expiry as its TTL', async () => {
        const store = redisStore({ client: client(), prefix })
        const key = await freshKey()
        await store.create(key, { a: 1 }, Date.now() + 30_000)
        expect(await spy.type(prefix + key)).toBe('string')
        const pttl = await spy.pttl(prefix + key)
        expect(pttl).toBeGreaterThan(29_000)
        expect(pttl).toBeLessThanOrEqual(30_000)
        await store.update(key, { a: 2 }, Date.now() + 5_000)
        expect(await spy.pttl(prefix + key)).toBeLessThanOrEqual(5_000)
        expect(await store.touch!(key, Date.now() + 90_000)).toBe(true)
        expect(await spy.pttl(prefix + key)).toBeGreaterThan(89_000)
        expect(await spy.get(prefix + key)).toBe('{"a":2}') // touch leaves the data alone
      })

      it('honours a short TTL: the record is gone once it passes', async () => {
        const store = redisStore({ client: client(), prefix })
        const key = await freshKey()
        await store.create(key, { a: 1 }, Date.now() + 100)
        expect(await store.load(key)).toEqual({ a: 1 })
        await new Promise((r) => setTimeout(r, 160))
        expect(await store.load(key)).toBeNull()
        expect(await spy.pttl(prefix + key)).toBe(-2) // the key no longer exists
      })

      it('a past expiry on update still reports truthfully, then the record is gone', async () => {
        const store = redisStore({ client: client(), prefix })
        const key = await freshKey()
        await store.create(key, { a: 1 }, later())
        expect(await store.update(key, { a: 2 }, Date.now() - 10_000)).toBe(true)
        await new Promise((r) => setTimeout(r, 10))
        expect(await store.load(key)).toBeNull()
      })

      it('clearExpired resolves 0: Redis expires keys itself', async () => {
        const store = redisStore({ client: client(), prefix })
        expect(await store.clearExpired()).toBe(0)
      })

      it('uses the default prefix backward:', async () => {
        const store = redisStore({ client: client() })
        const key = await freshKey()
        await store.create(key, { d: 1 }, Date.now() + 5_000)
        expect(await spy.get(`backward:${key}`)).toBe('{"d":1}')
        await store.delete(key)
        expect(await spy.exists(`backward:${key}`)).toBe(0)
      })
    })
  }

  it('carries idempotency records: a repeated Idempotency-Key runs the handler once', async () => {
    const app = new Hono()
    let runs = 0
    app.use(idempotency({ store: redisStore({ client: io, prefix: newPrefix() }), scope: () => 'user-1' }))
    app.post('/follow', (c) => c.json({ run: ++runs }, 201))
    const key = randomBytes(8).toString('hex')
    const send = () => app.request('/follow', { method: 'POST', headers: { 'Idempotency-Key': key } })
    const [first, second] = [await send(), await send()]
    expect([first.status, second.status]).toEqual([201, 201])
    expect(await second.json()).toEqual({ run: 1 })
    expect(second.headers.get('Idempotent-Replayed')).toBe('true')
    expect(runs).toBe(1)
  })

  describe('security', () => {
    it('rejects hostile store keys before sending any command', async () => {
      const sent: string[] = []
      const recording = {
        get: async (k: string) => (sent.push(k), null),
        set: async (k: string) => (sent.push(k), 'OK'),
        pexpire: async (k: string) => (sent.push(k), 1),
        del: async (k: string) => (sent.push(k), 1),
      }
      const store = redisStore({ client: recording })
      for (const key of ['*', 'a\nb', '../x', "'; DROP TABLE backward_sessions; --", '{tag}', `${'0'.repeat(63)}*`, `{${'0'.repeat(62)}}`]) {
        await expect(store.load(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.create(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.update(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.delete(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.touch!(key, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
      }
      expect(sent).toEqual([])
    })

    it('rejects a bad configuration at start-up', () => {
      expect(() => redisStore({ client: {} as never })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      expect(() => redisStore(undefined as never)).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      for (const prefix of ['has space', 'new\nline', 'x'.repeat(101), 5 as never]) {
        expect(() => redisStore({ client: io, prefix })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      }
      expect(redisStore({ client: io, prefix: '' })).toBeTruthy()
    })

    it('refuses { and } in the prefix: a Cluster hash tag would put every session in one slot', () => {
      for (const prefix of ['{backward}:', 'app:{sessions}:', '{', '}', 'a}b{']) {
        expect(() => redisStore({ client: io, prefix })).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/^\[backward\] redisStore: prefix must not contain \{ or \}.*one slot/) }))
      }
      expect(redisStore({ client: io, prefix: 'app:sessions:' })).toBeTruthy()
    })

    it('refuses a node-redis v4 client, whose SET would silently drop the TTL and the NX/XX condition', () => {
      // The shape of createClient() from redis@4 (checked against 4.7.1): the same command methods, no withTypeMapping.
      const sent: unknown[] = []
      const v4 = {
        get: async (...args: unknown[]) => (sent.push(args), null),
        set: async (...args: unknown[]) => (sent.push(args), 'OK'),
        pExpire: async (...args: unknown[]) => (sent.push(args), true),
        del: async (...args: unknown[]) => (sent.push(args), 1),
        listenerCount: () => 1,
      }
      expect(() => redisStore({ client: v4 as never })).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/looks like v4.*node-redis 5 or later/) }))
      expect(sent).toEqual([])
      expect(redisStore({ client: node })).toBeTruthy() // the installed node-redis (v5+) passes
    })

    it('refuses a node-redis client with no error listener (Node would crash on the first outage)', () => {
      const bare = createClient({ url: REDIS_URL })
      expect(() => redisStore({ client: bare })).toThrow(/client\.on\('error'/)
    })

    it('rejects a non-finite expiry instead of sending it', async () => {
      const store = redisStore({ client: io, prefix: newPrefix() })
      const key = await freshKey()
      await expect(store.create(key, {}, Number.NaN)).rejects.toMatchObject({ code: 'CONFIG' })
      await expect(store.create(key, {}, Number.POSITIVE_INFINITY)).rejects.toMatchObject({ code: 'CONFIG' })
    })

    it('wraps client errors as STORE_UNAVAILABLE, with no key in the message', async () => {
      const failing = { get: async () => Promise.reject(new Error('boom')), set: async () => Promise.reject(new Error('boom')), pexpire: async () => 1, del: async () => 1 }
      const store = redisStore({ client: failing })
      const key = await freshKey()
      const error = await store.load(key).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE', name: 'BackwardError' })
      expect((error as Error).message).toMatch(/^\[backward\]/)
      expect((error as Error).message).not.toContain(key)
      expect((error as Error).cause).toBeInstanceOf(Error)
    })

    it('a closed node-redis client gives STORE_UNAVAILABLE, not a crash', async () => {
      const closed = createClient({ url: REDIS_URL })
      closed.on('error', () => {})
      const store = redisStore({ client: closed })
      await expect(store.load(await freshKey())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    })
  })
})

/**
 * A private three-node Redis Cluster (slots assigned by hand, which takes about a second where
 * `redis-cli --cluster create` waits five). Proves that every command names a single key: a
 * multi-key command across slots would fail with CROSSSLOT.
 */
describe.skipIf(!service.ok)(titled('redisStore on Redis Cluster', service), () => {
  const servers: ChildProcess[] = []
  const ports: number[] = []
  let dir = ''
  let ioCluster: Cluster
  let nodeCluster: ReturnType<typeof createCluster>

  function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer().once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number }
        server.close(() => resolve(port))
      })
    })
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bw-cluster-'))
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      ports.push(port)
      servers.push(
        spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' }),
      )
    }
    for (const port of ports) {
      while (!(await redisPing(`redis://127.0.0.1:${port}`)).ok) await new Promise((r) => setTimeout(r, 20))
    }
    const admins = ports.map((port) => new Redis({ host: '127.0.0.1', port }))
    const ranges = [[0, 5460], [5461, 10922], [10923, 16383]] as const
    await Promise.all(admins.map((admin, i) => admin.call('CLUSTER', 'ADDSLOTSRANGE', ranges[i]![0], ranges[i]![1])))
    for (const port of ports.slice(1)) await admins[0]!.call('CLUSTER', 'MEET', '127.0.0.1', port)
    for (;;) {
      const infos = await Promise.all(admins.map((admin) => admin.call('CLUSTER', 'INFO') as Promise<string>))
      if (infos.every((info) => info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3'))) break
      await new Promise((r) => setTimeout(r, 50))
    }
    admins.forEach((admin) => admin.disconnect())
    ioCluster = new Cluster([{ host: '127.0.0.1', port: ports[0]! }])
    nodeCluster = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${ports[0]}` }] })
    nodeCluster.on('error', () => {})
    await nodeCluster.connect()
  }, 30_000)

  afterAll(async () => {
    ioCluster?.disconnect()
    await nodeCluster?.close().catch(() => {})
    for (const server of servers) server.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  describeStoreContract('redisStore (ioredis Cluster)', () => redisStore({ client: ioCluster, prefix: newPrefix() }))
  describeStoreContract('redisStore (node-redis cluster)', () => redisStore({ client: nodeCluster, prefix: newPrefix() }))

  it('spreads sessions over every node (one key per session, any slot)', async () => {
    const store = redisStore({ client: ioCluster, prefix: newPrefix() })
    const keys = await Promise.all(Array.from({ length: 30 }, () => freshKey()))
    for (const key of keys) await store.create(key, { k: 1 }, later())
    const sizes = await Promise.all(ioCluster.nodes('master').map((node) => node.dbsize()))
    expect(sizes.filter((n) => n > 0)).toHaveLength(3)
    for (const key of keys) expect(await store.load(key)).toEqual({ k: 1 })
  })
})
