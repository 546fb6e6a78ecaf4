/** Django's SessionBase behaviours (reference 1.8: 1–14, 17–19, 25–31, 73, 74) on the framework-free object. */
import { describe, expect, it } from 'vitest'
import { createSessionHandle, MAX_EXPIRY_SECONDS, type SessionPolicy } from '../../src/server/session-core.ts'

const T0 = Date.UTC(2026, 0, 1)
const policy = (over: Partial<SessionPolicy> = {}): SessionPolicy => ({ maxAge: 1_209_600, expireAtBrowserClose: false, now: () => T0, guardReserved: true, ...over })
const fresh = (over?: Partial<SessionPolicy>) => createSessionHandle(null, null, policy(over)).session
const loaded = (data: Record<string, unknown>) => createSessionHandle('A'.repeat(43), data, policy())

describe('session object (Django SessionBase)', () => {
  it('1 new session: not modified, not accessed', () => {
    const s = fresh()
    expect(s.modified).toBe(false)
    expect(s.accessed).toBe(false)
  })
  it('2 get of a missing key is undefined, or the default', () => {
    const s = fresh()
    expect(s.get('cat')).toBeUndefined()
    expect(s.get('cat', 'dflt')).toBe('dflt')
  })
  it('3 store then pop', () => {
    const s = fresh()
    s.set('cat', 'dog')
    expect(s.modified).toBe(true)
    expect(s.pop('cat')).toBe('dog')
  })
  it('4 pop of an existing key: accessed and modified, key gone', () => {
    const { session: s } = loaded({ some: 'exists' })
    expect(s.pop('some')).toBe('exists')
    expect(s.accessed).toBe(true)
    expect(s.modified).toBe(true)
    expect(s.get('some')).toBeUndefined()
  })
  it('5/6 pop of a missing key with a default: accessed, NOT modified', () => {
    const s = fresh()
    expect(s.pop('some', 'does not exist')).toBe('does not exist')
    expect(s.accessed).toBe(true)
    expect(s.modified).toBe(false)
  })
  it('7 pop of a missing key without a default throws MISSING_KEY', () => {
    expect(() => fresh().pop('some')).toThrow(expect.objectContaining({ code: 'MISSING_KEY' }))
  })
  it('8 setDefault sets once', () => {
    const s = fresh()
    expect(s.setDefault('foo', 'bar')).toBe('bar')
    expect(s.setDefault('foo', 'baz')).toBe('bar')
    expect(s.accessed && s.modified).toBe(true)
  })
  it('8b setDefault of an existing key does not modify', () => {
    const { session: s } = loaded({ foo: 'bar' })
    expect(s.setDefault('foo', 'baz')).toBe('bar')
    expect(s.modified).toBe(false)
  })
  it('9 update', () => {
    const s = fresh()
    s.update({ update: 'update' })
    expect(s.accessed && s.modified).toBe(true)
    expect(s.get('update')).toBe('update')
  })
  it('10 has: accessed, not modified', () => {
    const { session: s } = loaded({ some: 1 })
    expect(s.has('some')).toBe(true)
    expect(s.accessed).toBe(true)
    expect(s.modified).toBe(false)
  })
  it('11–13 values, keys, entries: accessed, not modified', () => {
    const empty = fresh()
    expect(empty.values()).toEqual([])
    expect(empty.accessed).toBe(true)
    expect(empty.modified).toBe(false)
    const { session: s } = loaded({ x: 1 })
    expect(s.values()).toEqual([1])
    expect(s.keys()).toEqual(['x'])
    expect(s.entries()).toEqual([['x', 1]])
    expect(s.accessed).toBe(true)
    expect(s.modified).toBe(false)
  })
  it('14 clear empties: accessed and modified', () => {
    const { session: s } = loaded({ x: 1 })
    s.clear()
    expect(s.entries()).toEqual([])
    expect(s.accessed && s.modified).toBe(true)
  })
  it('17 flush: key becomes null, the old id is retired, modified and accessed', () => {
    const h = loaded({ x: 1 })
    const old = h.session.key
    h.session.flush()
    expect(h.session.key).toBeNull()
    expect(h.retiredIds).toEqual([old])
    expect(h.session.modified && h.session.accessed).toBe(true)
    expect(h.session.isEmpty()).toBe(true)
  })
  it('18/19 cycleKey: new key, same items, old id retired, without reading first', () => {
    const h = loaded({ x: 1 })
    const old = h.session.key
    h.session.cycleKey()
    expect(h.session.key).not.toBe(old)
    expect(h.session.key).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(h.session.entries()).toEqual([['x', 1]])
    expect(h.retiredIds).toEqual([old])
    expect(h.stored).toBe(false)
  })
  it('25 key is read-only', () => {
    const s = fresh()
    expect(() => {
      ;(s as { key: string | null }).key = 'x'.repeat(43)
    }).toThrow(TypeError)
  })
  it('26 default expiry, also for browser-length sessions', () => {
    const s = fresh()
    expect(s.getExpiryAge()).toBe(1_209_600)
    s.setExpiry(0)
    expect(s.getExpiryAge()).toBe(1_209_600)
  })
  it('27 setExpiry(seconds)', () => {
    const s = fresh()
    s.setExpiry(10)
    expect(s.getExpiryAge()).toBe(10)
    expect(s.getExpiryDate().getTime()).toBe(T0 + 10_000)
  })
  it('29 setExpiry(Date)', () => {
    const s = fresh()
    s.setExpiry(new Date(T0 + 10_000))
    expect(s.getExpiryAge()).toBe(10)
    expect(s.getExpiryDate().getTime()).toBe(T0 + 10_000)
  })
  it('30 setExpiry(null) goes back to the default', () => {
    const s = fresh()
    s.setExpiry(null)
    s.setExpiry(10)
    s.setExpiry(null)
    expect(s.getExpiryAge()).toBe(1_209_600)
  })
  it('31 getExpireAtBrowserClose under both global settings', () => {
    for (const [setting, expected] of [[false, [false, true, false]], [true, [false, true, true]]] as const) {
      const s = fresh({ expireAtBrowserClose: setting })
      const seen = [10, 0, null].map((v) => (s.setExpiry(v), s.getExpireAtBrowserClose()))
      expect(seen).toEqual(expected)
    }
  })
  it.each([
    ['getExpiryAge', (s: ReturnType<typeof fresh>) => s.getExpiryAge()],
    ['getExpiryDate', (s: ReturnType<typeof fresh>) => s.getExpiryDate()],
    ['getExpireAtBrowserClose', (s: ReturnType<typeof fresh>) => s.getExpireAtBrowserClose()],
  ])('%s marks the session accessed, not modified (Django reads _session_expiry through get)', (_name, call) => {
    let firstAccess = 0
    const s = createSessionHandle(null, null, policy(), () => firstAccess++).session
    call(s)
    expect(s.accessed).toBe(true)
    expect(s.modified).toBe(false)
    expect(firstAccess).toBe(1) // the middleware's Vary hook ran
  })
  it("the handle's expiry reads (the response phase's) do not mark the session accessed", () => {
    const h = loaded({ _session_expiry: 10 })
    expect(h.expiryAge()).toBe(10)
    expect(h.expireAtBrowserClose()).toBe(false)
    expect(h.session.accessed).toBe(false)
  })
  it('setExpiry refuses more than 400 days ahead, in seconds or as a Date; exactly 400 days and the past are fine', () => {
    expect(MAX_EXPIRY_SECONDS).toBe(34_560_000)
    const s = fresh()
    for (const tooLong of [MAX_EXPIRY_SECONDS + 1, 500 * 86400, new Date(T0 + (MAX_EXPIRY_SECONDS + 1) * 1000), new Date(T0 + 2 * 365 * 86400_000)]) {
      expect(() => s.setExpiry(tooLong)).toThrow(RangeError)
      expect(() => s.setExpiry(tooLong)).toThrow(/^\[backward\] setExpiry: at most 34560000 seconds \(400 days\) ahead/)
    }
    expect(s.modified).toBe(false) // a refused call writes nothing
    s.setExpiry(MAX_EXPIRY_SECONDS)
    expect(s.getExpiryAge()).toBe(MAX_EXPIRY_SECONDS)
    s.setExpiry(new Date(T0 + MAX_EXPIRY_SECONDS * 1000))
    expect(s.getExpiryAge()).toBe(MAX_EXPIRY_SECONDS)
    s.setExpiry(-10)
    expect(s.getExpiryAge()).toBe(-10)
    s.setExpiry(new Date(T0 - 10_000))
    expect(s.getExpiryAge()).toBe(-10)
  })
  it('setExpiry rejects NaN, Infinity, an invalid Date and strings', () => {
    const s = fresh()
    for (const bad of [Number.NaN, Infinity, new Date('nope'), '10']) expect(() => s.setExpiry(bad as never)).toThrow(TypeError)
  })
  it('73 the test-cookie trio', () => {
    const s = fresh()
    expect(s.testCookieWorked()).toBe(false)
    s.setTestCookie()
    expect(s.testCookieWorked()).toBe(true)
    s.deleteTestCookie()
    expect(s.testCookieWorked()).toBe(false)
  })
  it('74 a fresh session is empty; a loaded one with no data is not', () => {
    expect(fresh().isEmpty()).toBe(true)
    expect(loaded({}).session.isEmpty()).toBe(false)
  })

  describe('security', () => {
    it('reserved and prototype keys are refused on every write path', () => {
      const s = fresh()
      for (const write of [() => s.set('_auth_user_id', 1), () => s.update({ _x: 1 }), () => s.setDefault('__proto__', 1), () => s.pop('_session_expiry', 0)]) {
        expect(write).toThrow(expect.objectContaining({ code: 'RESERVED_KEY' }))
      }
      expect(s.modified).toBe(false)
    })
    it('values that JSON cannot hold are refused at set time', () => {
      const s = fresh()
      for (const bad of [undefined, () => 1, Symbol('x'), 10n, Number.NaN, Infinity]) expect(() => s.set('k', bad)).toThrow(expect.objectContaining({ code: 'NOT_SERIALIZABLE' }))
    })
    it('a "__proto__" key loaded from a store stays data in the snapshot', () => {
      const h = loaded(JSON.parse('{"__proto__":{"isAdmin":true}}'))
      const snap = h.snapshot()
      expect(Object.getPrototypeOf(snap)).toBe(Object.prototype)
      expect((snap as { isAdmin?: boolean }).isAdmin).toBeUndefined()
      expect(JSON.stringify(snap)).toBe('{"__proto__":{"isAdmin":true}}')
    })
    it('update() with a failing key writes nothing (all or nothing)', () => {
      const s = fresh()
      expect(() => s.update({ ok: 1, _bad: 2 })).toThrow()
      expect(s.has('ok')).toBe(false)
    })
  })
})

describe('hashKey', () => {
  it('is hex SHA-256 of namespace:id, the same on the Node and the WebCrypto paths', async () => {
    const { hashKey } = await import('../../src/server/ids.ts')
    const { createHash } = await import('node:crypto')
    const expected = createHash('sha256').update('session:abc').digest('hex')
    expect(await hashKey('abc')).toBe(expected)
    const web = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('session:abc'))).toString('hex')
    expect(web).toBe(expected)
    expect(await hashKey('abc', 'idempotency')).not.toBe(expected)
  })
})
