// Issue 13, item 2, in real Chromium against the real server: a sibling subdomain plants the login
// signal (Domain=app.test) so that Alice's saved action would be replayed as Bob. Names resolve to
// 127.0.0.1 through Chromium's --host-resolver-rules: app.test is the app, evil.app.test its sibling.
import type { Page } from '@playwright/test'
import { expect, test } from './fixtures.ts'

type Made = { bw: import('../../src/client/index.ts').Backward; log: Record<string, unknown>[] }
type Win = { makeBackward: (options?: import('../../src/client/index.ts').CreateBackwardOptions) => Made; t: Made; kinds: string[] }

test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--host-resolver-rules=MAP app.test 127.0.0.1, MAP *.app.test 127.0.0.1'],
  },
})

/** Logs in within the page, as the login form would: login(), backward's redirect, the login signal cookie. */
const logIn = (page: Page, user: string) =>
  page.evaluate(async (name) => {
    const body = new FormData()
    body.set('user', name)
    if (!(await fetch('/login?next=%2Fapp', { method: 'POST', body })).ok) throw new Error('login failed')
  }, user)

/** The user the server names at /backward/user (the SDK's userUrl). */
const whoAmI = (page: Page) => page.evaluate(async () => ((await (await fetch('/backward/user')).json()) as { user: string | null }).user)

test("a signal planted from a sibling subdomain next to Bob's: Alice's action is never run as Bob", async ({ page, context, server, state }) => {
  const app = server.replace('127.0.0.1', 'app.test')
  await page.goto(`${app}/app`)
  await page.waitForFunction(() => 'makeBackward' in window)
  await page.evaluate(() => {
    const w = window as unknown as Win
    w.t = w.makeBackward()
    w.kinds = []
    w.t.bw.on('suspicious', (event) => w.kinds.push(event.kind))
  })

  // Alice logs in (the replay remembers her tag), then her session ends without a clear() (it expired).
  await logIn(page, 'alice')
  const alice = await whoAmI(page)
  expect(alice).toMatch(/^[A-Za-z0-9_-]{22}$/)
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())
  await page.evaluate(() => fetch('/logout', { method: 'POST' }))
  expect(await page.evaluate(async () => (await (window as unknown as Win).t.bw.fetch('/api/transfer', { method: 'POST', body: 'all my money' })).status)).toBe(401)
  const saved = await page.evaluate(async () => (await (window as unknown as Win).t.bw.pending()).map((a) => a.user))
  expect(saved).toEqual([alice])

  // Mallory, on evil.app.test, plants a signal with Alice's tag for the whole site.
  const evil = await context.newPage()
  await evil.goto(`${server.replace('127.0.0.1', 'evil.app.test')}/app`)
  await evil.evaluate((tag) => void (document.cookie = `backward_login=${tag}; Domain=app.test; Path=/`), alice!)
  await evil.close()

  // Bob logs in on this browser: the server's signal joins the planted one.
  await logIn(page, 'bob')
  const bob = await whoAmI(page)
  expect(bob).not.toBe(alice)
  expect((await page.evaluate(() => document.cookie)).match(/backward_login=/g)).toHaveLength(2)
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())
  let log = await page.evaluate(() => (window as unknown as Win).t.log)
  expect(log.filter((e) => e.name == 'error')).toEqual([expect.objectContaining({ code: 'SIGNAL_CONFLICT' })])
  expect(await page.evaluate(() => (window as unknown as Win).kinds)).toEqual(['signal-conflict'])
  expect(await page.evaluate(async () => (await (window as unknown as Win).t.bw.pending()).length)).toBe(1)

  // Our own signal is gone; the planted one (Domain=app.test) cannot be deleted from here. The next
  // replay takes it, but the server names Bob: Alice's action is dropped, never sent.
  expect((await page.evaluate(() => document.cookie)).match(/backward_login=/g)).toHaveLength(1)
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())
  log = await page.evaluate(() => (window as unknown as Win).t.log)
  expect(log.filter((e) => e.name == 'failed')).toEqual([expect.objectContaining({ reason: 'user-mismatch' })])
  expect(await page.evaluate(() => (window as unknown as Win).kinds)).toEqual(['signal-conflict', 'signal-mismatch'])
  const { runs, arrivals } = await state()
  expect(runs).toEqual([])
  expect(arrivals).toEqual([])
})
