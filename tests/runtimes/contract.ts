/**
 * The session-engine, login-wall and idempotency contracts, written once with no test runner and no
 * `node:*` import, so that the same bundle runs on Node, Bun, Deno, workerd and edge-runtime.
 * Each check is a plain async function over `app.request()`; a failed assertion throws, and
 * {@link runContract} turns that into one JSON report: `{ runtime, total, passed, failed, failures }`.
 * Ported (representative, not exhaustive) from tests/server/session-contract.ts, login-wall.test.ts,
 * trust.test.ts and idempotency.test.ts, which stay the full suites on Node.
 */
import { Hono, type Context } from 'hono'
// The whole barrel, not picked names: the point is that all of it loads on every runtime.
import * as server from '../../src/server/index.ts'
import { createJar, parseSetCookie, type Jar } from '../helpers/jar.ts'
import type { CookieSessionStore, SessionOptions, SessionStore } from '../../src/server/index.ts'

const { backwardRoutes, cachedStore, cookieStore, getUserId, hashKey, idempotency, login, loginRequired, logout, memoryStore, session, userTag } = server

type AnyStore = SessionStore | CookieSessionStore
type Handler = (c: Context) => Response | Promise<Response>

/** A store this runtime can run the session contract on. `revocable: false` for the cookie store. */
export interface ContractStore {
  make: () => AnyStore | Promise<AnyStore>
  revocable: boolean
}

export interface Check {
  name: string
  run: () => Promise<void>
}

export interface ContractReport {
  runtime: string
  total: number
  passed: number
  failed: number
  failures: { name: string; message: string }[]
  names: string[]
  ms: number
}

// --- a tiny assert ----------------------------------------------------------------------------

class AssertionFailed extends Error {}

function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/** Deep equality through a canonical JSON form (plain data only, which is all the checks compare). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  )
}

function ok(condition: unknown, what: string): asserts condition {
  if (!condition) throw new AssertionFailed(what)
}

function eq(actual: unknown, expected: unknown, what: string): void {
  if (canonical(actual) !== canonical(expected)) throw new AssertionFailed(`${what}: expected ${show(expected)}, got ${show(actual)}`)
}

/** `expected`'s keys, and only those, must match in `actual`. */
function has(actual: unknown, expected: Record<string, unknown>, what: string): void {
  const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, (actual as Record<string, unknown> | null)?.[k]]))
  eq(picked, expected, what)
}

function throws(fn: () => unknown, pattern: RegExp, what: string): void {
  try {
    fn()
  } catch (error) {
    const text = `${(error as { code?: string }).code ?? ''} ${(error as Error).message}`
    if (!pattern.test(text)) throw new AssertionFailed(`${what}: threw ${show(text)}, expected ${pattern}`)
    return
  }
  throw new AssertionFailed(`${what}: did not throw`)
}

// --- helpers (the same as tests/helpers/jar.ts, kept here so the bundle needs nothing else) ------

const ORIGIN = 'http://localhost'
const SECRET = 's'.repeat(32)
const NAV = { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', 'Sec-Fetch-Site': 'same-origin', Accept: 'text/html' }
const FORM = { ...NAV, Origin: ORIGIN, 'Content-Type': 'application/x-www-form-urlencoded' }
const FETCH = { 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty', 'Sec-Fetch-Site': 'same-origin', Accept: 'application/json' }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function go(app: Hono, jar: Jar, path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await app.request(path.startsWith('http') ? path : `${ORIGIN}${path}`, { ...init, headers: { ...(init.headers ?? {}), Cookie: jar.header() } })
  jar.store(res)
  return res
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('')
}

// --- the session engine, per store ---------------------------------------------------------------

const sessionRoutes: Record<string, Handler> = {
  '/set': (c) => (c.var.session.set(c.req.query('k') ?? 'cat', c.req.query('v') ?? 'dog'), c.text('ok')),
  '/read': (c) => c.json({ key: c.var.session.key, data: Object.fromEntries(c.var.session.entries()) }),
  '/touch-nothing': (c) => c.text('no session use'),
  '/flush': (c) => (c.var.session.flush(), c.text('flushed')),
  '/cycle': (c) => (c.var.session.cycleKey(), c.text('cycled')),
  '/expire-now': (c) => (c.var.session.setExpiry(-10), c.var.session.set('cat', 'dog'), c.text('expired')),
  '/fail-500': (c) => (c.var.session.set('cat', 'lost'), c.text('boom', 500)),
  '/assign': (c) => (c.var.session.update({ _auth_user_id: 'admin' }), c.text('ok')),
}

async function sessionApp(store: ContractStore, options: Partial<SessionOptions> = {}) {
  const app = new Hono()
  app.use(session({ store: await store.make(), secret: SECRET, onStoreError: () => {}, onSuspicious: () => {}, ...options }))
  for (const [path, handler] of Object.entries(sessionRoutes)) app.all(path, handler)
  app.onError((error, c) => c.text(String((error as { code?: string }).code ?? 'error'), 500))
  return app
}

const send = (app: Hono, path: string, cookie = '', origin = ORIGIN) => app.request(`${origin}${path}`, { headers: cookie ? { Cookie: cookie } : {} })
const readData = async (app: Hono, cookie: string) => ((await (await send(app, '/read', cookie)).json()) as { data: unknown }).data

function sessionChecks(label: string, store: ContractStore): Check[] {
  const check = (name: string, run: () => Promise<void>): Check => ({ name: `session (${label}): ${name}`, run })
  return [
    check('creates a session on write, sets no-store and loads it back', async () => {
      const app = await sessionApp(store)
      const jar = createJar()
      const res = await send(app, '/set?k=cat&v=dog')
      jar.store(res)
      ok(jar.cookies.has('sessionid'), 'a sessionid cookie is set')
      eq(res.headers.get('Cache-Control'), 'no-store', 'Cache-Control')
      eq(await readData(app, jar.header()), { cat: 'dog' }, 'data read back')
    }),
    check('an untouched anonymous request sets no cookie and no Vary; a read sets Vary: Cookie', async () => {
      const app = await sessionApp(store)
      const untouched = await send(app, '/touch-nothing')
      eq(untouched.headers.getSetCookie(), [], 'Set-Cookie')
      eq(untouched.headers.get('Vary'), null, 'Vary')
      const read = await send(app, '/read')
      eq(read.headers.getSetCookie(), [], 'Set-Cookie on a read')
      eq(read.headers.get('Vary'), 'Cookie', 'Vary on a read')
    }),
    check('the default cookie: HttpOnly, SameSite=Lax, Path=/, two weeks, not Secure on http', async () => {
      const app = await sessionApp(store)
      const { name, attrs } = parseSetCookie((await send(app, '/set')).headers.getSetCookie()[0]!)
      eq(name, 'sessionid', 'name')
      has(attrs, { httponly: true, samesite: 'Lax', path: '/', 'max-age': '1209600', secure: undefined }, 'attributes')
      ok(attrs.expires, 'Expires is set')
    }),
    check('on https the cookie is __Host-sessionid, Secure, Path=/, no Domain', async () => {
      const app = await sessionApp(store)
      const { name, attrs } = parseSetCookie((await send(app, '/set', '', 'https://example.com')).headers.getSetCookie()[0]!)
      eq(name, '__Host-sessionid', 'name')
      has(attrs, { secure: true, path: '/', domain: undefined }, 'attributes')
    }),
    check('cycleKey keeps the data under a new key and retires the old one', async () => {
      const app = await sessionApp(store)
      const jar = createJar()
      jar.store(await send(app, '/set'))
      const old = jar.header()
      jar.store(await send(app, '/cycle', old))
      ok(jar.header() !== old, 'the cookie changed')
      eq(await readData(app, jar.header()), { cat: 'dog' }, 'data under the new key')
      if (store.revocable) eq(await readData(app, old), {}, 'data under the old key')
    }),
    check('flush deletes the cookie with the exact header, Vary and no-store', async () => {
      const app = await sessionApp(store)
      const jar = createJar()
      jar.store(await send(app, '/set'))
      const res = await send(app, '/flush', jar.header())
      eq(res.headers.getSetCookie(), ['sessionid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax'], 'Set-Cookie')
      eq(res.headers.get('Vary'), 'Cookie', 'Vary')
      eq(res.headers.get('Cache-Control'), 'no-store', 'Cache-Control')
      eq(await readData(app, jar.header()), store.revocable ? {} : { cat: 'dog' }, 'the old cookie afterwards')
    }),
    check('never saves on a 5xx', async () => {
      const app = await sessionApp(store)
      const jar = createJar()
      eq((await send(app, '/fail-500')).headers.getSetCookie(), [], 'anonymous Set-Cookie')
      jar.store(await send(app, '/set'))
      const res = await send(app, '/fail-500', jar.header())
      eq(res.status, 500, 'status')
      eq(res.headers.getSetCookie(), [], 'loaded Set-Cookie')
      eq(await readData(app, jar.header()), { cat: 'dog' }, 'data unchanged')
    }),
    check('an expiry in the past expires the session at once', async () => {
      const app = await sessionApp(store)
      const { value, attrs } = parseSetCookie((await send(app, '/expire-now')).headers.getSetCookie()[0]!)
      ok(value.length > 0, 'a session was issued')
      eq(attrs['max-age'], '0', 'Max-Age')
      eq(await readData(app, `sessionid=${value}`), {}, 'the kept value reads nothing')
    }),
    check('a cookie with one character flipped gives a fresh session', async () => {
      const app = await sessionApp(store)
      const jar = createJar()
      jar.store(await send(app, '/set?k=role&v=user'))
      const real = jar.cookies.get('sessionid')!
      const i = Math.floor(real.length / 2)
      const forged = real.slice(0, i) + (real[i] === 'A' ? 'B' : 'A') + real.slice(i + 1)
      eq(await readData(app, `sessionid=${forged}`), {}, 'data under the forged cookie')
    }),
    check('hostile cookie values give a fresh session and are never adopted', async () => {
      const app = await sessionApp(store)
      for (const value of ['not-a-session', '../../etc/passwd', '__proto__', 'A'.repeat(10_000), 'F'.repeat(43), 'b1.AAAA', '%E0%A4%A']) {
        const read = await send(app, '/read', `sessionid=${value}`)
        eq(read.status, 200, `status for ${value.slice(0, 20)}`)
        eq(((await read.json()) as { data: unknown }).data, {}, `data for ${value.slice(0, 20)}`)
        const issued = parseSetCookie((await send(app, '/set', `sessionid=${value}`)).headers.getSetCookie().at(-1)!).value
        ok(issued !== value && issued.length >= 43, `a new id for ${value.slice(0, 20)}`)
      }
    }),
    check('an app cannot write reserved keys (RESERVED_KEY, nothing saved)', async () => {
      const app = await sessionApp(store)
      const res = await send(app, '/assign')
      eq(await res.text(), 'RESERVED_KEY', 'error code')
      eq(res.headers.getSetCookie(), [], 'Set-Cookie')
    }),
  ]
}

// --- the login wall ------------------------------------------------------------------------------

/** `replayStore` is what a cookie-store app passes to replay no-JS posts once (a cookie can be sent again). */
function wallApp(store: AnyStore = memoryStore(), replayStore?: SessionStore) {
  const ran: { route: string; user: unknown; fields?: Record<string, unknown>; sha?: string }[] = []
  const app = new Hono()
  app.use(session({ store, secret: SECRET, onSuspicious: () => {} }))
  app.post('/login', async (c) => {
    const form = await c.req.parseBody()
    const next = typeof form.next === 'string' && form.next !== '' ? form.next : undefined
    return c.redirect(await login(c, String(form.username ?? 'ada'), next !== undefined ? { next } : {}), 303)
  })
  app.post('/logout', (c) => (logout(c), c.redirect('/', 303)))
  app.get('/tag/:id', async (c) => c.text(await userTag(c, c.req.param('id'))))
  app.get('/people', loginRequired(), (c) => c.text(`people for ${getUserId(c)}`))
  app.post('/follow/:id', loginRequired(), async (c) => {
    ran.push({ route: `follow ${c.req.param('id')}`, user: getUserId(c), fields: await c.req.parseBody() })
    return c.redirect('/people?followed=' + c.req.param('id'), 303)
  })
  app.post('/api/follow/:id', loginRequired(), (c) => c.json({ following: c.req.param('id') }))
  app.post('/posts', loginRequired(), async (c) => {
    const form = await c.req.parseBody()
    const file = form.image as File
    ran.push({ route: 'post', user: getUserId(c), fields: { text: form.text, name: file.name, type: file.type }, sha: await sha256(new Uint8Array(await file.arrayBuffer())) })
    return c.text('created', 201)
  })
  app.route('/backward', backwardRoutes({ loginUrl: '/login', app, ...(replayStore !== undefined ? { replayStore } : {}) }))
  return { app, ran, store }
}

const logIn = (app: Hono, jar: Jar, fields: Record<string, string> = {}, origin = ORIGIN) =>
  go(app, jar, `${origin}/login`, { method: 'POST', headers: { ...FORM, Origin: origin }, body: new URLSearchParams({ username: 'ada', ...fields }) })

async function followRedirect(app: Hono, jar: Jar, res: Response) {
  eq(res.status, 303, 'a 303 to follow')
  return go(app, jar, res.headers.get('Location')!, { headers: NAV })
}

const recordFollow = (app: Hono, jar: Jar, id = '7') =>
  go(app, jar, `/follow/${id}`, { method: 'POST', headers: { ...FORM, Referer: `${ORIGIN}/people` }, body: 'note=hello+world&tags=a&tags=b' })

function wallChecks(): Check[] {
  const check = (name: string, run: () => Promise<void>): Check => ({ name: `login wall: ${name}`, run })
  return [
    check('an anonymous fetch gets 401 problem+json, WWW-Authenticate and the page to return to', async () => {
      const { app } = wallApp()
      const res = await go(app, createJar(), '/api/follow/42', { method: 'POST', headers: { ...FETCH, Referer: `${ORIGIN}/people?page=2` } })
      eq(res.status, 401, 'status')
      eq(res.headers.get('Content-Type'), 'application/problem+json', 'Content-Type')
      eq(await res.json(), { type: 'urn:backward:login-required', title: 'Login required', status: 401, loginUrl: '/login?next=%2Fpeople%3Fpage%3D2' }, 'body')
      eq(res.headers.get('WWW-Authenticate'), 'Backward login_url="/login?next=%2Fpeople%3Fpage%3D2"', 'WWW-Authenticate')
      eq(res.headers.getSetCookie(), [], 'Set-Cookie')
    }),
    check('clients without Sec-Fetch-* are judged by Accept', async () => {
      const { app } = wallApp()
      eq((await app.request('/people', { headers: { Accept: 'application/json' } })).status, 401, 'JSON')
      eq((await app.request('/people', { headers: { Accept: 'text/html,*/*' } })).status, 303, 'HTML')
      eq((await app.request('/people', { headers: { Accept: 'text/html', 'X-Requested-With': 'XMLHttpRequest' } })).status, 401, 'XHR')
    }),
    check('a navigation gets 303 to the login page with next, and makes no session', async () => {
      const { app } = wallApp()
      const jar = createJar()
      const res = await go(app, jar, '/people?page=2', { headers: NAV })
      eq(res.status, 303, 'status')
      eq(res.headers.get('Location'), '/login?next=%2Fpeople%3Fpage%3D2', 'Location')
      eq(res.headers.getSetCookie(), [], 'Set-Cookie')
      const landing = await logIn(app, jar, { next: '/people?page=2' })
      const url = new URL(landing.headers.get('Location')!, ORIGIN)
      eq(url.pathname, '/backward/login/redirect', 'landing path')
      ok(/^[A-Za-z0-9_-]{43}$/.test(url.searchParams.get('backward_proof') ?? ''), 'a 43-character proof')
      eq((await followRedirect(app, jar, landing)).headers.get('Location'), '/people?page=2', 'back to the page')
      eq(await (await go(app, jar, '/people', { headers: NAV })).text(), 'people for ada', 'the protected page')
      eq((await go(app, jar, '/backward/login/redirect', { headers: NAV })).headers.get('Location'), '/', 'the destination is one-shot')
    }),
    check('a no-JS form POST is recorded, and login() proof landing replays it exactly once', async () => {
      const { app, ran } = wallApp()
      const jar = createJar()
      const post = await recordFollow(app, jar)
      eq(post.headers.get('Location'), '/login?next=%2Fpeople', 'wall Location')
      eq(ran, [], 'nothing ran before login')
      const landing = await logIn(app, jar)
      const back = await followRedirect(app, jar, landing)
      eq(ran, [{ route: 'follow 7', user: 'ada', fields: { note: 'hello world', tags: 'b' } }], 'the replay')
      eq(back.headers.get('Location'), '/people?followed=7', 'lands on the action answer')
      await followRedirect(app, jar, landing)
      await go(app, jar, '/backward/login/redirect', { headers: NAV })
      eq(ran.length, 1, 'runs once')
    }),
    check('a no-JS multipart post with a file replays with identical bytes', async () => {
      const { app, ran } = wallApp()
      const jar = createJar()
      const bytes = new Uint8Array(5000).map((_, i) => (i * 31) % 256)
      const form = new FormData()
      form.append('text', 'my post ✓')
      form.append('image', new File([bytes], 'cat.png', { type: 'image/png' }))
      eq((await go(app, jar, '/posts', { method: 'POST', headers: { ...NAV, Referer: `${ORIGIN}/compose` }, body: form })).status, 303, 'wall')
      const back = await followRedirect(app, jar, await logIn(app, jar))
      eq(back.headers.get('Location'), '/compose', 'lands back')
      eq(ran, [{ route: 'post', user: 'ada', fields: { text: 'my post ✓', name: 'cat.png', type: 'image/png' }, sha: await sha256(bytes) }], 'the replay')
    }),
    check('login rotates the session id and keeps the anonymous data', async () => {
      const store = memoryStore()
      const { app } = wallApp(store)
      const jar = createJar()
      await recordFollow(app, jar)
      const anonymous = jar.cookies.get('sessionid')
      ok(anonymous !== undefined, 'the record made an anonymous session')
      await logIn(app, jar)
      const logged = jar.cookies.get('sessionid')!
      ok(logged !== anonymous, 'a new id')
      eq(await store.load(await hashKey(anonymous)), null, 'the old record is gone')
      has(await store.load(await hashKey(logged)), { _auth_user_id: 'ada', _backward_next: '/people' }, 'the new record')
    }),
    check('a planted session is never the one that ends up logged in', async () => {
      const { app } = wallApp()
      const attacker = createJar()
      await recordFollow(app, attacker, '1')
      const planted = attacker.cookies.get('sessionid')!
      const victim = createJar({ sessionid: planted })
      await logIn(app, victim)
      ok(victim.cookies.get('sessionid') !== planted, 'the victim got a new id')
      eq((await go(app, attacker, '/people', { headers: FETCH })).status, 401, 'the attacker is not logged in')
    }),
    check('logout flushes the session and removes the cookie', async () => {
      const { app } = wallApp()
      const jar = createJar()
      await logIn(app, jar)
      const cookie = jar.header()
      const res = await go(app, jar, '/logout', { method: 'POST', headers: NAV })
      ok(res.headers.getSetCookie().some((l) => l.startsWith('sessionid=;')), 'the cookie is deleted')
      eq(jar.cookies.has('sessionid'), false, 'the jar dropped it')
      eq((await app.request('/people', { headers: { ...FETCH, Cookie: cookie } })).status, 401, 'the old cookie is logged out')
    }),
    check('a logged-out visit to the redirect endpoint keeps only a safe next', async () => {
      const { app } = wallApp()
      eq((await app.request('/backward/login/redirect?next=%2Fpeople', { headers: NAV })).headers.get('Location'), '/login?next=%2Fpeople', 'safe next')
      eq((await app.request('/backward/login/redirect?next=%2F%2Fevil.example', { headers: NAV })).headers.get('Location'), '/login', 'off-site next')
    }),
    check('an off-site loginUrl or defaultRedirect throws at start-up', async () => {
      for (const loginUrl of ['https://evil.example/login', '//evil.example', '/\\evil.example', '/%2F%2Fevil.com']) {
        throws(() => loginRequired({ loginUrl }), /loginUrl/, `loginRequired ${loginUrl}`)
        throws(() => backwardRoutes({ loginUrl }), /loginUrl/, `backwardRoutes ${loginUrl}`)
      }
      throws(() => backwardRoutes({ defaultRedirect: 'https://evil.example' }), /defaultRedirect/, 'defaultRedirect')
    }),
    check('GET /backward/user answers the keyed tag or null, never cached', async () => {
      const { app } = wallApp()
      const jar = createJar()
      eq(await (await go(app, jar, '/backward/user', { headers: FETCH })).json(), { user: null }, 'anonymous')
      await logIn(app, jar)
      const res = await go(app, jar, '/backward/user', { headers: FETCH })
      eq(res.headers.get('Cache-Control'), 'no-store', 'Cache-Control')
      const tag = await (await go(app, createJar(), '/tag/ada')).text()
      ok(tag.length >= 20 && tag !== 'ada', 'a tag, not the id')
      eq(await res.json(), { user: tag }, 'logged in')
    }),
    check('over https the login signal and the session cookie are __Host- prefixed', async () => {
      const { app } = wallApp()
      const jar = createJar()
      const res = await logIn(app, jar, {}, 'https://app.example')
      const lines = res.headers.getSetCookie().map(parseSetCookie)
      for (const name of ['__Host-backward_login', '__Host-sessionid']) {
        const cookie = lines.find((l) => l.name === name)
        ok(cookie !== undefined, `${name} is set`)
        has(cookie.attrs, { secure: true, path: '/', domain: undefined }, `${name} attributes`)
      }
      eq(await (await go(app, jar, 'https://app.example/people', { headers: NAV })).text(), 'people for ada', 'read back under that name')
    }),
    check('a tokenless cross-site GET gets a confirmation page and runs nothing', async () => {
      const { app, ran } = wallApp()
      const jar = createJar()
      await recordFollow(app, jar)
      await logIn(app, jar)
      const res = await go(app, jar, '/backward/login/redirect?next=%2Fpeople', { headers: { ...NAV, 'Sec-Fetch-Site': 'cross-site' } })
      eq(res.status, 200, 'status')
      eq(res.headers.get('X-Frame-Options'), 'DENY', 'X-Frame-Options')
      ok((await res.text()).includes('method="post"'), 'a confirmation form')
      eq(ran, [], 'nothing ran')
    }),
    check("another session's proof does not replay", async () => {
      const { app, ran } = wallApp()
      const victim = createJar()
      await recordFollow(app, victim)
      await logIn(app, victim)
      const mallory = await logIn(app, createJar(), { username: 'mallory' })
      eq((await go(app, victim, mallory.headers.get('Location')!, { headers: NAV })).status, 200, 'the confirmation page')
      eq(ran, [], 'nothing ran')
    }),
    check('the whole journey on cookieStore: record, login, replay once, protected page', async () => {
      const { app, ran } = wallApp(cookieStore({ secrets: [SECRET] }), memoryStore())
      const jar = createJar()
      await recordFollow(app, jar)
      ok((jar.cookies.get('sessionid') ?? '').startsWith('b1.'), 'a sealed session cookie')
      await followRedirect(app, jar, await logIn(app, jar))
      eq(ran.length, 1, 'runs once')
      eq(await (await go(app, jar, '/people', { headers: NAV })).text(), 'people for ada', 'the protected page')
    }),
  ]
}

// --- idempotency ---------------------------------------------------------------------------------

const byHeader = (c: Context) => c.req.header('X-User') ?? null
const post = (key: string, init: { headers?: Record<string, string>; body?: string } = {}) => ({ method: 'POST', ...init, headers: { 'X-User': 'ada', 'Idempotency-Key': key, ...init.headers } })

function idemApp() {
  const runs: string[] = []
  const app = new Hono()
  app.onError((_error, c) => c.text('Internal Server Error', 500))
  app.use(idempotency({ store: memoryStore(), scope: byHeader }))
  app.post('/pay', async (c) => {
    runs.push(c.req.header('X-User') ?? '-')
    await sleep(Number(c.req.query('delay') ?? 0))
    return c.json({ run: runs.length, body: await c.req.text() }, 201)
  })
  app.post('/status/:code', (c) => (runs.push(c.req.param('code')), c.text('answer', Number(c.req.param('code')) as 400)))
  return { app, runs }
}

function idempotencyChecks(): Check[] {
  const check = (name: string, run: () => Promise<void>): Check => ({ name: `idempotency: ${name}`, run })
  return [
    check('a repeated key gets the first answer, marked Idempotent-Replayed, and runs once', async () => {
      const { app, runs } = idemApp()
      const first = await app.request('/pay', post('k', { body: 'pay 10' }))
      const again = await app.request('/pay', post('k', { body: 'pay 10' }))
      eq(first.status, 201, 'first status')
      eq(again.status, 201, 'repeat status')
      eq(again.headers.get('Idempotent-Replayed'), 'true', 'Idempotent-Replayed')
      eq(await again.json(), await first.json(), 'the same body')
      eq(runs, ['ada'], 'runs')
    }),
    check('the same key with another body or query gets 422 idempotency-key-reused', async () => {
      const { app, runs } = idemApp()
      await app.request('/pay', post('k', { body: 'pay alice 10' }))
      for (const [path, body] of [['/pay', 'pay mallory 1000'], ['/pay?to=mallory', 'pay alice 10']] as const) {
        const res = await app.request(path, post('k', { body }))
        eq(res.status, 422, `status for ${path} ${body}`)
        eq(res.headers.get('Content-Type'), 'application/problem+json', 'Content-Type')
        has(await res.json(), { type: 'urn:backward:idempotency-key-reused' }, 'problem type')
      }
      eq(runs, ['ada'], 'runs')
    }),
    check('a repeat while the first runs gets 409 request-in-progress with Retry-After: 1', async () => {
      const { app, runs } = idemApp()
      const first = app.request('/pay?delay=60', post('busy'))
      await sleep(10)
      const repeat = await app.request('/pay?delay=60', post('busy'))
      await first
      eq(repeat.status, 409, 'status')
      eq(repeat.headers.get('Retry-After'), '1', 'Retry-After')
      has(await repeat.json(), { type: 'urn:backward:request-in-progress', status: 409 }, 'problem')
      eq(runs, ['ada'], 'runs')
    }),
    check('a retryable answer (503) frees the key; a final 4xx is kept', async () => {
      const { app, runs } = idemApp()
      await app.request('/status/503', post('a'))
      await app.request('/status/503', post('a'))
      await app.request('/status/400', post('b'))
      await app.request('/status/400', post('b'))
      eq(runs, ['503', '503', '400'], 'runs')
    }),
    check('anonymous sessions own their keys', async () => {
      const runs: string[] = []
      const app = new Hono()
      app.use(session({ store: memoryStore(), secret: SECRET }))
      app.post('/cart', (c) => (c.var.session.set('cart', c.req.query('who')), c.text('ok')))
      app.use('/api/*', idempotency({ store: memoryStore() }))
      app.post('/api/checkout', (c) => {
        const who = String(c.var.session.get('cart'))
        runs.push(who)
        return c.json({ receipt: `receipt of ${who}` }, 201)
      })
      const alice = createJar()
      const bob = createJar()
      await go(app, alice, '/cart?who=alice', { method: 'POST' })
      await go(app, bob, '/cart?who=bob', { method: 'POST' })
      const headers = { 'Idempotency-Key': 'guest-1' }
      await go(app, alice, '/api/checkout', { method: 'POST', headers })
      eq(await (await go(app, bob, '/api/checkout', { method: 'POST', headers })).json(), { receipt: 'receipt of bob' }, "bob's answer")
      const again = await go(app, alice, '/api/checkout', { method: 'POST', headers })
      eq(again.headers.get('Idempotent-Replayed'), 'true', 'replayed for alice')
      eq(runs, ['alice', 'bob'], 'runs')
    }),
    check('mounted without session() and no scope: a CONFIG error and the handler never runs', async () => {
      const runs: string[] = []
      const errors: unknown[] = []
      const app = new Hono()
      app.onError((error, c) => (errors.push(error), c.text('error', 500)))
      app.use(idempotency({ store: memoryStore() }))
      app.post('/x', (c) => (runs.push('x'), c.text('ran')))
      eq((await app.request('/x', { method: 'POST', headers: { 'Idempotency-Key': 'k' } })).status, 500, 'status')
      eq(runs, [], 'runs')
      has(errors[0], { code: 'CONFIG' }, 'error')
      throws(() => idempotency({ store: memoryStore(), scope: 'user' as never }), /CONFIG/, 'a bad scope')
    }),
  ]
}

// --- cookieStore seal and unseal -----------------------------------------------------------------

function cookieStoreChecks(): Check[] {
  const check = (name: string, run: () => Promise<void>): Check => ({ name: `cookieStore: ${name}`, run })
  const later = () => Date.now() + 60_000
  return [
    check('seal and unseal round-trip (AES-256-GCM under HKDF keys)', async () => {
      const store = cookieStore({ secrets: [SECRET] })
      const sealed = await store.seal({ cart: [1, 2], name: 'ada ✓' }, later())
      ok(sealed.startsWith('b1.'), 'versioned prefix')
      ok(!sealed.includes('ada'), 'encrypted')
      eq(await store.unseal(sealed), { cart: [1, 2], name: 'ada ✓' }, 'unsealed data')
    }),
    check('a tampered or truncated value is null and reported as forged', async () => {
      const store = cookieStore({ secrets: [SECRET] })
      const sealed = await store.seal({ a: 1 }, later())
      let forged = 0
      const i = sealed.length - 5
      const flipped = sealed.slice(0, i) + (sealed[i] === 'A' ? 'B' : 'A') + sealed.slice(i + 1)
      eq(await store.unseal(flipped, () => forged++), null, 'flipped')
      eq(await store.unseal(sealed.slice(0, 20), () => forged++), null, 'truncated')
      eq(forged, 2, 'onForged calls')
    }),
    check('an expired seal opens to null', async () => {
      let now = 1_000_000
      const store = cookieStore({ secrets: [SECRET], now: () => now })
      const sealed = await store.seal({ a: 1 }, now + 1000)
      now += 2000
      eq(await store.unseal(sealed), null, 'expired')
    }),
    check('rotation: the first secret seals, every secret opens', async () => {
      const old = cookieStore({ secrets: ['o'.repeat(32)] })
      const rotated = cookieStore({ secrets: ['n'.repeat(32), 'o'.repeat(32)] })
      const fresh = cookieStore({ secrets: ['n'.repeat(32)] })
      eq(await rotated.unseal(await old.seal({ a: 1 }, later())), { a: 1 }, 'an old seal under the rotated list')
      eq(await fresh.unseal(await old.seal({ a: 1 }, later())), null, 'an old seal once the old secret is gone')
      eq(await fresh.unseal(await rotated.seal({ b: 2 }, later())), { b: 2 }, 'the new secret seals')
    }),
    check('a missing or short secret throws CONFIG at start-up', async () => {
      throws(() => cookieStore({ secrets: [] }), /CONFIG/, 'no secret')
      throws(() => cookieStore({ secrets: ['short'] }), /CONFIG.*32 characters/, 'short secret')
    }),
  ]
}

// --- the barrel ----------------------------------------------------------------------------------

/** Every value `backward/server` exports; the names the issue moved to subpaths must not be here. */
export const BARREL_VALUES = [
  'BackwardError', 'backwardRoutes', 'cachedStore', 'cookieStore', 'getUserId', 'hashKey', 'idempotency', 'isBackwardError',
  'login', 'loginRequired', 'logout', 'memoryStore', 'requireUser', 'session', 'userTag', 'warnSuspicious',
]

function barrelChecks(): Check[] {
  return [
    {
      name: 'barrel: backward/server loads whole, every export is defined, and fileStore lives at backward/server/file',
      async run() {
        const exported = server as Record<string, unknown>
        for (const name of BARREL_VALUES) eq(typeof exported[name], 'function', name)
        eq('fileStore' in exported, false, 'fileStore in the barrel')
      },
    },
  ]
}

/** The checks, in order. `stores` adds server-side stores this runtime has (D1 on workerd). */
export function contractChecks(stores: Record<string, ContractStore> = {}): Check[] {
  const all: Record<string, ContractStore> = {
    memoryStore: { make: () => memoryStore(), revocable: true },
    cookieStore: { make: () => cookieStore({ secrets: [SECRET] }), revocable: false },
    cachedStore: { make: () => cachedStore({ cache: memoryStore(), store: memoryStore() }), revocable: true },
    ...stores,
  }
  return [
    ...barrelChecks(),
    ...Object.entries(all).flatMap(([label, store]) => sessionChecks(label, store)),
    ...wallChecks(),
    ...idempotencyChecks(),
    ...cookieStoreChecks(),
  ]
}

/** Runs every check in sequence and reports; never throws. */
export async function runContract(runtime: string, stores: Record<string, ContractStore> = {}): Promise<ContractReport> {
  const began = Date.now()
  const checks = contractChecks(stores)
  const failures: ContractReport['failures'] = []
  for (const { name, run } of checks) {
    try {
      await run()
    } catch (error) {
      failures.push({ name, message: error instanceof AssertionFailed ? error.message : `threw ${(error as Error)?.stack ?? String(error)}` })
    }
  }
  return { runtime, total: checks.length, passed: checks.length - failures.length, failed: failures.length, failures, names: checks.map((c) => c.name), ms: Date.now() - began }
}
