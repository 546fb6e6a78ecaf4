import { describe, expect, it, vi } from 'vitest'
import { isBackwardError } from '../../src/client/index.ts'
import type { LoginRequiredInfo } from '../../src/client/index.ts'
import { IDEMPOTENCY_HEADER } from '../../src/shared/protocol.ts'
import { api, fakeLocation, loginRequiredResponse, names, page, useApi } from './helpers.ts'

useApi()

describe('hand-off to login', () => {
  it('navigates to the server\'s loginUrl when it already names next', async () => {
    const { bw, location, events } = await page()
    const res = await bw.fetch('/api/follow/42', { method: 'POST' })
    // With a navigation, the promise settles with the 401 itself.
    expect(res.status).toBe(401)
    expect(location.assign).toHaveBeenCalledExactlyOnceWith('https://app.test/login?next=%2Fpeople')
    const info = events.find(([name]) => name == 'login-required')![1] as LoginRequiredInfo
    expect(info.loginUrl).toBe('https://app.test/login?next=%2Fpeople')
    expect(info.action.url).toMatch(/\/api\/follow\/42$/)
    expect(info.response.status).toBe(401)
  })

  it('adds next=<path, query and hash of this page> when the login URL has none', async () => {
    api.loginUrl = '/login'
    const { bw, location } = await page()
    await bw.fetch('/api/x', { method: 'POST' })
    expect(location.assign).toHaveBeenCalledWith('https://app.test/login?next=%2Fpeople%3Fpage%3D2%23top')
  })

  it('follows an absolute login URL on this site', async () => {
    api.loginUrl = 'https://app.test/login?next=%2Fa'
    const { bw, location } = await page()
    await bw.fetch('/api/x', { method: 'POST' })
    expect(location.assign).toHaveBeenCalledWith('https://app.test/login?next=%2Fa')
  })

  it('hands off once for many 401s at once, after saving every action in order', async () => {
    api.delays = [30, 5, 50, 0, 20]
    const { bw, location, events } = await page()
    const answers = await Promise.all([1, 2, 3, 4, 5].map((n) => bw.fetch(`/api/item/${n}`, { method: 'POST' })))
    expect(answers.map((r) => r.status)).toEqual([401, 401, 401, 401, 401])
    expect(location.assign).toHaveBeenCalledOnce()
    expect(names(events).filter((n) => n == 'login-required')).toHaveLength(1)
    expect(names(events).filter((n) => n == 'queued')).toHaveLength(5)
    // Navigation comes after the last save: leaving earlier would abort the others.
    expect(names(events).at(-1)).toBe('login-required')
    expect((await bw.pending()).map((a) => a.url.split('/').pop())).toEqual(['1', '2', '3', '4', '5'])
  })

  it('calls a custom onLoginRequired once with the info', async () => {
    const onLoginRequired = vi.fn()
    const { bw, location } = await page({ onLoginRequired })
    await Promise.all([bw.fetch('/api/a', { method: 'POST' }), bw.fetch('/api/b', { method: 'POST' })])
    expect(onLoginRequired).toHaveBeenCalledOnce()
    expect(onLoginRequired.mock.calls[0]![0]).toMatchObject({ loginUrl: 'https://app.test/login?next=%2Fpeople' })
    expect(location.assign).not.toHaveBeenCalled()
  })

  it('in-page login: the original promises settle with the replayed responses', async () => {
    const onLoginRequired = vi.fn(async () => {
      api.loggedIn = true // the modal logged the user in
      return true
    })
    const { bw, events } = await page({ onLoginRequired })
    const [a, b] = await Promise.all([
      bw.fetch('/api/a', { method: 'POST', body: 'A' }),
      bw.fetch('/api/b', { method: 'POST', body: 'B' }),
    ])
    expect([a.status, b.status]).toEqual([200, 200])
    expect(((await a.json()) as { url: string }).url).toMatch(/\/api\/a$/)
    expect(((await b.json()) as { url: string }).url).toMatch(/\/api\/b$/)
    expect(await bw.pending()).toEqual([])
    expect(names(events).filter((n) => n == 'replayed')).toHaveLength(2)
    const replays = api.received.filter((r) => r.headers.has(IDEMPOTENCY_HEADER))
    expect(replays).toHaveLength(2)
  })

  it('in-page login: the caller gets a clone of the replay\'s answer, so it and a replayed listener each read the body', async () => {
    const { bw } = await page({
      onLoginRequired: async () => {
        api.loggedIn = true
        return true
      },
    })
    const heard: Promise<string>[] = []
    // A listener that reads the body at once, before the caller can.
    bw.on('replayed', ({ response }) => void heard.push(response.text()))
    const res = await bw.fetch('/api/a', { method: 'POST', body: 'A' })
    expect(res.bodyUsed).toBe(false)
    expect(((await res.json()) as { url: string }).url).toMatch(/\/api\/a$/)
    expect(heard).toHaveLength(1)
    expect(JSON.parse(await heard[0]!)).toMatchObject({ ok: true })
  })

  it('info.persisted is true with IndexedDB', async () => {
    const { bw, events } = await page({ onLoginRequired: () => {} })
    await bw.fetch('/api/a', { method: 'POST' })
    expect((events.find(([name]) => name == 'login-required')![1] as LoginRequiredInfo).persisted).toBe(true)
  })

  it.each([
    ['resolves false', async () => false],
    ['rejects', async () => Promise.reject(new Error('modal closed'))],
    ['throws', () => {
      throw new Error('boom')
    }],
  ])('in-page login that %s: the promise settles with the 401 and the action stays', async (_, onLoginRequired) => {
    const { bw } = await page({ onLoginRequired })
    const res = await bw.fetch('/api/a', { method: 'POST' })
    expect(res.status).toBe(401)
    expect(await bw.pending()).toHaveLength(1)
  })

  it('in-page login where the replay still gets 401: settles with that 401, the action stays', async () => {
    const { bw } = await page({ onLoginRequired: async () => true })
    const res = await bw.fetch('/api/a', { method: 'POST' })
    expect(res.status).toBe(401)
    expect(await bw.pending()).toHaveLength(1)
  })

  it('a later 401, after a hand-off finished, hands off again', async () => {
    const onLoginRequired = vi.fn()
    const { bw } = await page({ onLoginRequired })
    await bw.fetch('/api/a', { method: 'POST' })
    await bw.fetch('/api/b', { method: 'POST' })
    expect(onLoginRequired).toHaveBeenCalledTimes(2)
  })
})

describe('security', () => {
  it.each([
    'https://evil.test/login',
    '//evil.test/login',
    '/\\evil.test/login',
    'javascript:alert(1)',
    'http://app.test/login', // a downgrade from https
  ])('never follows a login URL off this site: %s', async (loginUrl) => {
    api.loginUrl = loginUrl
    const { bw, location, events } = await page()
    const res = await bw.fetch('/api/x', { method: 'POST' })
    expect(res.status).toBe(401)
    expect(location.assign).not.toHaveBeenCalled()
    const error = events.find(([name]) => name == 'error')
    expect(error && isBackwardError((error[1] as { error: unknown }).error, 'UNSAFE_REDIRECT')).toBe(true)
    // The action is saved all the same: the user can log in by other means.
    expect(await bw.pending()).toHaveLength(1)
  })

  it('a same-origin URL whose path starts with // is followed as an absolute URL, never as a scheme-relative path', async () => {
    api.loginUrl = 'https://app.test//evil.test/login?next=%2F'
    const { bw, location } = await page()
    await bw.fetch('/api/x', { method: 'POST' })
    expect(location.assign).toHaveBeenCalledExactlyOnceWith('https://app.test//evil.test/login?next=%2F')
  })

  it('follows an http login URL on an http page', async () => {
    const { bw, location } = await page({
      location: fakeLocation('http://app.test/'),
      fetch: async () => loginRequiredResponse('http://app.test/login'),
    })
    await bw.fetch('/api/x', { method: 'POST' })
    expect(location.assign).toHaveBeenCalledWith('http://app.test/login?next=%2F')
  })

})
