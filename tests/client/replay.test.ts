import { describe, expect, it, vi } from 'vitest'
import { createBackward, idbStorage, memoryStorage } from '../../src/client/index.ts'
import type { BackwardAction, CreateBackwardOptions } from '../../src/client/index.ts'
import { IDEMPOTENCY_HEADER, LOGIN_SIGNAL_COOKIE_SECURE, REQUEST_IN_PROGRESS_TYPE } from '../../src/shared/protocol.ts'
import { ORIGIN, USER_A, USER_B, api, loginRequiredResponse, cookieJar, fakeLocation, fakeLocks, names, page, record, textOf, useApi } from './helpers.ts'

useApi()

/** A page that queues `urls` (as POSTs, logged out), then returns a fresh page sharing its storage. */
async function queued(urls: string[], options: CreateBackwardOptions = {}, cookies?: Record<string, string>) {
  const first = await page({ onLoginRequired: () => {}, ...options })
  for (const url of urls) await first.bw.fetch(url, { method: 'POST', body: url })
  expect(await first.bw.pending()).toHaveLength(urls.length)
  // A login signal means the user just logged in.
  if (cookies) api.loggedIn = true
  const jar = cookieJar(cookies)
  const next = createBackward({ location: fakeLocation(), document: jar, storage: first.storage, ...options })
  return { ...first, next, jar, nextEvents: record(next) }
}

// The pages here are https: the signal is the __Host- one.
const signal = (tag = USER_A) => ({ [LOGIN_SIGNAL_COOKIE_SECURE]: tag })
const replayedUrls = () => api.received.filter((r) => r.headers.has(IDEMPOTENCY_HEADER)).map((r) => new URL(r.url).pathname)

describe('replay', () => {
  it('an anonymous page load sends nothing', async () => {
    const { next } = await queued(['/api/a'])
    api.loggedIn = true
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(replayedUrls()).toEqual([])
    expect(await next.pending()).toHaveLength(1)
  })

  it('a login signal on load: deletes the cookie, remembers the user, replays oldest first', async () => {
    const { next, jar, nextEvents, storage } = await queued(['/api/1', '/api/2', '/api/3'], {}, signal())
    await vi.waitFor(async () => expect(await next.pending()).toEqual([]))
    expect(jar.cookie).toBe('')
    expect(jar.writes).toEqual([`${LOGIN_SIGNAL_COOKIE_SECURE}=; Max-Age=0; Path=/; Secure`])
    expect(await storage.get('user')).toBe(USER_A)
    expect(replayedUrls()).toEqual(['/api/1', '/api/2', '/api/3'])
    expect(names(nextEvents)).toEqual(['replayed', 'replayed', 'replayed'])
  })

  it('each replay carries Idempotency-Key: <action id> and the saved body', async () => {
    const { bw, next } = await queued(['/api/a'])
    const [action] = await bw.pending()
    api.loggedIn = true
    await next.replay()
    const sent = api.received.at(-1)!
    expect(sent.headers.get(IDEMPOTENCY_HEADER)).toBe(action!.id)
    expect(textOf(sent.bytes)).toBe('/api/a')
  })

  it('an explicit replay() sends even without a signal', async () => {
    const { next } = await queued(['/api/a'])
    api.loggedIn = true
    await next.replay()
    expect(replayedUrls()).toEqual(['/api/a'])
  })

  it('emits replayed with the Response for 2xx and 4xx answers, and removes the action', async () => {
    const { next, nextEvents } = await queued(['/api/a'])
    api.loggedIn = true
    api.status = 422
    await next.replay()
    const [[name, event]] = nextEvents as [[string, { response: Response; action: BackwardAction }]]
    expect(name).toBe('replayed')
    expect(event.response.status).toBe(422)
    expect(event.action.url).toMatch(/\/api\/a$/)
    expect(await next.pending()).toEqual([])
  })

  it('a 401 keeps everything queued and stops', async () => {
    const { next, nextEvents } = await queued(['/api/a', '/api/b'])
    await next.replay()
    expect(replayedUrls()).toEqual(['/api/a'])
    const queue = await next.pending()
    expect(queue).toHaveLength(2)
    expect(queue[0]!.attempts).toBe(0)
    expect(nextEvents).toEqual([])
  })

  it('a network failure keeps the action (attempts + 1), stops, and retries later', async () => {
    let fail = true
    const retryDelay = vi.fn(() => 5)
    const { next, nextEvents } = await queued(['/api/a', '/api/b'], {
      retryDelay,
      fetch: async (request) => {
        if (fail && request.headers.has(IDEMPOTENCY_HEADER)) throw new TypeError('Failed to fetch')
        return fetch(request)
      },
    })
    api.loggedIn = true
    await next.replay()
    const queue = await next.pending()
    expect(queue.map((a) => [a.url.split('/').pop(), a.attempts])).toEqual([['a', 1], ['b', 0]])
    expect(retryDelay).toHaveBeenCalledWith(1)
    expect(nextEvents).toEqual([])
    fail = false
    await vi.waitFor(async () => expect(await next.pending()).toEqual([]))
    expect(replayedUrls()).toEqual(['/api/a', '/api/b'])
    expect(names(nextEvents)).toEqual(['replayed', 'replayed'])
  })

  it('a network failure never drops the action: at maxAttempts it stops retrying by itself and waits for the next replay', async () => {
    let down = true
    const retryDelay = vi.fn(() => 1e9)
    const { next, nextEvents } = await queued(['/api/a', '/api/b'], {
      maxAttempts: 2,
      retryDelay,
      fetch: async (request) => {
        if (down && request.url.endsWith('/a') && request.headers.has(IDEMPOTENCY_HEADER)) throw new TypeError('Failed to fetch')
        return fetch(request)
      },
    })
    api.loggedIn = true
    await next.replay()
    await next.replay()
    await next.replay()
    expect(nextEvents).toEqual([])
    expect(retryDelay).toHaveBeenCalledTimes(1) // scheduled after attempt 1 only
    expect((await next.pending()).map((a) => [a.url.split('/').pop(), a.attempts])).toEqual([['a', 3], ['b', 0]])
    down = false
    await next.replay()
    expect(names(nextEvents)).toEqual(['replayed', 'replayed'])
    expect(await next.pending()).toEqual([])
  })

  it.each([429, 502, 503, 504])('a %i is transient: the action stays queued past maxAttempts', async (status) => {
    const { next, nextEvents } = await queued(['/api/a'], { maxAttempts: 2, retryDelay: () => 1e9 })
    api.loggedIn = true
    api.status = status
    await next.replay()
    await next.replay()
    await next.replay()
    expect(nextEvents).toEqual([])
    expect((await next.pending())[0]!.attempts).toBe(3)
  })

  const conflict = (headers: Record<string, string>, type = 'urn:example:already-done') =>
    new Response(JSON.stringify({ type, title: 'Conflict', status: 409 }), { status: 409, headers: { 'Content-Type': 'application/problem+json', ...headers } })
  /** Replays (requests with an Idempotency-Key) get `answer()`; everything else goes to the fake API. */
  const replaysGet = (answer: (request: Request) => Response | Promise<Response>) => async (request: Request) =>
    request.headers.has(IDEMPOTENCY_HEADER) ? answer(request) : fetch(request)

  it.each([
    ['the in-progress problem type', () => conflict({}, REQUEST_IN_PROGRESS_TYPE)],
    ['a Retry-After header', () => conflict({ 'Retry-After': '1' })],
    ['both (what idempotency() sends)', () => conflict({ 'Retry-After': '1' }, REQUEST_IN_PROGRESS_TYPE)],
  ])('a 409 with %s is the first run still going: transient, the action stays past maxAttempts', async (_, answer) => {
    const { next, nextEvents } = await queued(['/api/a'], { maxAttempts: 2, retryDelay: () => 1e9, fetch: replaysGet(answer) })
    await next.replay()
    await next.replay()
    await next.replay()
    expect(nextEvents).toEqual([])
    expect((await next.pending())[0]!.attempts).toBe(3)
  })

  it('any other 409 is the application\'s final answer: removed at once, replayed with that response', async () => {
    const { next, nextEvents } = await queued(['/api/a', '/api/b'], { retryDelay: () => 1e9 })
    api.loggedIn = true
    api.status = 409
    await next.replay()
    expect(names(nextEvents)).toEqual(['replayed', 'replayed'])
    expect((nextEvents[0]![1] as { response: Response }).response.status).toBe(409)
    expect(await next.pending()).toEqual([])
    expect(replayedUrls()).toEqual(['/api/a', '/api/b'])
  })

  it('a typed 409 that is not the in-progress one is final too', async () => {
    const { next, nextEvents } = await queued(['/api/a'], { fetch: replaysGet(() => conflict({})) })
    await next.replay()
    expect(names(nextEvents)).toEqual(['replayed'])
    expect(await next.pending()).toEqual([])
  })

  it.each([500, 501, 505])('a %i is retried; at maxAttempts it fails with the response and leaves the queue', async (status) => {
    const { next, nextEvents } = await queued(['/api/a'], { maxAttempts: 2, retryDelay: () => 1e9 })
    api.loggedIn = true
    api.status = status
    await next.replay()
    expect((await next.pending())[0]!.attempts).toBe(1)
    expect(nextEvents).toEqual([])
    await next.replay()
    expect(names(nextEvents)).toEqual(['failed'])
    const event = nextEvents[0]![1] as { reason: string; response: Response }
    expect([event.reason, event.response.status]).toEqual(['server', status])
    expect(await next.pending()).toEqual([])
  })

  it('a 503 then a 200: replayed once it works', async () => {
    const { next, nextEvents } = await queued(['/api/a'], { retryDelay: () => 5 })
    api.loggedIn = true
    api.status = 503
    await next.replay()
    api.status = 200
    await vi.waitFor(() => expect(names(nextEvents)).toEqual(['replayed']))
  })

  it('drops expired actions with an expired event, without sending them', async () => {
    let now = 1_000_000
    const { next, nextEvents } = await queued(['/api/old'], { ttl: 60, now: () => now })
    now += 60_000
    api.loggedIn = true
    await next.replay()
    expect(names(nextEvents)).toEqual(['expired'])
    expect(replayedUrls()).toEqual([])
    expect(await next.pending()).toEqual([])
  })

  it('beforeReplay can veto (failed/vetoed, not sent) or refresh headers', async () => {
    const beforeReplay = vi.fn((action: BackwardAction) => (action.url.endsWith('/veto') ? false : { 'X-CSRF-Token': 'fresh' }))
    const { next, nextEvents } = await queued(['/api/veto', '/api/keep'], { beforeReplay })
    api.loggedIn = true
    await next.replay()
    expect(replayedUrls()).toEqual(['/api/keep'])
    expect(api.received.at(-1)!.headers.get('x-csrf-token')).toBe('fresh')
    expect(names(nextEvents)).toEqual(['failed', 'replayed'])
    expect(nextEvents[0]![1]).toMatchObject({ reason: 'vetoed' })
    expect(await next.pending()).toEqual([])
  })

  it('beforeReplay returning true or nothing sends the action as saved', async () => {
    const { next } = await queued(['/api/a', '/api/b'], { beforeReplay: (a) => (a.url.endsWith('/a') ? true : undefined) })
    api.loggedIn = true
    await next.replay()
    expect(replayedUrls()).toEqual(['/api/a', '/api/b'])
  })

  it('beforeReplay that throws stops the replay, rejects it, and keeps the action', async () => {
    const { next } = await queued(['/api/a'], {
      beforeReplay: () => {
        throw new Error('no token')
      },
    })
    api.loggedIn = true
    await expect(next.replay()).rejects.toThrow('no token')
    expect(replayedUrls()).toEqual([])
    expect(await next.pending()).toHaveLength(1)
  })

  it('clear() empties the queue and forgets the user', async () => {
    const { next, storage } = await queued(['/api/a'])
    await storage.set('user', USER_A)
    await next.clear()
    expect(await next.pending()).toEqual([])
    expect(await storage.get('user')).toBeUndefined()
    api.loggedIn = true
    await next.replay()
    expect(replayedUrls()).toEqual([])
  })

  it('clear() during a replay stops it before the next action', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const { next } = await queued(['/api/a', '/api/b'], {
      beforeReplay: async () => {
        await gate
      },
    })
    api.loggedIn = true
    const running = next.replay()
    await next.clear()
    release()
    await running
    expect(replayedUrls().length).toBeLessThanOrEqual(1)
    expect(await next.pending()).toEqual([])
  })

  it('skips records of another version', async () => {
    const storage = memoryStorage()
    await storage.set('x', { version: 2, id: 'x', createdAt: 0 })
    const bw = createBackward({ storage, location: fakeLocation(), document: cookieJar() })
    expect(await bw.pending()).toEqual([])
  })
})

describe('security', () => {
  it('never replays an action as a different user: failed/user-mismatch, not sent', async () => {
    const first = await page({ onLoginRequired: () => {} })
    await first.storage.set('user', USER_A)
    await first.bw.fetch('/api/a-made-this', { method: 'POST' })
    api.loggedIn = true
    api.user = USER_B
    const next = createBackward({ location: fakeLocation(), document: cookieJar(signal(USER_B)), storage: first.storage })
    const events = record(next)
    await vi.waitFor(() => expect(names(events)).toEqual(['failed']))
    expect(events[0]![1]).toMatchObject({ reason: 'user-mismatch' })
    expect(replayedUrls()).toEqual([])
    expect(await next.pending()).toEqual([])
  })

  it('replays to the same user, and an anonymous action to whoever logs in', async () => {
    const first = await page({ onLoginRequired: () => {} })
    await first.bw.fetch('/api/anonymous', { method: 'POST' })
    await first.storage.set('user', USER_A)
    await first.bw.fetch('/api/a-made-this', { method: 'POST' })
    api.loggedIn = true
    const next = createBackward({ location: fakeLocation(), document: cookieJar(signal(USER_A)), storage: first.storage })
    await vi.waitFor(async () => expect(await next.pending()).toEqual([]))
    expect(replayedUrls()).toEqual(['/api/anonymous', '/api/a-made-this'])
  })

  it('an action with a known user is not sent when the current user is unknown', async () => {
    const { storage, bw } = await page({ onLoginRequired: () => {} })
    await storage.set('user', USER_A)
    await bw.fetch('/api/a', { method: 'POST' })
    await storage.del('user')
    api.loggedIn = true
    api.user = null
    await bw.replay()
    expect(replayedUrls()).toEqual([])
  })

  it.each(['', 'short', 'A'.repeat(23), 'AAAAAAAAAAAAAAAAAAAA%3D', '"><script>'])(
    'a malformed signal (%j) is deleted and triggers no replay',
    async (value) => {
      const { next, jar, storage } = await queued(['/api/a'], {}, { [LOGIN_SIGNAL_COOKIE_SECURE]: value })
      await vi.waitFor(() => expect(jar.cookie).toBe(''))
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(replayedUrls()).toEqual([])
      expect(await next.pending()).toHaveLength(1)
      expect(await storage.get('user')).toBeUndefined()
    },
  )

  it('never stores credentials or CSRF tokens, whatever the allow-list says', async () => {
    const secrets = {
      Authorization: 'Bearer s3cret',
      'Proxy-Authorization': 'Basic s3cret',
      Cookie: 'sessionid=s3cret',
      'X-CSRF-Token': 's3cret',
      'X-CSRFToken': 's3cret',
      'X-XSRF-Token': 's3cret',
      'Idempotency-Key': 's3cret',
    }
    const { bw, storage } = await page({ headers: Object.keys(secrets) })
    await bw.fetch('/api/x', { method: 'POST', headers: { ...secrets, 'Content-Type': 'text/plain' }, body: 'x' })
    const [action] = await bw.pending()
    expect(action!.headers).toEqual([['content-type', 'text/plain']])
    const raw = JSON.stringify(await storage.values(), (_, v: unknown) => (v instanceof ArrayBuffer ? textOf(v) : v))
    expect(raw).not.toContain('s3cret')
  })

  it('never saves a cross-origin request, even when shouldQueue says yes', async () => {
    const { bw, location, events } = await page({ shouldQueue: () => true, fetch: async () => loginRequiredResponse() })
    for (const url of ['https://evil.test/api/x', 'http://app.test/api/x', 'https://app.test:8443/api/x', 'https://sub.app.test/api/x'])
      await bw.fetch(url, { method: 'POST' }).catch(() => {})
    expect(await bw.pending()).toEqual([])
    expect(events).toEqual([])
    expect(location.assign).not.toHaveBeenCalled()
  })

  it('two replay() calls in one tab send each action once', async () => {
    const { next } = await queued(['/api/a', '/api/b'])
    api.loggedIn = true
    await Promise.all([next.replay(), next.replay(), next.replay()])
    expect(replayedUrls()).toEqual(['/api/a', '/api/b'])
  })

  it('two tabs (two instances on one database, Web Locks) send each action once', async () => {
    const locks = fakeLocks()
    const first = await page({ onLoginRequired: () => {}, locks })
    for (const url of ['/api/a', '/api/b', '/api/c']) await first.bw.fetch(url, { method: 'POST' })
    api.loggedIn = true
    api.delays = [0, 0, 0, 10, 10, 10]
    const tab = () => createBackward({ location: fakeLocation(), document: cookieJar(), storage: idbStorage(), locks })
    await Promise.all([tab().replay(), tab().replay()])
    expect(replayedUrls()).toEqual(['/api/a', '/api/b', '/api/c'])
    expect(locks.most).toBe(1)
  })

  it('without Web Locks, a second tab re-checks each action before sending it', async () => {
    const first = await page({ onLoginRequired: () => {} })
    for (const url of ['/api/a', '/api/b']) await first.bw.fetch(url, { method: 'POST' })
    api.loggedIn = true
    const tab = () => createBackward({ location: fakeLocation(), document: cookieJar(), storage: idbStorage() })
    const one = tab()
    const two = tab()
    await one.replay()
    await two.replay()
    expect(replayedUrls()).toEqual(['/api/a', '/api/b'])
  })

  it('a 409 for an action another tab settled meanwhile does not bring it back', async () => {
    const storage = idbStorage()
    const first = await page({ onLoginRequired: () => {}, storage })
    await storage.clear()
    await first.bw.fetch('/api/a', { method: 'POST' })
    const [action] = await first.bw.pending()
    // This tab's replay reaches the server while the other tab's first run is still going; that tab
    // then gets its answer and deletes the record, and only then does our 409 come back.
    const tab = createBackward({
      location: fakeLocation(),
      document: cookieJar(),
      storage,
      retryDelay: () => 1e9,
      fetch: async (request) => {
        if (!request.headers.has(IDEMPOTENCY_HEADER)) return fetch(request)
        await storage.del(action!.id)
        return new Response('{"type":"urn:backward:request-in-progress"}', { status: 409, headers: { 'Retry-After': '1' } })
      },
    })
    await tab.replay()
    expect(await storage.get(action!.id)).toBeUndefined()
    expect(await tab.pending()).toEqual([])
  })

  it('without Web Locks, two tabs replaying at once take turns through the localStorage lease: each action sent once', async () => {
    const shared = new Map<string, string>()
    const leases = { getItem: (k: string) => shared.get(k) ?? null, setItem: (k: string, v: string) => void shared.set(k, v), removeItem: (k: string) => void shared.delete(k) }
    const first = await page({ onLoginRequired: () => {} })
    for (const url of ['/api/a', '/api/b', '/api/c']) await first.bw.fetch(url, { method: 'POST' })
    api.loggedIn = true
    api.delays = [0, 0, 0, 20, 20, 20, 20, 20, 20]
    const retryDelay = vi.fn(() => 1e9)
    const tab = () => createBackward({ location: fakeLocation(), document: cookieJar(), storage: idbStorage(), leases, retryDelay })
    await Promise.all([tab().replay(), tab().replay()])
    expect(replayedUrls()).toEqual(['/api/a', '/api/b', '/api/c'])
    // The tab that found the lease taken tries again later; the holder released it when done.
    expect(retryDelay).toHaveBeenCalledOnce()
    expect(shared.size).toBe(0)
  })

  it('the lease: a live one of another tab refuses, an expired one is taken over, and of two written at once the last write wins', async () => {
    const { takeLease } = await import('../../src/client/replay.ts')
    const shared = new Map<string, string>()
    let stale = 0
    // localStorage across tabs is not atomic: a tab may read before another's write has reached it.
    const leases = {
      getItem: (k: string) => (stale-- > 0 ? null : (shared.get(k) ?? null)),
      setItem: (k: string, v: string) => void shared.set(k, v),
      removeItem: (k: string) => void shared.delete(k),
    }
    const now = () => 1000
    shared.set('backward-replay', 'other 1001')
    expect(await takeLease(leases, 'me', now)).toBe(false)
    shared.set('backward-replay', 'other 1000')
    expect(await takeLease(leases, 'me', now)).toBe(true)
    shared.clear()
    stale = 2 // both tabs read before either wrote
    expect(await Promise.all([takeLease(leases, 'one', now, true), takeLease(leases, 'two', now, true)])).toEqual([false, true])
  })

  it('without Web Locks or localStorage, replay still runs (the server\'s Idempotency-Key is the guard)', async () => {
    const { next } = await queued(['/api/a'], {
      leases: {
        getItem: () => {
          throw new DOMException('denied', 'SecurityError')
        },
        setItem: () => {},
        removeItem: () => {},
      },
    })
    api.loggedIn = true
    await next.replay()
    expect(replayedUrls()).toEqual(['/api/a'])
  })

  it('a signal is single use: a second instance (a second tab) does not replay again', async () => {
    api.loggedIn = true
    const { storage, bw } = await page({ onLoginRequired: () => {} })
    await bw.fetch('/api/a', { method: 'POST' }).catch(() => {})
    // bw.fetch above was answered 200 (logged in): queue one the logged-out way instead.
    api.loggedIn = false
    await bw.fetch('/api/b', { method: 'POST' })
    api.loggedIn = true
    const jar = cookieJar(signal())
    const one = createBackward({ location: fakeLocation(), document: jar, storage })
    await vi.waitFor(async () => expect(await one.pending()).toEqual([]))
    const two = createBackward({ location: fakeLocation(), document: jar, storage })
    await two.replay()
    expect(replayedUrls()).toEqual(['/api/b'])
  })

  describe('a record written into storage by someone else (not by backward)', () => {
    /** A well-formed action as backward writes it, with `patch` applied. */
    const forged = (patch: Partial<BackwardAction>): BackwardAction => ({
      version: 1,
      id: 'f0f0f0f0-0000-4000-8000-000000000000',
      method: 'POST',
      url: `${ORIGIN}/api/ok`,
      headers: [],
      body: null,
      credentials: 'include',
      mode: 'cors',
      createdAt: Date.now() - 1000,
      expiresAt: Date.now() - 1000 + 3_600_000,
      returnTo: `${ORIGIN}/`,
      user: null,
      attempts: 0,
      ...patch,
    })

    it.each([
      ['another origin', { url: 'https://evil.test/api/steal' }],
      ['another port', { url: 'https://app.test:8443/api/x' }],
      ['plain http', { url: 'http://app.test/api/x' }],
      ['a sibling subdomain', { url: 'https://sub.app.test/api/x' }],
      ['not http(s)', { url: 'javascript:alert(1)' }],
      ['a relative URL', { url: '/api/x' }],
      ['a URL that is not a string', { url: 42 as unknown as string }],
      ['an expiry past createdAt + ttl', { expiresAt: Date.now() + 3_600_000 * 24 * 365 }],
      ['an expiry that is not a number', { expiresAt: NaN }],
    ])('%s: dropped (failed/invalid, suspicious/foreign-record) before beforeReplay, never sent', async (_, patch) => {
      const sent: string[] = []
      const beforeReplay = vi.fn(() => ({ 'X-CSRF-Token': 's3cret' }))
      const storage = memoryStorage()
      const record_ = forged(patch)
      await storage.set(record_.id, record_)
      api.loggedIn = true
      const bw = createBackward({
        storage,
        location: fakeLocation(),
        document: cookieJar(),
        beforeReplay,
        fetch: async (request) => (request.headers.has(IDEMPOTENCY_HEADER) && sent.push(request.url), fetch(request)),
      })
      const events = record(bw)
      await bw.replay()
      expect(sent).toEqual([])
      expect(beforeReplay).not.toHaveBeenCalled()
      expect(names(events)).toEqual(['failed', 'suspicious'])
      expect(events[0]![1]).toMatchObject({ reason: 'invalid', action: { id: record_.id } })
      expect(events[1]![1]).toMatchObject({ kind: 'foreign-record', detail: expect.any(String), action: { id: record_.id } })
      expect(await storage.get(record_.id)).toBeUndefined()
    })

    it('the records backward wrote around it are still replayed, in order', async () => {
      const first = await page({ onLoginRequired: () => {} })
      await first.bw.fetch('/api/before', { method: 'POST' })
      const bad = forged({ url: 'https://evil.test/api/steal', createdAt: Date.now() })
      await first.storage.set(bad.id, bad)
      await new Promise((resolve) => setTimeout(resolve, 2))
      await first.bw.fetch('/api/after', { method: 'POST' })
      api.loggedIn = true
      const next = createBackward({ location: fakeLocation(), document: cookieJar(signal()), storage: first.storage })
      const events = record(next)
      await vi.waitFor(async () => expect(await first.storage.values()).toEqual([USER_A]))
      expect(replayedUrls()).toEqual(['/api/before', '/api/after'])
      expect(names(events)).toEqual(['replayed', 'failed', 'suspicious', 'replayed'])
    })
  })
})

describe('expired actions', () => {
  it('are purged when an instance is created, with an expired event each, before any replay', async () => {
    let now = 1_000_000
    const first = await page({ onLoginRequired: () => {}, ttl: 60, now: () => now })
    await first.bw.fetch('/api/old', { method: 'POST', body: '4111 1111 1111 1111' })
    now += 30_000
    await first.bw.fetch('/api/new', { method: 'POST', body: 'fresh' })
    now += 31_000
    // A later page load, no login: nothing is sent, but the expired body is gone from storage.
    const next = createBackward({ location: fakeLocation(), document: cookieJar(), storage: first.storage, ttl: 60, now: () => now })
    const events = record(next)
    await vi.waitFor(() => expect(names(events)).toEqual(['expired']))
    expect((events[0]![1] as { action: BackwardAction }).action.url).toBe(`${ORIGIN}/api/old`)
    const raw = JSON.stringify(await first.storage.values(), (_, v: unknown) => (v instanceof ArrayBuffer ? textOf(v) : v))
    expect(raw).not.toContain('4111')
    expect(raw).toContain('fresh')
    expect(replayedUrls()).toEqual([])
  })

  it('are purged on creation even with a login signal, and never sent', async () => {
    let now = 1_000_000
    const first = await page({ onLoginRequired: () => {}, ttl: 60, now: () => now })
    await first.bw.fetch('/api/old', { method: 'POST' })
    now += 60_000
    api.loggedIn = true
    const next = createBackward({ location: fakeLocation(), document: cookieJar(signal()), storage: first.storage, ttl: 60, now: () => now })
    const events = record(next)
    // bw.ready: the creation-time purge and the on-load replay are both over.
    expect(await next.ready).toEqual({ replayed: [], failed: [], expired: [], remaining: [] })
    expect(names(events)).toEqual(['expired'])
    expect(replayedUrls()).toEqual([])
    expect(await first.storage.values()).toEqual([USER_A])
  })

  it('are left out of pending() as soon as they expire', async () => {
    let now = 1_000_000
    const { bw } = await page({ onLoginRequired: () => {}, ttl: 60, now: () => now })
    await bw.fetch('/api/a', { method: 'POST' })
    expect(await bw.pending()).toHaveLength(1)
    now += 60_000
    expect(await bw.pending()).toEqual([])
  })
})
