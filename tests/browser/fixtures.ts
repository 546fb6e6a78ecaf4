import { test as base, expect, type Page } from '@playwright/test'
import { spawn } from 'node:child_process'

/** What tests/browser/server.ts recorded. */
export interface ServerState {
  arrivals: { key: string; path: string }[]
  runs: {
    method: string
    path: string
    key: string | null
    user: string | null
    contentType: string
    /** Every request header as the handler got it (lower-case names). */
    headers: Record<string, string>
    /** SHA-256 (hex) of the body's exact bytes. */
    raw: string
    sha256?: string
    fields?: Record<string, unknown>
  }[]
  /** Every /api request: its status, and whether the idempotency layer answered it as a repeat. */
  requests: { path: string; key: string | null; status: number; replayed: boolean }[]
}

/**
 * `server`: the test server's origin, one server per worker (`npx tsx tests/browser/server.ts` on a
 * free port). `baseURL` points at it and every test starts with its records reset.
 */
export const test = base.extend<{ state: () => Promise<ServerState> }, { server: string }>({
  server: [
    async ({}, use) => {
      const child = spawn('npx', ['tsx', 'tests/browser/server.ts'], {
        env: { ...process.env, PORT: '0' },
        stdio: ['ignore', 'pipe', 'inherit'],
        // Its own process group, so that teardown ends npx, tsx and node together.
        detached: true,
      })
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk
          const match = /listening on (\S+)/.exec(out)
          if (match) resolve(match[1]!)
        })
        child.on('exit', (code) => reject(new Error(`test server exited (${code}): ${out}`)))
      })
      await use(url)
      process.kill(-child.pid!, 'SIGTERM')
    },
    { scope: 'worker' },
  ],
  baseURL: async ({ server }, use) => use(server),
  state: async ({ request, server }, use) => {
    await request.post(`${server}/test/reset`)
    await use(async () => (await (await request.get(`${server}/test/state`)).json()) as ServerState)
  },
})

export { expect }

/** Opens the test page and waits for the SDK (and its form interception) to be ready. */
export async function openApp(page: Page): Promise<void> {
  await page.goto('/app')
  await page.waitForFunction(() => 'bw' in window)
  await page.evaluate(() => (window as unknown as { formsReady: Promise<void> }).formsReady)
}

/** The queue as the page's SDK sees it. */
export function pending(page: Page) {
  return page.evaluate(async () =>
    (await (window as unknown as { bw: import('../../src/client/index.ts').Backward }).bw.pending()).map((a) => ({
      id: a.id,
      method: a.method,
      url: a.url,
      attempts: a.attempts,
      user: a.user,
    })),
  )
}

/** The page's backward events so far. */
export function events(page: Page) {
  return page.evaluate(() => (window as unknown as { backwardLog: Record<string, unknown>[] }).backwardLog)
}

/** Logs in through the real login form, from the login page the SDK navigated to. */
export async function logInFromLoginPage(page: Page, user = 'alice'): Promise<void> {
  await page.fill('input[name=user]', user)
  await page.click('#login')
}
