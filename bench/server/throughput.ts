// Server throughput: every target in its own child process, autocannon in this one. Rounds go
// round-robin over targets (the starting target rotates each round), so slow drift on a shared
// 2-core machine (other test runs, thermal) spreads over all targets instead of hitting one.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { build } from 'esbuild'
import { CONNECTIONS, DURATION, ROUNDS } from '../config.ts'
import { median } from '../stats.ts'
import { TARGETS, type TargetName } from './target.ts'

export const WORKLOADS = {
  anonymous: { path: '/read', cookie: false, label: 'anonymous (no cookie)' },
  read: { path: '/read', cookie: true, label: 'read-only (session cookie)' },
  write: { path: '/write', cookie: true, label: 'read+write (counter++)' },
} as const
export type Workload = keyof typeof WORKLOADS

export interface Run {
  rps: number
  p50: number
  p99: number
  /** Non-2xx answers plus connection errors: a target that fails fast must not look fast. */
  bad: number
}
export interface Cell {
  runs: Run[]
  /** Ratio to bare Hono's req/s in the same round and workload, per round. */
  ratios: number[]
  rps: number
  p50: number
  p99: number
  ratio: number
  bad: number
}
export interface ThroughputResult {
  targets: TargetName[]
  cells: Record<string, Record<Workload, Cell>>
  rounds: number
  duration: number
  connections: number
  seconds: number
}

interface Live {
  name: TargetName
  child: ChildProcess
  port: number
  cookie: string
}

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))
export const BUILT_CHILD = fileURLToPath(new URL('../.build/child.mjs', import.meta.url))

/**
 * Compiles the target child to plain JavaScript first. Under tsx every function of backward's
 * TypeScript would carry a `__name()` call (tsx compiles with esbuild's keepNames), a cost the peers,
 * shipped as JavaScript, do not pay and that a built backward does not have either.
 */
export async function compileChild(): Promise<void> {
  await build({
    entryPoints: [CHILD],
    outfile: BUILT_CHILD,
    bundle: true,
    packages: 'external',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    conditions: ['source'],
    logLevel: 'silent',
  })
}

function start(name: TargetName): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [BUILT_CHILD, name], { stdio: ['pipe', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`[bench] target "${name}" did not start within 30 s`)), 30_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /READY (\d+)/.exec(out)
      if (match) {
        clearTimeout(timer)
        resolve({ child, port: Number(match[1]) })
      }
    })
    child.on('exit', (code) => reject(new Error(`[bench] target "${name}" exited with ${code} before it was ready`)))
  })
}

/** Targets that keep no session: they get no cookie check. */
const REFERENCES = new Set<string>(['hono (bare)', 'hono + same headers'])

/** Creates one session on the target and returns the Cookie header that carries it. */
async function createSession(name: string, port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/write`)
  // The last Set-Cookie of a name wins, as in a browser (hono-sessions sets its cookie twice).
  const jar = new Map<string, string>()
  for (const line of response.headers.getSetCookie()) {
    const pair = line.split(';')[0]!
    const eq = pair.indexOf('=')
    jar.set(pair.slice(0, eq), pair.slice(eq + 1))
  }
  const cookie = [...jar].filter(([, value]) => value !== '').map(([name, value]) => `${name}=${value}`).join('; ')
  if (!REFERENCES.has(name)) {
    // The cookie must really carry the session: a read with it sees the counter.
    const check = (await (await fetch(`http://127.0.0.1:${port}/read`, { headers: { cookie } })).json()) as { count: number }
    if (cookie === '' || check.count !== 1) throw new Error(`[bench] target "${name}" did not keep its session (cookie "${cookie.slice(0, 20)}…", count ${check.count})`)
  }
  return cookie
}

async function hit(target: Live, workload: Workload, duration: number): Promise<Run> {
  const w = WORKLOADS[workload]
  const result = await autocannon({
    url: `http://127.0.0.1:${target.port}${w.path}`,
    connections: CONNECTIONS,
    duration,
    ...(w.cookie && target.cookie !== '' ? { headers: { cookie: target.cookie } } : {}),
  })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, bad: result.non2xx + result.errors }
}

export async function runThroughput(log: (line: string) => void): Promise<ThroughputResult> {
  const began = performance.now()
  const names = Object.keys(TARGETS) as TargetName[]
  const live: Live[] = []
  try {
    await compileChild()
    // Started one by one: several tsx start-ups at once on 2 cores only slow each other down.
    for (const name of names) {
      const { child, port } = await start(name)
      const entry: Live = { name, child, port, cookie: '' }
      live.push(entry)
      entry.cookie = await createSession(name, port)
    }
    log(`  ${live.length} targets up; warming up`)
    for (const target of live) for (const workload of Object.keys(WORKLOADS) as Workload[]) await hit(target, workload, 0.5)

    const runs = new Map<string, Run[]>()
    const ratios = new Map<string, number[]>()
    const key = (name: string, workload: Workload) => `${name}\u0000${workload}`
    for (let round = 0; round < ROUNDS; round++) {
      for (const workload of Object.keys(WORKLOADS) as Workload[]) {
        const order = live.map((_, i) => live[(i + round) % live.length]!)
        const inRound = new Map<string, Run>()
        for (const target of order) {
          const run = await hit(target, workload, DURATION)
          inRound.set(target.name, run)
          runs.set(key(target.name, workload), [...(runs.get(key(target.name, workload)) ?? []), run])
        }
        const ceiling = inRound.get('hono (bare)')!.rps
        for (const [name, run] of inRound) ratios.set(key(name, workload), [...(ratios.get(key(name, workload)) ?? []), run.rps / ceiling])
      }
      log(`  round ${round + 1}/${ROUNDS} done (${((performance.now() - began) / 1000).toFixed(0)} s)`)
    }

    const cells: ThroughputResult['cells'] = {}
    for (const { name } of live) {
      cells[name] = {} as Record<Workload, Cell>
      for (const workload of Object.keys(WORKLOADS) as Workload[]) {
        const r = runs.get(key(name, workload))!
        const q = ratios.get(key(name, workload))!
        cells[name][workload] = {
          runs: r,
          ratios: q,
          rps: median(r.map((x) => x.rps)),
          p50: median(r.map((x) => x.p50)),
          p99: median(r.map((x) => x.p99)),
          ratio: median(q),
          bad: r.reduce((sum, x) => sum + x.bad, 0),
        }
      }
    }
    return { targets: names, cells, rounds: ROUNDS, duration: DURATION, connections: CONNECTIONS, seconds: (performance.now() - began) / 1000 }
  } finally {
    await Promise.all(live.map(({ child }) => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
      setTimeout(() => {
        child.kill('SIGKILL')
        resolve()
      }, 5000).unref()
    })))
  }
}
