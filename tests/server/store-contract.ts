/**
 * The store contract, written once and run against every `SessionStore` (memory, file, Redis,
 * PostgreSQL, cached). It ports Django's store-level guarantees (reference 1.8: 15–18, 21, 35–37).
 * Session-object and middleware behaviours run through `session()` in session-contract.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { SessionStore } from '../../src/server/store.ts'
import { hashKey, newSessionId } from '../../src/server/ids.ts'

export const freshKey = () => hashKey(newSessionId())
const later = () => Date.now() + 60_000

export interface StoreContractOptions {
  /**
   * How the store gets rid of expired records. 'sweep': clearExpired deletes them and resolves with
   * exactly how many it deleted. 'native': the server expires them itself (Redis key TTLs), so
   * clearExpired has nothing left to do and resolves exactly 0.
   * @default 'native' for a suite named "redisStore…" (its callers predate this option), else 'sweep'
   */
  expiry?: 'sweep' | 'native'
}

export function describeStoreContract(name: string, makeStore: () => Promise<SessionStore> | SessionStore, cleanup?: () => Promise<void> | void, options: StoreContractOptions = {}) {
  const expiry = options.expiry ?? (/^redisStore\b/.test(name) ? 'native' : 'sweep')
  describe(`SessionStore contract: ${name}`, () => {
    let store: SessionStore
    beforeEach(async () => {
      store = await makeStore()
    })
    afterEach(async () => {
      await cleanup?.()
    })

    it('load of an unknown key is null and creates nothing', async () => {
      const key = await freshKey()
      expect(await store.load(key)).toBeNull()
      expect(await store.update(key, { a: 1 }, later())).toBe(false)
      expect(await store.load(key)).toBeNull()
    })

    it('create inserts, and load returns an equal copy', async () => {
      const key = await freshKey()
      const data = { cat: 'dog', n: 1, nested: { list: [1, 'two', null] } }
      expect(await store.create(key, data, later())).toBe(true)
      const loaded = await store.load(key)
      expect(loaded).toEqual(data)
      data.cat = 'changed'
      expect((await store.load(key))?.cat).toBe('dog')
    })

    it('create never overwrites a live record', async () => {
      const key = await freshKey()
      await store.create(key, { owner: 'first' }, later())
      expect(await store.create(key, { owner: 'second' }, later())).toBe(false)
      expect(await store.load(key)).toEqual({ owner: 'first' })
    })

    it('update replaces a live record', async () => {
      const key = await freshKey()
      await store.create(key, { v: 1 }, later())
      expect(await store.update(key, { v: 2 }, later())).toBe(true)
      expect(await store.load(key)).toEqual({ v: 2 })
    })

    it('an emptied session is saved as {} (emptied is not deleted)', async () => {
      const key = await freshKey()
      await store.create(key, { v: 1 }, later())
      expect(await store.update(key, {}, later())).toBe(true)
      expect(await store.load(key)).toEqual({})
    })

    it('delete removes; deleting a missing key is not an error', async () => {
      const key = await freshKey()
      await store.create(key, { v: 1 }, later())
      await store.delete(key)
      expect(await store.load(key)).toBeNull()
      await expect(store.delete(key)).resolves.toBeUndefined()
    })

    it('does not resurrect a session deleted by a concurrent request (Django test 37)', async () => {
      const key = await freshKey()
      await store.create(key, { user: 'u1' }, later())
      await store.delete(key) // the other request logs out
      expect(await store.update(key, { user: 'u1', cart: 3 }, later())).toBe(false)
      expect(await store.load(key)).toBeNull()
    })

    it('an expired record does not load and cannot be updated (Django test 35)', async () => {
      const key = await freshKey()
      await store.create(key, { v: 1 }, Date.now() + 40)
      await new Promise((r) => setTimeout(r, 80))
      expect(await store.load(key)).toBeNull()
      expect(await store.update(key, { v: 2 }, later())).toBe(false)
      expect(await store.load(key)).toBeNull()
    })

    it('an expired record may be replaced by create', async () => {
      const key = await freshKey()
      await store.create(key, { v: 1 }, Date.now() + 30)
      await new Promise((r) => setTimeout(r, 60))
      expect(await store.create(key, { v: 2 }, later())).toBe(true)
      expect(await store.load(key)).toEqual({ v: 2 })
    })

    it('touch moves the expiry of a live record only', async () => {
      if (store.touch === undefined) return expect(store.touch).toBeUndefined()
      const key = await freshKey()
      expect(await store.touch(key, later())).toBe(false)
      expect(await store.load(key)).toBeNull()
      await store.create(key, { v: 1 }, Date.now() + 200)
      expect(await store.touch(key, later())).toBe(true)
      await new Promise((r) => setTimeout(r, 300))
      expect(await store.load(key)).toEqual({ v: 1 })
    })

    it('keeps unicode and __proto__ keys as plain data', async () => {
      const key = await freshKey()
      const data = JSON.parse('{"__proto__":{"polluted":true},"constructor":"x","emoji":"ünï ✓ 😀"}') as Record<string, unknown>
      await store.create(key, data, later())
      const loaded = await store.load(key)
      expect(loaded).toEqual(data)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect(Object.getPrototypeOf(loaded)).toBe(Object.prototype)
    })

    describe('security', () => {
      const hostile = ['', '*', 'a\nb', '../../etc/passwd', "'; DROP TABLE sessions; --", '{tag}', 'A'.repeat(64), '0'.repeat(63), '0'.repeat(65), `${'0'.repeat(63)}/`, `${'0'.repeat(63)}\0`]
      it.each(hostile.map((k) => [JSON.stringify(k).slice(0, 40), k]))('rejects the store key %s before any I/O', async (_label, key) => {
        await expect(store.load(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.create(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.update(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.delete(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
      })
    })

    it(`clearExpired removes only expired records and returns the count (${expiry} expiry; Django 41, 53)`, async () => {
      if (store.clearExpired === undefined) return expect(store.clearExpired).toBeUndefined()
      const live = await freshKey()
      const dead = [await freshKey(), await freshKey()]
      await store.create(live, { v: 'live' }, later())
      for (const key of dead) await store.create(key, { v: 'dead' }, Date.now() + 20)
      await new Promise((r) => setTimeout(r, 50))
      // A sweeping store removes exactly the two dead records (each suite starts from an empty store);
      // a store with native expiry has none left to remove.
      expect(await store.clearExpired()).toBe(expiry === 'sweep' ? 2 : 0)
      expect(await store.clearExpired()).toBe(0) // nothing is counted twice
      expect(await store.load(live)).toEqual({ v: 'live' })
      for (const key of dead) expect(await store.load(key)).toBeNull()
    })
  })
}
