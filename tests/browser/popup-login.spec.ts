// Issue 15, item 4, in real Chromium against the real server: a page keeps its state and logs in in a
// popup window. The popup lands back on the site after login (the login signal cookie), tells the
// opener, and the opener replays its own action: its bw.fetch settles with the replayed answer. Run
// with BroadcastChannel, and without it (the localStorage `storage` event fallback).
import type { Page } from '@playwright/test'
import { expect, logInFromLoginPage, test } from './fixtures.ts'

type Made = { bw: import('../../src/client/index.ts').Backward; log: Record<string, unknown>[] }
type Win = { makeBackward: (options?: import('../../src/client/index.ts').CreateBackwardOptions) => Made; t: Made; answer: Promise<number> }

/** The opener: an instance whose onLoginRequired opens the login page in a popup and waits for `info.loggedIn`. */
async function openOpener(page: Page): Promise<void> {
  await page.goto('/app')
  await page.waitForFunction(() => 'makeBackward' in window)
  await page.evaluate(() => {
    const w = window as unknown as Win
    w.t = w.makeBackward({
      onLoginRequired: (info) => {
        window.open(info.loginUrl, 'backward-login', 'popup,width=480,height=640')
        return info.loggedIn
      },
    })
    w.answer = w.t.bw.fetch('/api/follow/42', { method: 'POST', body: 'follow' }).then((res) => res.status)
  })
}

for (const mode of ['BroadcastChannel', 'storage events'] as const) {
  test(`popup login (${mode}): the opener replays its action once and its bw.fetch gets the answer`, async ({ page, context, state }) => {
    if (mode == 'storage events') await context.addInitScript(() => delete (window as { BroadcastChannel?: unknown }).BroadcastChannel)
    const popupOpened = page.waitForEvent('popup')
    await openOpener(page)
    const popup = await popupOpened
    await popup.waitForLoadState()
    expect(new URL(popup.url()).pathname).toBe('/login')
    expect(new URL(popup.url()).searchParams.get('next')).toBe('/app')
    await logInFromLoginPage(popup, 'alice')
    // The popup lands on /app with the login signal: its own instance takes it and leaves the queue to the opener.
    await popup.waitForURL(/\/app$/)
    await popup.waitForFunction(() => 'bw' in window)
    const popupResult = await popup.evaluate(async () => {
      const r = await (window as unknown as { bw: import('../../src/client/index.ts').Backward }).bw.ready
      return r.replayed.length
    })
    expect(popupResult).toBe(0)
    // The opener's bw.fetch settles with the replayed answer.
    expect(await page.evaluate(() => (window as unknown as Win).answer)).toBe(200)
    const log = await page.evaluate(() => (window as unknown as Win).t.log)
    expect(log.map((e) => e.name)).toEqual(['queued', 'login-required', 'replayed'])
    const { runs } = await state()
    expect(runs.map((r) => [r.path, r.user])).toEqual([['/api/follow/42', 'alice']])
    expect(runs[0]!.key).toMatch(/^[0-9a-f-]{36}$/)
    expect(await page.evaluate(async () => (await (window as unknown as Win).t.bw.pending()).length)).toBe(0)
  })
}

test('a full-page login in another tab: the page that stayed after its 401 claims the replay and reports the answer', async ({ page, state }) => {
  await page.goto('/app?stay')
  await page.waitForFunction(() => 'bw' in window)
  expect(await page.evaluate(async () => (await (window as unknown as { bw: import('../../src/client/index.ts').Backward }).bw.fetch('/api/solo', { method: 'POST' })).status)).toBe(401)
  // A full-page login in another tab: the first page answered the 401 and stays, listening; it claims.
  const other = await page.context().newPage()
  await other.goto('/login?next=%2Fapp')
  await logInFromLoginPage(other, 'alice')
  await other.waitForURL(/\/app$/)
  await expect.poll(async () => (await state()).runs.map((r) => r.path)).toEqual(['/api/solo'])
  // Whoever sent it, it ran once, and the page that made it reported the answer.
  const log = await page.evaluate(() => (window as unknown as { backwardLog: Record<string, unknown>[] }).backwardLog)
  expect(log.filter((e) => e.name == 'replayed')).toHaveLength(1)
})
