import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { Hono } from 'hono'
import { Redis } from 'ioredis'
import pg from 'pg'
import { getUserId, login, logout, session } from '../../src/server/index.ts'
import { hashKey } from '../../src/server/ids.ts'
import { cachedStore } from '../../src/server/stores/cached.ts'
import { memoryStore } from '../../src/server/stores/memory.ts'
import { postgresStore, type PostgresStore } from '../../src/server/stores/postgres.ts'
import { redisStore } from '../../src/server/stores/redis.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { createJar } from '../helpers/jar.ts'
import { postgresSchema } from '../helpers/pg.ts'
import { REDIS_URL, postgresService, redisService, titled } from '../helpers/services.ts'
import { describeStoreContract, freshKey } from './store-contract.ts'

const service = await postgresService()
const redisUp = await redisService()
const later = () => Date.now() + 60_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
let tables = 0

/** A cache whose every method throws (a cache server that is down). */
function brokenCache(): SessionStore & { calls: number } {
  const fail = async () => {
    broken.calls++
    throw Object.assign(new Error('cache down'), { code: 'ECONNREFUSED', command: { args: ['secret-key', 'secret-data'] } })
  }
  const broken = { calls: 0, load: fail, create: fail, update: fail, delete: fail, touch: fail, clearExpired: fail }
  return broken
}

/** Counts the calls that reach a store. */
function counting(store: SessionStore) {
  const calls: string[] = []
  const wrapped: SessionStore = {
    load: (k) => (calls.push('load'), store.load(k)),
    create: (k, d, e) => (calls.push('create'), store.create(k, d, e)),
    update: (k, d, e) => (calls.push('update'), store.update(k, d, e)),
    delete: (k) => (calls.push('delete'), store.delete(k)),
  }
  return { wrapped, calls }
}

/**
 * Wraps a store so that the next call of `method` stops after the inner call has returned (the store
 * write or read is done) and waits for `release()`: the other request's steps run in that gap.
 */
function pauseAfter<S extends object>(inner: S, method: keyof S & string) {
  let release!: () => void
  let arrive!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const reached = new Promise<void>((r) => (arrive = r))
  let armed = true
  const original = inner[method] as (...args: unknown[]) => Promise<unknown>
  const wrapped = {
    ...inner,
    [method]: async (...args: unknown[]) => {
      const result = await original.apply(inner, args)
      if (armed) {
        armed = false
        arrive()
        await gate
      }
      return result
    },
  } as S
  return { wrapped, reached, release }
}

/** A cache that works until `failing` is set, then throws on every call. */
function switchable(inner: SessionStore) {
  const state = { failing: false }
  const guard = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    if (state.failing) throw Object.assign(new Error('cache down'), { code: 'ECONNRESET' })
    return fn(...args)
  }
  const cache: SessionStore = {
    load: guard((k) => inner.load(k)),
    create: guard((k, d, e) => inner.create(k, d, e)),
    update: guard((k, d, e) => inner.update(k, d, e)),
    delete: guard((k) => inner.delete(k)),
    touch: guard((k, e) => inner.touch!(k, e)),
  }
  return { cache, state }
}

describe.skipIf(!service.ok)(titled('cachedStore over postgresStore', service), () => {
  const sandbox = postgresSchema(4)
  const { schema } = sandbox

  async function backing(): Promise<PostgresStore> {
    const store = postgresStore({ pool: sandbox.pool, table: `${schema}.t${++tables}` })
    await store.migrate()
    return store
  }

  describeStoreContract('cachedStore(memory over postgres)', async () => cachedStore({ cache: memoryStore(), store: await backing() }))

  it('reads hit the cache first, then the store, which fills the cache with the same expiry', async () => {
    const db = await backing()
    const cache = memoryStore()
    const key = await freshKey()
    const expiresAt = Date.now() + 150
    await db.create(key, { from: 'db' }, expiresAt) // written by another instance: not cached here
    const { wrapped, calls } = counting(cache)
    const store = cachedStore({ cache: wrapped, store: db })
    expect(await store.load(key)).toEqual({ from: 'db' })
    expect(await cache.load(key)).toEqual({ from: 'db' }) // filled
    calls.length = 0
    await sandbox.pool.query(`UPDATE ${schema}.t${tables} SET data = '{"from":"changed"}'`)
    expect(await store.load(key)).toEqual({ from: 'db' }) // served by the cache
    expect(calls).toEqual(['load'])
    await sleep(200)
    expect(await cache.load(key)).toBeNull() // the cached copy expired with the record
  })

  it('writes go to the store first, then the cache; deletes reach both', async () => {
    const db = await backing()
    const cache = memoryStore()
    const store = cachedStore({ cache, store: db })
    const key = await freshKey()
    await store.create(key, { v: 1 }, later())
    expect(await db.load(key)).toEqual({ v: 1 })
    expect(await cache.load(key)).toEqual({ v: 1 })
    await store.update(key, { v: 2 }, later())
    expect(await db.load(key)).toEqual({ v: 2 })
    expect(await cache.load(key)).toEqual({ v: 2 })
    await store.delete(key)
    expect(await db.load(key)).toBeNull()
    expect(await store.load(key)).toBeNull()
  })

  it('an update never creates a cache entry: a missing one stays missing until a read fills it', async () => {
    const db = await backing()
    const cache = memoryStore()
    const store = cachedStore({ cache, store: db })
    const key = await freshKey()
    await db.create(key, { v: 1 }, later()) // another instance: nothing cached here
    expect(await store.update(key, { v: 2 }, later())).toBe(true)
    expect(await cache.load(key)).toBeNull()
    expect(await store.load(key)).toEqual({ v: 2 })
    expect(await cache.load(key)).toEqual({ v: 2 }) // the read filled it
  })

  it('does not resurrect a session deleted in the store by another instance, and hides the stale cached copy', async () => {
    const db = await backing()
    const cache = memoryStore()
    const store = cachedStore({ cache, store: db })
    const key = await freshKey()
    await store.create(key, { user: 'u1' }, later())
    await db.delete(key) // another instance, without this cache, logs out
    expect(await store.update(key, { user: 'u1', cart: 3 }, later())).toBe(false)
    expect(await store.load(key)).toBeNull()
  })

  it('a deleted session is answered by its tombstone, without asking the store, until the tombstone expires', async () => {
    const { wrapped: db, calls } = counting(await backing())
    const cache = memoryStore()
    let now = Date.now()
    const store = cachedStore({ cache, store: db, tombstoneTtl: 60, now: () => now })
    const key = await freshKey()
    await store.create(key, { user: 'u1' }, later())
    await store.delete(key)
    calls.length = 0
    expect(await store.load(key)).toBeNull()
    expect(calls).toEqual([]) // the logged-out cookie cost no store query
    expect(await cache.load(key)).toMatchObject({ _backward_deleted: true })
    now += 61_000
    await store.delete(key) // a second logout writes a tombstone that expires 60 s from "now"
    expect(await cache.load(key)).not.toBeNull()
    const short = cachedStore({ cache, store: db, tombstoneTtl: 0.05 })
    await short.delete(key)
    await sleep(80)
    expect(await cache.load(key)).toBeNull() // expired
    expect(await short.load(key)).toBeNull() // and the store (asked again) has nothing either
    expect(calls).toContain('load')
  })

  it('create replaces a tombstone (an idempotency key freed by a 5xx, then used again)', async () => {
    const db = await backing()
    const store = cachedStore({ cache: memoryStore(), store: db })
    const key = await freshKey()
    await store.create(key, { state: 'running' }, later())
    await store.delete(key)
    expect(await store.create(key, { state: 'running', retry: 1 }, later())).toBe(true)
    expect(await store.load(key)).toEqual({ state: 'running', retry: 1 })
    expect(await store.update(key, { state: 'done' }, later())).toBe(true)
    expect(await store.load(key)).toEqual({ state: 'done' })
  })

  it('a cache whose every method throws does not fail reads and writes, and the log carries no key or data', async () => {
    const db = await backing()
    const cache = brokenCache()
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const store = cachedStore({ cache, store: db })
      const key = await freshKey()
      expect(await store.create(key, { secret: 'data' }, later())).toBe(true)
      expect(await store.load(key)).toEqual({ secret: 'data' })
      expect(await store.update(key, { secret: 'data2' }, later())).toBe(true)
      expect(await store.touch!(key, later())).toBe(true)
      expect(await store.load(key)).toEqual({ secret: 'data2' })
      expect(await store.clearExpired!()).toBe(0)
      expect(cache.calls).toBeGreaterThan(5)
      expect(errors).toHaveBeenCalled()
      const logged = errors.mock.calls.map((args) => args.map(String).join(' ')).join('\n')
      expect(logged).toMatch(/^\[backward\] Session cache /)
      expect(logged).toContain('ECONNREFUSED')
      for (const secret of [key, 'secret', 'data2']) expect(logged).not.toContain(secret)
    } finally {
      errors.mockRestore()
    }
  })

  it('reports cache failures to onError, and survives an onError that throws', async () => {
    const db = await backing()
    const seen: string[] = []
    const store = cachedStore({ cache: brokenCache(), store: db, onError: (_e, op) => seen.push(op) })
    const key = await freshKey()
    await store.create(key, {}, later())
    await store.load(key)
    expect(seen).toEqual(['write', 'delete', 'load', 'write'])
    const throwing = cachedStore({ cache: brokenCache(), store: db, onError: () => { throw new Error('logger down') } })
    expect(await throwing.load(key)).toEqual({})
  })

  it('a failing store still fails the request (it is the store of record)', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test', connectionTimeoutMillis: 500 })
    dead.on('error', () => {})
    const store = cachedStore({ cache: memoryStore(), store: postgresStore({ pool: dead }) })
    await expect(store.create(await freshKey(), {}, later())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    await dead.end()
  })

  it('without touch/clearExpired on the store, the cached store has none either', () => {
    const { wrapped } = counting(memoryStore())
    const store = cachedStore({ cache: memoryStore(), store: wrapped })
    expect(store.touch).toBeUndefined()
    expect(store.clearExpired).toBeUndefined()
  })

  describe.skipIf(!redisUp.ok)(titled('with Redis as the cache', redisUp), () => {
    let redis: Redis
    const prefix = `bwtest:${randomBytes(6).toString('hex')}:`
    beforeAll(() => {
      redis = new Redis(REDIS_URL)
    })
    afterAll(async () => {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      await redis.quit()
    })

    describeStoreContract('cachedStore(redis over postgres)', async () => cachedStore({ cache: redisStore({ client: redis, prefix }), store: await backing() }))

    it('the tombstone is a Redis key with a TTL of tombstoneTtl', async () => {
      const store = cachedStore({ cache: redisStore({ client: redis, prefix }), store: await backing(), tombstoneTtl: 30 })
      const key = await freshKey()
      await store.create(key, { user: 'u1' }, later())
      await store.delete(key)
      expect(JSON.parse((await redis.get(prefix + key))!)).toEqual({ _backward_deleted: true })
      const pttl = await redis.pttl(prefix + key)
      expect(pttl).toBeGreaterThan(29_000)
      expect(pttl).toBeLessThanOrEqual(30_000)
      expect(await store.load(key)).toBeNull()
    })
  })

  // The same three logout races, with the cache in memory and in the real Redis.
  const caches: [string, () => SessionStore][] = [['memory', () => memoryStore()]]
  let raceRedis: Redis | undefined
  const racePrefix = `bwtest:${randomBytes(6).toString('hex')}:`
  if (redisUp.ok) caches.push(['Redis', () => redisStore({ client: (raceRedis ??= new Redis(REDIS_URL)), prefix: racePrefix })])
  afterAll(async () => {
    if (raceRedis === undefined) return
    const keys = await raceRedis.keys(`${racePrefix}*`)
    if (keys.length > 0) await raceRedis.del(...keys)
    await raceRedis.quit()
  })

  for (const [label, makeCache] of caches) {
    describe(`security: logout races (${label} cache)`, () => {
      it('an update that wrote the store before a logout, and the cache after it, does not bring the session back', async () => {
        const db = await backing()
        const cache = makeCache()
        const key = await freshKey()
        await cachedStore({ cache, store: db }).create(key, { user: 'u1' }, later())
        const slow = pauseAfter(db, 'update') // request A: store updated, cache not yet
        const a = cachedStore({ cache, store: slow.wrapped })
        const b = cachedStore({ cache, store: db }) // request B, on another instance sharing the cache
        const saving = a.update(key, { user: 'u1', cart: 3 }, later())
        await slow.reached
        await b.delete(key) // B logs out, completely
        slow.release()
        expect(await saving).toBe(true) // A's store write did happen, before the logout
        expect(await b.load(key)).toBeNull()
        expect(await a.load(key)).toBeNull()
        expect(await db.load(key)).toBeNull()
      })

      it('an update racing a logout with no cache entry never creates one', async () => {
        const db = await backing()
        const cache = makeCache()
        const key = await freshKey()
        await db.create(key, { user: 'u1' }, later()) // not cached
        const slow = pauseAfter(db, 'update')
        const a = cachedStore({ cache, store: slow.wrapped })
        const saving = a.update(key, { user: 'u1', cart: 3 }, later())
        await slow.reached
        await db.delete(key) // logged out by an instance that writes only the store
        slow.release()
        await saving
        expect(await cache.load(key)).toBeNull()
        expect(await a.load(key)).toBeNull()
      })

      it('a read that loaded the store before a logout, and fills the cache after it, does not bring the session back', async () => {
        const db = await backing()
        const cache = makeCache()
        const key = await freshKey()
        await db.create(key, { user: 'u1' }, later()) // not cached yet: the read will fill it
        const slow = pauseAfter(db, 'loadEntry') // request A: store read, cache not yet filled
        const a = cachedStore({ cache, store: slow.wrapped })
        const b = cachedStore({ cache, store: db })
        const reading = a.load(key)
        await slow.reached
        await b.delete(key)
        slow.release()
        expect(await reading).toEqual({ user: 'u1' }) // A read before the logout: that answer stands
        expect(await b.load(key)).toBeNull()
        expect(await a.load(key)).toBeNull()
      })

      it('a logout whose cache part fails rejects with STORE_UNAVAILABLE, and a retry once the cache is back logs out', async () => {
        const db = await backing()
        const { cache, state } = switchable(makeCache())
        const store = cachedStore({ cache, store: db })
        const key = await freshKey()
        await store.create(key, { user: 'u1' }, later())
        state.failing = true
        const error = await store.delete(key).catch((e: unknown) => e)
        expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(/^\[backward\] cachedStore: .*Retry/) })
        expect((error as Error).message).not.toContain(key)
        expect(await db.load(key)).toBeNull() // the store of record did delete
        state.failing = false
        expect(await store.load(key)).toEqual({ user: 'u1' }) // which is why the delete had to fail
        await store.delete(key) // the person retries the logout
        expect(await store.load(key)).toBeNull()
      })

      it('through session(): a logout whose cache part fails answers 503, and the retried logout sticks', async () => {
        const db = await backing()
        const { cache, state } = switchable(makeCache())
        const app = new Hono()
        app.use(session({ store: cachedStore({ cache, store: db, onError: () => {} }), onStoreError: () => {} }))
        app.post('/login', async (c) => (await login(c, 'ada'), c.text('in')))
        app.post('/logout', (c) => (logout(c), c.text('out')))
        app.get('/me', (c) => c.json(getUserId(c) ?? null))
        const jar = createJar()
        const go = async (path: string, method = 'GET') => {
          const res = await app.request(path, { method, headers: { Cookie: jar.header() } })
          jar.store(res)
          return res
        }
        await go('/login', 'POST')
        const cookie = jar.header()
        state.failing = true
        expect((await go('/logout', 'POST')).status).toBe(503)
        state.failing = false
        expect(await (await app.request('/me', { headers: { Cookie: cookie } })).json()).toBe('ada') // not logged out yet: the 503 said so
        expect((await go('/logout', 'POST')).status).toBe(200)
        expect(await (await app.request('/me', { headers: { Cookie: cookie } })).json()).toBeNull()
        expect(await db.load(await hashKey(cookie.slice('sessionid='.length)))).toBeNull()
      })
    })
  }

  describe('security', () => {
    it('rejects hostile keys before touching the cache or the store', async () => {
      const cache = brokenCache()
      const { wrapped, calls } = counting(memoryStore())
      const store = cachedStore({ cache, store: wrapped })
      for (const key of ['*', '../x', "'; DROP TABLE t; --", '{tag}']) {
        await expect(store.load(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.update(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.delete(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
      }
      expect(cache.calls).toBe(0)
      expect(calls).toEqual([])
    })

    it('rejects a bad configuration at start-up', () => {
      expect(() => cachedStore({ cache: {} as never, store: memoryStore() })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      expect(() => cachedStore({ cache: memoryStore(), store: undefined as never })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      for (const tombstoneTtl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '60' as never]) {
        expect(() => cachedStore({ cache: memoryStore(), store: memoryStore(), tombstoneTtl })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      }
    })

    it('a logout fails rather than leave the session in a cache whose entry keeps flipping', async () => {
      // A cache where the entry appears and disappears between every update and create: the tombstone
      // can never be confirmed, so the delete must not report success.
      const flipping: SessionStore = { ...memoryStore(), update: async () => false, create: async () => false }
      const store = cachedStore({ cache: flipping, store: memoryStore() })
      await expect(store.delete(await freshKey())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    })
  })
})
