/**
 * Private Redis and PostgreSQL servers on free ports, for the restart-under-load check (the same
 * approach as tests/server/outage.test.ts). The shared servers on 6379 and 5432 are never touched.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postgresPing, redisPing } from '../helpers/services.ts'

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
  kill(): Promise<void>
  start(): Promise<void>
  dispose(): Promise<void>
}

export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** A private redis-server with an fsync-always AOF, so a SIGKILL loses no session. */
export async function privateRedis(): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-soak-redis-'))
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  let child: ChildProcess | undefined
  const server: PrivateServer = {
    url,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no'], { stdio: 'ignore' })
      await until(async () => (await redisPing(url)).ok, `private redis-server on ${port}`)
    },
    kill: () => stop(child, 'SIGKILL'),
    async dispose() {
      await stop(child, 'SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }
  await server.start()
  return server
}

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
  const dir = mkdtempSync(join(tmpdir(), 'bw-soak-pg-'))
  chownSync(dir, pgUser!.uid, pgUser!.gid)
  const data = join(dir, 'data')
  const as = { uid: pgUser!.uid, gid: pgUser!.gid }
  execFileSync(join(pgBin!, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions'], { ...as, stdio: 'ignore' })
  const port = await freePort()
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  let child: ChildProcess | undefined
  const server: PrivateServer = {
    url,
    async start() {
      child = spawn(join(pgBin!, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'shared_buffers=16MB'], { ...as, stdio: 'ignore' })
      await until(async () => (await postgresPing(url)).ok, `private postgres on ${port}`)
    },
    kill: () => stop(child, 'SIGQUIT'),
    async dispose() {
      await stop(child, 'SIGINT')
      rmSync(dir, { recursive: true, force: true })
    },
  }
  await server.start()
  return server
}
