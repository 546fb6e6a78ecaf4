// Issue 13's attacks on the server, each as the attacker ran it: a non-browser client that forges
// same-origin headers, a third-party page, a sibling subdomain, a cookie-store victim. Each test failed
// on the code before its fix.
import { createHash } from 'node:crypto'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { backwardRoutes, cookieStore, getUserId, idempotency, login, loginRequired, memoryStore, session, userTag, type SuspiciousEvent } from '../../src/server/index.ts'
import type { SessionStore } from '../../src/server/store.ts'
import { createJar, parseSetCookie, type Jar } from '../helpers/jar.ts'

const ORIGIN = 'http://localhost'
const SECRET = 's'.repeat(32)
const NAV = { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', 'Sec-Fetch-Site': 'same-origin', Accept: 'text/html' }
const FORM = { ...NAV, Origin: ORIGIN, 'Content-Type': 'application/x-www-form-urlencoded' }
const FETCH = { 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty', 'Sec-Fetch-Site': 'same-origin', Accept: 'application/json' }

function buildApp(options: { store?: SessionStore | ReturnType<typeof cookieStore>; replayStore?: SessionStore; secret?: string } = {}) {
  const events: SuspiciousEvent[] = []
  const ran: { user: unknown; fields: Record<string, unknown> }[] = []
  const app = new Hono()
  app.use(session({ store: options.store ?? memoryStore(), secret: options.secret ?? SECRET, onSuspicious: (event) => void events.push(event) }))
  app.post('/login', async (c) => {
    const form = await c.req.parseBody()
    return c.redirect(await login(c, String(form.username ?? 'ada'), { next: typeof form.next === 'string' ? form.next : undefined }), 303)
  })
  app.get('/tag/:id', async (c) => c.text(await userTag(c, c.req.param('id'))))
  app.get('/people', loginRequired(), (c) => c.text(`people for ${getUserId(c)}`))
  app.post('/pay', loginRequired(), async (c) => {
    ran.push({ user: getUserId(c), fields: await c.req.parseBody() })
    return c.redirect('/people?paid=1', 303)
  })
  app.route('/backward', backwardRoutes({ loginUrl: '/login', app, ...(options.replayStore ? { replayStore: options.replayStore } : {}) }))
  return { app, events, ran }
}

async function go(app: Hono, jar: Jar, path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await app.request(path.startsWith('http') ? path : `${ORIGIN}${path}`, { ...init, headers: { ...(init.headers ?? {}), Cookie: jar.header() } })
  jar.store(res)
  return res
}

const logIn = (app: Hono, jar: Jar, username = 'ada') =>
  go(app, jar, '/login', { method: 'POST', headers: { ...FORM, Referer: `${ORIGIN}/login?next=%2Fpeople` }, body: new URLSearchParams({ username }) })

describe('item 1: recorded no-JS actions are bounded as stored', () => {
  it('1 MiB of urlencoded fields from a forged same-origin client: nothing stored, the hand-off still happens, one event', async () => {
    const store = memoryStore()
    const { app, events } = buildApp({ store })
    const body = Array.from({ length: 100_000 }, (_, i) => `f${i}=%22%22%22`).join('&')
    expect(body.length).toBeGreaterThan(1_000_000)
    const res = await go(app, createJar(), '/pay', { method: 'POST', headers: FORM, body })
    expect(res.status).toBe(303)
    expect(res.headers.get('Location')).toMatch(/^\/login/)
    expect(res.headers.getSetCookie()).toEqual([])
    expect(store.size).toBe(0)
    expect(events.map((e) => e.kind)).toEqual(['oversized-record'])
  })

  it('a body under 64 KiB raw that escapes past 64 KiB as stored is not recorded', async () => {
    const store = memoryStore()
    const { app, events } = buildApp({ store })
    // 30,000 bytes of %01 decode to 10,000 control characters, each stored as \u0001 (6 bytes): 60 KB + fields.
    const body = `a=${'%01'.repeat(12_000)}`
    const res = await go(app, createJar(), '/pay', { method: 'POST', headers: FORM, body })
    expect(res.status).toBe(303)
    expect(store.size).toBe(0)
    expect(events[0]?.detail).toMatch(/bytes as stored/)
  })

  it('1,001 fields are not recorded; 1,000 are', async () => {
    const over = buildApp({ store: memoryStore() })
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`).join('&')
    await go(over.app, createJar(), '/pay', { method: 'POST', headers: FORM, body: fields(1001) })
    expect(over.events.map((e) => e.kind)).toEqual(['oversized-record'])
    const at = buildApp({ store: memoryStore() })
    const res = await go(at.app, createJar(), '/pay', { method: 'POST', headers: FORM, body: fields(1000) })
    expect(at.events).toEqual([])
    expect(res.headers.getSetCookie().some((l) => l.startsWith('backward_action='))).toBe(true)
  })

  it('the anonymous session made only for a record lives actionTtl (900 s), not two weeks; login restores the policy', async () => {
    const { app } = buildApp()
    const jar = createJar()
    const rec = await go(app, jar, '/pay', { method: 'POST', headers: FORM, body: 'amount=5' })
    const cookie = parseSetCookie(rec.headers.getSetCookie().find((l) => l.startsWith('sessionid='))!)
    expect(cookie.attrs['max-age']).toBe('900')
    const after = await logIn(app, jar)
    expect(parseSetCookie(after.headers.getSetCookie().find((l) => l.startsWith('sessionid='))!).attrs['max-age']).toBe('1209600')
  })

  it('a session past 256 KiB encoded fails with SESSION_TOO_LARGE and an event, and nothing is written', async () => {
    const store = memoryStore()
    const events: SuspiciousEvent[] = []
    const app = new Hono()
    app.use(session({ store, secret: SECRET, onSuspicious: (e) => void events.push(e) }))
    app.post('/big', (c) => (c.var.session.set('blob', 'x'.repeat(300_000)), c.text('ok')))
    app.onError((error, c) => c.text((error as { code?: string }).code ?? 'none', 500))
    const res = await app.request(`${ORIGIN}/big`, { method: 'POST' })
    expect(res.status).toBe(500)
    expect(await res.text()).toBe('SESSION_TOO_LARGE')
    expect(store.size).toBe(0)
    expect(events.map((e) => e.kind)).toEqual(['oversized-session'])
  })
})

describe('item 2: the login signal and the session cookie cannot be planted over https', () => {
  it('over https the signal is __Host-backward_login and the session cookie __Host-sessionid: Secure, Path=/, no Domain', async () => {
    const { app } = buildApp()
    const jar = createJar()
    const res = await go(app, jar, 'https://app.example/login', { method: 'POST', headers: { ...FORM, Origin: 'https://app.example' }, body: 'username=ada' })
    const lines = res.headers.getSetCookie().map(parseSetCookie)
    for (const name of ['__Host-backward_login', '__Host-sessionid']) {
      const cookie = lines.find((l) => l.name === name)
      expect(cookie, name).toBeDefined()
      expect(cookie!.attrs).toMatchObject({ secure: true, path: '/' })
      expect(cookie!.attrs.domain).toBeUndefined()
    }
    expect(lines.some((l) => l.name === 'backward_login' || l.name === 'sessionid')).toBe(false)
    // And the session is read back under that name.
    expect(await (await go(app, jar, 'https://app.example/people', { headers: NAV })).text()).toBe('people for ada')
  })

  it('GET /backward/user answers the keyed tag of the logged-in user, or null, never cached', async () => {
    const { app } = buildApp()
    const jar = createJar()
    const anon = await go(app, jar, '/backward/user', { headers: FETCH })
    expect(await anon.json()).toEqual({ user: null })
    await logIn(app, jar)
    const res = await go(app, jar, '/backward/user', { headers: FETCH })
    expect(res.headers.get('Cache-Control')).toBe('no-store')
    expect(res.headers.get('Access-Control-Allow-Origin')).toBeNull()
    expect(await res.json()).toEqual({ user: await (await go(app, createJar(), '/tag/ada')).text() })
  })

  it('a session cookie sent twice (planted by a sibling) is reported', async () => {
    const { app, events } = buildApp()
    const jar = createJar()
    await logIn(app, jar)
    const id = jar.cookies.get('sessionid')!
    await app.request(`${ORIGIN}/people`, { headers: { ...NAV, Cookie: `sessionid=${id}; sessionid=${'A'.repeat(43)}` } })
    expect(events.map((e) => e.kind)).toContain('planted-cookie')
    // Whichever value the browser sent first, no user is confirmed to the SDK while two are sent.
    const who = await app.request(`${ORIGIN}/backward/user`, { headers: { ...FETCH, Cookie: `sessionid=${id}; sessionid=${id}` } })
    expect(await who.json()).toEqual({ user: null })
  })

  it('the signal comes only from a saved session: a login whose commit fails sends no signal', async () => {
    const store = memoryStore()
    const app = new Hono()
    app.use(session({ store: { ...store, create: async () => { throw new Error('down') } }, secret: SECRET }))
    app.post('/login', async (c) => c.redirect(await login(c, 'ada'), 303))
    const res = await app.request(`${ORIGIN}/login`, { method: 'POST' })
    expect(res.status).toBe(503)
    expect(res.headers.getSetCookie().some((l) => l.includes('backward_login'))).toBe(false)
  })
})

describe('item 4: a GET a third-party page can trigger never runs a recorded post', () => {
  async function recordAndLogIn(app: Hono, jar: Jar) {
    await go(app, jar, '/pay', { method: 'POST', headers: { ...FORM, Referer: `${ORIGIN}/people` }, body: 'amount=500' })
    const res = await logIn(app, jar)
    return res.headers.get('Location')!
  }

  it('the login flow: login() hands out a landing with a one-time proof; it runs once and lands back', async () => {
    const { app, ran } = buildApp()
    const jar = createJar()
    const landing = await recordAndLogIn(app, jar)
    expect(landing).toMatch(/^\/backward\/login\/redirect\?backward_proof=[\w-]{43}&next=%2Fpeople$/)
    const res = await go(app, jar, landing, { headers: NAV })
    expect(res.status).toBe(303)
    expect(res.headers.get('Location')).toBe('/people?paid=1')
    expect(ran).toEqual([{ user: 'ada', fields: { amount: '500' } }])
    // The proof is single use.
    await go(app, jar, landing, { headers: NAV })
    expect(ran).toHaveLength(1)
  })

  it('a tokenless cross-site GET gets a confirmation page, runs nothing, and is reported', async () => {
    const { app, ran, events } = buildApp()
    const jar = createJar()
    await recordAndLogIn(app, jar)
    const res = await go(app, jar, '/backward/login/redirect?next=%2Fpeople', { headers: { ...NAV, 'Sec-Fetch-Site': 'cross-site' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('X-Frame-Options')).toBe('DENY')
    expect(res.headers.get('Content-Security-Policy')).toContain("frame-ancestors 'none'")
    const html = await res.text()
    expect(html).toContain('method="post"')
    expect(ran).toEqual([])
    expect(events.map((e) => e.kind)).toEqual(['cross-site-trigger'])
    // The person's own Continue: a same-origin POST with the page's token runs it, once.
    const token = /name="backward_confirm" value="([\w-]+)"/.exec(html)![1]!
    const post = (site: string, value = token) =>
      go(app, jar, '/backward/login/redirect?next=%2Fpeople', { method: 'POST', headers: { ...FORM, 'Sec-Fetch-Site': site, Origin: site === 'same-origin' ? ORIGIN : 'https://evil.example' }, body: `backward_confirm=${value}` })
    expect((await post('cross-site')).status).toBe(200) // a cross-site POST with a stolen token: the page again
    expect((await post('same-origin', 'A'.repeat(43))).status).toBe(200) // a guessed token
    expect(ran).toEqual([])
    const cont = await post('same-origin', /name="backward_confirm" value="([\w-]+)"/.exec(await (await go(app, jar, '/backward/login/redirect?next=%2Fpeople', { headers: NAV })).text())![1]!)
    expect(cont.status).toBe(303)
    expect(ran).toEqual([{ user: 'ada', fields: { amount: '500' } }])
  })

  it("another session's proof does not work", async () => {
    const { app, ran } = buildApp()
    const victim = createJar()
    await recordAndLogIn(app, victim)
    const mallory = createJar()
    const malloryLanding = await logIn(app, mallory, 'mallory')
    const res = await go(app, victim, malloryLanding.headers.get('Location')!, { headers: NAV })
    expect(res.status).toBe(200) // the confirmation page, not a replay
    expect(ran).toEqual([])
  })

  it('an SSO-style chain: a login on another host, the proof carried across, replays once', async () => {
    const { app, ran } = buildApp()
    const jar = createJar()
    await go(app, jar, '/pay', { method: 'POST', headers: { ...FORM, Referer: `${ORIGIN}/people` }, body: 'amount=7' })
    const landing = (await logIn(app, jar)).headers.get('Location')!
    // The IdP's redirect chain ends at the landing with the proof: the browser calls it cross-site.
    const res = await go(app, jar, landing, { headers: { ...NAV, 'Sec-Fetch-Site': 'cross-site' } })
    expect(res.status).toBe(303)
    expect(ran).toHaveLength(1)
  })
})

describe('item 5: the user tag is keyed', () => {
  it('is an HMAC under the secret: another secret gives another tag, and it is not the unkeyed hash', async () => {
    const a = await (await buildApp({ secret: 'a'.repeat(32) }).app.request(`${ORIGIN}/tag/42`)).text()
    const a2 = await (await buildApp({ secret: 'a'.repeat(32) }).app.request(`${ORIGIN}/tag/42`)).text()
    const b = await (await buildApp({ secret: 'b'.repeat(32) }).app.request(`${ORIGIN}/tag/42`)).text()
    const unkeyed = createHash('sha256').update('backward-user:"42"').digest('base64url').slice(0, 22)
    expect(a).toMatch(/^[\w-]{22}$/)
    expect(a).toBe(a2)
    expect(a).not.toBe(b)
    expect(a).not.toBe(unkeyed)
  })

  it('a secret shorter than 32 characters is refused at start-up', () => {
    expect(() => session({ store: memoryStore(), secret: 'short' })).toThrow(/at least 32/)
  })
})

describe('item 8: next comes from the page the SDK names, not the Referer', () => {
  it('Backward-Page wins over the Referer; an off-site one is ignored', async () => {
    const { app } = buildApp()
    const res = await go(app, createJar(), '/pay', { method: 'POST', headers: { ...FETCH, 'Backward-Page': '/people?tab=2', Referer: `${ORIGIN}/reset?token=secret` } })
    expect((await res.json()).loginUrl).toBe('/login?next=%2Fpeople%3Ftab%3D2')
    const off = await go(app, createJar(), '/pay', { method: 'POST', headers: { ...FETCH, 'Backward-Page': '//evil.example/x', Referer: `${ORIGIN}/people` } })
    expect((await off.json()).loginUrl).toBe('/login?next=%2Fpeople')
  })
})

describe('item 9: cookieless visits store nothing', () => {
  it('2,000 cookieless GETs to a protected page with an 8 KB query: no session records, no cookies, next dropped past 2,048', async () => {
    const store = memoryStore()
    const { app } = buildApp({ store })
    const query = 'q=' + 'x'.repeat(8192)
    let cookies = 0
    for (let i = 0; i < 2000; i++) {
      const res = await app.request(`${ORIGIN}/people?${query}&i=${i}`, { headers: NAV })
      expect(res.status).toBe(303)
      cookies += res.headers.getSetCookie().length
      if (i === 0) expect(res.headers.get('Location')).toBe('/login')
    }
    expect(store.size).toBe(0)
    expect(cookies).toBe(0)
    // A short one keeps its next in the login URL.
    expect((await app.request(`${ORIGIN}/people?page=2`, { headers: NAV })).headers.get('Location')).toBe('/login?next=%2Fpeople%3Fpage%3D2')
  })
})

describe('item 10: the cookie store cannot be overfilled by a crafted link', () => {
  it('a 1.6 KB recorded post, then a link with 560 backslashes: the login still works and the action is a reported discard', async () => {
    const store = cookieStore({ secrets: ['c'.repeat(32)] })
    const replayStore = memoryStore()
    const { app, ran } = buildApp({ store, replayStore })
    const jar = createJar()
    await go(app, jar, '/pay', { method: 'POST', headers: { ...FORM, Referer: `${ORIGIN}/people` }, body: `note=${'n'.repeat(1600)}` })
    await go(app, jar, `/people?${'\\'.repeat(560)}`, { headers: { ...NAV, 'Sec-Fetch-Site': 'cross-site' } })
    const res = await logIn(app, jar)
    expect(res.status).toBe(303)
    const session = res.headers.getSetCookie().find((l) => l.startsWith('sessionid='))!
    expect(session.split(';')[0]!.length).toBeLessThanOrEqual(4096)
    expect(res.headers.getSetCookie().some((l) => l.startsWith('backward_login='))).toBe(true)
    const landed = await go(app, jar, res.headers.get('Location')!, { headers: NAV })
    expect(landed.status).toBe(303)
    expect(ran.length).toBeLessThanOrEqual(1)
  })

  it('a record whose sealed session would not fit is not kept, and is reported', async () => {
    const { app, events } = buildApp({ store: cookieStore({ secrets: ['c'.repeat(32)] }), replayStore: memoryStore() })
    const res = await go(app, createJar(), '/pay', { method: 'POST', headers: FORM, body: `a=${'%22'.repeat(1500)}` })
    expect(res.status).toBe(303)
    expect(res.headers.getSetCookie()).toEqual([])
    expect(events.map((e) => e.kind)).toEqual(['oversized-record'])
  })
})

describe('item 6: tampered cookies are reported once per request, and the default hook folds floods', () => {
  it('a forged session id and a forged sealed cookie each give a tampered-cookie event and a fresh session', async () => {
    const { app, events } = buildApp()
    const res = await app.request(`${ORIGIN}/people`, { headers: { ...FETCH, Cookie: 'sessionid=../../etc/passwd' } })
    expect(res.status).toBe(401)
    expect(events.map((e) => e.kind)).toEqual(['tampered-cookie'])
    const sealed = buildApp({ store: cookieStore({ secrets: ['c'.repeat(32)] }) })
    await sealed.app.request(`${ORIGIN}/people`, { headers: { ...FETCH, Cookie: 'sessionid=v1.AAAA' } })
    expect(sealed.events.map((e) => e.kind)).toEqual(['tampered-cookie'])
  })
})

describe('the second review: what the fixes themselves let through', () => {
  it('F1: the wall 303 is never kept as an idempotency answer, and anonymous sessions share one fair share', async () => {
    const idem = memoryStore({ maxEntries: 2000 })
    const app = new Hono()
    app.use(session({ store: memoryStore(), secret: SECRET, onSuspicious: () => {} }))
    app.post('/login', async (c) => c.redirect(await login(c, 'alice'), 303))
    app.use('/api/*', idempotency({ store: idem }))
    app.get('/api/page', loginRequired(), (c) => c.text('page'))
    app.post('/api/anon', (c) => (c.var.session.set('n', 1), c.text('ok')))
    app.post('/api/pay', loginRequired(), (c) => c.text('paid'))
    // Anonymous sessions hitting the wall with keys: nothing is kept.
    for (let s = 0; s < 5; s++) {
      const jar = createJar()
      await go(app, jar, '/api/anon', { method: 'POST' })
      for (let i = 0; i < 50; i++) expect((await go(app, jar, `/api/page?x=${i}`, { headers: { ...NAV, 'Idempotency-Key': `k${s}-${i}` } })).status).toBe(303)
    }
    expect(idem.size).toBe(0)
    // 300 anonymous sessions × 2 keys on an open route: together they get a tenth of the store, not 600 keys.
    let refused = 0
    for (let s = 0; s < 300; s++) {
      const jar = createJar()
      await go(app, jar, '/api/anon', { method: 'POST' }) // the session exists from here: its keys have an owner
      for (let i = 0; i < 2; i++) if ((await go(app, jar, '/api/anon', { method: 'POST', headers: { 'Idempotency-Key': `a${s}-${i}` } })).status === 429) refused++
    }
    expect(idem.size).toBeLessThanOrEqual(200)
    expect(refused).toBeGreaterThanOrEqual(400)
    // Alice, logged in, still gets a new key.
    const alice = createJar()
    await go(app, alice, '/login', { method: 'POST', headers: FORM })
    expect((await go(app, alice, '/api/pay', { method: 'POST', headers: { 'Idempotency-Key': 'alice-1' } })).status).toBe(200)
  })

  it('F2: a flood of anonymous recorded posts never evicts a logged-in session from memoryStore', async () => {
    const store = memoryStore({ maxBytes: 400_000 })
    const { app } = buildApp({ store })
    const alice = createJar()
    await logIn(app, alice)
    for (let i = 0; i < 300; i++) await go(app, createJar(), '/pay', { method: 'POST', headers: FORM, body: `note=${'n'.repeat(5000)}` })
    expect(store.bytes).toBeLessThanOrEqual(400_000)
    expect(await (await go(app, alice, '/backward/user', { headers: FETCH })).json()).toEqual({ user: await (await go(app, createJar(), '/tag/ada')).text() })
  })

  it('F3: a body built to amplify (text/plain control characters) is not recorded', async () => {
    const store = memoryStore()
    const { app, events } = buildApp({ store })
    await go(app, createJar(), '/pay', { method: 'POST', headers: { ...FORM, 'Content-Type': 'text/plain' }, body: 'a=' + '\x01'.repeat(10_800) })
    expect(store.size).toBe(0)
    expect(events[0]?.detail).toMatch(/more than twice its size/)
  })

  it('F4: a record that would pass maxSessionBytes is dropped, never a 500', async () => {
    const store = memoryStore()
    const events: SuspiciousEvent[] = []
    const app = new Hono()
    app.use(session({ store, secret: SECRET, maxSessionBytes: 32_768, onSuspicious: (e) => void events.push(e) }))
    app.post('/pay', loginRequired(), (c) => c.text('paid'))
    const res = await app.request(`${ORIGIN}/pay`, { method: 'POST', headers: FORM, body: `note=${'n'.repeat(40_000)}` })
    expect(res.status).toBe(303)
    expect(store.size).toBe(0)
    expect(events.map((e) => e.kind)).toEqual(['oversized-record'])
  })

  it('F5: HEAD with the proof changes nothing; a second confirmation page does not void the first', async () => {
    const { app, ran } = buildApp()
    const jar = createJar()
    await go(app, jar, '/pay', { method: 'POST', headers: { ...FORM, Referer: `${ORIGIN}/people` }, body: 'amount=1' })
    const landing = (await logIn(app, jar)).headers.get('Location')!
    expect((await go(app, jar, landing, { method: 'HEAD', headers: NAV })).status).toBe(204)
    expect(ran).toEqual([])
    const page = async () => /name="backward_confirm" value="([\w-]+)"/.exec(await (await go(app, jar, '/backward/login/redirect', { headers: NAV })).text())![1]!
    const first = await page()
    await page()
    const res = await go(app, jar, '/backward/login/redirect', { method: 'POST', headers: FORM, body: `backward_confirm=${first}` })
    expect(res.status).toBe(303)
    expect(ran).toHaveLength(1)
  })

  it('F6: a custom redirectField carries the page through login()', async () => {
    const app = new Hono()
    app.use(session({ store: memoryStore(), secret: SECRET }))
    app.post('/login', async (c) => c.redirect(await login(c, 'ada', { redirectField: 'return_to' }), 303))
    app.route('/backward', backwardRoutes({ redirectField: 'return_to' }))
    const jar = createJar()
    const res = await go(app, jar, '/login?return_to=%2Fpeople', { method: 'POST', headers: FORM })
    expect(res.headers.get('Location')).toMatch(/&return_to=%2Fpeople$/)
    expect((await go(app, jar, res.headers.get('Location')!, { headers: NAV })).headers.get('Location')).toBe('/people')
  })
})
