import { createHash, randomBytes } from 'node:crypto'
import { events, expect, logInFromLoginPage, openApp, pending, test } from './fixtures.ts'

type Bw = { bw: import('../../src/client/index.ts').Backward }

test('a POST with a file that got 401 is saved, survives a reload, is replayed after login with identical bytes', async ({ page, state }) => {
  const bytes = randomBytes(300_000)
  const digest = createHash('sha256').update(bytes).digest('hex')
  await openApp(page)

  // Logged out: the upload gets backward's 401, the SDK saves it and hands off to the login page.
  await page.evaluate((data) => {
    const form = new FormData()
    form.append('caption', 'holiday')
    form.append('photo', new File([new Uint8Array(data)], 'photo.bin', { type: 'application/octet-stream' }))
    void (window as unknown as Bw).bw.fetch('/api/upload', { method: 'POST', body: form })
  }, [...bytes])
  await page.waitForURL(/\/login\?next=%2Fapp/)

  // Survives a reload (an anonymous page load replays nothing).
  await openApp(page)
  await page.reload()
  await page.waitForFunction(() => 'bw' in window)
  const saved = await pending(page)
  expect(saved).toHaveLength(1)
  expect(saved[0]).toMatchObject({ method: 'POST', url: expect.stringMatching(/\/api\/upload$/), attempts: 0 })
  expect((await state()).arrivals).toEqual([])

  // Log in for real: the login form, login(), backward's redirect, back on /app with the signal.
  await page.goto('/login?next=%2Fapp')
  await logInFromLoginPage(page)
  await page.waitForURL(/\/app$/)
  await page.waitForFunction(() => 'bw' in window)
  await expect.poll(async () => (await pending(page)).length).toBe(0)

  const { runs, arrivals } = await state()
  expect(arrivals).toEqual([{ key: saved[0]!.id, path: '/api/upload' }])
  expect(runs).toHaveLength(1)
  expect(runs[0]).toMatchObject({ method: 'POST', key: saved[0]!.id, user: 'alice' })
  expect(runs[0]!.fields).toEqual({
    caption: 'holiday',
    photo: { name: 'photo.bin', type: 'application/octet-stream', size: bytes.length, sha256: digest },
  })
  expect(await events(page)).toEqual([expect.objectContaining({ name: 'replayed', status: 200, id: saved[0]!.id })])
  // The signal is single use.
  expect(await page.evaluate(() => document.cookie)).not.toContain('backward_login')
})

test('two tabs open after login replay the action once', async ({ page, context, state }) => {
  await openApp(page)
  await page.evaluate(() => void (window as unknown as Bw).bw.fetch('/api/follow/42', { method: 'POST', body: 'follow' }))
  await page.waitForURL(/\/login/)
  await logInFromLoginPage(page)
  // Stop the first tab before it loads /app: the signal cookie is now set, nobody has read it.
  await page.waitForURL(/\/app$/, { waitUntil: 'commit' })
  const tabs = [await context.newPage(), await context.newPage()]
  await Promise.all(tabs.map((tab) => tab.goto('/app')))
  await Promise.all([page, ...tabs].map((tab) => tab.waitForFunction(() => 'bw' in window)))
  // The real thing, not the in-tab fallback.
  expect(await page.evaluate(() => typeof navigator.locks?.request)).toBe('function')
  // Each tab also asks explicitly, at the same time: Web Locks let one through at a time.
  await Promise.all([page, ...tabs].map((tab) => tab.evaluate(() => (window as unknown as Bw).bw.replay())))
  await expect.poll(async () => (await pending(tabs[0]!)).length).toBe(0)

  const { arrivals, runs } = await state()
  expect(arrivals).toHaveLength(1)
  expect(runs).toHaveLength(1)
  expect(runs[0]).toMatchObject({ path: '/api/follow/42', user: 'alice' })
})

test('the network failing mid-replay loses nothing', async ({ page, state }) => {
  await openApp(page)
  await page.evaluate(async () => {
    const { bw } = window as unknown as Bw
    // Two at once: one hand-off, after both are saved.
    await Promise.all([
      bw.fetch('/api/first', { method: 'POST', body: 'one' }),
      bw.fetch('/api/second', { method: 'POST', body: 'two' }),
    ])
  })
  await page.waitForURL(/\/login/)
  const queued = await (async () => {
    await page.goto('/app')
    await page.waitForFunction(() => 'bw' in window)
    return pending(page)
  })()
  expect(queued.map((a) => new URL(a.url).pathname)).toEqual(['/api/first', '/api/second'])

  // The network dies for the second replay only: the first goes through, the second stays.
  await page.route('**/api/second', (route) => route.abort('internetdisconnected'))
  await page.goto('/login?next=%2Fapp')
  await logInFromLoginPage(page)
  await page.waitForURL(/\/app$/)
  await page.waitForFunction(() => 'bw' in window)
  await expect.poll(async () => (await pending(page)).map((a) => [new URL(a.url).pathname, a.attempts])).toEqual([['/api/second', 1]])
  expect((await state()).runs.map((r) => r.path)).toEqual(['/api/first'])

  // Back online: the automatic retry (retryDelay 300 ms on the test page) sends it, once.
  await page.unroute('**/api/second')
  await expect.poll(async () => (await pending(page)).length, { timeout: 10_000 }).toBe(0)
  const { runs } = await state()
  expect(runs.map((r) => r.path)).toEqual(['/api/first', '/api/second'])
  expect(runs[1]!.key).toBe(queued[1]!.id)
})

test('the queue is gone after logout', async ({ page, state }) => {
  await openApp(page)
  await page.evaluate(() => void (window as unknown as Bw).bw.fetch('/api/delete-me', { method: 'DELETE' }))
  await page.waitForURL(/\/login/)
  await openApp(page)
  expect(await pending(page)).toHaveLength(1)

  // The app's logout: the server forgets the session, the page forgets the queue.
  await page.evaluate(async () => {
    await fetch('/logout', { method: 'POST' })
    await (window as unknown as Bw).bw.clear()
  })
  expect(await pending(page)).toEqual([])
  // Gone from IndexedDB itself, across a reload and a later login.
  const raw = await page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open('backward')
        open.onsuccess = () => {
          // Saved actions are records with a method; the store also keeps the time of the last clear().
          const all = open.result.transaction('actions').objectStore('actions').getAll()
          all.onsuccess = () => resolve((all.result as { method?: unknown }[]).filter((v) => typeof v === 'object' && v !== null && typeof v.method === 'string').length)
          all.onerror = () => reject(all.error)
        }
      }),
  )
  expect(raw).toBe(0)
  await page.goto('/login?next=%2Fapp')
  await logInFromLoginPage(page)
  await page.waitForURL(/\/app$/)
  await page.waitForFunction(() => 'bw' in window)
  await page.waitForTimeout(300)
  expect((await state()).arrivals).toEqual([])
})
