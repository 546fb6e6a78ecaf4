/**
 * The whole journey in real Chromium against the demo (Hono + backward/server + the Vite SPA).
 * Each test starts from a fresh browser context. The demo's data is shared, so every test uses its
 * own person and counts only its own server activity.
 */
import { createHash } from 'node:crypto'
import { expect, test, type BrowserContext, type Page } from '@playwright/test'

const SHOTS = 'docs/screenshots'

interface Activity {
  user: string
  kind: string
  target: string
  via: string
}

async function activity(page: Page, target: string, via?: string): Promise<Activity[]> {
  const all = (await (await page.request.get('/api/activity')).json()) as Activity[]
  return all.filter((a) => a.target === target && (via === undefined || a.via === via))
}

async function logIn(page: Page, { remember = false } = {}) {
  await expect(page).toHaveURL(/\/login/)
  await page.getByLabel('Username').fill('demo')
  await page.getByLabel('Password').fill('demo1234')
  if (remember) await page.getByLabel('Remember me').check()
  await page.getByRole('button', { name: 'Log in' }).click()
}

async function queued(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open('backward')
        open.onerror = () => reject(open.error)
        open.onsuccess = () => {
          const db = open.result
          if (!db.objectStoreNames.contains('actions')) return resolve(0)
          const count = db.transaction('actions').objectStore('actions').getAll()
          // Saved actions are records with an id and a method; the store also keeps the remembered user.
          count.onsuccess = () => resolve((count.result as { id?: unknown; method?: unknown }[]).filter((v) => typeof v === 'object' && v !== null && typeof v.method === 'string').length)
          count.onerror = () => reject(count.error)
        }
      }),
  )
}

async function sessionCookie(context: BrowserContext) {
  return (await context.cookies()).find((c) => c.name === 'sessionid')
}

test('1. logged out, click Follow, log in, and the follow is done once', async ({ page }) => {
  await page.goto('/')
  await page.getByRole('button', { name: 'Follow Ada Lovelace' }).click()
  await expect(page.getByRole('status').filter({ hasText: 'Your follow will be sent after you log in' })).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/1-waiting-for-login.png` })
  await expect(page).toHaveURL(/\/login\?next=%2F$/)
  await expect(page.getByText('Anything you just did is waiting')).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/2-login.png` })
  await logIn(page)
  await expect(page).toHaveURL(/\/$/)
  await expect(page.getByText('Following Ada Lovelace ✓').first()).toBeVisible()
  await expect(page.getByRole('button', { name: 'Unfollow Ada Lovelace' })).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/3-replayed.png` })
  await expect.poll(() => queued(page)).toBe(0)
  expect(await activity(page, 'ada', 'sdk')).toEqual([{ user: 'demo', kind: 'follow', target: 'ada', via: 'sdk', at: expect.any(Number) }])
})

test('2. a post with an image is replayed after login, and the server stores the same bytes', async ({ page }) => {
  const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7 + 3) % 256))
  const sha = createHash('sha256').update(bytes).digest('hex')
  await page.goto('/compose')
  await page.getByLabel("What's new?").fill('Hello from backward ✓')
  await page.getByLabel('Image').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: bytes })
  await page.getByRole('button', { name: 'Post' }).click()
  await expect(page.getByRole('status').filter({ hasText: 'Your post will be sent after you log in' })).toBeVisible()
  await logIn(page)
  await expect(page).toHaveURL(/\/compose$/)
  await expect(page.getByText('Posted ✓').first()).toBeVisible()
  const posts = (await (await page.request.get('/api/posts')).json()) as { text: string; image: { sha256: string; name: string; size: number } }[]
  const mine = posts.filter((p) => p.image?.sha256 === sha)
  expect(mine).toHaveLength(1)
  expect(mine[0]).toMatchObject({ text: 'Hello from backward ✓', image: { name: 'sunset.png', size: bytes.length } })
})

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false })
  test('3. a plain form post is recorded, replayed once by the server after login, and lands back on the page', async ({ page }) => {
    await page.goto('/nojs')
    await page.getByRole('button', { name: 'Follow Grace Hopper' }).click()
    await expect(page).toHaveURL(/\/login\?next=%2Fnojs$/)
    await logIn(page)
    await expect(page).toHaveURL(/\/nojs\?done=grace$/)
    await expect(page.getByText('Following Grace Hopper ✓')).toBeVisible()
    await page.screenshot({ path: `${SHOTS}/4-no-js-replayed.png` })
    await page.goto('/backward/login/redirect') // a second visit replays nothing
    expect(await activity(page, 'grace', 'no-js')).toHaveLength(1)
  })
})

test('4. Remember me off gives a browser-length cookie, on gives a persistent one', async ({ browser }) => {
  for (const remember of [false, true]) {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto('/login')
    await logIn(page, { remember })
    await expect(page).toHaveURL(/\/$/)
    const cookie = (await sessionCookie(context))!
    expect(cookie.httpOnly).toBe(true)
    expect(cookie.sameSite).toBe('Lax')
    if (remember) {
      const days = (cookie.expires * 1000 - Date.now()) / 86_400_000
      expect(days).toBeGreaterThan(13.9)
      expect(days).toBeLessThanOrEqual(14)
    } else {
      expect(cookie.expires).toBe(-1) // a session cookie: gone when the browser closes
    }
    await context.close()
  }
})

test('5. the session expires mid-use, the action gets a 401, and it is replayed after logging in again', async ({ page, context }) => {
  await page.goto('/login')
  await logIn(page)
  await expect(page.getByText('Logged in as demo')).toBeVisible()
  await context.clearCookies({ name: 'sessionid' }) // the session is gone, the page does not know yet
  await page.getByRole('button', { name: 'Follow Alan Turing' }).click()
  await expect(page.getByText('Your follow will be sent after you log in')).toBeVisible()
  await logIn(page)
  await expect(page.getByText('Following Alan Turing ✓').first()).toBeVisible()
  await expect.poll(async () => (await activity(page, 'alan', 'sdk')).length).toBe(1)
})

test('6. two tabs are open when login completes: the action runs once', async ({ context }) => {
  const a = await context.newPage()
  const b = await context.newPage()
  const follows: string[] = []
  for (const [name, page] of [['a', a], ['b', b]] as const) {
    page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().endsWith('/api/follow/katherine')) follows.push(name)
    })
  }
  await a.goto('/')
  await b.goto('/')
  await a.getByRole('button', { name: 'Follow Katherine Johnson' }).click()
  await expect(a).toHaveURL(/\/login/)
  // Hold tab A's replay in flight for a second, so tab B loads while it runs.
  let held = 0
  await a.route('**/api/follow/katherine', async (route) => {
    held++
    await new Promise((r) => setTimeout(r, 1000))
    await route.continue()
  })
  await logIn(a)
  await expect(a).toHaveURL(/\/$/)
  await b.reload()
  await expect.poll(() => held).toBe(1)
  await expect.poll(async () => (await activity(a, 'katherine', 'sdk')).length).toBe(1)
  await expect.poll(() => queued(a)).toBe(0)
  await Promise.all([a.reload(), b.reload()])
  await a.waitForTimeout(500)
  expect(follows).toEqual(['a', 'a']) // the first 401, then exactly one replay, from one tab
  expect(await activity(a, 'katherine', 'sdk')).toHaveLength(1)
})

test('7. logging out removes the session cookie and the queue', async ({ page, context }) => {
  await page.goto('/login')
  await logIn(page)
  await expect(page.getByText('Logged in as demo')).toBeVisible()
  // The server says "login required" for one request; stay on the page to see the queue.
  await page.route('**/api/follow/edsger', (route) =>
    route.fulfill({ status: 401, contentType: 'application/problem+json', body: JSON.stringify({ type: 'urn:backward:login-required', title: 'Login required', status: 401, loginUrl: '/login?next=%2F' }) }),
  )
  await page.route('**/login?*', (route) => route.abort())
  await page.getByRole('button', { name: 'Follow Edsger Dijkstra' }).click()
  await expect(page.getByRole('complementary').getByText('POST /api/follow/edsger')).toBeVisible()
  expect(await queued(page)).toBe(1)
  await page.unrouteAll()
  await page.goto('/')
  await page.getByRole('button', { name: 'Log out' }).click()
  await expect(page.getByRole('link', { name: 'Log in' })).toBeVisible()
  expect(await sessionCookie(context)).toBeUndefined()
  expect(await queued(page)).toBe(0)
  expect(await activity(page, 'edsger')).toEqual([])
})

test('8. a crafted next never leaves the site', async ({ page, baseURL }) => {
  const origin = new URL(baseURL!).origin
  const bad = ['//evil.example', '///evil.example', 'https://evil.example/', '/\\evil.example', '\\\\evil.example', 'javascript:alert(1)', '%2F%2Fevil.example', 'http://localhost@evil.example', ' //evil.example', 'https:evil.example']
  await page.goto(`/login?next=${encodeURIComponent(bad[0]!)}`)
  await logIn(page)
  expect(new URL(page.url()).origin).toBe(origin)
  for (const next of bad) {
    await page.goto(`/backward/login/redirect?next=${encodeURIComponent(next)}`)
    expect(new URL(page.url()).origin, next).toBe(origin)
    expect(new URL(page.url()).pathname, next).toBe('/')
  }
})
