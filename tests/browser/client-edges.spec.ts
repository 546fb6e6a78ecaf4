// The browser SDK's edges in real Chromium: an in-page login, tabs without Web Locks, and a page
// without IndexedDB (the queue in memory).
import { events, expect, pending, test } from './fixtures.ts'

type Bw = { bw: import('../../src/client/index.ts').Backward }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

test('in-page login: onLoginRequired logs in with fetch, and the original bw.fetch settles with the replayed answer, whose body it and a listener can each read', async ({ page, state }) => {
  await page.goto('/app?inpage=alice')
  await page.waitForFunction(() => 'bw' in window)
  const result = await page.evaluate(async () => {
    const { bw } = window as unknown as Bw
    const heard: Promise<string>[] = []
    // A listener that reads the body at once, before the caller gets it.
    bw.on('replayed', ({ response }) => void heard.push(response.text()))
    const res = await bw.fetch('/api/follow/7', { method: 'POST', body: 'follow' })
    return {
      status: res.status,
      replayed: res.headers.get('content-type'),
      body: await res.json(),
      event: JSON.parse(await heard[0]!),
      pending: (await bw.pending()).length,
      path: location.pathname,
      signal: document.cookie.includes('backward_login'),
    }
  })
  expect(result).toEqual({
    status: 200,
    replayed: expect.stringContaining('application/json'),
    body: { ok: true, run: 1 },
    event: { ok: true, run: 1 },
    pending: 0,
    path: '/app',
    signal: false,
  })
  const { arrivals, runs } = await state()
  // The 401 (no key) came first; then one replay, run once as the user who logged in.
  expect(arrivals).toHaveLength(1)
  expect(runs).toEqual([expect.objectContaining({ path: '/api/follow/7', user: 'alice', key: arrivals[0]!.key })])
  expect((await events(page)).map((e) => e.name)).toEqual(['queued', 'login-required', 'replayed'])
})

test('two tabs without Web Locks replaying at once send each action once (the localStorage lease)', async ({ context, page, state }) => {
  await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true }))
  await page.goto('/app?stay')
  await page.waitForFunction(() => 'bw' in window)
  expect(await page.evaluate(() => typeof navigator.locks)).toBe('undefined')
  await page.evaluate(async () => {
    const { bw } = window as unknown as Bw
    for (const name of ['a', 'b', 'c']) await bw.fetch(`/api/lease/${name}`, { method: 'POST', body: name })
  })
  expect(await pending(page)).toHaveLength(3)
  // Log in (the context's cookies), then slow every API answer so that two replays would overlap.
  await page.evaluate(async () => {
    const body = new FormData()
    body.set('user', 'alice')
    await fetch('/login?next=%2Fapp', { method: 'POST', body })
  })
  await context.route('**/api/lease/*', async (route) => {
    await sleep(150)
    await route.continue()
  })
  const tabs = [await context.newPage(), await context.newPage()]
  await Promise.all(tabs.map((tab) => tab.goto('/app?stay')))
  await Promise.all(tabs.map((tab) => tab.waitForFunction(() => 'bw' in window)))
  await Promise.all([page, ...tabs].map((tab) => tab.evaluate(() => (window as unknown as Bw).bw.replay())))
  await expect.poll(async () => (await pending(page)).length).toBe(0)
  // Long enough for a tab that found the lease taken to try again (retry 300 ms on the test page).
  await sleep(800)
  const { arrivals, runs } = await state()
  expect(arrivals.map((a) => a.path).sort()).toEqual(['/api/lease/a', '/api/lease/b', '/api/lease/c'])
  expect(runs).toHaveLength(3)
  expect(await page.evaluate(() => localStorage.getItem('backward-replay'))).toBeNull()
})

test('without IndexedDB the default hand-off says, before navigating, that it loses the queue (NOT_PERSISTED)', async ({ context, page }) => {
  const log: { name: string; code?: string; page: string }[] = []
  // Survives the navigation, unlike the page's own log.
  await context.exposeFunction('faultReport', (entry: { name: string; code?: string; page: string }) => void log.push(entry))
  await context.addInitScript(() => Object.defineProperty(window, 'indexedDB', { value: undefined, configurable: true }))
  await page.goto('/app')
  await page.waitForFunction(() => 'bw' in window)
  await page.evaluate(() => void (window as unknown as Bw).bw.fetch('/api/x', { method: 'POST', body: 'x' }))
  await page.waitForURL(/\/login\?next=%2Fapp/)
  expect(log.map((e) => e.code ?? e.name)).toEqual(['STORAGE_UNAVAILABLE', 'queued', 'login-required', 'NOT_PERSISTED'])
  expect(log.every((e) => new URL(e.page).pathname == '/app')).toBe(true)
})
