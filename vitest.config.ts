import { defineConfig } from 'vitest/config'

// One Node project for unit and integration tests (real Redis and PostgreSQL included).
// Real-browser suites run under Playwright (playwright.config.ts), not here.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/browser/**', 'tests/e2e/**', 'node_modules/**'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Store suites share real servers; files isolate themselves by prefix or schema.
    fileParallelism: true,
  },
})
