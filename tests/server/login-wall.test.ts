import { createHash } from 'node:crypto'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { backwardRoutes, cookieStore, getUserId, idempotency, login, loginRequired, logout, memoryStore, session, userTag } from '../../src/server/index.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { hashKey } from '../../src/server/ids.ts'
import { createJar, parseSetCookie, type Jar } from '../helpers/jar.ts'

const ORIGIN = 'http://localhost'
const NAV = { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', 'Sec-Fetch-Site': 'same-origin', Accept: 'text/html' }
const FETCH = { 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty', 'Sec-Fetch-Site': 'same-origin', Accept: 'application/json' }
const SECRET = 's'.repeat(32)

function buildApp(store: SessionStore = memoryStore()) {
  const executed: { route: string; user: unknown; fields?: Record<string, unknown>; sha?: string }[] = []
  const app = new Hono()
  app.use(session({ store, secret: SECRET }))
  app.post('/login', async (c) => {
    const form = await c.req.parseBody()
    if (form.password !== 'pw') return c.text('bad credentials', 401)
    const next = typeof form.next === 'string' && form.next !== '' ? form.next : undefined
    return c.redirect(await login(c, String(form.username), { ...(form.remember !== undefined ? { remember: form.remember === 'on' } : {}), ...(next !== undefined ? { next } : {}) }), 303)
  })
  app.get('/tag/:id', async (c) => c.text(await userTag(c, c.req.param('id'))))
  app.post('/logout', (c) => (logout(c), c.redirect('/', 303)))
  app.get('/people', loginRequired(), (c) => c.text(`people for ${getUserId(c)}`))
  app.post('/follow/:id', loginRequired(), idempotency({ store: memoryStore() }), async (c) => {
    executed.push({ route: `follow ${c.req.param('id')}`, user: getUserId(c), fields: await c.req.parseBody() })
    return c.redirect('/people?followed=' + c.req.param('id'), 303)
  })
  app.post('/api/follow/:id', loginRequired(), idempotency({ store: memoryStore() }), async (c) => {
    executed.push({ route: `api follow ${c.req.param('id')}`, user: getUserId(c) })
    return c.json({ following: c.req.param('id') })
  })
  app.post('/posts', loginRequired(), async (c) => {
    const form = await c.req.parseBody()
    const file = form.image as File
    executed.push({ route: 'post', user: getUserId(c), fields: { text: form.text, name: file.name, type: file.type }, sha: createHash('sha256').update(new Uint8Array(await file.arrayBuffer())).digest('hex') })
    return c.text('created', 201)
  })
  app.route('/backward', backwardRoutes({ loginUrl: '/login', app }))
  return { app, executed, store }
}

async function go(app: Hono, jar: Jar, path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await app.request(`${ORIGIN}${path}`, { ...init, headers: { ...(init.headers ?? {}), Cookie: jar.header() } })
  jar.store(res)
  return res
}

/** Follows a 303 (the login's answer goes to the landing URL login() made, with its proof). */
async function follow(app: Hono, jar: Jar, res: Response, headers: Record<string, string> = NAV) {
  expect(res.status).toBe(303)
  return go(app, jar, res.headers.get('Location')!, { headers })
}

/** The landing URL login() answered: the redirect endpoint with a one-time proof, and `next` when there is one. */
function expectLanding(res: Response, next: string | null) {
  const url = new URL(res.headers.get('Location')!, ORIGIN)
  expect(url.pathname).toBe('/backward/login/redirect')
  expect(url.searchParams.get('backward_proof')).toMatch(/^[A-Za-z0-9_-]{43}$/)
  expect(url.searchParams.get('next')).toBe(next)
}

async function logIn(app: Hono, jar: Jar, extra: Record<string, string> = {}) {
  return go(app, jar, '/login', { method: 'POST', headers: { ...NAV, Origin: ORIGIN }, body: new URLSearchParams({ username: 'ada', password: 'pw', ...extra }) })
}

describe('loginRequired: the 401 problem for fetches', () => {
  it('answers an anonymous fetch POST with the problem body, WWW-Authenticate and the page to return to', async () => {
    const { app, executed } = buildApp()
    const jar = createJar()
    const res = await go(app, jar, '/api/follow/42', { method: 'POST', headers: { ...FETCH, Referer: `${ORIGIN}/people?page=2` } })
    expect(res.status).toBe(401)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    const body = await res.json()
    expect(body).toEqual({ type: 'urn:backward:login-required', title: 'Login required', status: 401, loginUrl: '/login?next=%2Fpeople%3Fpage%3D2' })
    expect(res.headers.get('WWW-Authenticate')).toBe('Backward login_url="/login?next=%2Fpeople%3Fpage%3D2"')
    expect(res.headers.getSetCookie()).toEqual([]) // a 401 writes no session
    expect(executed).toEqual([])
  })

  it('judges old clients without Sec-Fetch-* by Accept', async () => {
    const { app } = buildApp()
    expect((await app.request('/people', { headers: { Accept: 'application/json' } })).status).toBe(401)
    expect((await app.request('/people', { headers: { Accept: 'text/html,*/*' } })).status).toBe(303)
    expect((await app.request('/people', { headers: { Accept: 'text/html', 'X-Requested-With': 'XMLHttpRequest' } })).status).toBe(401)
  })

  it('journey: anonymous fetch gets 401, the person logs in and is sent back to the right page', async () => {
    const { app } = buildApp()
    const jar = createJar()
    const problem = await (await go(app, jar, '/api/follow/42', { method: 'POST', headers: { ...FETCH, Referer: `${ORIGIN}/people` } })).json()
    const next = new URL(problem.loginUrl, ORIGIN).searchParams.get('next')!
    const login = await logIn(app, jar, { next })
    expectLanding(login, '/people')
    const back = await follow(app, jar, login)
    expect(back.status).toBe(303)
    expect(back.headers.get('Location')).toBe('/people')
    expect(await (await go(app, jar, '/people', { headers: NAV })).text()).toBe('people for ada')
  })
})

describe('loginRequired: navigations', () => {
  it('redirects a page navigation with 303 to the login page and keeps the destination, one-shot', async () => {
    const { app } = buildApp()
    const jar = createJar()
    const res = await go(app, jar, '/people?page=2', { headers: NAV })
    expect(res.status).toBe(303)
    expect(res.headers.get('Location')).toBe('/login?next=%2Fpeople%3Fpage%3D2')
    // The destination travels in the login URL: no session is made to hold it.
    expect(res.headers.getSetCookie()).toEqual([])
    // The login form carries the login URL's next.
    const login = await logIn(app, jar, { next: new URL(res.headers.get('Location')!, ORIGIN).searchParams.get('next')! })
    expectLanding(login, '/people?page=2')
    const back = await follow(app, jar, login)
    expect(back.headers.get('Location')).toBe('/people?page=2')
    const again = await go(app, jar, '/backward/login/redirect', { headers: NAV })
    expect(again.headers.get('Location')).toBe('/')
  })

  it('journey: a no-JS form POST is recorded, login happens, the action runs exactly once, and the person lands on the page', async () => {
    const { app, executed } = buildApp()
    const jar = createJar()
    const post = await go(app, jar, '/follow/7', {
      method: 'POST',
      headers: { ...NAV, Origin: ORIGIN, Referer: `${ORIGIN}/people`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'note=hello+world&tags=a&tags=b',
    })
    expect(post.status).toBe(303)
    expect(post.headers.get('Location')).toBe('/login?next=%2Fpeople')
    expect(executed).toEqual([])
    const login = await logIn(app, jar)
    const back = await follow(app, jar, login)
    expect(executed).toEqual([{ route: 'follow 7', user: 'ada', fields: { note: 'hello world', tags: 'b' } }])
    expect(back.headers.get('Location')).toBe('/people?followed=7')
    await follow(app, jar, login) // the same landing URL again: its proof is spent and the record is gone
    await go(app, jar, '/backward/login/redirect', { headers: NAV })
    expect(executed).toHaveLength(1)
  })

  it('journey: a no-JS multipart post with a file replays with identical bytes', async () => {
    const { app, executed } = buildApp()
    const jar = createJar()
    const bytes = new Uint8Array(5000).map((_, i) => (i * 31) % 256)
    const form = new FormData()
    form.append('text', 'my post ✓')
    form.append('image', new File([bytes], 'cat.png', { type: 'image/png' }))
    const post = await go(app, jar, '/posts', { method: 'POST', headers: { ...NAV, Referer: `${ORIGIN}/compose` }, body: form })
    expect(post.status).toBe(303)
    const back = await follow(app, jar, await logIn(app, jar))
    expect(back.headers.get('Location')).toBe('/compose')
    expect(executed).toEqual([{ route: 'post', user: 'ada', fields: { text: 'my post ✓', name: 'cat.png', type: 'image/png' }, sha: createHash('sha256').update(bytes).digest('hex') }])
  })

  it('does not record a form larger than maxRecordBytes, but still redirects', async () => {
    const app = new Hono()
    const seen: string[] = []
    app.use(session({ store: memoryStore() }))
    app.post('/login', async (c) => c.redirect(await login(c, 'ada'), 303))
    app.post('/big', loginRequired({ maxRecordBytes: 100 }), (c) => (seen.push('big'), c.text('ok')))
    app.route('/backward', backwardRoutes({ app }))
    const jar = createJar()
    const res = await go(app, jar, '/big', { method: 'POST', headers: { ...NAV, Referer: `${ORIGIN}/form`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `x=${'a'.repeat(200)}` })
    expect(res.status).toBe(303)
    expect(res.headers.get('Location')).toBe('/login?next=%2Fform')
    // The login form posts to its own URL, which carries next.
    const back = await follow(app, jar, await go(app, jar, res.headers.get('Location')!, { method: 'POST' }))
    expect(seen).toEqual([])
    expect(back.headers.get('Location')).toBe('/form')
  })

  it('a recorded action older than actionTtl is discarded', async () => {
    const app = new Hono()
    const seen: string[] = []
    app.use(session({ store: memoryStore() }))
    app.post('/login', async (c) => c.redirect(await login(c, 'ada'), 303))
    app.post('/act', loginRequired(), (c) => (seen.push('act'), c.text('ok')))
    app.route('/backward', backwardRoutes({ app, actionTtl: 0.05, onReplayError: () => {} }))
    const jar = createJar()
    await go(app, jar, '/act', { method: 'POST', headers: { ...NAV, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1' })
    await new Promise((r) => setTimeout(r, 80))
    expect((await follow(app, jar, await go(app, jar, '/login', { method: 'POST' }))).headers.get('Location')).toBe('/?backward_replay=discarded')
    expect(seen).toEqual([])
  })

  it('a logged-out visit to the redirect endpoint goes to the login page, keeping only a safe next', async () => {
    const { app } = buildApp()
    const res = await app.request('/backward/login/redirect?next=%2Fpeople', { headers: NAV })
    expect(res.headers.get('Location')).toBe('/login?next=%2Fpeople')
    const evil = await app.request('/backward/login/redirect?next=%2F%2Fevil.example', { headers: NAV })
    expect(evil.headers.get('Location')).toBe('/login')
  })

  it('custom isAuthenticated decides who passes', async () => {
    const app = new Hono()
    app.use(session({ store: memoryStore() }))
    app.get('/x', loginRequired({ isAuthenticated: (c) => c.req.header('X-Key') === 'k' }), (c) => c.text('in'))
    expect((await app.request('/x', { headers: { 'X-Key': 'k' } })).status).toBe(200)
    expect((await app.request('/x', { headers: FETCH })).status).toBe(401)
  })

  it('rejects an off-site loginUrl or defaultRedirect at start-up', () => {
    for (const loginUrl of ['https://evil.example/login', '//evil.example', 'login', '/\\evil.example']) {
      expect(() => loginRequired({ loginUrl })).toThrow(/loginUrl/)
      expect(() => backwardRoutes({ loginUrl })).toThrow(/loginUrl/)
    }
    expect(() => backwardRoutes({ defaultRedirect: 'https://evil.example' })).toThrow(/defaultRedirect/)
  })

  it('loginRequired and backwardRoutes share isSafeRedirect: encoded, NUL and dot-segment login URLs fail at start-up', () => {
    for (const loginUrl of ['/%2F%2Fevil.com', '/\x00/evil', '/.//evil.com', '/a/..//evil.com', '/%5Cevil.com', '/\u200b/evil.com']) {
      expect(() => loginRequired({ loginUrl }), JSON.stringify(loginUrl)).toThrow(/loginUrl must be a path on this site/)
      expect(() => backwardRoutes({ loginUrl }), JSON.stringify(loginUrl)).toThrow(/loginUrl must be a path on this site/)
      expect(() => backwardRoutes({ defaultRedirect: loginUrl }), JSON.stringify(loginUrl)).toThrow(/defaultRedirect/)
    }
    for (const loginUrl of ['/login', '/accounts/login/?a=1', '/login#form']) expect(() => loginRequired({ loginUrl })).not.toThrow()
  })
})

describe('login and logout', () => {
  it('login rotates the session id and keeps the anonymous data (the saved destination)', async () => {
    const { app, store } = buildApp()
    const jar = createJar()
    // A recorded no-JS post is what makes an anonymous session (with the page to come back to).
    await go(app, jar, '/follow/7', { method: 'POST', headers: { ...NAV, Origin: ORIGIN, Referer: `${ORIGIN}/people`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1' })
    const anonymous = jar.cookies.get('sessionid')!
    expect(anonymous).toBeDefined()
    await logIn(app, jar)
    const logged = jar.cookies.get('sessionid')!
    expect(logged).not.toBe(anonymous)
    expect(await store.load(await hashKey(anonymous))).toBeNull()
    expect(await store.load(await hashKey(logged))).toMatchObject({ _auth_user_id: 'ada', _backward_next: '/people', _backward_action: { path: '/follow/7' } })
  })

  it('session fixation: an attacker-planted session is never the one that ends up logged in', async () => {
    const { app, store } = buildApp()
    const attacker = createJar()
    // The attacker gets a real anonymous session (a recorded no-JS post makes one)
    await go(app, attacker, '/follow/1', { method: 'POST', headers: { ...NAV, Origin: ORIGIN, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1' })
    const planted = attacker.cookies.get('sessionid')!
    expect(planted).toBeDefined()
    const victim = createJar({ sessionid: planted }) // and plants it in the victim's browser
    await logIn(app, victim)
    expect(victim.cookies.get('sessionid')).not.toBe(planted)
    expect(await store.load(await hashKey(planted))).toBeNull()
    expect(await (await go(app, attacker, '/people', { headers: NAV })).text()).not.toContain('ada')
  })

  it('logging in as a different user flushes the previous user data; the same user keeps it', async () => {
    const app = new Hono()
    app.use(session({ store: memoryStore() }))
    app.post('/login/:user', async (c) => (await login(c, c.req.param('user')), c.text('ok')))
    app.post('/note', (c) => (c.var.session.set('note', 'private'), c.text('ok')))
    app.get('/note', (c) => c.json(c.var.session.get('note') ?? null))
    const jar = createJar()
    await go(app, jar, '/login/ada', { method: 'POST' })
    await go(app, jar, '/note', { method: 'POST' })
    await go(app, jar, '/login/ada', { method: 'POST' })
    expect(await (await go(app, jar, '/note')).json()).toBe('private')
    await go(app, jar, '/login/bob', { method: 'POST' })
    expect(await (await go(app, jar, '/note')).json()).toBeNull()
  })

  it('remember me on gives a persistent cookie, off gives a browser-length one', async () => {
    const { app } = buildApp()
    const on = await logIn(app, createJar(), { remember: 'on' })
    const onCookie = parseSetCookie(on.headers.getSetCookie().find((l) => l.startsWith('sessionid='))!)
    expect(onCookie.attrs['max-age']).toBe('1209600')
    expect(onCookie.attrs.expires).toBeTruthy()
    const off = await logIn(app, createJar(), { remember: 'off' })
    const offCookie = parseSetCookie(off.headers.getSetCookie().find((l) => l.startsWith('sessionid='))!)
    expect(offCookie.attrs['max-age']).toBeUndefined()
    expect(offCookie.attrs.expires).toBeUndefined()
  })

  it('login sets the script-readable signal cookie with the user tag, never the user id', async () => {
    const { app } = buildApp()
    const jar = createJar()
    const res = await logIn(app, jar)
    const signal = parseSetCookie(res.headers.getSetCookie().find((l) => l.startsWith('backward_login='))!)
    expect(signal.value).toBe(await (await app.request('/tag/ada')).text())
    expect(signal.value).toBe((await (await go(app, jar, '/backward/user')).json()).user)
    expect(signal.value).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(signal.attrs.httponly).toBeUndefined()
    expect(signal.attrs['max-age']).toBe('120')
  })

  it('the signal cookie is host-only even when the session cookie has a Domain (the SDK deletes it with Path=/ only)', async () => {
    const app = new Hono()
    app.use(session({ store: memoryStore(), cookie: { domain: 'localhost' } }))
    app.post('/login', async (c) => (await login(c, 'ada'), c.text('ok')))
    app.post('/logout', (c) => (logout(c), c.text('ok')))
    const jar = createJar()
    const res = await go(app, jar, '/login', { method: 'POST' })
    const lines = res.headers.getSetCookie()
    expect(parseSetCookie(lines.find((l) => l.startsWith('sessionid='))!).attrs.domain).toBe('localhost')
    const signal = parseSetCookie(lines.find((l) => l.startsWith('backward_login='))!)
    expect(signal.attrs.domain).toBeUndefined()
    expect(signal.attrs.path).toBe('/')
    const out = parseSetCookie((await go(app, jar, '/logout', { method: 'POST' })).headers.getSetCookie().find((l) => l.startsWith('backward_login='))!)
    expect(out.attrs.domain).toBeUndefined()
  })

  it('logout removes the cookie, the stored record and the signal', async () => {
    const { app, store } = buildApp()
    const jar = createJar()
    await logIn(app, jar)
    const id = jar.cookies.get('sessionid')!
    const res = await go(app, jar, '/logout', { method: 'POST', headers: NAV })
    const lines = res.headers.getSetCookie()
    expect(lines.some((l) => l.startsWith('sessionid=;') && l.includes('Max-Age=0'))).toBe(true)
    expect(lines.some((l) => l.startsWith('backward_login=;') && l.includes('Max-Age=0'))).toBe(true)
    expect(await store.load(await hashKey(id))).toBeNull()
    expect((await go(app, createJar({ sessionid: id }), '/people', { headers: FETCH })).status).toBe(401)
  })

  describe('the login signal on the host the browser lands on', () => {
    // The SPA is served from app.example.com; its login form posts to auth.example.com, and the two
    // share the session through a Domain cookie. The redirect endpoint is mounted on the SPA's host.
    function splitHosts() {
      const app = new Hono()
      app.use(session({ store: memoryStore(), cookie: { domain: 'example.com' } }))
      app.post('/login', async (c) => c.redirect(await login(c, 'ada', { redirectTo: 'https://app.example.com/backward/login/redirect' }), 303))
      app.route('/backward', backwardRoutes({ app }))
      return app
    }
    const at = async (app: Hono, jar: Jar, url: string, init: RequestInit = {}) => {
      const res = await app.request(url, { ...init, headers: { ...NAV, Cookie: jar.header() } })
      jar.store(res)
      return res
    }
    // On https the signal is `__Host-backward_login` (a sibling subdomain cannot plant it); on http `backward_login`.
    const signalOf = (res: Response, name = 'backward_login') => res.headers.getSetCookie().find((l) => l.startsWith(`${name}=`))
    const HOST_SIGNAL = '__Host-backward_login'

    it('a login on auth.example.com: the redirect endpoint on app.example.com sets the signal, host-only, once', async () => {
      const app = splitHosts()
      const jar = createJar()
      const login = await at(app, jar, 'https://auth.example.com/login', { method: 'POST' })
      expect(signalOf(login, HOST_SIGNAL)).toBeDefined()
      jar.cookies.delete(HOST_SIGNAL) // host-only on auth.example.com: the app host never sees it
      const landing = login.headers.get('Location')!
      expect(landing.startsWith('https://app.example.com/backward/login/redirect?backward_proof=')).toBe(true)
      const back = await at(app, jar, landing)
      expect(signalOf(back)).toBeUndefined() // on https only the __Host- name is used
      const line = signalOf(back, HOST_SIGNAL)
      expect(line).toBeDefined()
      const signal = parseSetCookie(line!)
      expect(signal.value).toBe((await (await at(app, jar, 'https://app.example.com/backward/user')).json()).user)
      expect(signal.value).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(signal.attrs.domain).toBeUndefined()
      expect(signal.attrs.httponly).toBeUndefined()
      expect(signal.attrs).toMatchObject({ path: '/', 'max-age': '120', secure: true })
      // One-shot: a later visit is not a fresh login.
      expect(signalOf(await at(app, jar, 'https://app.example.com/backward/login/redirect'), HOST_SIGNAL)).toBeUndefined()
    })

    it('a login on the same host still works: login() sets it, the endpoint sets the same cookie again', async () => {
      const { app } = buildApp()
      const jar = createJar()
      const tag = await (await app.request('/tag/ada')).text()
      const login = await logIn(app, jar)
      expect(parseSetCookie(signalOf(login)!).value).toBe(tag)
      expect(parseSetCookie(signalOf(await follow(app, jar, login))!).value).toBe(tag)
      expect(signalOf(await go(app, jar, '/backward/login/redirect', { headers: NAV }))).toBeUndefined()
    })

    it('only a login that just happened: two minutes later the endpoint sets no signal', async () => {
      let t = Date.parse('2026-01-01T00:00:00Z')
      const now = () => t
      const app = new Hono()
      app.use(session({ store: memoryStore({ now }), now }))
      app.post('/login', async (c) => (await login(c, 'ada'), c.text('ok')))
      app.route('/backward', backwardRoutes({ app }))
      const jar = createJar()
      await go(app, jar, '/login', { method: 'POST' })
      t += 121_000
      expect(signalOf(await go(app, jar, '/backward/login/redirect', { headers: NAV }))).toBeUndefined()
    })

    it('no signal for a visit that is not logged in, or after logout', async () => {
      const { app } = buildApp()
      const jar = createJar()
      await logIn(app, jar)
      await go(app, jar, '/logout', { method: 'POST', headers: NAV })
      const back = await go(app, jar, '/backward/login/redirect', { headers: NAV })
      expect(back.headers.get('Location')).toBe('/login')
      expect(signalOf(back)).toBeUndefined()
    })
  })

  it('rejects unusable user ids', async () => {
    const app = new Hono()
    app.use(session({ store: memoryStore() }))
    app.post('/login', async (c) => (await login(c, JSON.parse(c.req.query('id')!)), c.text('ok')))
    app.onError((err, c) => c.text(err.message, 500))
    for (const bad of ['""', '1.5', 'null', '{}', JSON.stringify('x'.repeat(257))]) {
      expect(await (await app.request(`/login?id=${encodeURIComponent(bad)}`, { method: 'POST' })).text()).toMatch(/user id/)
    }
  })
})

describe('idempotency', () => {
  function idemApp(store = memoryStore()) {
    const runs: string[] = []
    const app = new Hono()
    app.use(session({ store: memoryStore() }))
    app.post('/login/:user', async (c) => (await login(c, c.req.param('user')), c.text('ok')))
    app.use('/api/*', idempotency({ store }))
    app.post('/api/pay', async (c) => {
      runs.push(getUserId(c) as string)
      await new Promise((r) => setTimeout(r, Number(c.req.query('delay') ?? 0)))
      c.header('Set-Cookie', 'flash=paid')
      return c.json({ paid: runs.length, by: getUserId(c) }, 201)
    })
    app.post('/api/fail', (c) => (runs.push('fail'), c.text('down', 503)))
    return { app, runs }
  }

  it('a replay sent twice with the same Idempotency-Key runs once and gets the first response', async () => {
    const { app, runs } = idemApp()
    const jar = createJar()
    await go(app, jar, '/login/ada', { method: 'POST' })
    const first = await go(app, jar, '/api/pay', { method: 'POST', headers: { 'Idempotency-Key': 'k-1' } })
    const second = await go(app, jar, '/api/pay', { method: 'POST', headers: { 'Idempotency-Key': 'k-1' } })
    expect(runs).toEqual(['ada'])
    expect(second.status).toBe(201)
    expect(await second.json()).toEqual(await first.json())
    expect(second.headers.get('Content-Type')).toMatch(/application\/json/)
    expect(second.headers.get('Idempotent-Replayed')).toBe('true')
    expect(second.headers.getSetCookie().filter((l) => l.startsWith('flash'))).toEqual([])
  })

  it('a repeat that arrives while the first is running gets 409', async () => {
    const { app, runs } = idemApp()
    const jar = createJar()
    await go(app, jar, '/login/ada', { method: 'POST' }) // a key belongs to someone: here, ada
    const init = { method: 'POST', headers: { 'Idempotency-Key': 'k-2', Cookie: jar.header() } }
    const [a, b] = await Promise.all([
      app.request('/api/pay?delay=50', init),
      new Promise<Response>((r) => setTimeout(() => r(app.request('/api/pay?delay=50', init)), 10)),
    ])
    expect([a.status, b.status]).toEqual([201, 409])
    expect(runs).toHaveLength(1)
  })

  it('keys are scoped to the user: the same key from another user runs and never sees the first response', async () => {
    const { app, runs } = idemApp()
    const ada = createJar()
    const bob = createJar()
    await go(app, ada, '/login/ada', { method: 'POST' })
    await go(app, bob, '/login/bob', { method: 'POST' })
    await go(app, ada, '/api/pay', { method: 'POST', headers: { 'Idempotency-Key': 'same' } })
    const res = await go(app, bob, '/api/pay', { method: 'POST', headers: { 'Idempotency-Key': 'same' } })
    expect(runs).toEqual(['ada', 'bob'])
    expect((await res.json()).by).toBe('bob')
  })

  it('a 5xx frees the key so the retry runs', async () => {
    const { app, runs } = idemApp()
    await app.request('/api/fail', { method: 'POST', headers: { 'Idempotency-Key': 'k-3' } })
    await app.request('/api/fail', { method: 'POST', headers: { 'Idempotency-Key': 'k-3' } })
    expect(runs).toEqual(['fail', 'fail'])
  })

  it('requests without a key run every time; a malformed key gets 400', async () => {
    const { app, runs } = idemApp()
    await app.request('/api/pay', { method: 'POST' })
    await app.request('/api/pay', { method: 'POST' })
    expect(runs).toHaveLength(2)
    for (const bad of ['', 'a b', 'x'.repeat(256), 'cl\u00e9']) {
      const res = await app.request('/api/pay', { method: 'POST', headers: { 'Idempotency-Key': bad } })
      expect(res.status, bad).toBe(400)
    }
  })

  it('a store outage gives a 503, and the handler does not run', async () => {
    const broken: SessionStore = { load: () => Promise.reject(new Error('down')), create: () => Promise.reject(new Error('down')), update: () => Promise.reject(new Error('down')), delete: () => Promise.reject(new Error('down')) }
    const runs: number[] = []
    const app = new Hono()
    app.use(session({ store: memoryStore() }))
    app.post('/login', async (c) => (await login(c, 'ada'), c.text('ok')))
    app.use('/pay', idempotency({ store: broken, onStoreError: () => {} }))
    app.post('/pay', (c) => (runs.push(1), c.text('ok')))
    const jar = createJar()
    await go(app, jar, '/login', { method: 'POST' })
    const res = await go(app, jar, '/pay', { method: 'POST', headers: { 'Idempotency-Key': 'k' } })
    expect(res.status).toBe(503)
    expect(runs).toEqual([])
  })
})

describe('security', () => {
  const crossSite: [string, Record<string, string>][] = [
    ['Sec-Fetch-Site: cross-site', { ...NAV, 'Sec-Fetch-Site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { ...NAV, 'Sec-Fetch-Site': 'same-site' }],
    ['Sec-Fetch-Site: none', { ...NAV, 'Sec-Fetch-Site': 'none' }],
    ['a foreign Origin', { Accept: 'text/html', Origin: 'https://evil.example' }],
    ['Origin: null', { Accept: 'text/html', Origin: 'null' }],
    ['no Origin and no Sec-Fetch-Site', { Accept: 'text/html' }],
  ]
  it.each(crossSite)('a POST with %s is never recorded or replayed', async (_label, headers) => {
    const { app, executed } = buildApp()
    const jar = createJar()
    const res = await go(app, jar, '/follow/666', { method: 'POST', headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded', Referer: 'https://evil.example/' }, body: 'x=1' })
    expect(res.status).toBe(303)
    expect(res.headers.getSetCookie()).toEqual([]) // nothing was written to a session
    const back = await follow(app, jar, await logIn(app, jar))
    expect(executed).toEqual([])
    expect(back.headers.get('Location')).toBe('/')
  })

  const djangoBad = [
    'http://example.com', 'http:///example.com', 'https://example.com', 'ftp://example.com', '\\\\example.com', '\\\\\\example.com',
    '/\\\\/example.com', '\\\\//example.com', '/\\/example.com', '\\/example.com', '/\\example.com', 'http:/\\//example.com', 'http:\\/example.com',
    'http:/\\example.com', 'javascript:alert("XSS")', '\njavascript:alert(x)', 'java\nscript:alert(x)', '\x08//example.com',
    'http://otherserver\\@example.com', 'http:\\\\testserver\\@example.com', 'http://testserver\\me:pass@example.com', 'http://testserver\\@example.com',
    'http:\\\\testserver\\confirm\\me@example.com', 'http:999999999', 'ftp:9999999999', '\n', 'http://[2001:cdba:0000:0000:0000:0000:3257:9652/',
    'http://2001:cdba:0000:0000:0000:0000:3257:9652]/', '//evil.example', '///evil.example', '/%2F%2Fevil.example', '/%5Cevil.example',
    ' //evil.example', '\t//evil.example', 'https://localhost@evil.example', 'https://localhost.evil.example', 'data:text/html,<script>alert(1)</script>',
    `/${'a'.repeat(3000)}`,
  ]
  it.each(djangoBad.map((u) => [JSON.stringify(u).slice(0, 60), u]))('the login redirect never leaves the site for next=%s', async (_label, next) => {
    const { app } = buildApp()
    const jar = createJar()
    await logIn(app, jar)
    const res = await go(app, jar, `/backward/login/redirect?next=${encodeURIComponent(next)}`, { headers: NAV })
    expect(res.status).toBe(303)
    expect(res.headers.get('Location')).toBe('/')
  })

  it('keeps safe destinations, including same-host absolute URLs', async () => {
    const { app } = buildApp()
    const jar = createJar()
    await logIn(app, jar)
    for (const next of ['/view/?param=http://example.com', '/url%20with%20spaces/', 'http://localhost/people']) {
      expect((await go(app, jar, `/backward/login/redirect?next=${encodeURIComponent(next)}`, { headers: NAV })).headers.get('Location')).toBe(next)
    }
  })

  it('a replayed action redirecting off-site lands on the default instead', async () => {
    const app = new Hono()
    app.use(session({ store: memoryStore() }))
    const seen: string[] = []
    app.post('/login', async (c) => c.redirect(await login(c, 'ada'), 303))
    app.post('/go', loginRequired(), (c) => (seen.push('go'), c.redirect('https://evil.example/', 303)))
    app.route('/backward', backwardRoutes({ app }))
    const jar = createJar()
    await go(app, jar, '/go', { method: 'POST', headers: { ...NAV, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1' })
    expect((await follow(app, jar, await go(app, jar, '/login', { method: 'POST' }))).headers.get('Location')).toBe('/')
    expect(seen).toEqual(['go']) // it was replayed: the landing, not the replay, was refused
  })

  describe('trustedOrigins with Sec-Fetch-Site', () => {
    const TRUSTED = 'https://app.example.com'
    const cases: [string, Record<string, string>, boolean][] = [
      ['same-site from a trusted Origin', { 'Sec-Fetch-Site': 'same-site', Origin: TRUSTED }, true],
      ['cross-site from a trusted Origin', { 'Sec-Fetch-Site': 'cross-site', Origin: TRUSTED }, true],
      ['same-site from another Origin', { 'Sec-Fetch-Site': 'same-site', Origin: 'https://other.example.com' }, false],
      ['same-site without Origin', { 'Sec-Fetch-Site': 'same-site' }, false],
      ['same-site with Origin: null', { 'Sec-Fetch-Site': 'same-site', Origin: 'null' }, false],
      ['none with a trusted Origin', { 'Sec-Fetch-Site': 'none', Origin: TRUSTED }, false],
      ['same-origin', { 'Sec-Fetch-Site': 'same-origin' }, true],
    ]
    it.each(cases.map(([label, headers, recorded]) => [label, recorded, headers] as const))('a POST %s is recorded: %s', async (_label, recorded, headers) => {
      const app = new Hono()
      const seen: string[] = []
      app.use(session({ store: memoryStore() }))
      app.post('/login', async (c) => c.redirect(await login(c, 'ada'), 303))
      app.post('/follow', loginRequired({ trustedOrigins: [TRUSTED] }), (c) => (seen.push(String(getUserId(c))), c.redirect('/people', 303)))
      app.route('/backward', backwardRoutes({ app }))
      const jar = createJar()
      await go(app, jar, '/follow', { method: 'POST', headers: { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', Accept: 'text/html', 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, body: 'x=1' })
      await follow(app, jar, await go(app, jar, '/login', { method: 'POST' }))
      expect(seen).toEqual(recorded ? ['ada'] : [])
    })
  })

  describe('the redirect endpoint, route level (Django test_views and the bypass categories)', () => {
    const SERVER = 'http://testserver'
    function redirectApp(store: SessionStore = memoryStore()) {
      const app = new Hono()
      app.use(session({ store }))
      app.post('/login', async (c) => c.redirect(await login(c, 'ada'), 303))
      app.route('/backward', backwardRoutes({ allowedHosts: ['otherserver'] }))
      app.get('*', loginRequired(), (c) => c.text('page'))
      return app
    }
    async function landing(app: Hono, origin: string, next: string | null, jar?: Jar): Promise<string | null> {
      const query = next === null ? '' : `?next=${encodeURIComponent(next)}`
      const res = await app.request(`${origin}/backward/login/redirect${query}`, { headers: { ...NAV, ...(jar ? { Cookie: jar.header() } : {}) } })
      expect(res.status).toBe(303)
      return res.headers.get('Location')
    }
    async function loggedIn(app: Hono, origin = SERVER): Promise<Jar> {
      const jar = createJar()
      jar.store(await app.request(`${origin}/login`, { method: 'POST' }))
      return jar
    }

    it('test_security_check_https: an http:// next on an https request lands on the default', async () => {
      const app = redirectApp()
      const jar = await loggedIn(app, 'https://testserver')
      expect(await landing(app, 'https://testserver', 'http://testserver/path', jar)).toBe('/')
      expect(await landing(app, 'https://testserver', 'https://testserver/path', jar)).toBe('https://testserver/path')
    })

    const djangoGood = [
      '/view/?param=http://example.com', '/view/?param=https://example.com', '/view?param=ftp://example.com', 'view/?param=//example.com',
      'https://testserver/', 'HTTPS://testserver/', '//testserver/', 'http://testserver/confirm?email=me@example.com', '/url%20with%20spaces/', 'path/http:2222222222',
    ]
    it.each(djangoGood)('test_good_urls through the endpoint: %s is kept', async (next) => {
      const app = redirectApp()
      expect(await landing(app, SERVER, next, await loggedIn(app))).toBe(next)
    })

    const bypasses: Record<string, string[]> = {
      NFKC: ['／／evil.com', '/／evil.com', '＼＼evil.com', 'https://testserver．evil.com/', 'ｈttps://evil.com', '/％２Ｆ％２Ｆevil.com'],
      userinfo: ['https://testserver@evil.com', 'https://testserver:pass@evil.com', '//testserver@evil.com', '//testserver%40evil.com', 'https://testserver%2540evil.com/'],
      'IPv6 brackets': ['http://[::1/', 'http://::1]/', 'http://[testserver]/', 'http://[::1]evil.com/', '//[::1'],
      'encoded forms': ['/%2F%2Fevil.com', '/%252F%252Fevil.com', '/%5Cevil.com', '%2F%2Fevil.com', 'https:%2F%2Fevil.com', '/%09/evil.com'],
      backslashes: ['/\\evil.com', '\\\\evil.com', '\\/evil.com', 'https://testserver\\@evil.com', 'http:\\\\evil.com'],
      'control characters': ['\x00//evil.com', '/\t/evil.com', '/\r/evil.com', '\n//evil.com', '\u200b//evil.com', '\u202e//moc.live', ' //evil.com'],
      'dot segments': ['/.//evil.com', '/a/..//evil.com', '//testserver//evil.com'],
    }
    for (const [category, urls] of Object.entries(bypasses)) {
      it.each(urls.map((u) => [JSON.stringify(u), u]))(`${category}: next=%s lands on the default`, async (_label, next) => {
        const app = redirectApp()
        expect(await landing(app, SERVER, next, await loggedIn(app))).toBe('/')
      })
    }

    it('a hostile destination saved in the session lands on the default', async () => {
      for (const saved of ['//evil.com', 'https://evil.com/', '/\\evil.com', '/%2F%2Fevil.com', '/.//evil.com', 'javascript:alert(1)', '\x00//evil.com', 42, { url: '/' }]) {
        const store = memoryStore()
        const app = redirectApp(store)
        const id = 'Q'.repeat(42) + 'A'
        await store.create(await hashKey(id), { _auth_user_id: 'ada', _backward_next: saved }, Date.now() + 60_000)
        expect(await landing(app, SERVER, null, createJar({ sessionid: id })), JSON.stringify(saved)).toBe('/')
      }
    })

    it('a page at //evil.com carries that destination through the login, and the endpoint refuses it after login', async () => {
      const app = redirectApp()
      const jar = createJar()
      const wall = await app.request(`${SERVER}//evil.com`, { headers: NAV })
      expect(wall.headers.get('Location')).toBe('/login?next=%2F%2Fevil.com')
      jar.store(wall)
      // The login form posts to its own URL, so login() takes that next into the landing URL.
      const login = await app.request(`${SERVER}${wall.headers.get('Location')}`, { method: 'POST', headers: { Cookie: jar.header() } })
      jar.store(login)
      const to = new URL(login.headers.get('Location')!, SERVER)
      expect(to.searchParams.get('next')).toBe('//evil.com')
      const res = await app.request(to.href, { headers: { ...NAV, Cookie: jar.header() } })
      expect(res.status).toBe(303)
      expect(res.headers.get('Location')).toBe('/')
    })

    it('logged out: a hostile next is dropped, the login URL is plain', async () => {
      const app = redirectApp()
      for (const next of ['//evil.com', 'https://evil.com', '/\\evil.com', '/%2F%2Fevil.com', '／／evil.com', 'https://testserver@evil.com', '/.//evil.com', '\x00//evil.com']) {
        expect(await landing(app, SERVER, next), JSON.stringify(next)).toBe('/login')
      }
      expect(await landing(app, SERVER, '/people?page=2')).toBe('/login?next=%2Fpeople%3Fpage%3D2')
    })
  })

  describe('cookieStore: anonymous input cannot make the wall answer 500 (escaping and sealing more than double a body)', () => {
    const SECRET = 'the-real-secret-of-this-app-32-chars-or-more'
    function cookieApp() {
      const executed: string[] = []
      const errors: unknown[] = []
      const app = new Hono()
      app.use(session({ store: cookieStore({ secrets: [SECRET] }) }))
      app.onError((error, c) => (errors.push(error), c.text('Internal Server Error', 500)))
      app.post('/login', async (c) => c.redirect(await login(c, 'u'.repeat(256), { remember: true }), 303))
      app.post('/act', loginRequired(), (c) => (executed.push('act'), c.redirect('/done', 303)))
      app.get('/people', loginRequired(), (c) => c.text('people'))
      app.route('/backward', backwardRoutes({ app, replayStore: memoryStore() }))
      return { app, executed, errors }
    }
    const hostile: [string, string, string][] = [
      ['text/plain, 2040 bytes of "', 'text/plain', `a=${'"'.repeat(2038)}`],
      ['urlencoded, 681 × %01', 'application/x-www-form-urlencoded', `a=${'%01'.repeat(681)}`],
    ]
    for (const [label, type, body] of hostile) {
      it(`${label}: not recorded, a 303 to the login page, and the login and landing work`, async () => {
        const { app, executed, errors } = cookieApp()
        const jar = createJar()
        expect(new TextEncoder().encode(body).byteLength).toBeLessThanOrEqual(2048) // under the raw cap
        const res = await go(app, jar, '/act', { method: 'POST', headers: { ...NAV, Origin: ORIGIN, Referer: `${ORIGIN}/form`, 'Content-Type': type }, body })
        expect(res.status).toBe(303)
        expect(res.headers.get('Location')).toBe('/login?next=%2Fform')
        expect(res.headers.getSetCookie().some((l) => l.startsWith('backward_action='))).toBe(false)
        // The login form posts to its own URL (which carries next)
        const back = await follow(app, jar, await go(app, jar, res.headers.get('Location')!, { method: 'POST' }))
        expect(back.headers.get('Location')).toBe('/form')
        expect(executed).toEqual([])
        expect(errors).toEqual([])
      })
    }

    it('an ordinary 2048-byte form still records, and the login (a 256-character id, remember) and replay fit', async () => {
      const { app, executed, errors } = cookieApp()
      const jar = createJar()
      const res = await go(app, jar, '/act', { method: 'POST', headers: { ...NAV, Origin: ORIGIN, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `note=${'a'.repeat(2043)}` })
      expect(res.headers.getSetCookie().some((l) => l.startsWith('backward_action='))).toBe(true)
      expect((await follow(app, jar, await go(app, jar, '/login', { method: 'POST' }))).headers.get('Location')).toBe('/done')
      expect(executed).toEqual(['act'])
      expect(errors).toEqual([])
    })

    it('a page URL too long to keep as the destination: a 303 to the plain login page, not a 500', async () => {
      const { app, errors } = cookieApp()
      const res = await go(app, createJar(), `/people?q=${'a'.repeat(3500)}`, { headers: NAV })
      expect(res.status).toBe(303)
      expect(res.headers.get('Location')).toBe('/login')
      expect(errors).toEqual([])
    })
  })

  it('__proto__ and constructor form fields are recorded and replayed as plain fields', async () => {
    const { app, executed } = buildApp()
    const jar = createJar()
    await go(app, jar, '/follow/1', { method: 'POST', headers: { ...NAV, 'Content-Type': 'application/x-www-form-urlencoded' }, body: '__proto__=x&constructor=y' })
    await follow(app, jar, await logIn(app, jar))
    expect(executed).toHaveLength(1)
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })
})
