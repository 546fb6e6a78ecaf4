/**
 * Bundles runtime-neutral code once with esbuild and runs it on Node, Bun, Deno, workerd (miniflare,
 * no nodejs_compat) and edge-runtime. Shared by the contract test (tests/runtimes/runtimes.test.ts)
 * and the runtime bench (bench/runtimes.ts). A runtime that is missing or cannot start throws with a
 * message that says so: the caller fails, it never skips.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const RUNTIMES = ['node', 'bun', 'deno', 'workerd', 'edge-runtime'] as const
export type RuntimeName = (typeof RUNTIMES)[number]

/** The compatibility date workerd runs the bundle under; no compatibility flags (no nodejs_compat). */
export const COMPATIBILITY_DATE = '2026-04-01'

export interface Bundles {
  /** ESM for Node, Bun, Deno and workerd; built for `platform: 'neutral'`, so a `node:*` import fails the build. */
  esm: Record<string, string>
  /** Classic scripts for edge-runtime, which evaluates code rather than importing a module. */
  iife: Record<string, string>
}

/** One esbuild pass per format, in parallel; hono is bundled in. */
export async function bundle(outdir: string, entries: { esm: Record<string, string>; iife: Record<string, string> }): Promise<Bundles> {
  const common = { bundle: true, write: true, outdir, logLevel: 'silent', target: 'es2022', absWorkingDir: ROOT, legalComments: 'none' } as const
  const out = (names: Record<string, string>, ext: string) => Object.fromEntries(Object.keys(names).map((name) => [name, join(outdir, `${name}.${ext}`)]))
  await Promise.all([
    build({ ...common, entryPoints: entries.esm, format: 'esm', platform: 'neutral', mainFields: ['module', 'main'], outExtension: { '.js': '.mjs' } }),
    Object.keys(entries.iife).length === 0 ? null : build({ ...common, entryPoints: entries.iife, format: 'iife', platform: 'browser' }),
  ])
  return { esm: out(entries.esm, 'mjs'), iife: out(entries.iife, 'js') }
}

function binary(name: 'bun' | 'deno'): string {
  const path = join(ROOT, 'node_modules', '.bin', name)
  if (!existsSync(path)) throw new Error(`[runtimes] ${name} is not installed: ${path} is missing. \`npm ci\` installs the devDependency "${name}" from the npm registry.`)
  return path
}

/** The command that runs an ESM file on a process runtime, with no permissions for Deno. */
export function command(runtime: 'node' | 'bun' | 'deno', file: string, args: string[] = []): [string, string[]] {
  if (runtime === 'node') return [process.execPath, [file, ...args]]
  if (runtime === 'bun') return [binary('bun'), ['run', file, ...args]]
  return [binary('deno'), ['run', '--no-config', '--no-lock', '--no-prompt', '--quiet', file, ...args]]
}

/** Runs `file` and parses the last line it prints as JSON. */
export function runProcess(runtime: 'node' | 'bun' | 'deno', file: string, { timeoutMs = 60_000, args = [] as string[] } = {}): Promise<unknown> {
  const [cmd, argv] = command(runtime, file, args)
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    let timedOut = false
    const timer = setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), timeoutMs)
    child.on('error', (error) => (clearTimeout(timer), reject(new Error(`[runtimes] ${runtime} could not start (${cmd}): ${error.message}`))))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const last = stdout.trim().split('\n').pop() ?? ''
      try {
        if (timedOut) throw new Error(`no answer within ${timeoutMs} ms`)
        if (code !== 0) throw new Error(`exit ${code ?? signal}`)
        resolve(JSON.parse(last))
      } catch (error) {
        reject(new Error(`[runtimes] ${runtime} failed (${(error as Error).message}).\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`))
      }
    })
  })
}

/** Runs a module worker (one self-contained bundle, passed as text) on workerd through miniflare and returns the JSON its fetch answers for `path`. */
export async function runWorkerd(file: string, { d1 = false, path = '/', timeoutMs = 60_000 } = {}): Promise<unknown> {
  let Miniflare: typeof import('miniflare').Miniflare
  try {
    ;({ Miniflare } = await import('miniflare'))
  } catch (error) {
    throw new Error(`[runtimes] miniflare is not installed (\`npm ci\` installs the devDependency "miniflare"): ${(error as Error).message}`)
  }
  const mf = new Miniflare({ modules: true, script: readFileSync(file, 'utf8'), compatibilityDate: COMPATIBILITY_DATE, compatibilityFlags: [], ...(d1 ? { d1Databases: { DB: 'contract' } } : {}) })
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`[runtimes] workerd did not answer within ${timeoutMs} ms`)), timeoutMs).unref())
    const res = await Promise.race([mf.dispatchFetch(`http://localhost${path}`), timeout])
    const text = await res.text()
    if (!res.ok) throw new Error(`[runtimes] workerd answered ${res.status}: ${text.slice(0, 2000)}`)
    return JSON.parse(text)
  } finally {
    await mf.dispose()
  }
}

/** Evaluates a classic script in edge-runtime and returns the JSON its fetch listener answers for `path`. */
export async function runEdge(file: string, { path = '/', timeoutMs = 60_000 } = {}): Promise<unknown> {
  let EdgeRuntime: typeof import('edge-runtime').EdgeRuntime
  try {
    ;({ EdgeRuntime } = await import('edge-runtime'))
  } catch (error) {
    throw new Error(`[runtimes] edge-runtime is not installed (\`npm ci\` installs the devDependency "edge-runtime"): ${(error as Error).message}`)
  }
  const runtime = new EdgeRuntime({ initialCode: readFileSync(file, 'utf8') })
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`[runtimes] edge-runtime did not answer within ${timeoutMs} ms`)), timeoutMs).unref())
  const res = await Promise.race([runtime.dispatchFetch(`http://localhost${path}`), timeout])
  const text = await Promise.race([res.text(), timeout])
  await res.waitUntil()
  if (!res.ok) throw new Error(`[runtimes] edge-runtime answered ${res.status}: ${text.slice(0, 2000)}`)
  return JSON.parse(text)
}
