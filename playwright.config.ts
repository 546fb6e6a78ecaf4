import { defineConfig } from '@playwright/test'

// Playwright cannot download browsers on this network: use Debian's Chromium (see TOOLCHAIN.md).
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium'
const args = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
const DEMO_PORT = Number(process.env.E2E_PORT ?? 3100)

export default defineConfig({
  reporter: [['list'], ['json', { outputFile: 'test-results/playwright.json' }]],
  outputDir: 'test-results/playwright',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  use: {
    launchOptions: { executablePath, args },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'e2e',
      testDir: 'tests/e2e',
      use: { baseURL: `http://localhost:${DEMO_PORT}` },
    },
  ],
  webServer: [
    {
      // The demo exactly as `npm run demo` starts it, on a fresh data directory.
      command: `npx vite build --config demo/vite.config.ts && npx tsx --conditions=source demo/server.ts`,
      env: { PORT: String(DEMO_PORT), DEMO_DATA_DIR: `.tmp/e2e-${Date.now()}` },
      url: `http://localhost:${DEMO_PORT}/api/me`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
  ],
})
