import { describe, expect, it, vi } from 'vitest'
import pg from 'pg'
import { cachedStore } from '../../src/server/stores/cached.ts'
import { memoryStore } from '../../src/server/stores/memory.ts'
import { postgresStore } from '../../src/server/stores/postgres.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { postgresSchema } from '../helpers/pg.ts'
import { postgresService, titled } from '../helpers/services.ts'
import { describeStoreContract, freshKey } from './store-contract.ts'

const service = await postgresService()
const later = () => Date.now() + 60_000
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

describe.skipIf(!service.ok)(titled('cachedStore over postgresStore', service), () => {
  const sandbox = postgresSchema(4)
  const { schema } = sandbox

  async function backing() {
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
    await new Promise((r) => setTimeout(r, 200))
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
    expect(await cache.load(key)).toBeNull()
  })

  it('does not resurrect a session deleted in the store by another instance, and drops the stale cached copy', async () => {
    const db = await backing()
    const cache = memoryStore()
    const store = cachedStore({ cache, store: db })
    const key = await freshKey()
    await store.create(key, { user: 'u1' }, later())
    await db.delete(key) // another instance, without this cache, logs out
    expect(await store.update(key, { user: 'u1', cart: 3 }, later())).toBe(false)
    expect(await cache.load(key)).toBeNull()
    expect(await store.load(key)).toBeNull()
  })

  it('a cache whose every method throws is not fatal, and the log carries no key or data', async () => {
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
      await store.delete(key)
      expect(await store.load(key)).toBeNull()
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
    expect(seen).toEqual(['write', 'delete', 'load', 'write', 'delete'])
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

  describe('security', () => {
    it('rejects hostile keys before touching the cache or the store', async () => {
      const cache = brokenCache()
      const { wrapped, calls } = counting(memoryStore())
      const store = cachedStore({ cache, store: wrapped })
      for (const key of ['*', '../x', "'; DROP TABLE t; --", '{tag}']) {
        await expect(store.load(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.update(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
      }
      expect(cache.calls).toBe(0)
      expect(calls).toEqual([])
    })

    it('rejects a bad configuration at start-up', () => {
      expect(() => cachedStore({ cache: {} as never, store: memoryStore() })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      expect(() => cachedStore({ cache: memoryStore(), store: undefined as never })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
    })
  })
})
