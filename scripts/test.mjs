// The whole suite, one command: type check, Vitest (unit + real Redis/PostgreSQL), Playwright (real Chromium).
// Ends with the plain line "N passed, N failed, N skipped", counted from the runners' JSON reports.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { ensureChromium } from './chromium.mjs'

const only = process.argv[2] // optional: "unit" or "browser"
mkdirSync('test-results', { recursive: true })
const totals = { passed: 0, failed: 0, skipped: 0 }
const run = (cmd, args, env = {}) => spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } }).status

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return null
  }
}

if (only === undefined) {
  console.log('\n[backward] type check (tsc --noEmit)')
  const ok = run('npx', ['tsc', '--noEmit']) === 0
  totals[ok ? 'passed' : 'failed'] += 1
}

if (only === undefined || only === 'unit') {
  console.log('\n[backward] unit and integration tests (Vitest)')
  rmSync('test-results/vitest.json', { force: true })
  // The consumer test (tests/consumer) drives the README's quick start in Chromium too.
  let chromiumEnv = {}
  try {
    chromiumEnv = { CHROMIUM_PATH: ensureChromium() }
  } catch (error) {
    console.error(error.message)
  }
  const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', '--outputFile.json=test-results/vitest.json'], chromiumEnv)
  const report = readJson('test-results/vitest.json')
  if (report === null) {
    totals.failed += 1
    console.error('[backward] Vitest wrote no report (exit code ' + status + ').')
  } else {
    totals.passed += report.numPassedTests
    totals.failed += report.numFailedTests + (status !== 0 && report.numFailedTests === 0 ? 1 : 0)
    totals.skipped += report.numPendingTests + report.numTodoTests
  }
}

if (only === undefined || only === 'browser') {
  console.log('\n[backward] browser tests (Playwright, real Chromium)')
  const chromium = ensureChromium()
  rmSync('test-results/playwright.json', { force: true })
  const status = run('npx', ['playwright', 'test'], { CHROMIUM_PATH: chromium })
  const report = readJson('test-results/playwright.json')
  if (report === null) {
    totals.failed += 1
    console.error('[backward] Playwright wrote no report (exit code ' + status + ').')
  } else {
    const { expected = 0, unexpected = 0, flaky = 0, skipped = 0 } = report.stats ?? {}
    totals.passed += expected + flaky
    totals.failed += unexpected + (status !== 0 && unexpected === 0 ? 1 : 0)
    totals.skipped += skipped
  }
}

const line = `${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`
writeFileSync('test-results/summary.txt', line + '\n')
console.log('\n' + line)
process.exit(totals.failed === 0 ? 0 : 1)
