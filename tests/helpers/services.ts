/**
 * Checks once per test file whether the shared Redis and PostgreSQL answer. A suite that needs one
 * is skipped, with the reason in its title, when it does not answer, except under CI (`CI` set),
 * where a missing server is a failure: CI starts both, so a skip there would hide a broken setup.
 */
import { connect } from 'node:net'
import pg from 'pg'

export const REDIS_URL = process.env.BACKWARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const POSTGRES_URL = process.env.BACKWARD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export interface Service {
  ok: boolean
  /** Why the service is unusable ('' when ok). */
  reason: string
}

/** One PING to the Redis at `url`, with no client library. */
export function redisPing(url: string): Promise<Service> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) })
    const done = (service: Service) => {
      socket.destroy()
      resolve(service)
    }
    socket.setTimeout(2000, () => done({ ok: false, reason: `Redis at ${hostname}:${port} did not answer within 2 s` }))
    socket.once('error', (error) => done({ ok: false, reason: `Redis at ${hostname}:${port} is unreachable (${(error as NodeJS.ErrnoException).code ?? error.message})` }))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG') ? { ok: true, reason: '' } : { ok: false, reason: `Redis answered PING with ${JSON.stringify(chunk.toString().trim())}` }))
  })
}

/** One `SELECT 1` on the PostgreSQL at `url`. */
export async function postgresPing(url: string): Promise<Service> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return { ok: true, reason: '' }
  } catch (error) {
    return { ok: false, reason: `PostgreSQL at ${url} is unusable (${(error as { code?: string }).code ?? (error as Error).message})` }
  } finally {
    await client.end().catch(() => {})
  }
}

function settle(name: string, service: Service): Service {
  if (!service.ok && process.env.CI) {
    throw new Error(`[backward tests] ${name} is required under CI: ${service.reason}`)
  }
  if (!service.ok) console.warn(`[backward tests] skipping ${name} suites: ${service.reason}`)
  return service
}

let redis: Promise<Service> | undefined
let postgres: Promise<Service> | undefined

/** Whether the shared Redis answers; throws under CI when it does not. */
export function redisService(): Promise<Service> {
  redis ??= redisPing(REDIS_URL).then((s) => settle('Redis', s))
  return redis
}

/** Whether the shared PostgreSQL answers; throws under CI when it does not. */
export function postgresService(): Promise<Service> {
  postgres ??= postgresPing(POSTGRES_URL).then((s) => settle('PostgreSQL', s))
  return postgres
}

/** A suite title that carries the skip reason, so the report says why it did not run. */
export function titled(title: string, service: Service): string {
  return service.ok ? title : `${title} (skipped: ${service.reason})`
}
