/**
 * The no-JavaScript replay behind `GET /backward/login/redirect`: bound to the browser that recorded it,
 * one-shot on every store, failures reported, the replayed handler's session writes kept.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { backwardRoutes, cookieStore, getUserId, login, loginRequired, logout, memoryStore, session, type SessionOptions } from '../../src/server/index.ts'
import type { BackwardRoutesOptions, ReplayFailure } from '../../src/server/routes.ts'
import { fileStore } from '../../src/server/stores/file.ts'
import { postgresStore } from '../../src/server/stores/postgres.ts'
import { redisStore } from '../../src/server/stores/redis.ts'
import type { CookieSessionStore } from '../../src/server/stores/cookie.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { hashKey } from '../../src/server/ids.ts'
import { createJar, parseSetCookie, type Jar } from '../helpers/jar.ts'
import { postgresSchema } from '../helpers/pg.ts'
import { REDIS_URL, postgresService, redisService, titled } from '../helpers/services.ts'

const HTTP = 'http://localhost'
const HTTPS = 'https://localhost'
const NAV = { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', 'Sec-Fetch-Site': 'same-origin', Accept: 'text/html' }
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' }
const SECRET = 'the-real-secret-of-this-app-32-chars-or-more'

interface Run {
  route: string
  user: unknown
  query?: Record<string, string>
  fields?: unknown
}

function replayApp(store: SessionStore | CookieSessionStore, routeOptions: BackwardRoutesOptions = {}, now?: () => number, sessionOptions: Partial<SessionOptions> = {}) {
  const runs: Run[] = []
  const app = new Hono()
  app.use(session({ store, onStoreError: () => {}, ...(now ? { now } : {}), ...sessionOptions }))
  app.onError((_error, c) => c.text('Internal Server Error', 500)) // quiet: /boom throws on purpose
  app.post('/login', async (c) => {
    return c.redirect(await login(c, String((await c.req.parseBody()).username ?? 'ada')), 303)
  })
  app.post('/transfer', loginRequired(), async (c) => {
    runs.push({ route: 'transfer', user: getUserId(c), query: c.req.query(), fields: await c.req.parseBody() })
    return c.redirect('/done', 303)
  })
  app.post('/flash', loginRequired(), (c) => {
    runs.push({ route: 'flash', user: getUserId(c) })
    c.var.session.set('flash', 'sent')
    return c.redirect('/inbox', 303)
  })
  app.get('/flash', (c) => c.json({ flash: c.var.session.get('flash') ?? null, user: getUserId(c) }))
  // An anonymous session with data of its own (a theme, a cart): it keeps the session's maxAge.
  app.post('/theme', (c) => (c.var.session.set('theme', 'dark'), c.text('ok')))
  app.post('/boom', loginRequired(), () => {
    throw new Error('a detail from the body: to=mallory')
  })
  app.post('/invalid', loginRequired(), (c) => (runs.push({ route: 'invalid', user: getUserId(c) }), c.text('bad input', 422)))
  app.post('/rotate', loginRequired(), async (c) => (await login(c, getUserId(c)!), c.redirect('/inbox', 303)))
  app.post('/bye', loginRequired(), (c) => (logout(c), c.redirect('/', 303)))
  app.post('/cycle', loginRequired(), (c) => (c.var.session.cycleKey(), c.redirect('/inbox', 303)))
  // Relative and absolute Locations, as handlers write them (a redirect back to the item's own page).
  app.post('/items/42/buy', loginRequired(), (c) => (runs.push({ route: 'buy', user: getUserId(c) }), c.redirect(c.req.query('to') ?? 'bought', 303)))
  app.route('/backward', backwardRoutes({ app, ...routeOptions }))
  return { app, runs }
}

async function go(app: Hono, jar: Jar, path: string, init: RequestInit & { headers?: Record<string, string> } = {}, origin = HTTP) {
  const res = await app.request(`${origin}${path}`, { ...init, headers: { ...(init.headers ?? {}), Cookie: jar.header() } })
  jar.store(res)
  return res
}

/** A plain HTML form post, logged out, from a page of this site. */
const record = (app: Hono, jar: Jar, path = '/transfer', body = 'to=mallory', origin = HTTP) =>
  go(app, jar, path, { method: 'POST', headers: { ...NAV, ...FORM, Origin: origin, Referer: `${origin}/account` }, body }, origin)
/** The landing URL (login-redirect endpoint with login()'s one-time proof) that each jar's last login answered. */
const landings = new WeakMap<Jar, string>()
async function logIn(app: Hono, jar: Jar, origin = HTTP, username = 'ada') {
  const res = await go(app, jar, '/login', { method: 'POST', headers: { ...NAV, ...FORM, Origin: origin }, body: `username=${username}` }, origin)
  const location = res.headers.get('Location') ?? ''
  expect(location).toMatch(/^\/backward\/login\/redirect\?backward_proof=[A-Za-z0-9_-]{43}/)
  landings.set(jar, location)
  return res
}
/** The landing URL of the jar's last login, as the login's 303 sends the browser there. */
const landingOf = (jar: Jar) => landings.get(jar) ?? '/backward/login/redirect'
/** Follows the login's 303: a GET of the landing URL with its proof (again, for a second visit). */
const land = (app: Hono, jar: Jar, origin = HTTP) => go(app, jar, landingOf(jar), { headers: NAV }, origin)
const sessionLines = (res: Response, name = 'sessionid') => res.headers.getSetCookie().filter((l) => l.startsWith(`${name}=`))

describe('the action cookie', () => {
  it('over http: backward_action, HttpOnly, SameSite=Lax, Path=/, host-only even when the session cookie has a Domain', async () => {
    const app = new Hono()
    app.use(session({ store: memoryStore(), cookie: { domain: 'localhost' } }))
    app.post('/transfer', loginRequired(), (c) => c.text('ok'))
    const res = await record(app, createJar())
    const line = res.headers.getSetCookie().find((l) => l.startsWith('backward_action='))!
    const cookie = parseSetCookie(line)
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(cookie.attrs).toMatchObject({ httponly: true, samesite: 'Lax', path: '/' })
    expect(cookie.attrs.domain).toBeUndefined()
    expect(cookie.attrs.secure).toBeUndefined()
    expect(cookie.attrs['max-age']).toBeUndefined() // the record's age is enforced by actionTtl
  })

  it('over https: __Host-backward_action, Secure; the replay works and deletes it', async () => {
    const { app, runs } = replayApp(memoryStore())
    const jar = createJar()
    const res = await record(app, jar, '/transfer', 'to=bob', HTTPS)
    const cookie = parseSetCookie(res.headers.getSetCookie().find((l) => l.startsWith('__Host-backward_action='))!)
    expect(cookie.attrs).toMatchObject({ httponly: true, secure: true, samesite: 'Lax', path: '/' })
    expect(cookie.attrs.domain).toBeUndefined()
    await logIn(app, jar, HTTPS)
    const back = await land(app, jar, HTTPS)
    expect(runs).toEqual([{ route: 'transfer', user: 'ada', query: {}, fields: { to: 'bob' } }])
    expect(back.headers.get('Location')).toBe('/done')
    expect(back.headers.getSetCookie().some((l) => l.startsWith('__Host-backward_action=;') && /Max-Age=0/.test(l))).toBe(true)
  })

  it('the session keeps only a hash of the nonce, never the cookie value', async () => {
    const store = memoryStore()
    const { app } = replayApp(store)
    const jar = createJar()
    await record(app, jar)
    const nonce = jar.cookies.get('backward_action')!
    const data = await store.load(await hashKey(jar.cookies.get('sessionid')!))
    expect(JSON.stringify(data)).not.toContain(nonce)
    expect((data!._backward_action as { nonce: string }).nonce).toBe(await hashKey(nonce, 'action-nonce'))
  })
})

describe('recorded actions', () => {
  it('keep the form action query string: POST /transfer?acct=123 replays with acct', async () => {
    const { app, runs } = replayApp(memoryStore())
    const jar = createJar()
    await record(app, jar, '/transfer?acct=123&note=a%26b')
    await logIn(app, jar)
    await land(app, jar)
    expect(runs).toEqual([{ route: 'transfer', user: 'ada', query: { acct: '123', note: 'a&b' }, fields: { to: 'mallory' } }])
  })

  it('expire after 15 minutes by default: 14 minutes replays, 15 minutes and a second does not', async () => {
    for (const [minutes, expected] of [[14, 1], [15.02, 0]] as const) {
      let t = Date.parse('2026-01-01T00:00:00Z')
      const now = () => t
      const { app, runs } = replayApp(memoryStore({ now }), {}, now)
      const jar = createJar()
      await record(app, jar)
      t += minutes * 60_000
      await logIn(app, jar)
      await land(app, jar)
      expect(runs, `${minutes} minutes`).toHaveLength(expected)
    }
  })

  it('bad actionTtl and replayStore values throw at start-up', () => {
    for (const actionTtl of [0, -1, Number.NaN, Infinity]) expect(() => backwardRoutes({ actionTtl })).toThrow(/actionTtl/)
    for (const replayStore of [cookieStore({ secrets: [SECRET] }), {}, { create: 1 }] as unknown as SessionStore[]) {
      expect(() => backwardRoutes({ replayStore })).toThrow(/replayStore/)
    }
  })
})

describe('failures are reported', () => {
  it('a handler that throws: onReplayError gets the route and status, and the page gets ?backward_replay=failed', async () => {
    const failures: ReplayFailure[] = []
    const { app } = replayApp(memoryStore(), { onReplayError: (f) => failures.push(f) })
    const jar = createJar()
    await record(app, jar, '/boom?token=s3cret')
    await logIn(app, jar)
    const back = await land(app, jar)
    expect(back.headers.get('Location')).toBe('/account?backward_replay=failed')
    expect(failures).toEqual([{ method: 'POST', path: '/boom', reason: 'failed', status: 500 }])
  })

  it('a 4xx answer is a failure too; a second visit finds nothing and adds no flag', async () => {
    const failures: ReplayFailure[] = []
    const { app, runs } = replayApp(memoryStore(), { onReplayError: (f) => failures.push(f) })
    const jar = createJar()
    await record(app, jar, '/invalid')
    await logIn(app, jar)
    expect((await land(app, jar)).headers.get('Location')).toBe('/account?backward_replay=failed')
    expect((await land(app, jar)).headers.get('Location')).toBe('/')
    expect(failures.map((f) => f.status)).toEqual([422])
    expect(runs).toHaveLength(1)
  })

  it('an app whose fetch throws: status null, the error passed on', async () => {
    const failures: ReplayFailure[] = []
    const app = new Hono()
    app.use(session({ store: memoryStore() }))
    app.post('/login', async (c) => c.redirect(await login(c, 'ada'), 303))
    app.post('/transfer', loginRequired(), (c) => c.text('ok'))
    const boom = new Error('down')
    app.route('/backward', backwardRoutes({ app: { fetch: () => Promise.reject(boom) }, onReplayError: (f) => failures.push(f) }))
    const jar = createJar()
    await record(app, jar)
    await logIn(app, jar)
    expect((await land(app, jar)).headers.get('Location')).toBe('/account?backward_replay=failed')
    expect(failures).toEqual([{ method: 'POST', path: '/transfer', reason: 'failed', status: null, error: boom }])
  })

  it('the default report is one console.error line with method, path and status, never the body or query', async () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const { app } = replayApp(memoryStore())
      const jar = createJar()
      await record(app, jar, '/boom?token=s3cret', 'to=mallory')
      await logIn(app, jar)
      await land(app, jar)
      const ours = spy.mock.calls.map((args) => args[0]).filter((m): m is string => typeof m === 'string' && m.startsWith('[backward]'))
      expect(ours).toHaveLength(1)
      expect(ours[0]).toMatch(/POST \/boom answered 500/)
      expect(ours[0]).not.toMatch(/mallory|s3cret/)
    } finally {
      spy.mockRestore()
    }
  })
})

describe('discarded actions are reported', () => {
  it('an expired record: onReplayError gets reason expired (status null), the page gets ?backward_replay=discarded, nothing runs', async () => {
    let t = Date.parse('2026-01-01T00:00:00Z')
    const now = () => t
    const failures: ReplayFailure[] = []
    const { app, runs } = replayApp(memoryStore({ now }), { onReplayError: (f) => failures.push(f) }, now)
    const jar = createJar()
    // A session that exists only for its record expires with it (actionTtl); this one held data before,
    // so it outlives the record and the endpoint finds the expired record.
    await go(app, jar, '/theme', { method: 'POST' })
    await record(app, jar, '/transfer?token=s3cret')
    t += 16 * 60_000
    await logIn(app, jar)
    expect((await land(app, jar)).headers.get('Location')).toBe('/account?backward_replay=discarded')
    expect(failures).toEqual([{ method: 'POST', path: '/transfer', reason: 'expired', status: null }])
    expect(runs).toEqual([])
    // Reported once: the record is gone.
    expect((await land(app, jar)).headers.get('Location')).toBe('/')
    expect(failures).toHaveLength(1)
  })

  for (const [label, tamper] of [
    ['a missing action cookie (cleared, or another browser)', (jar: Jar) => jar.cookies.delete('backward_action')],
    ['a mismatched action cookie', (jar: Jar) => jar.cookies.set('backward_action', 'A'.repeat(43))],
  ] as const) {
    it(`${label}: reason unbound, ?backward_replay=discarded, nothing runs`, async () => {
      const failures: ReplayFailure[] = []
      const { app, runs } = replayApp(memoryStore(), { onReplayError: (f) => failures.push(f) })
      const jar = createJar()
      await record(app, jar)
      tamper(jar)
      await logIn(app, jar)
      expect((await land(app, jar)).headers.get('Location')).toBe('/account?backward_replay=discarded')
      expect(failures).toEqual([{ method: 'POST', path: '/transfer', reason: 'unbound', status: null }])
      expect(runs).toEqual([])
    })
  }

  it('the default report of a discard is one console.warn line with the path and why, never the body or query', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      const { app } = replayApp(memoryStore())
      const jar = createJar()
      await record(app, jar, '/transfer?token=s3cret', 'to=mallory')
      jar.cookies.delete('backward_action')
      await logIn(app, jar)
      await land(app, jar)
      const ours = warn.mock.calls.map((args) => args[0]).filter((m): m is string => typeof m === 'string' && m.startsWith('[backward]'))
      expect(ours).toHaveLength(1)
      expect(ours[0]).toMatch(/POST \/transfer was discarded.*action cookie.*backward_replay=discarded/)
      expect(ours[0]).not.toMatch(/mallory|s3cret/)
    } finally {
      warn.mockRestore()
    }
  })

  it('no record, no report and no flag (a stray action cookie alone is just deleted)', async () => {
    const failures: ReplayFailure[] = []
    const { app } = replayApp(memoryStore(), { onReplayError: (f) => failures.push(f) })
    const jar = createJar({ backward_action: 'A'.repeat(43) })
    await logIn(app, jar)
    const back = await land(app, jar)
    expect(back.headers.get('Location')).toBe('/')
    expect(back.headers.getSetCookie().some((l) => l.startsWith('backward_action=;'))).toBe(true)
    expect(failures).toEqual([])
  })
})

describe("the replayed handler's Location", () => {
  const cases: [string, string, string][] = [
    ['a relative path resolves against the form\'s URL', 'bought', '/items/42/bought'],
    ['a dot-segment path', '../list?sort=new', '/items/list?sort=new'],
    ['a query only', '?ok=1', '/items/42/buy?ok=1'],
    ['an absolute same-origin URL becomes a path', 'http://localhost/inbox#top', '/inbox#top'],
    ['a scheme-relative URL to another host lands on the default', '//evil.example/x', '/account'],
    ['a backslash trick lands on the default', '/\\evil.example', '/account'],
  ]
  for (const [label, location, expected] of cases) {
    it(`${label}: ${location} → ${expected}`, async () => {
      const { app, runs } = replayApp(memoryStore())
      const jar = createJar()
      await record(app, jar, `/items/42/buy?to=${encodeURIComponent(location)}`)
      await logIn(app, jar)
      expect((await land(app, jar)).headers.get('Location')).toBe(expected)
      expect(runs).toHaveLength(1)
    })
  }
})

describe('session writes made by the replayed handler', () => {
  it('server-side store: they survive, with at most one session Set-Cookie', async () => {
    const { app, runs } = replayApp(memoryStore())
    const jar = createJar()
    await record(app, jar, '/flash')
    await logIn(app, jar)
    const back = await land(app, jar)
    expect(runs).toEqual([{ route: 'flash', user: 'ada' }])
    expect(back.headers.get('Location')).toBe('/inbox')
    expect(sessionLines(back).length).toBeLessThanOrEqual(1)
    expect(await (await go(app, jar, '/flash')).json()).toEqual({ flash: 'sent', user: 'ada' })
  })

  it('server-side store: a handler that rotates the id leaves the browser on the new id, logged in', async () => {
    const { app } = replayApp(memoryStore())
    const jar = createJar()
    await record(app, jar, '/rotate')
    await logIn(app, jar)
    const before = jar.cookies.get('sessionid')
    const back = await land(app, jar)
    expect(sessionLines(back)).toHaveLength(1)
    expect(jar.cookies.get('sessionid')).not.toBe(before)
    expect((await (await go(app, jar, '/flash')).json()).user).toBe('ada')
  })

  it('cookieStore: exactly one session Set-Cookie, and it carries the handler\'s writes', async () => {
    const { app, runs } = replayApp(cookieStore({ secrets: [SECRET] }), { replayStore: memoryStore() })
    const jar = createJar()
    await record(app, jar, '/flash')
    await logIn(app, jar)
    const back = await land(app, jar)
    expect(runs).toEqual([{ route: 'flash', user: 'ada' }])
    expect(sessionLines(back)).toHaveLength(1)
    expect(await (await go(app, jar, '/flash')).json()).toEqual({ flash: 'sent', user: 'ada' })
    // The recorded action is not in the new cookie: a later visit has nothing to replay.
    await land(app, jar)
    expect(runs).toHaveLength(1)
  })

  describe('with saveEveryRequest (the redirect request must not write its stale copy after the replay)', () => {
    const stores: [string, () => SessionStore | CookieSessionStore, BackwardRoutesOptions][] = [
      ['memoryStore', () => memoryStore(), {}],
      ['cookieStore', () => cookieStore({ secrets: [SECRET] }), { replayStore: memoryStore() }],
    ]
    for (const [name, make, routeOptions] of stores) {
      for (const route of ['/rotate', '/cycle']) {
        it(`${name}: a replayed ${route} lands with 303, one session cookie, still logged in`, async () => {
          const { app } = replayApp(make(), routeOptions, undefined, { saveEveryRequest: true })
          const jar = createJar()
          await record(app, jar, route)
          await logIn(app, jar)
          const before = jar.cookies.get('sessionid')
          const back = await land(app, jar)
          expect(back.status).toBe(303)
          expect(back.headers.get('Location')).toBe('/inbox')
          expect(sessionLines(back)).toHaveLength(1)
          expect(jar.cookies.get('sessionid')).not.toBe(before)
          expect((await (await go(app, jar, '/flash')).json()).user).toBe('ada')
        })
      }
      it(`${name}: a replayed logout lands with 303 and one deletion of the session cookie`, async () => {
        const { app } = replayApp(make(), routeOptions, undefined, { saveEveryRequest: true })
        const jar = createJar()
        await record(app, jar, '/bye')
        await logIn(app, jar)
        const old = jar.header()
        const back = await land(app, jar)
        expect(back.status).toBe(303)
        expect(back.headers.get('Location')).toBe('/')
        const lines = sessionLines(back)
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(/^sessionid=;.*Max-Age=0/)
        expect((await (await go(app, jar, '/flash')).json()).user).toBeNull()
        if (name === 'memoryStore') {
          // The logout stuck server-side too: the old cookie is no longer logged in.
          expect(await (await app.request(`${HTTP}/flash`, { headers: { Cookie: old } })).json()).toMatchObject({ user: null })
        }
      })
      it(`${name}: a replayed handler's writes survive, and the session is renewed once`, async () => {
        const { app, runs } = replayApp(make(), routeOptions, undefined, { saveEveryRequest: true })
        const jar = createJar()
        await record(app, jar, '/flash')
        await logIn(app, jar)
        const back = await land(app, jar)
        expect(back.status).toBe(303)
        expect(runs).toHaveLength(1)
        expect(sessionLines(back)).toHaveLength(1)
        expect(await (await go(app, jar, '/flash')).json()).toEqual({ flash: 'sent', user: 'ada' })
      })
    }
  })

  it('cookieStore: a handler that logs out ends with one deletion of the session cookie', async () => {
    const { app } = replayApp(cookieStore({ secrets: [SECRET] }), { replayStore: memoryStore() })
    const jar = createJar()
    await record(app, jar, '/bye')
    await logIn(app, jar)
    const back = await land(app, jar)
    const lines = sessionLines(back)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^sessionid=;.*Max-Age=0/)
    expect((await (await go(app, jar, '/flash')).json()).user).toBeNull()
  })
})

/** A store whose loads answer late (read first, then wait), so two concurrent visits both read the record before either writes. */
function slowLoads(inner: SessionStore): SessionStore {
  return {
    ...inner,
    load: async (key) => {
      const data = await inner.load(key)
      await new Promise((r) => setTimeout(r, 25))
      return data
    },
  } as SessionStore
}

const redis = await redisService()
const postgres = await postgresService()

describe('one-shot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-replay-'))
  const io = redis.ok ? new Redis(REDIS_URL) : undefined
  const prefix = `bwtest-replay-${Math.random().toString(36).slice(2)}:`
  const sandbox = postgresSchema(4)
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true })
    if (io !== undefined) {
      const keys = await io.keys(`${prefix}*`)
      if (keys.length > 0) await io.del(...keys)
      io.disconnect()
    }
  })

  const stores: [string, boolean, () => Promise<SessionStore>][] = [
    ['memoryStore', true, async () => memoryStore()],
    ['fileStore', true, async () => fileStore({ dir })],
    [titled('redisStore', redis), redis.ok, async () => redisStore({ client: io!, prefix })],
    [titled('postgresStore', postgres), postgres.ok, async () => {
      const store = postgresStore({ pool: sandbox.pool, table: `${sandbox.schema}.sessions` })
      await store.migrate()
      return store
    }],
  ]
  for (const [name, ok, make] of stores) {
    it.skipIf(!ok)(`${name}: two concurrent visits to the redirect endpoint run the action once`, async () => {
      const { app, runs } = replayApp(slowLoads(await make()))
      const jar = createJar()
      await record(app, jar)
      await logIn(app, jar)
      const cookie = jar.header()
      const visits = await Promise.all([0, 1].map(() => app.request(`${HTTP}${landingOf(jar)}`, { headers: { ...NAV, Cookie: cookie } })))
      expect(visits.map((r) => r.status)).toEqual([303, 303])
      expect(runs).toEqual([{ route: 'transfer', user: 'ada', query: {}, fields: { to: 'mallory' } }])
    })
  }

  it('the visit that loses the claim writes nothing, so it cannot undo the replayed handler\'s session writes', async () => {
    // The second create of a key (the losing claim) answers late: after the winner's replay has saved.
    const inner = slowLoads(memoryStore())
    const seen = new Set<string>()
    const store: SessionStore = {
      ...inner,
      create: async (key, data, expiresAt) => {
        if (seen.has(key)) await new Promise((r) => setTimeout(r, 150))
        seen.add(key)
        return inner.create(key, data, expiresAt)
      },
    }
    const { app, runs } = replayApp(store)
    const jar = createJar()
    await record(app, jar, '/flash')
    await logIn(app, jar)
    const cookie = jar.header()
    const visits = await Promise.all([0, 1].map(() => app.request(`${HTTP}${landingOf(jar)}`, { headers: { ...NAV, Cookie: cookie } })))
    expect(runs).toHaveLength(1)
    for (const visit of visits) jar.store(visit)
    expect(await (await go(app, jar, '/flash')).json()).toEqual({ flash: 'sent', user: 'ada' })
  })

  it('cookieStore with replayStore: re-sending the old cookie does not replay again', async () => {
    const { app, runs } = replayApp(cookieStore({ secrets: [SECRET] }), { replayStore: memoryStore() })
    const jar = createJar()
    await record(app, jar)
    await logIn(app, jar)
    const old = jar.header() // still holds the recorded action and login()'s proof, sealed
    await land(app, jar)
    expect(runs).toHaveLength(1)
    for (let i = 0; i < 3; i++) await app.request(`${HTTP}${landingOf(jar)}`, { headers: { ...NAV, Cookie: old } })
    expect(runs).toHaveLength(1)
  })

  it('cookieStore without replayStore: nothing is replayed, the page is told, and the developer is told once', async () => {
    const failures: ReplayFailure[] = []
    const { app, runs } = replayApp(cookieStore({ secrets: [SECRET] }), { onReplayError: (f) => failures.push(f) })
    for (let i = 0; i < 2; i++) {
      const jar = createJar()
      await record(app, jar)
      await logIn(app, jar)
      expect((await land(app, jar)).headers.get('Location')).toBe('/account?backward_replay=failed')
    }
    expect(runs).toEqual([])
    expect(failures).toHaveLength(1)
    expect(failures[0]!.status).toBeNull()
    expect(failures[0]!.reason).toBe('unavailable')
    expect((failures[0]!.error as Error).message).toMatch(/^\[backward\].*replayStore/)
    expect(failures[0]!.error).toMatchObject({ code: 'CONFIG' })
  })

  it('a replay store outage gives 503 and keeps the action; once it is back, the action runs once', async () => {
    let down = true
    const inner = memoryStore()
    const flaky: SessionStore = { ...inner, create: (k, d, e) => (down ? Promise.reject(new Error('down')) : inner.create(k, d, e)) } as SessionStore
    const { app, runs } = replayApp(cookieStore({ secrets: [SECRET] }), { replayStore: flaky, onStoreError: () => {} })
    const jar = createJar()
    await record(app, jar)
    await logIn(app, jar)
    expect((await land(app, jar)).status).toBe(503)
    expect(runs).toEqual([])
    down = false
    expect((await land(app, jar)).headers.get('Location')).toBe('/done')
    await land(app, jar)
    expect(runs).toHaveLength(1)
  })
})

describe('security', () => {
  it('a planted session: the attacker\'s recorded action never runs as the victim', async () => {
    const store = memoryStore()
    const { app, runs } = replayApp(store)
    const attacker = createJar()
    await record(app, attacker, '/transfer', 'to=mallory&amount=1000')
    const planted = attacker.cookies.get('sessionid')!
    // Cookie injection (a sibling subdomain, or a network attacker on http) plants only the session.
    const victim = createJar({ sessionid: planted })
    await logIn(app, victim)
    const back = await land(app, victim)
    expect(runs).toEqual([])
    // The victim is told that something was not replayed; nothing of the attacker's record runs.
    expect(back.headers.get('Location')).toMatch(/backward_replay=discarded$/)
    // And the record is gone: it cannot be unlocked later either.
    expect(await store.load(await hashKey(victim.cookies.get('sessionid')!))).not.toHaveProperty('_backward_action')
  })

  it("the victim's own action cookie does not unlock the attacker's planted record", async () => {
    const { app, runs } = replayApp(memoryStore())
    const victim = createJar()
    await record(app, victim, '/transfer', 'to=grandma') // the victim has an action cookie of their own
    const attacker = createJar()
    await record(app, attacker, '/transfer', 'to=mallory')
    victim.cookies.set('sessionid', attacker.cookies.get('sessionid')!)
    await logIn(app, victim)
    await land(app, victim)
    expect(runs).toEqual([])
  })

  it('on https a plain-named action cookie (what a sibling subdomain can plant) is ignored', async () => {
    const { app, runs } = replayApp(memoryStore())
    const attacker = createJar()
    await record(app, attacker, '/transfer', 'to=mallory', HTTPS)
    // On https the session cookie is `__Host-sessionid` too; the attacker's session is planted as given.
    const planted = attacker.cookies.get('__Host-sessionid')!
    const nonce = attacker.cookies.get('__Host-backward_action')!
    expect(planted).toBeDefined()
    expect(nonce).toBeDefined()
    const victim = createJar({ '__Host-sessionid': planted, backward_action: nonce })
    await logIn(app, victim, HTTPS)
    await land(app, victim, HTTPS)
    expect(runs).toEqual([])
  })

  it('a record without a nonce (made before this fix, or forged into a store) is never replayed', async () => {
    const store = memoryStore()
    const { app, runs } = replayApp(store)
    const jar = createJar()
    await record(app, jar)
    const key = await hashKey(jar.cookies.get('sessionid')!)
    const data = (await store.load(key))!
    const { nonce: _dropped, ...bare } = data._backward_action as Record<string, unknown>
    await store.update(key, { ...data, _backward_action: bare }, Date.now() + 60_000)
    await logIn(app, jar)
    await land(app, jar)
    expect(runs).toEqual([])
  })
})
