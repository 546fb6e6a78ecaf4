/**
 * Attacks on the server half, each a test. These add to the `security` blocks of session-contract.ts,
 * session.test.ts, login-wall.test.ts and no-js-replay.test.ts (fixation, one-character forgeries,
 * cross-site recording, open redirects, user-scoped idempotency keys, one-shot replays), which are not
 * repeated here.
 */
import { Hono, type Context } from 'hono'
import { csrf } from 'hono/csrf'
import { describe, expect, it } from 'vitest'
import { backwardRoutes, cookieStore, getUserId, idempotency, login, loginRequired, memoryStore, session } from '../../src/server/index.ts'
import type { SessionStore } from '../../src/server/store.ts'
import type { CookieSessionStore } from '../../src/server/stores/cookie.ts'
import { hashKey } from '../../src/server/ids.ts'
import { createJar, parseSetCookie, type Jar } from '../helpers/jar.ts'

const ORIGIN = 'http://localhost'
const NAV = { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', 'Sec-Fetch-Site': 'same-origin', Accept: 'text/html' }
const FETCH = { 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty', 'Sec-Fetch-Site': 'same-origin', Accept: 'application/json' }
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' }
const SECRET = 'the-real-secret-of-this-app-32-chars-or-more'
const HEX64 = /^[0-9a-f]{64}$/

/** A store that records every key it is handed, through every method. */
function spyStore(inner: SessionStore = memoryStore()) {
  const keys: string[] = []
  const seen = (k: string) => (keys.push(k), k)
  const store: SessionStore = {
    load: (k) => inner.load(seen(k)),
    create: (k, d, e) => inner.create(seen(k), d, e),
    update: (k, d, e) => inner.update(seen(k), d, e),
    delete: (k) => inner.delete(seen(k)),
    touch: (k, e) => inner.touch!(seen(k), e),
  }
  return { store, keys }
}

/** An app with the whole login wall: login, a guarded page, a guarded form post, a guarded API, the redirect route. */
function wall(store: SessionStore | CookieSessionStore, options: { now?: () => number; idem?: SessionStore; isAuthenticated?: (c: Context) => boolean; replayStore?: SessionStore } = {}) {
  const executed: { route: string; user: unknown; fields?: unknown }[] = []
  const app = new Hono()
  app.use(session({ store, onStoreError: () => {}, ...(options.now ? { now: options.now } : {}) }))
  const guard = loginRequired(options.isAuthenticated ? { isAuthenticated: options.isAuthenticated } : {})
  app.post('/login', async (c) => {
    const form = await c.req.parseBody()
    return c.redirect(await login(c, String(form.username)), 303)
  })
  app.post('/reauth', (c) => (c.var.session.set('fresh', true), c.text('ok')))
  app.get('/me', guard, (c) => c.json({ user: getUserId(c) }))
  app.post('/act', guard, async (c) => {
    executed.push({ route: 'act', user: getUserId(c), fields: await c.req.parseBody({ all: true }) })
    return c.redirect('/done', 303)
  })
  app.post('/api/pay', guard, idempotency({ store: options.idem ?? memoryStore() }), async (c) => {
    executed.push({ route: 'pay', user: getUserId(c) })
    return c.json({ paidBy: getUserId(c), secret: `receipt of ${getUserId(c)}` }, 201)
  })
  app.route('/backward', backwardRoutes({ app, ...(options.replayStore ? { replayStore: options.replayStore } : {}) }))
  return { app, executed }
}

async function go(app: Hono, jar: Jar, path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await app.request(`${ORIGIN}${path}`, { ...init, headers: { ...(init.headers ?? {}), Cookie: jar.header() } })
  jar.store(res)
  return res
}

/** The landing URL (login-redirect endpoint with login()'s one-time proof) that each jar's last login answered. */
const landings = new WeakMap<Jar, string>()
async function logIn(app: Hono, jar: Jar, username: string) {
  const res = await go(app, jar, '/login', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN }, body: `username=${username}` })
  const location = res.headers.get('Location') ?? ''
  expect(location).toMatch(/^\/backward\/login\/redirect\?backward_proof=[A-Za-z0-9_-]{43}/)
  landings.set(jar, location)
  return res
}
/** Follows the jar's last login to its landing URL, proof included (again, for a second visit). */
const land = (app: Hono, jar: Jar) => go(app, jar, landings.get(jar)!, { headers: NAV })

describe('security: forged and stale cookies', () => {
  it('a cookie sealed with the attacker\'s own secret, claiming to be admin, is refused', async () => {
    const forged = await cookieStore({ secrets: ['an-attacker-chosen-secret-with-32-characters'] }).seal({ _auth_user_id: 'admin' }, Date.now() + 3_600_000)
    const { app, executed } = wall(cookieStore({ secrets: [SECRET] }))
    const res = await app.request('/me', { headers: { ...FETCH, Cookie: `sessionid=${forged}` } })
    expect(res.status).toBe(401)
    const pay = await app.request('/api/pay', { method: 'POST', headers: { ...FETCH, Cookie: `sessionid=${forged}`, 'Idempotency-Key': 'k' } })
    expect(pay.status).toBe(401)
    expect(executed).toEqual([])
  })

  it('a genuine seal re-wrapped under another prefix or version is refused', async () => {
    const real = await cookieStore({ secrets: [SECRET] }).seal({ _auth_user_id: 'ada' }, Date.now() + 3_600_000)
    const { app } = wall(cookieStore({ secrets: [SECRET] }))
    for (const variant of [real.replace(/^b1\./, 'b2.'), real.replace(/^b1\./, ''), real.replace(/^b1\./, 'B1.'), `b1.b1.${real.slice(3)}`]) {
      expect((await app.request('/me', { headers: { ...FETCH, Cookie: `sessionid=${variant}` } })).status, variant.slice(0, 6)).toBe(401)
    }
    expect((await app.request('/me', { headers: { ...FETCH, Cookie: `sessionid=${real}` } })).status).toBe(200)
  })

  it('an old secret: logged in while it is listed, logged out once it is dropped', async () => {
    const OLD = 'old-secret-old-secret-old-secret-old!'
    const NEW = 'new-secret-new-secret-new-secret-new!'
    const jar = createJar()
    await logIn(wall(cookieStore({ secrets: [OLD] })).app, jar, 'ada')
    const rotated = wall(cookieStore({ secrets: [NEW, OLD] })).app
    expect(await (await go(rotated, jar, '/me', { headers: FETCH })).json()).toEqual({ user: 'ada' })
    const dropped = wall(cookieStore({ secrets: [NEW] })).app
    const res = await go(dropped, jar, '/me', { headers: FETCH })
    expect(res.status).toBe(401)
    // A page navigation with the dead cookie goes to the login page; the cookie is ignored, never
    // adopted, and replaced by the next save (it is not deleted: see session.test.ts, a stale
    // request must not delete the cookie a concurrent login just set).
    const page = await go(dropped, createJar({ sessionid: jar.cookies.get('sessionid') ?? '' }), '/me', { headers: NAV })
    expect(page.status).toBe(303)
  })

  it('an expired cookie replayed: server-side store refuses it once maxAge has passed', async () => {
    let t = Date.parse('2026-01-01T00:00:00Z')
    const now = () => t
    const { app } = wall(memoryStore({ now }), { now })
    const jar = createJar()
    await logIn(app, jar, 'ada')
    const stolen = jar.cookies.get('sessionid')!
    expect((await go(app, createJar({ sessionid: stolen }), '/me', { headers: FETCH })).status).toBe(200)
    t += 1_209_600 * 1000 + 1000 // two weeks and a second
    const replay = await go(app, createJar({ sessionid: stolen }), '/me', { headers: FETCH })
    expect(replay.status).toBe(401)
  })

  it('an expired cookie replayed: cookie store refuses it once its sealed expiry has passed', async () => {
    let t = Date.parse('2026-01-01T00:00:00Z')
    const now = () => t
    const { app } = wall(cookieStore({ secrets: [SECRET], now }), { now })
    const jar = createJar()
    await logIn(app, jar, 'ada')
    const stolen = jar.cookies.get('sessionid')!
    expect((await go(app, createJar({ sessionid: stolen }), '/me', { headers: FETCH })).status).toBe(200)
    t += 1_209_600 * 1000 + 1000
    expect((await go(app, createJar({ sessionid: stolen }), '/me', { headers: FETCH })).status).toBe(401)
  })
})

describe('security: store key injection', () => {
  const hostile = ['*', 'a*', '\\n', '%0ASET x 1', '../../etc/passwd', '..%2F..%2Fetc', "' OR '1'='1", "x'; DROP TABLE backward_sessions; --", '"', 'KEYS *', '$(rm -rf /)', '\u00e9\u00e8', 'A'.repeat(43)]

  it('session cookies and Idempotency-Keys reach the stores only as 64-hex digests', async () => {
    const sessions = spyStore()
    const records = spyStore()
    const { app } = wall(sessions.store, { idem: records.store })
    const jar = createJar()
    await logIn(app, jar, 'ada')
    const real = jar.cookies.get('sessionid')!
    for (const value of hostile) {
      for (const cookie of [`sessionid=${value}`, `sessionid=${encodeURIComponent(value)}`, `sessionid=${real}; sessionid=${value}`]) {
        for (const [path, init] of [
          ['/me', { headers: { ...FETCH, Cookie: cookie } }],
          ['/act', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN, Cookie: cookie }, body: 'a=1' }],
          ['/backward/login/redirect', { headers: { ...NAV, Cookie: cookie } }],
        ] as const) {
          const res = await app.request(path, init)
          expect(res.status).toBeLessThan(500)
        }
      }
      const res = await app.request('/api/pay', { method: 'POST', headers: { ...FETCH, Cookie: `sessionid=${real}`, 'Idempotency-Key': value } })
      expect([201, 400]).toContain(res.status) // 400: a key outside visible ASCII is refused before any store
    }
    expect(sessions.keys.length).toBeGreaterThan(0)
    expect(records.keys.length).toBeGreaterThan(0)
    for (const key of [...sessions.keys, ...records.keys]) expect(key).toMatch(HEX64)
    for (const value of hostile) expect([...sessions.keys, ...records.keys].some((k) => value.length > 1 && k.includes(value))).toBe(false)
    expect(sessions.keys).not.toContain(real) // not even the real id: only its digest
    expect(sessions.keys).toContain(await hashKey(real))
  })
})

describe('security: login CSRF', () => {
  /** The app as the docs recommend: Hono's csrf() in front of the login handler. */
  function guardedLogin() {
    const { app, executed } = (() => {
      const store = memoryStore()
      const executed: string[] = []
      const app = new Hono()
      app.use(session({ store }))
      app.post('/login', csrf({ origin: ORIGIN }), async (c) => {
        return c.redirect(await login(c, String((await c.req.parseBody()).username)), 303)
      })
      app.get('/me', loginRequired(), (c) => c.json({ user: getUserId(c) }))
      app.post('/act', loginRequired(), async (c) => (executed.push(`${getUserId(c)}: ${(await c.req.parseBody()).note}`), c.redirect('/', 303)))
      app.route('/backward', backwardRoutes({ app }))
      return { app, executed }
    })()
    return { app, executed }
  }

  it("with csrf() on the login handler, a cross-site login POST is refused: no session, no login", async () => {
    const { app } = guardedLogin()
    const crossSite: Record<string, string>[] = [
      { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' },
      { Origin: 'null' },
      { Origin: 'https://evil.example' },
    ]
    for (const headers of crossSite) {
      const res = await app.request('/login', { method: 'POST', headers: { ...headers, ...FORM, Accept: 'text/html' }, body: 'username=attacker' })
      expect(res.status).toBe(403)
      expect(res.headers.getSetCookie()).toEqual([])
    }
    const ok = await app.request('/login', { method: 'POST', headers: { Origin: ORIGIN, 'Sec-Fetch-Site': 'same-origin', ...FORM, Accept: 'text/html' }, body: 'username=ada' })
    expect(ok.status).toBe(303)
  })

  it('without csrf(), SameSite=Lax still keeps the victim\'s saved action out of a forced login: it never runs as the attacker', async () => {
    const executed: string[] = []
    const app = new Hono()
    app.use(session({ store: memoryStore() }))
    app.post('/login', async (c) => c.redirect(await login(c, String((await c.req.parseBody()).username)), 303))
    app.post('/act', loginRequired(), async (c) => (executed.push(`${getUserId(c)}: ${(await c.req.parseBody()).note}`), c.redirect('/', 303)))
    app.route('/backward', backwardRoutes({ app }))
    const victim = createJar()
    await go(app, victim, '/act', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN }, body: 'note=my+diary' })
    const victimSession = victim.cookies.get('sessionid')!
    const setCookie = parseSetCookie((await app.request('/login', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN }, body: 'username=x' })).headers.getSetCookie()[0]!)
    expect(setCookie.attrs.samesite).toBe('Lax')
    // A cross-site top-level POST: the browser sends no Lax cookie with it, so the login starts a new session.
    const forced = await app.request('/login', { method: 'POST', headers: { ...NAV, 'Sec-Fetch-Site': 'cross-site', Origin: 'https://evil.example', ...FORM }, body: 'username=attacker' })
    victim.store(forced)
    expect(victim.cookies.get('sessionid')).not.toBe(victimSession)
    // The forced login's own landing URL, proof included, is followed in the victim's browser.
    await go(app, victim, forced.headers.get('Location')!, { headers: NAV })
    expect(executed).toEqual([])
  })
})

describe('security: a saved no-JS action and a different user', () => {
  // loginRequired with a stricter check (a recent re-authentication), so a logged-in user's post is recorded.
  const isAuthenticated = (c: Context) => getUserId(c) !== null && c.var.session.get('fresh') === true

  it("user A's recorded action is dropped when B logs in on the same browser, never replayed as B", async () => {
    const { app, executed } = wall(memoryStore(), { isAuthenticated })
    const browser = createJar()
    await logIn(app, browser, 'ada')
    const post = await go(app, browser, '/act', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN }, body: 'transfer=all' })
    expect(post.status).toBe(303) // recorded in the session that belongs to ada
    await logIn(app, browser, 'bob')
    await go(app, browser, '/reauth', { method: 'POST', headers: NAV })
    await land(app, browser)
    expect(executed).toEqual([])
  })

  it("the same user logging in again gets A's action replayed, once, as A", async () => {
    const { app, executed } = wall(memoryStore(), { isAuthenticated: (c) => getUserId(c) !== null })
    const browser = createJar()
    await go(app, browser, '/act', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN }, body: 'note=1' })
    await logIn(app, browser, 'ada')
    await land(app, browser)
    await land(app, browser)
    await go(app, browser, '/backward/login/redirect', { headers: NAV })
    expect(executed).toEqual([{ route: 'act', user: 'ada', fields: { note: '1' } }])
  })
})

describe('security: cookie injection of a session that holds a recorded action', () => {
  // A sibling subdomain (or a network attacker on http) can plant a session cookie. The attacker first
  // records `POST /act transfer=mallory` in their own anonymous session, then plants that session in
  // the victim's browser. login() keeps anonymous data, so the record survives the victim's login: the
  // redirect route must still refuse it, because the victim's browser lacks the attacker's action cookie.
  for (const [label, makeStore] of [
    ['memoryStore', () => memoryStore()],
    ['cookieStore', () => cookieStore({ secrets: [SECRET] })],
  ] as const) {
    it(`${label}: the planted record is never replayed as the victim; the attacker's own browser would have`, async () => {
      for (const whose of ['victim', 'attacker'] as const) {
        const { app, executed } = wall(makeStore(), { replayStore: memoryStore() })
        const attacker = createJar()
        await go(app, attacker, '/act', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN }, body: 'transfer=mallory' })
        const browser = whose === 'victim' ? createJar({ sessionid: attacker.cookies.get('sessionid')! }) : attacker
        await logIn(app, browser, 'victim')
        await land(app, browser)
        // The control run (the recording browser itself) shows the setup does reach the replay.
        expect(executed, whose).toEqual(whose === 'victim' ? [] : [{ route: 'act', user: 'victim', fields: { transfer: 'mallory' } }])
      }
    })
  }
})

describe('security: oversized input', () => {
  for (const [label, makeStore] of [
    ['memoryStore', () => memoryStore()],
    ['cookieStore', () => cookieStore({ secrets: [SECRET] })],
  ] as const) {
    it(`${label}: an 8 KB Cookie header and a 4 KB session cookie give a fresh session, never a 500`, async () => {
      const { app } = wall(makeStore())
      const junk = Array.from({ length: 200 }, (_, i) => `c${i}=${'x'.repeat(35)}`).join('; ')
      for (const cookie of [junk, `${junk}; sessionid=${'A'.repeat(4096)}`, `sessionid=b1.${'A'.repeat(4096)}`, `sessionid=${'%'.repeat(4096)}`]) {
        expect(cookie.length).toBeGreaterThanOrEqual(4096)
        const res = await app.request('/act', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN, Cookie: cookie }, body: 'a=1' })
        expect(res.status).toBe(303)
        const issued = res.headers.getSetCookie().find((l) => l.startsWith('sessionid='))
        expect(issued).toBeDefined()
        expect(parseSetCookie(issued!).value.length).toBeLessThan(4096)
        expect((await app.request('/me', { headers: { ...FETCH, Cookie: cookie } })).status).toBe(401)
      }
    })
  }

  it('a streamed body larger than maxRecordBytes with no Content-Length is not recorded, and the stream is not read to the end', async () => {
    const { app, executed } = wall(memoryStore())
    let pulled = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        if (pulled > 2000) controller.close() // 2000 × 64 KB = 128 MB if read to the end
        else controller.enqueue(new TextEncoder().encode('a='.padEnd(65_536, 'x')))
      },
    })
    const jar = createJar()
    const res = await go(app, jar, '/act', { method: 'POST', headers: { ...NAV, ...FORM, Origin: ORIGIN }, body, duplex: 'half' } as RequestInit & { headers: Record<string, string> })
    expect(res.status).toBe(303)
    expect(pulled).toBeLessThan(40)
    await logIn(app, jar, 'ada')
    await land(app, jar)
    expect(executed).toEqual([])
  })
})

describe('security: __proto__ and constructor', () => {
  it('a stored record with __proto__ and constructor keys stays data: no login, no prototype pollution', async () => {
    const store = memoryStore()
    const { app } = wall(store)
    const id = 'Q'.repeat(42) + 'A'
    const hostile = JSON.parse('{"__proto__":{"_auth_user_id":"admin","polluted":1},"constructor":{"prototype":{"polluted":1}},"n":1}') as Record<string, unknown>
    expect(await store.create(await hashKey(id), hostile, Date.now() + 60_000)).toBe(true)
    const res = await app.request('/me', { headers: { ...FETCH, Cookie: `sessionid=${id}` } })
    expect(res.status).toBe(401)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(({} as Record<string, unknown>)._auth_user_id).toBeUndefined()
  })

  it('multipart form fields and file names __proto__ and constructor are recorded and replayed as plain fields', async () => {
    const { app, executed } = wall(memoryStore())
    const jar = createJar()
    const form = new FormData()
    form.append('__proto__', 'x')
    form.append('constructor', 'y')
    form.append('__proto__[polluted]', '1')
    form.append('file', new File(['bytes'], '__proto__', { type: 'text/plain' }))
    await go(app, jar, '/act', { method: 'POST', headers: { ...NAV, Origin: ORIGIN }, body: form })
    await logIn(app, jar, 'ada')
    await land(app, jar)
    expect(executed).toHaveLength(1)
    const fields = executed[0]!.fields as Record<string, unknown>
    expect(Object.getOwnPropertyNames(fields)).toEqual(expect.arrayContaining(['constructor', '__proto__[polluted]', 'file']))
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })
})

describe('security: Idempotency-Key replays across users', () => {
  it("another user, or an anonymous caller, reusing A's key never gets A's response, and A's record stays A's", async () => {
    const { app, executed } = wall(memoryStore())
    const ada = createJar()
    const bob = createJar()
    await logIn(app, ada, 'ada')
    await logIn(app, bob, 'bob')
    const key = 'a-key-ada-used'
    const first = await go(app, ada, '/api/pay', { method: 'POST', headers: { ...FETCH, 'Idempotency-Key': key } })
    expect(await first.json()).toEqual({ paidBy: 'ada', secret: 'receipt of ada' })
    const stolen = await go(app, bob, '/api/pay', { method: 'POST', headers: { ...FETCH, 'Idempotency-Key': key } })
    expect(await stolen.text()).not.toContain('receipt of ada')
    expect(stolen.headers.get('Idempotent-Replayed')).toBeNull()
    const anonymous = await app.request('/api/pay', { method: 'POST', headers: { ...FETCH, 'Idempotency-Key': key } })
    expect(anonymous.status).toBe(401)
    expect(await anonymous.text()).not.toContain('receipt of ada')
    const again = await go(app, ada, '/api/pay', { method: 'POST', headers: { ...FETCH, 'Idempotency-Key': key } })
    expect(again.headers.get('Idempotent-Replayed')).toBe('true')
    expect(await again.json()).toEqual({ paidBy: 'ada', secret: 'receipt of ada' })
    expect(executed.map((e) => e.user)).toEqual(['ada', 'bob'])
  })

  it('an idempotency store shared by two apps keeps their records apart by user, method and path', async () => {
    const shared = memoryStore()
    const one = wall(memoryStore(), { idem: shared })
    const jar = createJar()
    await logIn(one.app, jar, 'ada')
    await go(one.app, jar, '/api/pay', { method: 'POST', headers: { ...FETCH, 'Idempotency-Key': 'k' } })
    // The same key on another path (a GET-able route is not involved): a different record.
    const other = new Hono()
    other.use(session({ store: memoryStore() }))
    other.use(idempotency({ store: shared }))
    other.post('/api/refund', (c) => c.json({ refunded: true }, 201))
    const res = await other.request('/api/refund', { method: 'POST', headers: { 'Idempotency-Key': 'k' } })
    expect(await res.json()).toEqual({ refunded: true })
  })
})
