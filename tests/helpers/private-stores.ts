/**
 * Private Redis and PostgreSQL servers on free ports, which a test may crash and start again on the
 * same port (tests/server/outage.test.ts, the soak's restart-under-load check). The shared servers on
 * 6379 and 5432 are never touched.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postgresPing, redisPing } from './services.ts'

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export function stop(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill(signal)
  })
}

async function until(ready: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${ms} ms`)
    await sleep(20)
  }
}

/** A store server that can be crashed and started again on the same port, with its data kept. */
export interface PrivateServer {
  url: string
  /** A crash: SIGKILL for Redis, SIGQUIT (immediate shutdown) for PostgreSQL. */
  kill(): Promise<void>
  start(): Promise<void>
  /** Stops the server and removes its directory. */
  dispose(): Promise<void>
}

/** Starts a server, and disposes of it (process and directory) when it does not come up. */
async function privateServer(options: { url: string; what: string; dir: string; spawn: () => ChildProcess; ping: (url: string) => Promise<{ ok: boolean }>; crash: NodeJS.Signals; shutdown: NodeJS.Signals }): Promise<PrivateServer> {
  let child: ChildProcess | undefined
  const server: PrivateServer = {
    url: options.url,
    async start() {
      child = options.spawn()
      await until(async () => (await options.ping(options.url)).ok, options.what)
    },
    kill: () => stop(child, options.crash),
    async dispose() {
      await stop(child, options.shutdown)
      rmSync(options.dir, { recursive: true, force: true })
    },
  }
  try {
    await server.start()
  } catch (error) {
    await server.dispose()
    throw error
  }
  return server
}

export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * A private redis-server. With `aof`, an fsync-always AOF, so a SIGKILL loses no session; without it,
 * nothing is saved and a restarted server is empty. `args` are more redis-server options.
 */
export async function privateRedis(options: { aof: boolean; args?: readonly string[] }): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-redis-'))
  const port = await freePort()
  const persistence = options.aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence, ...(options.args ?? []), '--daemonize', 'no']
  return privateServer({
    url: `redis://127.0.0.1:${port}`,
    what: `private redis-server on ${port}`,
    dir,
    spawn: () => spawn('redis-server', args, { stdio: 'ignore' }),
    ping: redisPing,
    crash: 'SIGKILL',
    shutdown: 'SIGKILL',
  })
}

/** A private PostgreSQL cluster needs the server binaries and, since initdb refuses root, the postgres user. */
const pgBin = (() => {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0]
  return version === undefined ? undefined : join(root, version, 'bin')
})()

const pgUser = (() => {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  try {
    return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) }
  } catch {
    return undefined
  }
})()

/** Why a private PostgreSQL cannot run here ('' when it can). */
export const postgresSkip = pgBin === undefined ? 'PostgreSQL server binaries not found' : pgUser === undefined ? 'running as root and there is no postgres user for initdb' : ''

/** A private PostgreSQL cluster (initdb as the postgres user); a SIGQUIT is an immediate, crash-like stop. */
export async function privatePostgres(): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-pg-'))
  const as = { uid: pgUser!.uid, gid: pgUser!.gid }
  chownSync(dir, as.uid, as.gid)
  const data = join(dir, 'data')
  execFileSync(join(pgBin!, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions'], { ...as, stdio: 'ignore' })
  const port = await freePort()
  return privateServer({
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    what: `private postgres on ${port}`,
    dir,
    spawn: () => spawn(join(pgBin!, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'shared_buffers=16MB'], { ...as, stdio: 'ignore' }),
    ping: postgresPing,
    crash: 'SIGQUIT',
    shutdown: 'SIGINT',
  })
}
