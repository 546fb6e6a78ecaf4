/**
 * Session behaviour through the `session()` middleware, written once and run against every store.
 * Ports Django's mixin behaviours (reference 1.8: 1–37) and middleware behaviours (58–69).
 * `revocable: false` marks the cookie store, which, like Django's signed_cookies, cannot revoke a cookie.
 */
import { Hono, type Context } from 'hono'
import { describe, expect, it } from 'vitest'
import { session, type SessionOptions } from '../../src/server/session.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { isCookieStore, type CookieSessionStore } from '../../src/server/stores/cookie.ts'
import { createJar, parseSetCookie } from '../helpers/jar.ts'

type AnyStore = SessionStore | CookieSessionStore
type Handler = (c: Context) => Response | Promise<Response>

export function makeApp(store: AnyStore, routes: Record<string, Handler>, options: Partial<SessionOptions> = {}) {
  const app = new Hono()
  app.use(session({ store, onStoreError: () => {}, ...options }))
  for (const [path, handler] of Object.entries(routes)) app.all(path, handler)
  return app
}

/** Counts the writes that reach a server-side store, forwarding every call to the real one. */
export function countWrites(inner: SessionStore) {
  const writes = { create: 0, update: 0, delete: 0, touch: 0 }
  const store: SessionStore = {
    load: (k) => inner.load(k),
    create: (k, d, e) => (writes.create++, inner.create(k, d, e)),
    update: (k, d, e) => (writes.update++, inner.update(k, d, e)),
    delete: (k) => (writes.delete++, inner.delete(k)),
    ...(inner.touch !== undefined ? { touch: (k: string, e: number) => (writes.touch++, inner.touch!(k, e)) } : {}),
  }
  return { store, writes, total: () => writes.create + writes.update + writes.delete + writes.touch }
}

const json = (c: Context) =>
  c.json({ key: c.var.session.key, data: Object.fromEntries(c.var.session.entries()), accessed: c.var.session.accessed, modified: c.var.session.modified })

const routes: Record<string, Handler> = {
  '/set': (c) => {
    c.var.session.set(c.req.query('k') ?? 'cat', c.req.query('v') ?? 'dog')
    return c.text('ok')
  },
  '/read': json,
  '/touch-nothing': (c) => c.text('no session use'),
  '/flush': (c) => {
    c.var.session.flush()
    return c.text('flushed')
  },
  '/cycle': (c) => {
    c.var.session.cycleKey()
    return c.text('cycled')
  },
  '/del-last': (c) => {
    c.var.session.delete('cat')
    return c.text('deleted')
  },
  '/expire-now': (c) => {
    c.var.session.setExpiry(-10)
    c.var.session.set('cat', 'dog')
    return c.text('expired')
  },
  '/browser-length': (c) => {
    c.var.session.setExpiry(0)
    return c.text('ok')
  },
  '/fail-500': (c) => {
    c.var.session.set('cat', 'lost')
    return c.text('boom', 500)
  },
  '/fail-503': (c) => {
    c.var.session.set('cat', 'lost')
    return c.text('down', 503)
  },
  '/throw': (c) => {
    c.var.session.set('cat', 'lost')
    throw new Error('handler bug')
  },
  '/expiry-age': (c) => c.json(c.var.session.getExpiryAge()),
}

async function send(app: Hono, path: string, cookie = '', url = 'http://localhost') {
  return app.request(`${url}${path}`, { headers: cookie ? { Cookie: cookie } : {} })
}

export function describeSessionContract(name: string, makeStore: () => AnyStore, { revocable = true } = {}) {
  describe(`session() contract: ${name}`, () => {
    const setup = (options: Partial<SessionOptions> = {}) => {
      const real = makeStore()
      // Server-side stores are wrapped to count writes; a cookie store has nothing to count.
      const spy = isCookieStore(real) ? null : countWrites(real)
      const store = spy?.store ?? real
      return { store, app: makeApp(store, routes, options), jar: createJar(), writes: () => spy?.total() ?? 0 }
    }

    it('a new session is neither accessed nor modified, and an untouched anonymous request sets no cookie and no Vary (1)', async () => {
      const { app } = setup()
      const res = await send(app, '/touch-nothing')
      expect(res.headers.getSetCookie()).toEqual([])
      expect(res.headers.get('Vary')).toBeNull()
      const read = await (await send(app, '/read')).json()
      expect(read).toMatchObject({ key: null, data: {}, modified: false })
    })

    it('reading an anonymous session sets Vary: Cookie but no cookie', async () => {
      const { app } = setup()
      const res = await send(app, '/read')
      expect(res.headers.getSetCookie()).toEqual([])
      expect(res.headers.get('Vary')).toBe('Cookie')
    })

    it('saves a modified session and reads it back on the next request (15, 20)', async () => {
      const { app, jar } = setup()
      const res = await send(app, '/set?k=cat&v=dog')
      jar.store(res)
      expect(jar.cookies.has('sessionid')).toBe(true)
      expect(res.headers.get('Cache-Control')).toBe('no-store')
      const read = await (await send(app, '/read', jar.header())).json()
      expect(read.data).toEqual({ cat: 'dog' })
      expect(read.modified).toBe(false)
    })

    it('the default cookie: HttpOnly, SameSite=Lax, Path=/, persistent for two weeks, not Secure on http (59)', async () => {
      const { app } = setup()
      const res = await send(app, '/set')
      const { name, attrs } = parseSetCookie(res.headers.getSetCookie()[0]!)
      expect(name).toBe('sessionid')
      expect(attrs).toMatchObject({ httponly: true, samesite: 'Lax', path: '/', 'max-age': '1209600' })
      expect(attrs.expires).toBeTruthy()
      expect(attrs.secure).toBeUndefined()
    })

    it('Secure on HTTPS by default, named __Host-sessionid (a sibling subdomain cannot plant it), and Vary: Cookie (58)', async () => {
      const { app } = setup()
      const res = await send(app, '/set', '', 'https://example.com')
      const { name, attrs } = parseSetCookie(res.headers.getSetCookie()[0]!)
      expect(name).toBe('__Host-sessionid')
      expect(attrs.secure).toBe(true)
      expect(attrs.path).toBe('/')
      expect(attrs.domain).toBeUndefined()
      expect(res.headers.get('Vary')).toBe('Cookie')
    })

    it('honours SameSite=Strict, httpOnly false, a name, domain and path (60, 61)', async () => {
      const { app } = setup({ cookie: { sameSite: 'Strict', httpOnly: false, name: 'sid', domain: '.example.local', path: '/example/', secure: true } })
      const { name, attrs } = parseSetCookie((await send(app, '/set')).headers.getSetCookie()[0]!)
      expect(name).toBe('sid')
      expect(attrs).toMatchObject({ samesite: 'Strict', domain: '.example.local', path: '/example/', secure: true })
      expect(attrs.httponly).toBeUndefined()
    })

    it('a browser-length session has neither Max-Age nor Expires (setExpiry(0))', async () => {
      const { app, jar } = setup()
      jar.store(await send(app, '/set'))
      const res = await send(app, '/browser-length', jar.header())
      const { attrs } = parseSetCookie(res.headers.getSetCookie()[0]!)
      expect(attrs['max-age']).toBeUndefined()
      expect(attrs.expires).toBeUndefined()
    })

    it('expireAtBrowserClose makes browser-length cookies by default', async () => {
      const { app } = setup({ expireAtBrowserClose: true })
      const { attrs } = parseSetCookie((await send(app, '/set')).headers.getSetCookie()[0]!)
      expect(attrs['max-age']).toBeUndefined()
    })

    it.each(['/fail-500', '/fail-503', '/throw'])('never saves on a 5xx, neither a new nor a loaded session (62, 63): %s', async (path) => {
      const { app, jar, writes, store } = setup()
      const anonymous = await send(app, path)
      expect(anonymous.status).toBeGreaterThanOrEqual(500)
      expect(anonymous.headers.getSetCookie()).toEqual([])
      expect(writes()).toBe(0)

      jar.store(await send(app, '/set?k=cat&v=dog'))
      const before = writes()
      if (!isCookieStore(store)) expect(before).toBeGreaterThan(0) // the spy does see real saves
      const loaded = await send(app, path, jar.header())
      expect(loaded.status).toBeGreaterThanOrEqual(500)
      expect(loaded.headers.getSetCookie()).toEqual([])
      expect(writes()).toBe(before) // no create, update, delete or touch reached the store
      expect((await (await send(app, '/read', jar.header())).json()).data).toEqual({ cat: 'dog' })
    })

    it('flush deletes the cookie with the exact Django header, Vary and no-store (17, 65)', async () => {
      const { app, jar } = setup()
      jar.store(await send(app, '/set'))
      const old = jar.header()
      const res = await send(app, '/flush', old)
      expect(res.headers.getSetCookie()).toEqual(['sessionid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax'])
      expect(res.headers.get('Vary')).toBe('Cookie')
      // Any response with a Set-Cookie must not be cached, the deletion included.
      expect(res.headers.get('Cache-Control')).toBe('no-store')
      const again = await (await send(app, '/read', old)).json()
      if (revocable) expect(again).toMatchObject({ key: null, data: {} })
      else expect(again.data).toEqual({ cat: 'dog' }) // documented: a cookie store cannot revoke
    })

    it('the deletion cookie carries the custom domain and path (66)', async () => {
      const { app, jar } = setup({ cookie: { domain: '.example.local', path: '/example/' } })
      jar.store(await send(app, '/set'))
      const { attrs } = parseSetCookie((await send(app, '/flush', jar.header())).headers.getSetCookie()[0]!)
      expect(attrs).toMatchObject({ domain: '.example.local', path: '/example/', 'max-age': '0' })
    })

    it('flush without an incoming cookie sets no cookie, but Vary: Cookie (67)', async () => {
      const { app } = setup()
      const res = await send(app, '/flush')
      expect(res.headers.getSetCookie()).toEqual([])
      expect(res.headers.get('Vary')).toBe('Cookie')
    })

    it('cycleKey keeps the data under a new key and retires the old one (18, 19)', async () => {
      const { app, jar } = setup()
      jar.store(await send(app, '/set'))
      const old = jar.header()
      const res = await send(app, '/cycle', old)
      jar.store(res)
      expect(jar.header()).not.toBe(old)
      expect((await (await send(app, '/read', jar.header())).json()).data).toEqual({ cat: 'dog' })
      if (revocable) expect((await (await send(app, '/read', old)).json()).data).toEqual({})
    })

    it('saveEveryRequest renews the cookie of an untouched non-empty session, with Vary (68)', async () => {
      const { app, jar } = setup({ saveEveryRequest: true })
      jar.store(await send(app, '/set'))
      const res = await send(app, '/touch-nothing', jar.header())
      expect(res.headers.getSetCookie()).toHaveLength(1)
      // The reference: "still gets Set-Cookie and Vary". The renewed cookie depends on the request's.
      expect(res.headers.get('Vary')).toBe('Cookie')
      expect(res.headers.get('Cache-Control')).toBe('no-store')
      jar.store(res)
      expect((await (await send(app, '/read', jar.header())).json()).data).toEqual({ cat: 'dog' })
    })

    it('an emptied (not flushed) session is saved as {} and keeps its cookie (69)', async () => {
      const { app, jar } = setup()
      jar.store(await send(app, '/set'))
      const res = await send(app, '/del-last', jar.header())
      const lines = res.headers.getSetCookie()
      expect(lines).toHaveLength(1)
      expect(res.headers.get('Vary')).toBe('Cookie')
      // A cookie store has no key to keep: an empty cookie session is simply deleted.
      if (!revocable) return expect(parseSetCookie(lines[0]!).attrs['max-age']).toBe('0')
      expect(parseSetCookie(lines[0]!).attrs['max-age']).toBe('1209600')
      jar.store(res)
      const read = await (await send(app, '/read', jar.header())).json()
      expect(read.data).toEqual({})
      if (revocable) expect(read.key).not.toBeNull()
    })

    it('an expiry in the past expires the session at once (35)', async () => {
      const { app, jar } = setup()
      const res = await send(app, '/expire-now')
      const { value, attrs } = parseSetCookie(res.headers.getSetCookie()[0]!)
      expect(value.length).toBeGreaterThan(0) // a session was issued, not a deletion
      expect(attrs['max-age']).toBe('0')
      jar.store(res)
      expect(jar.cookies.has('sessionid')).toBe(false) // a browser drops it at once
      // A client that keeps the value anyway gets nothing: the record (or sealed value) has expired too.
      expect((await (await send(app, '/read', `sessionid=${value}`)).json()).data).toEqual({})
    })

    it('the expiry getters mark the session accessed, so the answer carries Vary: Cookie (Django reads them through get)', async () => {
      const { app } = setup()
      const res = await send(app, '/expiry-age')
      expect(await res.json()).toBe(1_209_600)
      expect(res.headers.get('Vary')).toBe('Cookie')
    })

    it('setExpiry beyond 400 days throws in the handler; nothing is written and no cookie is set', async () => {
      const store = makeStore()
      const spy = isCookieStore(store) ? null : countWrites(store)
      const app = makeApp(spy?.store ?? store, {
        '/seconds': (c) => (c.var.session.set('a', 1), c.var.session.setExpiry(400 * 86400 + 1), c.text('ok')),
        '/date': (c) => (c.var.session.set('a', 1), c.var.session.setExpiry(new Date(Date.now() + 2 * 365 * 86400_000)), c.text('ok')),
        '/limit': (c) => (c.var.session.set('a', 1), c.var.session.setExpiry(400 * 86400), c.text('ok')),
      })
      app.onError((err, c) => c.text(`${err.name}: ${err.message}`, 500))
      for (const path of ['/seconds', '/date']) {
        const res = await app.request(path)
        expect(res.status).toBe(500) // the app's error handler: a bug to fix, not a 503 store outage
        expect(await res.text()).toMatch(/^RangeError: \[backward\] setExpiry: at most 34560000 seconds \(400 days\)/)
        expect(res.headers.getSetCookie()).toEqual([])
      }
      expect(spy?.total() ?? 0).toBe(0)
      const ok = await app.request('/limit')
      expect(ok.status).toBe(200)
      expect(parseSetCookie(ok.headers.getSetCookie()[0]!).attrs['max-age']).toBe('34560000')
    })

    if (revocable) {
      it('a save that finds its session logged out by a concurrent request answers 400 and does not resurrect it (37, 64)', async () => {
        let release!: () => void
        const gate = new Promise<void>((r) => (release = r))
        const app = makeApp(makeStore(), {
          '/login': (c) => (c.var.session.set('user', 'u1'), c.text('ok')),
          '/slow-write': async (c) => {
            await gate // the session was loaded before the logout lands
            c.var.session.set('cart', 3)
            return c.text('written')
          },
          '/logout': (c) => (c.var.session.flush(), c.text('bye')),
          '/read': (c) => c.json(Object.fromEntries(c.var.session.entries())),
        })
        const jar = createJar()
        jar.store(await app.request('/login'))
        expect(await (await app.request('/read', { headers: { Cookie: jar.header() } })).json()).toEqual({ user: 'u1' })
        const slow = app.request('/slow-write', { headers: { Cookie: jar.header() } })
        await new Promise((r) => setTimeout(r, 10))
        await app.request('/logout', { headers: { Cookie: jar.header() } })
        release()
        const res = await slow
        expect(res.status).toBe(400)
        expect(await res.json()).toMatchObject({ type: 'urn:backward:session-interrupted' })
        expect(res.headers.getSetCookie()).toEqual([])
        expect(await (await app.request('/read', { headers: { Cookie: jar.header() } })).json()).toEqual({})
      })
    }

    describe('security', () => {
      const hostile = [
        ['garbage', 'not-a-session'],
        ['short', '1234567'],
        ['empty', ''],
        ['path traversal', '../../etc/passwd'],
        ['encoded traversal', '..%2F..%2Fetc%2Fpasswd'],
        ['slashes', 'a/b/c'],
        ['NUL', 'abc%00def'],
        ['10,000 characters', 'A'.repeat(10_000)],
        ['well-formed but unknown', 'A'.repeat(43)],
        ['truncated sealed', 'b1.AAAA'],
        ['__proto__', '__proto__'],
        ['bad percent-encoding', '%E0%A4%A'],
      ]
      it.each(hostile)('a %s cookie gives a fresh anonymous session, never a 500 or an adopted id (21–24, 36)', async (_label, value) => {
        const { app } = setup()
        const read = await send(app, '/read', `sessionid=${value}`)
        expect(read.status).toBe(200)
        expect((await read.json()).data).toEqual({})
        const res = await send(app, '/set', `sessionid=${value}`)
        expect(res.status).toBe(200)
        const issued = parseSetCookie(res.headers.getSetCookie().at(-1)!).value
        expect(issued).not.toBe(value)
        expect(issued.length).toBeGreaterThanOrEqual(43)
      })

      it('an attacker-chosen well-formed id is never adopted (session fixation)', async () => {
        const { app } = setup()
        const planted = 'F'.repeat(43)
        const res = await send(app, '/set', `sessionid=${planted}`)
        expect(res.headers.getSetCookie().join()).not.toContain(planted)
      })

      it('a forged cookie made by flipping one character is rejected', async () => {
        const { app, jar } = setup()
        jar.store(await send(app, '/set?k=role&v=user'))
        const real = jar.cookies.get('sessionid')!
        const i = Math.floor(real.length / 2)
        const forged = real.slice(0, i) + (real[i] === 'A' ? 'B' : 'A') + real.slice(i + 1)
        expect((await (await send(app, '/read', `sessionid=${forged}`)).json()).data).toEqual({})
      })

      it('constructor, toString and hasOwnProperty keys are plain data; __proto__ is refused as reserved', async () => {
        const { app, jar } = setup()
        for (const k of ['constructor', 'toString', 'hasOwnProperty']) jar.store(await send(app, `/set?k=${k}&v=x`, jar.header()))
        const read = await (await send(app, '/read', jar.header())).json()
        expect(read.data).toEqual({ constructor: 'x', toString: 'x', hasOwnProperty: 'x' })
        const proto = await send(app, '/set?k=__proto__&v=polluted', jar.header())
        expect(proto.status).toBe(500) // RESERVED_KEY thrown to the app's error handler, nothing saved
        expect(proto.headers.getSetCookie()).toEqual([])
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      })

      it('an app cannot write reserved keys (no mass-assignment of _auth_user_id)', async () => {
        const store = makeStore()
        const app = makeApp(store, {
          '/assign': (c) => {
            c.var.session.update({ _auth_user_id: 'admin' })
            return c.text('ok')
          },
        })
        app.onError((err, c) => c.text(String((err as { code?: string }).code), 400))
        const res = await app.request('/assign')
        expect(res.status).toBe(400)
        expect(await res.text()).toBe('RESERVED_KEY')
        expect(res.headers.getSetCookie()).toEqual([])
      })
    })
  })
}
