/**
 * The `backward` command. `backward clear-expired <url>` removes expired sessions from the store the
 * URL names, like Django's `clearsessions`; run it from cron. Store clients are imported only here,
 * on demand, so the library itself never loads them.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BackwardError, isBackwardError } from '../shared/errors.ts'

/** Where the command writes. Injected so tests need no process patching. */
export interface CliOptions {
  /** @default line => process.stdout.write(line + '\n') */
  stdout?: (line: string) => void
  /** @default line => process.stderr.write(line + '\n') */
  stderr?: (line: string) => void
}

/** A store opened from a URL, with what the command needs. */
interface OpenedStore {
  clearExpired(): Promise<number>
  close(): Promise<void>
  note?: string
}

const USAGE = [
  'Usage: backward clear-expired <url>',
  '',
  'Removes expired sessions and prints how many. <url> is one of:',
  '  redis://[:password@]host[:port][/db]   (also rediss://; Redis expires sessions itself, so this reports 0)',
  '  postgres://user@host[:port]/db[?table=schema.name]   (also postgresql://; default table backward_sessions)',
  '  file:<dir>                              (a fileStore directory, marked by its .backward-sessions file; relative to the current one, or file:///abs/dir)',
].join('\n')

function usage(message: string): BackwardError {
  return new BackwardError('CONFIG', `[backward] ${message}\n${USAGE}`)
}

/** Why a connection failed, without the URL (it may hold a password). */
function reason(error: unknown): string {
  let e: unknown = error
  while (isBackwardError(e) && e.cause !== undefined) e = e.cause
  const code = (e as { code?: unknown } | null)?.code
  if (typeof code === 'string') return code
  // AggregateError (IPv4 and IPv6 both refused) keeps the useful codes inside.
  const inner = (e as { errors?: Array<{ code?: unknown }> } | null)?.errors?.find((x) => typeof x?.code === 'string')?.code
  return typeof inner === 'string' ? inner : e instanceof Error ? e.message : String(e)
}

async function openRedis(url: string): Promise<OpenedStore> {
  const { redisStore } = await import('./stores/redis.ts')
  const ioredis = await import('ioredis').catch(() => undefined)
  if (ioredis !== undefined) {
    // Fail at once instead of retrying forever: a cron job must report an outage, not hang.
    const client = new ioredis.Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000 })
    // ioredis rejects connect() with a bare "Connection is closed."; the 'error' event has the real cause.
    let socketError: unknown
    client.on('error', (error) => {
      socketError = error
    })
    try {
      await client.connect()
      await client.ping()
    } catch (cause) {
      client.disconnect()
      throw new BackwardError('STORE_UNAVAILABLE', '[backward] Could not reach Redis.', { cause: socketError ?? cause })
    }
    const store = redisStore({ client })
    return { clearExpired: () => store.clearExpired(), close: async () => void (await client.quit()), note: 'Redis expires sessions by itself.' }
  }
  const nodeRedis = await import('redis').catch((cause: unknown) => {
    throw new BackwardError('CONFIG', '[backward] A redis:// URL needs the ioredis or redis package: npm install ioredis', { cause })
  })
  const client = nodeRedis.createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: false, connectTimeout: 5000 } })
  client.on('error', () => {})
  // Made before connecting: a client redisStore refuses (node-redis v4) must not be left connected,
  // where it would keep the cron job's process from exiting.
  const store = redisStore({ client })
  try {
    await client.connect()
  } catch (cause) {
    throw new BackwardError('STORE_UNAVAILABLE', '[backward] Could not reach Redis.', { cause })
  }
  return { clearExpired: () => store.clearExpired(), close: async () => void (await client.quit()), note: 'Redis expires sessions by itself.' }
}

async function openPostgres(url: URL): Promise<OpenedStore> {
  const { postgresStore } = await import('./stores/postgres.ts')
  const table = url.searchParams.get('table') ?? undefined
  url.searchParams.delete('table')
  const { default: pg } = await import('pg').catch((cause: unknown) => {
    throw new BackwardError('CONFIG', '[backward] A postgres:// URL needs the pg package: npm install pg', { cause })
  })
  const pool = new pg.Pool({ connectionString: url.href, max: 1, connectionTimeoutMillis: 5000 })
  pool.on('error', () => {})
  const store = postgresStore({ pool, table })
  return { clearExpired: () => store.clearExpired(), close: () => pool.end() }
}

async function openFile(url: string): Promise<OpenedStore> {
  const dir = url.startsWith('file://') ? fileURLToPath(url) : resolve(url.slice('file:'.length))
  // fileStore creates a missing directory; a typo here must be reported, not turned into an empty one.
  if (url === 'file:' || !existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new BackwardError('CONFIG', '[backward] The file: URL does not name an existing session directory.')
  }
  const { fileStore, SESSION_DIR_MARKER } = await import('./stores/file.ts')
  // An empty, unmarked directory is far likelier a wrong path than a store: say so rather than mark it.
  if (!existsSync(join(dir, SESSION_DIR_MARKER)) && readdirSync(dir).length === 0) {
    throw new BackwardError('CONFIG', `[backward] ${dir} is empty and has no ${SESSION_DIR_MARKER} marker, so it is not a fileStore directory. Check the path.`)
  }
  // fileStore refuses (CONFIG) an unmarked directory that holds anything but session records, and marks
  // a store directory from before the marker; its clearExpired deletes only parsable expired records.
  const store = fileStore({ dir })
  if (store.clearExpired === undefined) throw new BackwardError('CONFIG', '[backward] fileStore has no clearExpired.')
  const clear = store.clearExpired.bind(store)
  return { clearExpired: clear, close: async () => {} }
}

/** Opens the store a URL names. Throws `CONFIG` on a URL it does not understand. */
async function openStore(raw: string): Promise<OpenedStore> {
  if (raw.startsWith('file:')) return openFile(raw)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw usage('The store URL could not be parsed.')
  }
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') return openRedis(raw)
  if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') return openPostgres(url)
  throw usage(`Unsupported store URL scheme ${JSON.stringify(url.protocol)}.`)
}

/**
 * Runs the command line and resolves with the exit code: 0 on success, 1 when the store failed,
 * 2 on a usage error.
 * @example
 * process.exitCode = await runCli(['clear-expired', 'postgres://localhost/app'])
 */
export async function runCli(argv: readonly string[], options: CliOptions = {}): Promise<number> {
  const out = options.stdout ?? ((line: string) => void process.stdout.write(`${line}\n`))
  const err = options.stderr ?? ((line: string) => void process.stderr.write(`${line}\n`))
  const [command, url, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    out(USAGE)
    return command === undefined ? 2 : 0
  }
  if (command !== 'clear-expired') {
    err(`[backward] Unknown command ${JSON.stringify(command)}.\n${USAGE}`)
    return 2
  }
  if (url === undefined || rest.length > 0) {
    err(`[backward] clear-expired takes exactly one store URL.\n${USAGE}`)
    return 2
  }
  let store: OpenedStore | undefined
  try {
    store = await openStore(url)
    const removed = await store.clearExpired()
    out(`Removed ${removed} expired sessions.${store.note === undefined ? '' : ` (${store.note})`}`)
    return 0
  } catch (error) {
    if (isBackwardError(error, 'CONFIG')) {
      err(error.message)
      return 2
    }
    const message = isBackwardError(error) ? error.message : '[backward] clear-expired failed.'
    err(`${message} (${reason(error)})`)
    return 1
  } finally {
    await store?.close().catch(() => {})
  }
}
