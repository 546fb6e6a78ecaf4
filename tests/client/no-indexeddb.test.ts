// No fake-indexeddb here: this file runs where IndexedDB does not exist (an old browser, a
// private mode that removes it), so the SDK must fall back to memory and say so.
import { describe, expect, it, vi } from 'vitest'
import { createBackward, isBackwardError } from '../../src/client/index.ts'
import type { BackwardStorage, LoginRequiredInfo } from '../../src/client/index.ts'
import { cookieJar, fakeLocation, loginRequiredResponse, names, record } from './fakes.ts'

const USER_A = 'AAAAAAAAAAAAAAAAAAAAAA'

/** An IndexedDB that exists but fails every call, a little later (as a blocked or corrupt database does). */
function brokenStorage(): BackwardStorage {
  const fail = async (): Promise<never> => {
    await new Promise((resolve) => setTimeout(resolve, 5))
    throw new DOMException('broken', 'UnknownError')
  }
  return { get: fail, set: fail, del: fail, values: fail, clear: fail }
}

describe('without IndexedDB', () => {
  it('falls back to memory with one error event, and still saves and replays', async () => {
    expect(globalThis.indexedDB).toBeUndefined()
    let loggedIn = false
    const sent: string[] = []
    const bw = createBackward({
      location: fakeLocation(),
      document: cookieJar(),
      onLoginRequired: () => {},
      fetch: async (request) => {
        if (request.url.endsWith('/backward/user')) return Response.json({ user: USER_A })
        sent.push(request.url)
        return loggedIn ? new Response('ok') : loginRequiredResponse()
      },
    })
    const events = record(bw)
    await bw.fetch('/api/a', { method: 'POST', body: 'a' })
    await bw.fetch('/api/b', { method: 'POST', body: 'b' })
    expect((await bw.pending()).map((a) => a.url)).toEqual(['https://app.test/api/a', 'https://app.test/api/b'])
    const errors = events.filter(([name]) => name == 'error')
    expect(errors).toHaveLength(1)
    expect(isBackwardError((errors[0]![1] as { error: unknown }).error, 'STORAGE_UNAVAILABLE')).toBe(true)
    loggedIn = true
    await bw.replay()
    expect(await bw.pending()).toEqual([])
    expect(names(events).filter((n) => n == 'replayed')).toHaveLength(2)
  })

  it('two requests at once both land in memory: the second does not fail on the IndexedDB the first gave up on', async () => {
    const bw = createBackward({ storage: brokenStorage(), location: fakeLocation(), document: cookieJar(), onLoginRequired: () => {}, fetch: async () => loginRequiredResponse() })
    const events = record(bw)
    const answers = await Promise.all([bw.fetch('/api/a', { method: 'POST', body: 'a' }), bw.fetch('/api/b', { method: 'POST', body: 'b' })])
    expect(answers.map((r) => r.status)).toEqual([401, 401])
    expect((await bw.pending()).map((a) => a.url)).toEqual(['https://app.test/api/a', 'https://app.test/api/b'])
    expect(events.filter(([name]) => name == 'error')).toHaveLength(1)
  })

  it('requests that succeed while IndexedDB is broken leave no unhandled rejection', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const bw = createBackward({ storage: brokenStorage(), location: fakeLocation(), document: cookieJar(), fetch: async () => new Response('ok') })
      const answers = await Promise.all([bw.fetch('/api/a', { method: 'POST' }), bw.fetch('/api/b', { method: 'POST' })])
      expect(answers.map((r) => r.status)).toEqual([200, 200])
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('is honest about it: persisted false, and NOT_PERSISTED before the default hand-off navigates away', async () => {
    const location = fakeLocation()
    let seenAtNavigation: string[] = []
    location.assign.mockImplementation(() => void (seenAtNavigation = names(events)))
    const bw = createBackward({ location, document: cookieJar(), fetch: async () => loginRequiredResponse() })
    const events = record(bw)
    const infos: LoginRequiredInfo[] = []
    bw.on('login-required', (info) => infos.push(info))
    await bw.fetch('/api/a', { method: 'POST', body: 'a' })
    expect(location.assign).toHaveBeenCalledOnce()
    expect(infos.map((i) => i.persisted)).toEqual([false])
    expect(seenAtNavigation).toEqual(['error', 'queued', 'login-required', 'error'])
    const last = events.at(-1)![1] as { error: Error & { code: string }; action?: { url: string } }
    expect(last.error.code).toBe('NOT_PERSISTED')
    expect(last.error.message).toMatch(/^\[backward\] /)
    expect(last.action?.url).toBe('https://app.test/api/a')
  })

  it('an in-page login (onLoginRequired) gets persisted false and no NOT_PERSISTED: nothing is lost', async () => {
    const onLoginRequired = vi.fn()
    const bw = createBackward({ location: fakeLocation(), document: cookieJar(), onLoginRequired, fetch: async () => loginRequiredResponse() })
    const events = record(bw)
    await bw.fetch('/api/a', { method: 'POST' })
    expect((onLoginRequired.mock.calls[0]![0] as LoginRequiredInfo).persisted).toBe(false)
    expect(names(events)).toEqual(['error', 'queued', 'login-required'])
  })
})
