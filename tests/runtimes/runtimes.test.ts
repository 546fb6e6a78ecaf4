// Issue 14, "CI proves it": the session-engine, login-wall and idempotency contracts (tests/runtimes/contract.ts),
// bundled once with esbuild for the neutral platform (so a `node:*` import in backward/server fails the build),
// run on Node, Bun, Deno, workerd (miniflare, no nodejs_compat) and edge-runtime. A runtime that is missing or
// cannot start fails its test with the reason; nothing is skipped.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memoryStore } from '../../src/server/index.ts'
import { contractChecks, type ContractReport } from './contract.ts'
import { bundle, ROOT, runEdge, runProcess, runWorkerd, type Bundles } from './runners.ts'

/** workerd also runs the session contract on D1 once the D1 store exists. */
const D1 = existsSync(join(ROOT, 'src/server/stores/d1.ts'))
const expected = contractChecks().map((c) => c.name)
const expectedOnWorkerd = contractChecks(D1 ? { d1Store: { make: () => memoryStore(), revocable: true } } : {}).map((c) => c.name)

/** Each runtime gets this long, inside the test's own timeout, so a hung check fails with the runtime's name. */
const limit = { timeoutMs: 20_000 }
const TEST_TIMEOUT = 30_000

const outdir = mkdtempSync(join(tmpdir(), 'backward-runtimes-'))
let bundles: Bundles | undefined
let bundleError: unknown

/**
 * The D1 worker entry, written at test time so that the type check does not depend on the D1 store
 * existing yet. Each check's store shares one miniflare D1 database; the session ids keep them apart.
 */
function d1Entry(): string {
  const src = (path: string) => JSON.stringify(join(ROOT, path))
  return `import * as d1 from ${src('src/server/stores/d1.ts')}
import { contractWorker } from ${src('tests/runtimes/entries/worker.ts')}
export default contractWorker((env) => ({
  d1Store: {
    revocable: true,
    async make() {
      const store = d1.d1Store({ db: env.DB })
      if (typeof store.migrate === 'function') await store.migrate()
      else if (typeof d1.migrate === 'function') await d1.migrate(env.DB)
      return store
    },
  },
}))
`
}

beforeAll(async () => {
  try {
    if (D1) writeFileSync(join(outdir, 'worker-d1.ts'), d1Entry())
    bundles = await bundle(outdir, {
      esm: { cli: 'tests/runtimes/entries/cli.ts', worker: D1 ? join(outdir, 'worker-d1.ts') : 'tests/runtimes/entries/worker.ts' },
      iife: { edge: 'tests/runtimes/entries/edge.ts' },
    })
  } catch (error) {
    bundleError = error
  }
})
afterAll(() => rmSync(outdir, { recursive: true, force: true }))

function built(): Bundles {
  if (bundles === undefined) throw new Error(`[runtimes] esbuild could not bundle backward/server for the neutral platform: ${(bundleError as Error)?.message ?? bundleError}`)
  return bundles
}

function expectAllPassed(report: unknown, runtime: string, names: string[]) {
  const r = report as ContractReport
  const failures = (r.failures ?? []).map((f) => `${f.name}: ${f.message}`).join('\n')
  expect(r.runtime).toBe(runtime)
  expect(failures, `${runtime} failures`).toBe('')
  expect(r.failed).toBe(0)
  expect(r.names).toEqual(names)
  expect(r.passed).toBe(names.length)
}

describe('backward/server on every runtime (contract suites)', () => {
  it('node', async () => expectAllPassed(await runProcess('node', built().esm.cli!, limit), 'node', expected), TEST_TIMEOUT)
  it('bun', async () => expectAllPassed(await runProcess('bun', built().esm.cli!, limit), 'bun', expected), TEST_TIMEOUT)
  it('deno (no permissions)', async () => expectAllPassed(await runProcess('deno', built().esm.cli!, limit), 'deno', expected), TEST_TIMEOUT)
  it(`workerd through miniflare, no nodejs_compat${D1 ? ' (D1 store too)' : ''}`, async () => expectAllPassed(await runWorkerd(built().esm.worker!, { d1: D1, ...limit }), 'workerd', expectedOnWorkerd), TEST_TIMEOUT)
  it('edge-runtime', async () => expectAllPassed(await runEdge(built().iife.edge!, limit), 'edge-runtime', expected), TEST_TIMEOUT)
})
