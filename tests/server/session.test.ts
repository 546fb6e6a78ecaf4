import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import { generateCookie } from 'hono/cookie'
import { describe, expect, it, vi } from 'vitest'
import { session, type SessionCookieOptions } from '../../src/server/session.ts'
import { memoryStore } from '../../src/server/stores/memory.ts'
import { fileStore } from '../../src/server/stores/file.ts'
import { cookieStore } from '../../src/server/stores/cookie.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { hashKey, newSessionId } from '../../src/server/ids.ts'
import { createAead } from '../../src/server/aead.ts'
import { toBase64Url } from '../../src/server/base64url.ts'
import { BackwardError } from '../../src/shared/errors.ts'
import { countWrites, describeSessionContract, makeApp } from './session-contract.ts'
import { createJar, parseSetCookie } from '../helpers/jar.ts'

const SECRET = 'a-test-secret-that-is-at-least-32-characters-long'

describeSessionContract('memoryStore', () => memoryStore())
describeSessionContract('fileStore', () => fileStore({ dir: mkdtempSync(join(tmpdir(), 'bw-session-')) }))
describeSessionContract('cookieStore', () => cookieStore({ secrets: [SECRET] }), { revocable: false })

/** A store that records every call, to prove what did and did not reach it. */
function spyStore(inner: SessionStore = memoryStore()) {
  const calls: string[] = []
  const store: SessionStore = {
    load: (k) => (calls.push('load'), inner.load(k)),
    create: (k, d, e) => (calls.push('create'), inner.create(k, d, e)),
    update: (k, d, e) => (calls.push('update'), inner.update(k, d, e)),
    delete: (k) => (calls.push('delete'), inner.delete(k)),
  }
  return { store, calls, inner }
}

describe('session() middleware', () => {
  it('an untouched anonymous request never reaches the store', async () => {
    const { store, calls } = spyStore()
    const app = makeApp(store, { '/': (c) => c.text('hi') })
    await app.request('/')
    await app.request('/', { headers: { Cookie: 'sessionid=garbage' } })
    expect(calls).toEqual([])
  })

  it('loading an unknown well-formed id creates no record (36)', async () => {
    const { store, calls } = spyStore()
    const app = makeApp(store, { '/': (c) => c.json(c.var.session.get('x') ?? null) })
    await app.request('/', { headers: { Cookie: `sessionid=${'A'.repeat(43)}` } })
    expect(calls).toEqual(['load'])
  })

  it('the store only ever sees SHA-256 digests, never the id', async () => {
    const keys: string[] = []
    const inner = memoryStore()
    const store: SessionStore = { ...inner, create: (k, d, e) => (keys.push(k), inner.create(k, d, e)) }
    const app = makeApp(store, { '/': (c) => (c.var.session.set('a', 1), c.text('ok')) })
    const res = await app.request('/')
    const id = res.headers.getSetCookie()[0]!.split(';')[0]!.split('=')[1]!
    expect(keys).toEqual([await hashKey(id)])
    expect(keys[0]).not.toContain(id)
  })

  it('a request carrying an id retired by a concurrent login does not delete the new cookie', async () => {
    const store = memoryStore()
    const app = makeApp(store, {
      '/anon': (c) => (c.var.session.set('cart', 1), c.text('ok')),
      '/read': (c) => c.json(c.var.session.get('cart') ?? null),
      '/cycle': (c) => (c.var.session.cycleKey(), c.text('rotated')),
    })
    const jar = createJar()
    jar.store(await app.request('/anon'))
    const old = jar.header()
    jar.store(await app.request('/cycle', { headers: { Cookie: old } })) // the login rotated the id
    const fresh = jar.cookies.get('sessionid')
    // A request sent before the login finished is processed after it, with the old cookie.
    const res = await app.request('/read', { headers: { Cookie: old } })
    expect(res.headers.getSetCookie()).toEqual([]) // no deletion that would log the person out
    jar.store(res)
    expect(jar.cookies.get('sessionid')).toBe(fresh)
  })

  it('a stale or unknown cookie is left alone, not deleted, when nothing is saved', async () => {
    const app = makeApp(memoryStore(), { '/': (c) => (c.var.session.flush(), c.text('ok')) })
    const res = await app.request('/', { headers: { Cookie: `sessionid=${'A'.repeat(43)}` } })
    expect(res.headers.getSetCookie()).toEqual([])
  })

  it('a store outage answers 503 problem+json, and recovers when the store returns', async () => {
    let down = false
    const inner = memoryStore()
    const guard = <T>(f: () => Promise<T>) => (down ? Promise.reject(new Error('ECONNREFUSED')) : f())
    const store: SessionStore = {
      load: (k) => guard(() => inner.load(k)),
      create: (k, d, e) => guard(() => inner.create(k, d, e)),
      update: (k, d, e) => guard(() => inner.update(k, d, e)),
      delete: (k) => guard(() => inner.delete(k)),
    }
    const app = makeApp(store, { '/': (c) => (c.var.session.set('n', (c.var.session.get<number>('n') ?? 0) + 1), c.json(c.var.session.get('n'))) })
    const jar = createJar()
    jar.store(await app.request('/'))
    down = true
    const failed = await app.request('/', { headers: { Cookie: jar.header() } })
    expect(failed.status).toBe(503)
    expect(failed.headers.get('Content-Type')).toBe('application/problem+json')
    expect(await failed.json()).toMatchObject({ type: 'urn:backward:store-unavailable', status: 503 })
    const fresh = await app.request('/') // no cookie: the save fails, still a 503
    expect(fresh.status).toBe(503)
    down = false
    const ok = await app.request('/', { headers: { Cookie: jar.header() } })
    expect(ok.status).toBe(200)
    expect(await ok.json()).toBe(2)
  })

  it('the default store-error log names the error, never its message (which may hold data or a URL)', async () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {})
    const failing = Object.assign(new Error('connect postgres://admin:hunter2@db/sessions failed'), { code: 'ECONNREFUSED' })
    const store: SessionStore = { load: () => Promise.reject(failing), create: () => Promise.reject(failing), update: () => Promise.reject(failing), delete: () => Promise.reject(failing) }
    const app = new Hono()
    app.use(session({ store }))
    app.get('/', (c) => (c.var.session.set('a', 1), c.text('ok')))
    expect((await app.request('/')).status).toBe(503)
    const logged = spy.mock.calls.flat().map(String).join(' ')
    spy.mockRestore()
    expect(logged).toContain('ECONNREFUSED')
    expect(logged).not.toContain('hunter2')
  })

  it('a handler that proxies an immutable fetch() Response still gets its cookie', async () => {
    const app = makeApp(memoryStore(), {
      '/': async (c) => {
        c.var.session.set('a', 1)
        const upstream = Response.json({ ok: true })
        Object.freeze(upstream.headers)
        return upstream
      },
    })
    const res = await app.request('/')
    expect(res.headers.getSetCookie()).toHaveLength(1)
  })

  it('a stored expiry beyond 400 days (a record written before setExpiry checked) gets a 400-day cookie, not a 503', async () => {
    const store = memoryStore()
    const id = newSessionId()
    await store.create(await hashKey(id), { _session_expiry: 500 * 86400, a: 1 }, Date.now() + 60_000)
    const app = makeApp(store, { '/': (c) => (c.var.session.set('b', 2), c.text('ok')) })
    const res = await app.request('/', { headers: { Cookie: `sessionid=${id}` } })
    expect(res.status).toBe(200)
    expect(parseSetCookie(res.headers.getSetCookie()[0]!).attrs['max-age']).toBe('34560000')
  })

  it('the Set-Cookie header is exactly what Hono would serialize, for every attribute combination', async () => {
    // `name`: the default name takes the `__Host-` prefix on https (or with secure: true) when Path=/ and no Domain.
    const configs: { cookie: SessionCookieOptions; url: string; name: string }[] = [
      { cookie: {}, url: 'http://localhost/', name: 'sessionid' },
      { cookie: {}, url: 'https://localhost/', name: '__Host-sessionid' },
      { cookie: { domain: 'example.com', path: '/app', sameSite: 'Strict' }, url: 'http://localhost/app/x', name: 'sessionid' },
      { cookie: { domain: 'example.com' }, url: 'https://localhost/', name: 'sessionid' },
      { cookie: { path: '/app' }, url: 'https://localhost/app/x', name: 'sessionid' },
      { cookie: { secure: true, sameSite: 'None', httpOnly: false }, url: 'http://localhost/', name: '__Host-sessionid' },
      { cookie: { name: '__Host-sid', secure: true }, url: 'https://localhost/', name: '__Host-sid' },
      { cookie: { name: 'sid' }, url: 'https://localhost/', name: 'sid' },
      { cookie: { sameSite: false, secure: false }, url: 'https://localhost/', name: 'sessionid' },
    ]
    for (const { cookie, url, name } of configs) {
      for (const browserLength of [false, true]) {
        const now = Date.now()
        const app = new Hono()
        app.use(session({ store: memoryStore(), cookie, expireAtBrowserClose: browserLength, now: () => now }))
        app.get('*', (c) => (c.var.session.set('a', 1), c.text('ok')))
        const [line] = (await app.request(url)).headers.getSetCookie()
        expect(line!.startsWith(`${name}=`), line).toBe(true)
        const value = line!.slice(name.length + 1, line!.indexOf(';'))
        const expected = generateCookie(name, value, {
          path: cookie.path ?? '/',
          httpOnly: cookie.httpOnly ?? true,
          secure: cookie.secure ?? url.startsWith('https:'),
          ...(cookie.domain !== undefined ? { domain: cookie.domain } : {}),
          ...(cookie.sameSite !== false ? { sameSite: cookie.sameSite ?? 'Lax' } : {}),
          ...(browserLength ? {} : { maxAge: 1_209_600, expires: new Date(now + 1_209_600_000) }),
        })
        expect(line).toBe(expected)
      }
    }
  })

  it('appends Cookie to an existing Vary header', async () => {
    const app = makeApp(memoryStore(), { '/': (c) => (c.header('Vary', 'Accept'), c.json(c.var.session.get('a') ?? null)) })
    expect((await app.request('/')).headers.get('Vary')).toBe('Accept, Cookie')
  })

  describe('configuration errors throw at start-up', () => {
    it.each([
      [{}, /store/],
      [{ store: memoryStore(), maxAge: 0 }, /maxAge/],
      [{ store: memoryStore(), maxAge: 1.5 }, /maxAge/],
      [{ store: memoryStore(), maxAge: 500 * 86400 }, /maxAge/],
      [{ store: memoryStore(), cookie: { sameSite: 'None', secure: false } }, /SameSite=None/],
      // secure left undefined would send SameSite=None without Secure on http: refused too.
      [{ store: memoryStore(), cookie: { sameSite: 'None' } }, /SameSite=None.*cookie\.secure: true/],
      [{ store: memoryStore(), cookie: { sameSite: 'lax' } }, /cookie\.sameSite/],
      [{ store: memoryStore(), cookie: { name: 'bad name' } }, /cookie.name/],
      [{ store: memoryStore(), cookie: { name: '__Secure-sid' } }, /"__Secure-" cookie name needs cookie\.secure: true/],
      [{ store: memoryStore(), cookie: { name: '__secure-sid', secure: false } }, /__Secure-/],
      [{ store: memoryStore(), cookie: { name: '__Host-sid' } }, /"__Host-" cookie name needs cookie\.secure: true, cookie\.path "\/" and no cookie\.domain/],
      [{ store: memoryStore(), cookie: { name: '__Host-sid', secure: true, path: '/app' } }, /__Host-/],
      [{ store: memoryStore(), cookie: { name: '__Host-sid', secure: true, domain: 'example.com' } }, /__Host-/],
      [{ store: memoryStore(), cookie: { path: 'app' } }, /cookie\.path/],
      [{ store: memoryStore(), cookie: { path: '/; Domain=evil.example' } }, /cookie\.path/],
      [{ store: memoryStore(), cookie: { domain: 'example.com; Secure' } }, /cookie\.domain/],
      [{ store: memoryStore(), cookie: { domain: '' } }, /cookie\.domain/],
      [{ store: { load() {} } }, /create/],
    ])('%#: %j', (options, message) => {
      expect(() => session(options as never)).toThrow(message)
      expect(() => session(options as never)).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/^\[backward\] session\(\): /) }))
    })

    it('prefixed names that follow the rules work on plain http too (they were a 503 at request time)', async () => {
      for (const cookie of [{ name: '__Host-sid', secure: true }, { name: '__Secure-sid', secure: true, domain: 'example.com' }, { sameSite: 'None' as const, secure: true }]) {
        const app = makeApp(memoryStore(), { '/': (c) => (c.var.session.set('a', 1), c.text('ok')) }, { cookie })
        const res = await app.request('http://example.com/')
        expect(res.status).toBe(200)
        expect(parseSetCookie(res.headers.getSetCookie()[0]!).attrs.secure).toBe(true)
      }
    })
    it('cookieStore needs long secrets', () => {
      expect(() => cookieStore({ secrets: [] })).toThrow(/secret/)
      expect(() => cookieStore({ secrets: ['short'] })).toThrow(/32 characters/)
    })
  })
})

describe('store errors: an outage is a 503, a misconfiguration is thrown (500), at load and at save alike', () => {
  const failing = (at: 'load' | 'save', error: unknown): SessionStore => {
    const inner = memoryStore()
    const fail = () => Promise.reject(error)
    return at === 'load'
      ? { load: fail, create: (k, d, e) => inner.create(k, d, e), update: (k, d, e) => inner.update(k, d, e), delete: (k) => inner.delete(k) }
      : { load: (k) => inner.load(k), create: fail, update: fail, delete: fail }
  }
  const request = async (store: SessionStore) => {
    const logged: unknown[] = []
    const app = makeApp(store, { '/': (c) => (c.var.session.set('a', 1), c.text('ok')) }, { onStoreError: (e) => logged.push(e) })
    app.onError((err, c) => c.text(`app error handler: ${(err as BackwardError).code}`, 500))
    const res = await app.request('/', { headers: { Cookie: `sessionid=${newSessionId()}` } })
    return { status: res.status, body: await res.text(), logged }
  }
  const missingTable = new BackwardError('CONFIG', '[backward] postgresStore: PostgreSQL rejected the session query (SQLSTATE 42P01). Run store.migrate() or check the table name and grants.')

  it.each(['load', 'save'] as const)('a CONFIG error (a missing table) at %s reaches the app error handler, not a retryable 503', async (at) => {
    const { status, body, logged } = await request(failing(at, missingTable))
    expect(status).toBe(500)
    expect(body).toBe('app error handler: CONFIG')
    expect(logged).toEqual([]) // not reported as an outage
  })

  it.each(['load', 'save'] as const)('a driver error or STORE_UNAVAILABLE at %s is an outage: 503 with Retry-After', async (at) => {
    for (const error of [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), new BackwardError('STORE_UNAVAILABLE', '[backward] down')]) {
      const { status, logged } = await request(failing(at, error))
      expect(status).toBe(503)
      expect(logged).toEqual([error])
    }
  })
})

describe('cookieStore', () => {
  it('the first secret seals and every secret opens (rotation); a dropped secret no longer opens', async () => {
    const OLD = 'o'.repeat(40)
    const NEW = 'n'.repeat(40)
    const before = makeApp(cookieStore({ secrets: [OLD] }), { '/set': (c) => (c.var.session.set('a', 1), c.text('')), '/read': (c) => c.json(c.var.session.get('a') ?? null) })
    const jar = createJar()
    jar.store(await before.request('/set'))
    const rotated = makeApp(cookieStore({ secrets: [NEW, OLD] }), { '/read': (c) => c.json(c.var.session.get('a') ?? null) })
    expect(await (await rotated.request('/read', { headers: { Cookie: jar.header() } })).json()).toBe(1)
    const dropped = makeApp(cookieStore({ secrets: [NEW] }), { '/read': (c) => c.json(c.var.session.get('a') ?? null) })
    expect(await (await dropped.request('/read', { headers: { Cookie: jar.header() } })).json()).toBeNull()
  })

  it('refuses a sealed value issued in the future or already expired', async () => {
    let t = Date.now()
    const store = cookieStore({ secrets: [SECRET], now: () => t })
    const sealed = await store.seal({ a: 1 }, t + 10_000)
    expect(await store.unseal(sealed)).toEqual({ a: 1 })
    t += 11_000
    expect(await store.unseal(sealed)).toBeNull()
    const future = await cookieStore({ secrets: [SECRET], now: () => Date.now() + 3_600_000 }).seal({ a: 1 }, Date.now() + 7_200_000)
    expect(await cookieStore({ secrets: [SECRET] }).unseal(future)).toBeNull()
  })

  it('throws a clear COOKIE_TOO_LARGE error before the 4096-byte limit', async () => {
    const app = new Hono()
    app.use(session({ store: cookieStore({ secrets: [SECRET] }) }))
    app.get('/', (c) => (c.var.session.set('big', 'x'.repeat(4000)), c.text('ok')))
    app.onError((err, c) => c.json({ code: (err as { code?: string }).code, message: err.message }, 500))
    const res = await app.request('/')
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ code: 'COOKIE_TOO_LARGE', message: expect.stringMatching(/^\[backward\]/) })
    expect(res.headers.getSetCookie()).toEqual([])
  })

  describe('security', () => {
    // Sealed with the real key (the same secret), so the AEAD opens them: only the payload checks stand.
    const sealRaw = async (plain: string) => 'b1.' + toBase64Url(await createAead([SECRET]).seal(new TextEncoder().encode(plain)))
    const t = Date.now()
    const payloads: [string, string][] = [
      ['not JSON', 'not json at all {'],
      ['JSON but not an object', '[1,2,3]'],
      ['a JSON string', '"hello"'],
      ['no data member', JSON.stringify({ iat: t, exp: t + 60_000 })],
      ['data is an array', JSON.stringify({ iat: t, exp: t + 60_000, d: ['x'] })],
      ['data is null', JSON.stringify({ iat: t, exp: t + 60_000, d: null })],
      ['exp is a string', JSON.stringify({ iat: t, exp: String(t + 60_000), d: { a: 1 } })],
      ['no iat', JSON.stringify({ exp: t + 60_000, d: { a: 1 } })],
    ]
    it.each(payloads)('a validly sealed payload that is %s gives a fresh anonymous session (Django 34)', async (_label, plain) => {
      const app = makeApp(cookieStore({ secrets: [SECRET] }), { '/read': (c) => c.json(Object.fromEntries(c.var.session.entries())), '/set': (c) => (c.var.session.set('b', 2), c.text('ok')) })
      const sealed = await sealRaw(plain)
      const read = await app.request('/read', { headers: { Cookie: `sessionid=${sealed}` } })
      expect(read.status).toBe(200)
      expect(await read.json()).toEqual({})
      const set = await app.request('/set', { headers: { Cookie: `sessionid=${sealed}` } })
      expect(set.status).toBe(200)
      const issued = parseSetCookie(set.headers.getSetCookie()[0]!).value
      expect(issued).not.toBe(sealed)
      expect(await cookieStore({ secrets: [SECRET] }).unseal(issued)).toEqual({ b: 2 })
    })
    it('the control: a well-formed payload sealed the same way does open', async () => {
      expect(await cookieStore({ secrets: [SECRET] }).unseal(await sealRaw(JSON.stringify({ iat: t, exp: t + 60_000, d: { a: 1 } })))).toEqual({ a: 1 })
    })
  })

  it('ciphertext reveals nothing of the data', async () => {
    const sealed = await cookieStore({ secrets: [SECRET] }).seal({ secret: 'hunter2' }, Date.now() + 1000)
    expect(sealed).not.toContain('hunter2')
    expect(atob(sealed.slice(3).replace(/-/g, '+').replace(/_/g, '/') + '=='.slice(0, (4 - ((sealed.length - 3) % 4)) % 4))).not.toContain('hunter2')
  })
})
