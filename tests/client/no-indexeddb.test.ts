// No fake-indexeddb here: this file runs where IndexedDB does not exist (an old browser, a
// private mode that removes it), so the SDK must fall back to memory and say so.
import { describe, expect, it, vi } from 'vitest'
import { createBackward, isBackwardError } from '../../src/client/index.ts'
import type { LoginRequiredInfo } from '../../src/client/index.ts'
import { cookieJar, fakeLocation, loginRequiredResponse, names, record } from './fakes.ts'

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
