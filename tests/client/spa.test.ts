// Issue 15, item 4: the client in a real SPA. A login in a modal or a popup without leaving the page
// (the popup's login replays in the opener, through a channel between pages), `bw.ready` and the
// `drained` event with each run's results, and stream bodies that never hang `bw.fetch`.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createBackward, isBackwardError } from '../../src/client/index.ts'
import type { BackwardChannel, BackwardEvents, LoginRequiredInfo, ReplayResult } from '../../src/client/index.ts'
import { IDEMPOTENCY_HEADER, LOGIN_SIGNAL_COOKIE_SECURE } from '../../src/shared/protocol.ts'
import { USER_A, USER_B, api, cookieJar, fakeLocation, fakeLocks, loginRequiredResponse, names, page, record, useApi } from './helpers.ts'

useApi()

const replayedUrls = () => api.received.filter((r) => r.headers.has(IDEMPOTENCY_HEADER)).map((r) => new URL(r.url).pathname)
const signal = (user = USER_A) => ({ [LOGIN_SIGNAL_COOKIE_SECURE]: user })
const empty: ReplayResult = { replayed: [], failed: [], expired: [], remaining: [] }

// Real BroadcastChannels (Node has them), one name per test, closed after it: an open one keeps Node alive.
const opened: BroadcastChannel[] = []
let names_ = 0
function channels(): [BroadcastChannel, BroadcastChannel, BroadcastChannel] {
  const name = `backward-test-${++names_}`
  const made = [new BroadcastChannel(name), new BroadcastChannel(name), new BroadcastChannel(name)] as const
  opened.push(...made)
  return [...made]
}
afterEach(() => opened.splice(0).forEach((c) => c.close()))

/** The page after a login: a fresh instance on the same storage, with the login signal cookie. */
const landing = (storage: Parameters<typeof createBackward>[0] & object) =>
  createBackward({ location: fakeLocation('https://app.test/'), document: cookieJar(signal()), ...storage })

describe('login in a modal (onLoginRequired resolves true)', () => {
  it('the modal logs in with fetch and resolves true: bw.fetch settles with the replayed answer, drained reports it', async () => {
    const drained: ReplayResult[] = []
    const { bw } = await page({
      async onLoginRequired() {
        // What a modal's login form does: its own fetch; the server sets the session and the signal.
        api.loggedIn = true
        return true
      },
    })
    bw.on('drained', (result) => drained.push(result))
    const res = await bw.fetch('/api/follow/42', { method: 'POST' })
    expect(res.status).toBe(200)
    expect(drained).toHaveLength(1)
    expect(drained[0]!.replayed.map(({ action, response }) => [new URL(action.url).pathname, response.status])).toEqual([['/api/follow/42', 200]])
    expect(drained[0]!.remaining).toEqual([])
  })

  it('a modal closed without logging in resolves false: bw.fetch settles with the 401, the action waits', async () => {
    const { bw, events } = await page({ onLoginRequired: async () => false })
    expect((await bw.fetch('/api/a', { method: 'POST' })).status).toBe(401)
    expect(names(events)).toEqual(['queued', 'login-required'])
    expect(await bw.pending()).toHaveLength(1)
  })
})

describe('replay() and the drained event', () => {
  it('replay() resolves with the run\'s result, and drained carries the same lists', async () => {
    const { bw } = await page({ onLoginRequired: () => {} })
    await bw.fetch('/api/a', { method: 'POST' })
    await bw.fetch('/api/b', { method: 'POST' })
    api.loggedIn = true
    let seen: ReplayResult | undefined
    bw.on('drained', (result) => (seen = result))
    const result = await bw.replay()
    expect([seen!.replayed, seen!.failed, seen!.expired, seen!.remaining]).toEqual([result.replayed, result.failed, result.expired, result.remaining])
    expect(result.replayed.map((r) => new URL(r.action.url).pathname)).toEqual(['/api/a', '/api/b'])
    expect([result.failed, result.expired, result.remaining]).toEqual([[], [], []])
  })

  it('still logged out: nothing replayed, the actions are reported as remaining', async () => {
    const { bw } = await page({ onLoginRequired: () => {} })
    await bw.fetch('/api/a', { method: 'POST' })
    const result = await bw.replay()
    expect(result.replayed).toEqual([])
    expect(result.remaining.map((a) => new URL(a.url).pathname)).toEqual(['/api/a'])
  })

  it('another user\'s actions are dropped with failed/user-mismatch and listed in failed', async () => {
    const { bw, storage } = await page({ onLoginRequired: () => {} })
    await storage.set('user', USER_A)
    await bw.fetch('/api/a', { method: 'POST' })
    api.loggedIn = true
    api.user = USER_B
    const result = await bw.replay()
    expect(result.failed.map((f) => f.reason)).toEqual(['user-mismatch'])
    expect(replayedUrls()).toEqual([])
  })

  it('a run that throws (beforeReplay) still emits drained; replay() rejects', async () => {
    let fail = false
    const { bw } = await page({
      onLoginRequired: () => {},
      beforeReplay: () => {
        if (fail) throw new Error('no token')
      },
    })
    await bw.fetch('/api/a', { method: 'POST' })
    api.loggedIn = true
    fail = true
    const drained = vi.fn()
    bw.on('drained', drained)
    await expect(bw.replay()).rejects.toThrow('no token')
    expect(drained).toHaveBeenCalledOnce()
    expect((drained.mock.calls[0]![0] as ReplayResult).remaining).toHaveLength(1)
  })
})

describe('bw.ready', () => {
  it('resolves with an empty result when there is no login signal (after the expired purge)', async () => {
    let now = 1_000_000
    const first = await page({ onLoginRequired: () => {}, ttl: 60, now: () => now })
    await first.bw.fetch('/api/old', { method: 'POST' })
    now += 60_000
    const next = createBackward({ location: fakeLocation(), document: cookieJar(), storage: first.storage, ttl: 60, now: () => now, channel: null })
    const events = record(next)
    expect(await next.ready).toEqual(empty)
    // The purge is over by then.
    expect(names(events)).toEqual(['expired'])
    expect(await first.storage.values()).toEqual([])
  })

  it('with the login signal, resolves with what the on-load replay did', async () => {
    const first = await page({ onLoginRequired: () => {} })
    await first.bw.fetch('/api/a', { method: 'POST' })
    await first.bw.fetch('/api/b', { method: 'POST' })
    api.loggedIn = true
    const next = landing({ storage: first.storage, channel: null })
    const drained = vi.fn()
    next.on('drained', drained)
    const result = await next.ready
    expect(result.replayed.map((r) => [new URL(r.action.url).pathname, r.response.status])).toEqual([
      ['/api/a', 200],
      ['/api/b', 200],
    ])
    expect(drained).toHaveBeenCalledOnce()
    expect((drained.mock.calls[0]![0] as ReplayResult).replayed).toEqual(result.replayed)
  })

  it('never rejects: a throwing beforeReplay makes it resolve with an empty result', async () => {
    const first = await page({ onLoginRequired: () => {} })
    await first.bw.fetch('/api/a', { method: 'POST' })
    api.loggedIn = true
    const next = landing({
      storage: first.storage,
      channel: null,
      beforeReplay: () => {
        throw new Error('no token')
      },
    })
    expect(await next.ready).toEqual(empty)
    expect(await next.pending()).toHaveLength(1)
  })
})

describe('login in a popup: the opener replays', () => {
  /** The opener: a page whose onLoginRequired opens a popup and returns `info.loggedIn`. */
  async function opener(channel: BackwardChannel, locks = fakeLocks()) {
    const opened: string[] = []
    const made = await page({
      channel,
      locks,
      onLoginRequired(info: LoginRequiredInfo) {
        opened.push(info.loginUrl) // window.open(info.loginUrl, 'login', 'popup') in a browser
        return info.loggedIn
      },
    })
    return { ...made, opened, locks }
  }

  it('the popup lands with the signal and announces it; the opener claims, replays, and its bw.fetch gets the answer', async () => {
    const [a, b] = channels()
    const { bw, storage, opened, locks, events } = await opener(a)
    const answer = bw.fetch('/api/follow/42', { method: 'POST', body: 'x' })
    await vi.waitFor(() => expect(opened).toEqual(['https://app.test/login?next=%2Fpeople']))
    // The popup: the login form posts, the server sets the session and the signal, the popup lands on the site.
    api.loggedIn = true
    const popup = landing({ storage, channel: b, locks })
    const popupEvents = record(popup)
    // The popup leaves the queue to the opener: it sends nothing itself.
    expect((await popup.ready).replayed).toEqual([])
    expect(names(popupEvents)).toEqual([])
    const res = await answer
    expect(res.status).toBe(200)
    expect(((await res.json()) as { url: string }).url).toMatch(/\/api\/follow\/42$/)
    expect(names(events)).toEqual(['queued', 'login-required', 'replayed'])
    expect(replayedUrls()).toEqual(['/api/follow/42'])
    // The opener confirmed the user with the server before it sent anything.
    expect(api.userChecks).toHaveLength(1)
  })

  it('an opener whose hook did not wait (fire and forget) still replays on the popup\'s login: replayed and drained there', async () => {
    const [a, b] = channels()
    const locks = fakeLocks()
    const { bw, storage, events } = await page({ channel: a, locks, onLoginRequired: () => {} })
    const drained = vi.fn()
    bw.on('drained', drained)
    expect((await bw.fetch('/api/a', { method: 'POST' })).status).toBe(401)
    api.loggedIn = true
    await landing({ storage, channel: b, locks }).ready
    await vi.waitFor(() => expect(drained).toHaveBeenCalled())
    expect(names(events)).toEqual(['queued', 'login-required', 'replayed'])
    expect(replayedUrls()).toEqual(['/api/a'])
  })

  it('when no page claims (a full-page login, no opener left), the landing page replays itself', async () => {
    const [, b] = channels()
    const first = await page({ onLoginRequired: () => {} })
    await first.bw.fetch('/api/a', { method: 'POST' })
    api.loggedIn = true
    const result = await landing({ storage: first.storage, channel: b }).ready
    expect(result.replayed.map((r) => new URL(r.action.url).pathname)).toEqual(['/api/a'])
  })

  it('two waiting tabs and a popup: each action is sent once (Web Locks), whoever sends it', async () => {
    const [a, b, c] = channels()
    const locks = fakeLocks()
    const one = await opener(a, locks)
    const two = createBackward({ location: fakeLocation(), document: cookieJar(), storage: one.storage, channel: b, locks, onLoginRequired: (info) => info.loggedIn })
    const answers = [one.bw.fetch('/api/one', { method: 'POST' }), two.fetch('/api/two', { method: 'POST' })]
    await vi.waitFor(async () => expect(await one.bw.pending()).toHaveLength(2))
    api.loggedIn = true
    await landing({ storage: one.storage, channel: c, locks }).ready
    await Promise.all(answers)
    await vi.waitFor(async () => expect(await one.bw.pending()).toEqual([]))
    expect(replayedUrls().sort()).toEqual(['/api/one', '/api/two'])
    expect(locks.most).toBe(1)
  })

  it('security: a forged "logged in" message makes no one replay as another user, nor while logged out', async () => {
    const [a, forger] = channels()
    const { bw, storage, events } = await page({ channel: a, onLoginRequired: (info) => info.loggedIn })
    await storage.set('user', USER_A)
    const answer = bw.fetch('/api/transfer', { method: 'POST', body: 'all' })
    await vi.waitFor(async () => expect(await bw.pending()).toHaveLength(1))
    // Nobody logged in: the server names no user, nothing is sent, the action stays.
    api.user = null
    forger.postMessage('backward:login')
    expect((await answer).status).toBe(401)
    expect(replayedUrls()).toEqual([])
    expect((events.find(([name]) => name == 'error')![1] as BackwardEvents['error']).error.code).toBe('USER_UNCONFIRMED')
    expect(await bw.pending()).toHaveLength(1)
    // Bob is logged in: Alice's action is dropped (failed/user-mismatch), never sent.
    api.loggedIn = true
    api.user = USER_B
    const drained = new Promise<ReplayResult>((resolve) => bw.on('drained', resolve))
    forger.postMessage('backward:login')
    expect((await drained).failed.map((f) => f.reason)).toEqual(['user-mismatch'])
    expect(replayedUrls()).toEqual([])
  })

  it('channel: null: no page is told, the landing page replays itself; info.loggedIn never settles', async () => {
    const { bw, storage } = await page({ channel: null, onLoginRequired: () => {} })
    let loggedIn: Promise<true> | undefined
    bw.on('login-required', (info) => (loggedIn = info.loggedIn))
    await bw.fetch('/api/a', { method: 'POST' })
    api.loggedIn = true
    const result = await landing({ storage, channel: null }).ready
    expect(result.replayed).toHaveLength(1)
    expect(await Promise.race([loggedIn, new Promise((resolve) => setTimeout(resolve, 50, 'pending'))])).toBe('pending')
  })
})

describe('stream bodies', () => {
  it('a stream that never ends does not hang bw.fetch: NOT_REPLAYABLE within about a second, nothing saved', async () => {
    // Sends one chunk, then nothing, ever.
    const stalled = new ReadableStream<Uint8Array>({ start: (controller) => controller.enqueue(new Uint8Array(8)) })
    // A server that answers 401 without reading the upload (the login wall runs first).
    const { bw, events, location } = await page({ fetch: async () => loginRequiredResponse() })
    const started = Date.now()
    const err = await bw.fetch('/api/upload', { method: 'POST', body: stalled, duplex: 'half' } as RequestInit).catch((e: unknown) => e)
    expect(Date.now() - started).toBeLessThan(3000)
    expect(isBackwardError(err, 'NOT_REPLAYABLE')).toBe(true)
    expect(names(events)).toEqual(['error'])
    expect(await bw.pending()).toEqual([])
    expect(location.assign).not.toHaveBeenCalled()
  }, 5000)

  it('a Request input built around a stream that never ends does not hang either', async () => {
    const stalled = new ReadableStream<Uint8Array>({ start: (controller) => controller.enqueue(new Uint8Array(8)) })
    const { bw } = await page({ fetch: async () => loginRequiredResponse() })
    const request = new Request('https://app.test/api/upload', { method: 'POST', body: stalled, duplex: 'half' } as RequestInit)
    const err = await bw.fetch(request).catch((e: unknown) => e)
    expect(isBackwardError(err, 'NOT_REPLAYABLE')).toBe(true)
  }, 5000)

  it('a stream that ends is still saved and replayed as bytes', async () => {
    const { bw } = await page({ onLoginRequired: () => {} })
    const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('streamed')), c.close()) })
    expect((await bw.fetch('/api/stream', { method: 'POST', body, duplex: 'half' } as RequestInit)).status).toBe(401)
    expect(await bw.pending()).toHaveLength(1)
  })
})
