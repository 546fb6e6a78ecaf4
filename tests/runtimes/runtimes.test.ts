// Issue 14, "CI proves it": the session-engine, login-wall and idempotency contracts (tests/runtimes/contract.ts),
// bundled once with esbuild for the neutral platform (so a `node:*` import in backward/server fails the build),
// run on Node, Bun, Deno, workerd (miniflare, no nodejs_compat) and edge-runtime. A runtime that is missing or
// cannot start fails its test with the reason; nothing is skipped.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
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

const outdir = mkdtempSync(join(tmpdir(), 'backward-runtimes-'))
let bundles: Bundles | undefined
let bundleError: unknown

beforeAll(async () => {
  try {
    bundles = await bundle(outdir, {
      esm: { cli: 'tests/runtimes/entries/cli.ts', worker: `tests/runtimes/entries/${D1 ? 'worker-d1' : 'worker'}.ts` },
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
  it('node', async () => expectAllPassed(await runProcess('node', built().esm.cli!), 'node', expected))
  it('bun', async () => expectAllPassed(await runProcess('bun', built().esm.cli!), 'bun', expected))
  it('deno (no permissions)', async () => expectAllPassed(await runProcess('deno', built().esm.cli!), 'deno', expected))
  it(`workerd through miniflare, no nodejs_compat${D1 ? ' (memory, cookie and D1 stores)' : ''}`, async () => expectAllPassed(await runWorkerd(built().esm.worker!, { d1: D1 }), 'workerd', expectedOnWorkerd))
  it('edge-runtime', async () => expectAllPassed(await runEdge(built().iife.edge!), 'edge-runtime', expected))
})
