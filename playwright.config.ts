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

const DEMO_PORT = Number(process.env.E2E_PORT ?? 3100)

export default defineConfig({
  reporter: [['list'], ['json', { outputFile: 'test-results/playwright.json' }]],
  // Two shared cores: one worker, one Chromium.
  workers: 1,
  timeout: 30_000,
  retries: 0,
  outputDir: 'test-results/playwright',
  expect: { timeout: 10_000 },
  use: { browserName: 'chromium', headless: true, launchOptions, trace: 'retain-on-failure', screenshot: 'only-on-failure' },
  projects: [
    // The browser SDK against a real Hono server (tests/browser/server.ts, started per worker).
    { name: 'browser', testDir: 'tests/browser' },
    // The demo's eight journeys (tests/e2e), against the demo exactly as `npm run demo` starts it.
    { name: 'e2e', testDir: 'tests/e2e', use: { baseURL: `http://localhost:${DEMO_PORT}` } },
  ],
  webServer: [
    {
      command: 'npx vite build --config demo/vite.config.ts && npx tsx --conditions=source demo/server.ts',
      env: { PORT: String(DEMO_PORT), DEMO_DATA_DIR: `.tmp/e2e-${Date.now()}` },
      url: `http://localhost:${DEMO_PORT}/api/me`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
  ],
})
