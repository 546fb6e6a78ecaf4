// Issue 13, items 2 and 6 (client half): the login signal only says "a login happened". Who logged in
// comes from the server (`userUrl`), and only that user's actions are replayed. On https only the
// `__Host-` signal counts; a signal set twice (planted) stops the replay.
import { HttpResponse, http } from 'msw'
import { describe, expect, it, vi } from 'vitest'
import { createBackward, isBackwardError } from '../../src/client/index.ts'
import type { BackwardEvents, CreateBackwardOptions } from '../../src/client/index.ts'
import { IDEMPOTENCY_HEADER, LOGIN_SIGNAL_COOKIE, LOGIN_SIGNAL_COOKIE_SECURE, PAGE_HEADER } from '../../src/shared/protocol.ts'
import { USER_A, USER_B, api, cookieJar, fakeLocation, loginRequiredResponse, names, page, record, server, useApi } from './helpers.ts'
import type { Recorded } from './helpers.ts'

useApi()

const replayedUrls = () => api.received.filter((r) => r.headers.has(IDEMPOTENCY_HEADER)).map((r) => new URL(r.url).pathname)
const settle = () => new Promise((resolve) => setTimeout(resolve, 30))

/** Queues `/api/a` (made by `user`, when given) on one page; a fresh page with `jar` then loads on the same storage. */
async function afterLogin(jar: { cookie: string }, options: CreateBackwardOptions = {}, user?: string) {
  const first = await page({ onLoginRequired: () => {} })
  if (user) await first.storage.set('user', user)
  await first.bw.fetch('/api/a', { method: 'POST', body: 'a' })
  api.loggedIn = true
  const next = createBackward({ location: fakeLocation(), document: jar, storage: first.storage, ...options })
  return { next, storage: first.storage, events: record(next) }
}

/** A `document.cookie` that can hold one name twice, as a browser does for cookies of different Domain or Path. */
function rawJar(cookie: string) {
  const writes: string[] = []
  return {
    writes,
    get cookie() {
      return cookie
    },
    set cookie(line: string) {
      writes.push(line)
    },
  }
}

const errorOf = (events: Recorded[]) => (events.find(([name]) => name == 'error')?.[1] as BackwardEvents['error'] | undefined)?.error
const suspiciousOf = (events: Recorded[]) =>
  events.filter(([name]) => name == 'suspicious').map(([, event]) => {
    const { kind, detail } = event as BackwardEvents['suspicious']
    return { kind, detail }
  })

describe('login signal', () => {
  it('on https, the __Host- signal triggers the replay and is deleted with Secure (a __Host- cookie needs it)', async () => {
    const jar = cookieJar({ [LOGIN_SIGNAL_COOKIE_SECURE]: USER_A })
    const { next } = await afterLogin(jar)
    await vi.waitFor(async () => expect(await next.pending()).toEqual([]))
    expect(replayedUrls()).toEqual(['/api/a'])
    expect(jar.writes).toEqual([`${LOGIN_SIGNAL_COOKIE_SECURE}=; Max-Age=0; Path=/; Secure`])
  })

  it('on plain http, backward_login is the signal (deleted without Secure, which http cannot write)', async () => {
    const sent: string[] = []
    let loggedIn = false
    const fetch = async (request: Request) => {
      sent.push(`${request.method} ${new URL(request.url).pathname}`)
      if (request.url == 'http://app.test/backward/user') return Response.json({ user: USER_A })
      return loggedIn ? new Response('ok') : loginRequiredResponse()
    }
    const location = fakeLocation('http://app.test/people')
    const first = await page({ location, fetch, onLoginRequired: () => {} })
    await first.bw.fetch('/api/a', { method: 'POST' })
    loggedIn = true
    const jar = cookieJar({ [LOGIN_SIGNAL_COOKIE]: USER_A })
    const next = createBackward({ location, document: jar, storage: first.storage, fetch })
    await vi.waitFor(async () => expect(await next.pending()).toEqual([]))
    expect(sent).toEqual(['POST /api/a', 'GET /backward/user', 'POST /api/a'])
    expect(jar.writes).toEqual([`${LOGIN_SIGNAL_COOKIE}=; Max-Age=0; Path=/`])
  })
})

describe('user confirmation (userUrl)', () => {
  it('asks GET /backward/user on this origin, same-origin credentials, never cached, before replaying', async () => {
    const { next } = await afterLogin(cookieJar({ [LOGIN_SIGNAL_COOKIE_SECURE]: USER_A }))
    await vi.waitFor(async () => expect(await next.pending()).toEqual([]))
    expect(api.userChecks).toHaveLength(1)
    const [check] = api.userChecks
    expect([check!.method, check!.url, check!.credentials, check!.cache]).toEqual(['GET', 'https://app.test/backward/user', 'same-origin', 'no-store'])
    expect(check!.headers.has(PAGE_HEADER)).toBe(false)
  })

  it('replay() by hand confirms the user too, and remembers the confirmed tag', async () => {
    const { next, storage } = await afterLogin(cookieJar())
    api.user = USER_B
    await next.replay()
    expect(api.userChecks).toHaveLength(1)
    expect(replayedUrls()).toEqual(['/api/a'])
    expect(await storage.get('user')).toBe(USER_B)
  })

  it('the userUrl option is where it asks', async () => {
    server.use(http.get('https://app.test/me', () => HttpResponse.json({ user: USER_A })))
    const { next } = await afterLogin(cookieJar(), { userUrl: '/me' })
    await next.replay()
    expect(api.userChecks).toHaveLength(0)
    expect(replayedUrls()).toEqual(['/api/a'])
  })

  it('asks nothing when there is no signal and nothing to send', async () => {
    const { bw } = await page()
    api.loggedIn = true
    await bw.replay()
    expect(api.userChecks).toHaveLength(0)
  })

  it.each<[string, () => Response]>([
    ['nobody logged in ({"user":null})', () => HttpResponse.json({ user: null })],
    ['a 404 (an old server)', () => new HttpResponse('not found', { status: 404 })],
    ['a 500', () => HttpResponse.json({ user: USER_A }, { status: 500 })],
    ['a 204', () => new HttpResponse(null, { status: 204 })],
    ['not JSON (a login page)', () => HttpResponse.html('<form>login</form>')],
    ['a malformed tag', () => HttpResponse.json({ user: 'AAAA' })],
    ['a tag in an array', () => HttpResponse.json({ user: [USER_A] })],
    ['a number', () => HttpResponse.json({ user: 42 })],
    ['no user field', () => HttpResponse.json({})],
    ['JSON null', () => HttpResponse.json(null)],
    ['a network failure', () => HttpResponse.error()],
  ])('when the server confirms no user (%s): nothing replayed, queue and remembered user kept, an error event', async (_, answer) => {
    api.userAnswer = answer
    const { next, events, storage } = await afterLogin(cookieJar({ [LOGIN_SIGNAL_COOKIE_SECURE]: USER_A }), {}, USER_A)
    await vi.waitFor(() => expect(names(events)).toEqual(['error']))
    await settle()
    expect(isBackwardError(errorOf(events), 'USER_UNCONFIRMED')).toBe(true)
    expect(errorOf(events)!.message).toMatch(/^\[backward\] /)
    expect(replayedUrls()).toEqual([])
    expect(await next.pending()).toHaveLength(1)
    expect(await storage.get('user')).toBe(USER_A)
  })

  it('a userUrl off this site is never asked: nothing replayed, an error event', async () => {
    const fetch = vi.fn((request: Request) => globalThis.fetch(request))
    const { next, events } = await afterLogin(cookieJar(), { userUrl: 'https://evil.test/user', fetch })
    await next.replay()
    expect(fetch.mock.calls.map(([request]) => request.url)).toEqual([])
    expect(isBackwardError(errorOf(events), 'USER_UNCONFIRMED')).toBe(true)
    expect(await next.pending()).toHaveLength(1)
  })
})

describe('security', () => {
  it('a planted signal naming Alice while Bob is logged in: Alice\'s action is not replayed as Bob (user-mismatch), and Bob is remembered', async () => {
    // Alice queued an action while her session had expired; Mallory plants a signal with Alice's tag
    // (readable wherever she saw it) on a browser where Bob logs in.
    api.user = USER_B
    const { next, events, storage } = await afterLogin(cookieJar({ [LOGIN_SIGNAL_COOKIE_SECURE]: USER_A }), {}, USER_A)
    await vi.waitFor(() => expect(names(events)).toContain('failed'))
    expect(replayedUrls()).toEqual([])
    expect(events.find(([name]) => name == 'failed')![1]).toMatchObject({ reason: 'user-mismatch' })
    expect(suspiciousOf(events)).toEqual([{ kind: 'signal-mismatch', detail: expect.any(String) }])
    expect(await storage.get('user')).toBe(USER_B)
  })

  it('a signal naming Bob does not make Alice\'s own action go to Bob; the server\'s Alice gets it', async () => {
    api.user = USER_A
    const { next, events, storage } = await afterLogin(cookieJar({ [LOGIN_SIGNAL_COOKIE_SECURE]: USER_B }), {}, USER_A)
    await vi.waitFor(async () => expect(await next.pending()).toEqual([]))
    expect(replayedUrls()).toEqual(['/api/a'])
    expect(names(events)).toEqual(['suspicious', 'replayed'])
    expect(await storage.get('user')).toBe(USER_A)
  })

  it('on https, a plain backward_login (a sibling subdomain can set it) is ignored: no replay, no question asked', async () => {
    const { next, events } = await afterLogin(cookieJar({ [LOGIN_SIGNAL_COOKIE]: USER_A }))
    await settle()
    expect(api.userChecks).toHaveLength(0)
    expect(replayedUrls()).toEqual([])
    expect(await next.pending()).toHaveLength(1)
    expect(events).toEqual([])
  })

  it.each([
    ['https', `${LOGIN_SIGNAL_COOKIE_SECURE}=${USER_A}; ${LOGIN_SIGNAL_COOKIE_SECURE}=${USER_B}`, `${LOGIN_SIGNAL_COOKIE_SECURE}=; Max-Age=0; Path=/; Secure`],
    ['http', `${LOGIN_SIGNAL_COOKIE}=${USER_B}; other=1; ${LOGIN_SIGNAL_COOKIE}=${USER_A}`, `${LOGIN_SIGNAL_COOKIE}=; Max-Age=0; Path=/`],
  ])('on %s, a signal set twice (a planted duplicate): no replay, queue kept, SIGNAL_CONFLICT and suspicious, cookie deleted', async (scheme, cookie, deletion) => {
    const fetch = async (request: Request) => {
      const url = new URL(request.url)
      url.protocol = 'https:' // the http page talks to the same fake API
      return globalThis.fetch(new Request(url, request))
    }
    const first = await page({ onLoginRequired: () => {} })
    await first.bw.fetch('/api/a', { method: 'POST', body: 'a' })
    api.loggedIn = true
    const jar = rawJar(cookie)
    const next = createBackward({ location: fakeLocation(`${scheme}://app.test/people`), document: jar, storage: first.storage, fetch })
    const events = record(next)
    await vi.waitFor(() => expect(names(events)).toEqual(['suspicious', 'error']))
    await settle()
    expect(isBackwardError(errorOf(events), 'SIGNAL_CONFLICT')).toBe(true)
    expect(suspiciousOf(events)).toEqual([{ kind: 'signal-conflict', detail: expect.any(String) }])
    expect(jar.writes).toEqual([deletion])
    expect(api.userChecks).toHaveLength(0)
    expect(replayedUrls()).toEqual([])
    expect(await next.pending()).toHaveLength(1)
    expect(await first.storage.get('user')).toBeUndefined()
  })

  it('a logout (clear()) while the user is being confirmed: nothing replayed, nobody remembered', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const { next, storage } = await afterLogin(cookieJar(), {
      fetch: async (request) => {
        if (request.url.endsWith('/backward/user')) await gate
        return globalThis.fetch(request)
      },
    })
    const running = next.replay()
    await vi.waitFor(() => expect(release).toBeTypeOf('function'))
    await new Promise((resolve) => setTimeout(resolve, 10))
    await next.clear()
    release()
    await running
    expect(replayedUrls()).toEqual([])
    expect(await storage.get('user')).toBeUndefined()
  })
})
