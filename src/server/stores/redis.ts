import { BackwardError } from '../../shared/errors.ts'
import { assertStoreKey, decodeData, encodeData, type SessionStore } from '../store.ts'

/**
 * The ioredis methods redisStore calls. A `Redis` or a `Cluster` from ioredis fits; ioredis is never
 * imported by backward.
 */
export interface IoRedisLike {
  get(key: string): Promise<string | null>
  set(key: string, value: string, px: 'PX', milliseconds: number, condition: 'NX' | 'XX'): Promise<unknown>
  pexpire(key: string, milliseconds: number): Promise<number>
  del(key: string): Promise<number>
}

/**
 * The node-redis (v5 and later; not v4) methods redisStore calls. A client from `createClient()` or a
 * cluster from `createCluster()` fits; redis is never imported by backward.
 */
export interface NodeRedisLike {
  get(key: string): Promise<unknown>
  set(key: string, value: string, options: { expiration: { type: 'PX'; value: number }; condition: 'NX' | 'XX' }): Promise<unknown>
  pExpire(key: string, milliseconds: number): Promise<unknown>
  del(key: string): Promise<unknown>
  /** Not called: its presence is how redisStore tells node-redis 5 and later from v4. */
  withTypeMapping(...args: never[]): unknown
  listenerCount?(event: string): number
}

/** Options for {@link redisStore}. */
export interface RedisStoreOptions {
  /**
   * A connected ioredis or node-redis client (or cluster). For a fast 503 during an outage instead of
   * requests that wait for a reconnect, give ioredis `{ lazyConnect: true, enableOfflineQueue: false }`
   * and `await client.connect()` before serving, and node-redis `{ disableOfflineQueue: true }`. With the
   * defaults, a request waits while the client retries (ioredis: up to 20 reconnects) and then gets a 503.
   */
  client: IoRedisLike | NodeRedisLike
  /**
   * Prepended to every store key. Printable ASCII without spaces, `{` or `}`, at most 100 characters.
   * Braces are refused because Redis Cluster hashes only what sits between them (a hash tag), which
   * would put every session in one slot on one node.
   * @default 'backward:'
   */
  prefix?: string
  /** Clock, for tests. Expiry times are turned into a TTL against it. @default Date.now */
  now?: () => number
}

/** The few operations redisStore needs, whatever the client library. */
interface Commands {
  get(key: string): Promise<string | null>
  /** SET with PX and NX or XX: true when Redis wrote the value. */
  set(key: string, value: string, ms: number, condition: 'NX' | 'XX'): Promise<boolean>
  pexpire(key: string, ms: number): Promise<boolean>
  del(key: string): Promise<void>
}

// Printable ASCII without spaces; braces are refused before this, with their own reason.
const PREFIX = /^[\x21-\x7e]{0,100}$/

function adapt(client: unknown): Commands {
  const c = client as Partial<IoRedisLike & NodeRedisLike> | null
  if (typeof c?.get !== 'function' || typeof c.set !== 'function' || typeof c.del !== 'function') {
    throw new BackwardError('CONFIG', '[backward] redisStore: pass { client } with an ioredis or node-redis client.')
  }
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value))
  if (typeof c.pExpire === 'function') {
    // node-redis v4 has the same method names, but its SET silently ignores { expiration, condition }:
    // no TTL (sessions never expire), create overwrites and update brings deleted sessions back. v4
    // exposes no version, but withTypeMapping arrived in v5, on clients and clusters alike.
    if (typeof (c as { withTypeMapping?: unknown }).withTypeMapping !== 'function') {
      throw new BackwardError('CONFIG', "[backward] redisStore: this node-redis client looks like v4, whose SET ignores the expiry and the NX/XX condition redisStore relies on. Upgrade to node-redis 5 or later (npm install redis@latest), or pass an ioredis client.")
    }
    // node-redis: an 'error' event without a listener ends the Node process on the first lost connection.
    if (typeof c.listenerCount === 'function' && c.listenerCount('error') === 0) {
      throw new BackwardError('CONFIG', "[backward] redisStore: add client.on('error', …) to the node-redis client first; without it Node ends the process when Redis goes away.")
    }
    const n = c as NodeRedisLike
    return {
      get: async (key) => text(await n.get(key)),
      set: async (key, value, ms, condition) => (await n.set(key, value, { expiration: { type: 'PX', value: ms }, condition })) !== null,
      pexpire: async (key, ms) => Number(await n.pExpire(key, ms)) === 1,
      del: async (key) => {
        await n.del(key)
      },
    }
  }
  if (typeof c.pexpire === 'function') {
    const io = c as IoRedisLike
    return {
      get: async (key) => text(await io.get(key)),
      set: async (key, value, ms, condition) => (await io.set(key, value, 'PX', ms, condition)) !== null,
      pexpire: async (key, ms) => (await io.pexpire(key, ms)) === 1,
      del: async (key) => {
        await io.del(key)
      },
    }
  }
  throw new BackwardError('CONFIG', '[backward] redisStore: pass { client } with an ioredis or node-redis client.')
}

/**
 * ioredis puts the failed command on reply errors, arguments included: the key and the session data
 * of a SET refused for lack of memory. Logging the cause would print them, so the copy leaves it out.
 */
function scrub(error: unknown): unknown {
  if (!(error instanceof Error) || !Object.hasOwn(error, 'command')) return error
  const { command: _command, ...rest } = error as Error & Record<string, unknown>
  const copy = Object.assign(new Error(error.message), rest)
  copy.name = error.name
  if (error.stack !== undefined) copy.stack = error.stack
  return copy
}

function unavailable(cause: unknown): BackwardError {
  return new BackwardError('STORE_UNAVAILABLE', '[backward] redisStore: Redis did not answer or refused the command. Check that it is running, reachable and not out of memory; sessions resume when it is back.', { cause: scrub(cause) })
}

/**
 * A session store on Redis (or Redis Cluster), through an ioredis (5 or later) or node-redis (5 or
 * later; v4 is refused at start-up) client you create.
 * One string key per session whose TTL is the session's expiry, so Redis removes expired sessions
 * itself and `clearExpired` resolves 0. `create` is `SET … PX NX` and `update` is `SET … PX XX`, so
 * a session deleted by a concurrent logout is never written back. Every command names one key, so it
 * runs on Cluster. Errors from the client become `STORE_UNAVAILABLE` (the middleware answers 503).
 * @example
 * import { Redis } from 'ioredis'
 * import { redisStore } from 'backward/server/redis'
 * const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
 * client.on('error', (error) => console.error('[redis]', error.message)) // reconnects; requests get 503 meanwhile
 * app.use(session({ store: redisStore({ client }) }))
 */
export function redisStore(options: RedisStoreOptions): SessionStore & { clearExpired(): Promise<number> } {
  const commands = adapt(options?.client)
  const prefix = options.prefix ?? 'backward:'
  const now = options.now ?? Date.now
  if (typeof prefix === 'string' && /[{}]/.test(prefix)) {
    throw new BackwardError('CONFIG', '[backward] redisStore: prefix must not contain { or }. Redis Cluster would hash only the part between the braces, so every session would share one slot on one node. Use a prefix such as "backward:".')
  }
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new BackwardError('CONFIG', '[backward] redisStore: prefix must be printable ASCII without spaces, at most 100 characters.')
  }

  function ttl(expiresAt: number): number {
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
      throw new BackwardError('CONFIG', '[backward] redisStore: expiresAt must be a finite time in milliseconds since the epoch.')
    }
    // PX must be a positive integer. A past expiry becomes 1 ms: the write still reports whether a live
    // record existed (update's answer must stay truthful), and the value is gone a moment later.
    return Math.max(1, Math.ceil(expiresAt - now()))
  }

  async function run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command()
    } catch (cause) {
      throw unavailable(cause)
    }
  }

  return {
    async load(key) {
      assertStoreKey(key)
      const text = await run(() => commands.get(prefix + key))
      return text === null ? null : decodeData(text)
    },
    async create(key, data, expiresAt) {
      assertStoreKey(key)
      const value = encodeData(data)
      const ms = ttl(expiresAt)
      return run(() => commands.set(prefix + key, value, ms, 'NX'))
    },
    async update(key, data, expiresAt) {
      assertStoreKey(key)
      const value = encodeData(data)
      const ms = ttl(expiresAt)
      return run(() => commands.set(prefix + key, value, ms, 'XX'))
    },
    async delete(key) {
      assertStoreKey(key)
      await run(() => commands.del(prefix + key))
    },
    async touch(key, expiresAt) {
      assertStoreKey(key)
      const ms = ttl(expiresAt)
      return run(() => commands.pexpire(prefix + key, ms))
    },
    /** Redis removes expired keys by itself, so there is nothing to clear: always 0. */
    async clearExpired() {
      return 0
    },
  }
}
