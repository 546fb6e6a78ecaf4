import { defineConfig, type LaunchOptions } from '@playwright/test'

// Debian's Chromium (`apt-get install chromium`); `npx playwright install` cannot download here.
// /usr/bin/chromium is a wrapper script, so point at the binary. Override with CHROMIUM_PATH.
const launchOptions: LaunchOptions = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    // Without these, Chromium floods the closed network with refused connections.
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ],
}

export default defineConfig({
  reporter: [['list'], ['json', { outputFile: 'test-results/playwright.json' }]],
  // Two shared cores: one worker, one Chromium.
  workers: 1,
  timeout: 30_000,
  retries: 0,
  use: { browserName: 'chromium', headless: true, launchOptions, trace: 'retain-on-failure' },
  projects: [
    // The browser SDK against a real Hono server (tests/browser/server.ts, started per worker).
    { name: 'browser', testDir: 'tests/browser' },
    // More projects (e2e on tests/e2e) go here.
  ],
})
