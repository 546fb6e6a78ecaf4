import { describe, expect, it } from 'vitest'
import { memoryStore } from '../../src/server/stores/memory.ts'
import { freshKey } from './store-contract.ts'

/** What a record counts against maxBytes: its JSON (two bytes a character past Latin-1, as V8 holds it) plus its key. */
const cost = (key: string, data: unknown) => {
  const json = JSON.stringify(data)
  return key.length + json.length * (/[^\x00-\xff]/.test(json) ? 2 : 1)
}
const keysOf = (n: number) => Promise.all(Array.from({ length: n }, () => freshKey()))

describe('memoryStore: the byte bound', () => {
  it('counts each record as its JSON plus its key, exactly, across create, update, touch, delete, expiry and clearExpired', async () => {
    let t = 1_000
    const store = memoryStore({ now: () => t })
    const [a, b, c] = await keysOf(3)
    await store.create(a!, { n: 'a' }, t + 10)
    await store.create(b!, { list: [1, 2, 3], s: 'é"\\漢' }, t + 100)
    expect(store.bytes).toBe(cost(a!, { n: 'a' }) + cost(b!, { list: [1, 2, 3], s: 'é"\\漢' }))
    expect(cost(b!, { list: [1, 2, 3], s: 'é"\\漢' })).toBe(64 + 2 * JSON.stringify({ list: [1, 2, 3], s: 'é"\\漢' }).length)
    await store.update(b!, { s: 'x'.repeat(500) }, t + 100) // grows
    expect(store.bytes).toBe(cost(a!, { n: 'a' }) + cost(b!, { s: 'x'.repeat(500) }))
    await store.update(b!, {}, t + 100) // shrinks
    await store.touch!(b!, t + 200)
    expect(store.bytes).toBe(cost(a!, { n: 'a' }) + cost(b!, {}))
    expect(await store.create(b!, { big: 'y'.repeat(100) }, t + 100)).toBe(false) // refused: nothing counted
    expect(await store.update(c!, { n: 'c' }, t + 100)).toBe(false)
    expect(store.bytes).toBe(cost(a!, { n: 'a' }) + cost(b!, {}))
    t += 20 // a expires: a load of it frees its bytes
    expect(await store.load(a!)).toBeNull()
    expect(store.bytes).toBe(cost(b!, {}))
    await store.delete(b!)
    await store.delete(b!) // twice: nothing below zero
    expect(store.bytes).toBe(0)
    await store.create(a!, { n: 1 }, t + 10)
    await store.create(c!, { n: 2 }, t + 10_000, { evict: false })
    t += 20
    expect(await store.clearExpired!()).toBe(1)
    expect([store.size, store.bytes]).toEqual([1, cost(c!, { n: 2 })])
  })

  it('stays within maxBytes by evicting the least recently written records; the accounting follows the evictions', async () => {
    const keys = await keysOf(10)
    const data = { pad: 'p'.repeat(1_000 - 64 - 10) } // 1,000 bytes with its key
    expect(cost(keys[0]!, data)).toBe(1_000)
    const store = memoryStore({ maxBytes: 3_500 })
    for (const key of keys) await store.create(key, data, Date.now() + 60_000)
    expect([store.size, store.bytes]).toEqual([3, 3_000])
    expect(await store.load(keys[6]!)).toBeNull()
    expect(await store.load(keys[9]!)).toEqual(data)
  })

  it('refuses a single record larger than maxBytes with STORE_FULL, and an update that is refused keeps the old record', async () => {
    const [a] = await keysOf(1)
    const store = memoryStore({ maxBytes: 1_000 })
    await store.create(a!, { n: 1 }, Date.now() + 60_000)
    const before = store.bytes
    await expect(store.create((await freshKey())!, { s: 'x'.repeat(1_000) }, Date.now() + 60_000)).rejects.toMatchObject({
      name: 'BackwardError', code: 'STORE_FULL', message: expect.stringMatching(/^\[backward\] memoryStore: a record of \d+ bytes is larger than maxBytes \(1000\)/),
    })
    await expect(store.update(a!, { s: 'x'.repeat(1_000) }, Date.now() + 60_000)).rejects.toMatchObject({ code: 'STORE_FULL' })
    expect(await store.load(a!)).toEqual({ n: 1 })
    expect([store.size, store.bytes]).toEqual([1, before])
  })

  it('rejects a bad byte bound at start-up', () => {
    for (const maxBytes of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => memoryStore({ maxBytes })).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/maxBytes/) }))
    }
  })

  it('random writes, deletes, touches and expiries never let the count or the byte total drift from the records held', async () => {
    let t = 0
    const store = memoryStore({ maxEntries: 20, maxBytes: 4_000, now: () => t })
    const keys = await keysOf(40)
    let seed = 7
    const rand = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n)
    for (let i = 0; i < 3_000; i++) {
      const key = keys[rand(keys.length)]!
      const data = { s: 'z'.repeat(rand(300)) }
      const expiresAt = t + 1 + rand(5_000)
      const evict = rand(4) === 0 ? false : undefined
      const op = rand(6)
      try {
        if (op === 0) await store.create(key, data, expiresAt, { evict })
        else if (op === 1) await store.update(key, data, expiresAt, { evict })
        else if (op === 2) await store.delete(key)
        else if (op === 3) await store.touch!(key, expiresAt)
        else if (op === 4) t += rand(200)
        else await store.load(key)
      } catch (error) {
        expect(error).toMatchObject({ code: 'STORE_FULL' })
      }
      if (i % 100 === 0) await store.clearExpired!()
      expect(store.size).toBeLessThanOrEqual(20)
      expect(store.bytes).toBeLessThanOrEqual(4_000)
    }
    // Read back what is held (loads drop expired ones): the total must be exactly their cost.
    t += 0
    let total = 0
    let count = 0
    for (const key of keys) {
      const data = await store.load(key)
      if (data !== null) (total += cost(key, data)), count++
    }
    expect([store.size, store.bytes]).toEqual([count, total])
  })

  describe('security', () => {
    it('a flood of 1 MiB records (the recorded-action attack) stays within the default 64 MiB', async () => {
      const store = memoryStore()
      const big = { _backward_action: 'a'.repeat(1 << 20) }
      for (let i = 0; i < 80; i++) await store.create((await freshKey())!, big, Date.now() + 60_000)
      expect(store.bytes).toBeLessThanOrEqual(67_108_864)
      expect(store.size).toBe(Math.floor(67_108_864 / cost('k'.repeat(64), big)))
    })

    it('records written with { evict: false } are never evicted: when only they are left, a write fails with STORE_FULL', async () => {
      const store = memoryStore({ maxEntries: 4 })
      const [k1, k2, s1, s2, s3, k3, k4, k5] = await keysOf(8)
      const later = Date.now() + 60_000
      await store.create(k1!, { idem: 1 }, later, { evict: false })
      await store.create(s1!, { session: 1 }, later)
      await store.create(k2!, { idem: 2 }, later, { evict: false })
      await store.create(s2!, { session: 2 }, later)
      await store.create(s3!, { session: 3 }, later) // full: the oldest session goes, never k1
      expect(await store.load(s1!)).toBeNull()
      expect(await store.load(k1!)).toEqual({ idem: 1 })
      await store.create(k3!, { idem: 3 }, later, { evict: false }) // s2 goes
      expect(await store.load(s2!)).toBeNull()
      // The update that stores an answer keeps the record kept, with or without the option.
      await store.update(k1!, { idem: 1, done: true }, later)
      await store.create(s1!, { session: 5 }, later) // evicts s3, never k1
      expect(await store.load(s3!)).toBeNull()
      await store.create(k4!, { idem: 4 }, later, { evict: false }) // s1 goes: four kept records now
      // Full of kept records: a new one, and a new session, are refused; nothing kept is dropped.
      await expect(store.create(k5!, { idem: 5 }, later, { evict: false })).rejects.toMatchObject({ code: 'STORE_FULL', message: expect.stringMatching(/^\[backward\] memoryStore is full/) })
      await expect(store.create(s2!, { session: 6 }, later)).rejects.toMatchObject({ code: 'STORE_FULL' })
      for (const [key, n] of [[k1, 1], [k2, 2], [k3, 3], [k4, 4]] as const) expect(await store.load(key!)).toMatchObject({ idem: n })
      expect(store.size).toBe(4)
    })

    it('a store full of kept records and bytes refuses new ones until they expire; then takes them again', async () => {
      let t = 0
      const store = memoryStore({ maxBytes: 2_000, now: () => t })
      const keys = await keysOf(5)
      const data = { pad: 'q'.repeat(500) } // 574 bytes with its key: three fit in 2,000, four do not
      for (const key of keys.slice(0, 3)) await store.create(key, data, t + 5_000, { evict: false })
      await expect(store.create(keys[3]!, data, t + 5_000, { evict: false })).rejects.toMatchObject({ code: 'STORE_FULL' })
      await expect(store.update(keys[0]!, { pad: 'q'.repeat(1_000) }, t + 5_000)).rejects.toMatchObject({ code: 'STORE_FULL' })
      expect(await store.load(keys[0]!)).toEqual(data)
      t += 6_000
      await store.create(keys[3]!, data, t + 5_000, { evict: false })
      expect([store.size, store.bytes]).toEqual([1, cost(keys[3]!, data)])
    })
  })
})
