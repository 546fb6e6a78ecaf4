import { BackwardError } from '../shared/errors.ts'

/** Session data: a JSON object. Keys that start with `_` are reserved for backward. */
export type SessionData = Record<string, unknown>

/**
 * A server-side session store. Every key it receives is a lower-case hex SHA-256 digest
 * (64 characters): the store never sees a session id, so a leaked store leaks no live cookie.
 *
 * `create` inserts only and `update` updates only. That pair is what stops a concurrent logout from
 * being undone by a slower request that saves afterwards (Django's `UpdateError`).
 * @example
 * const store: SessionStore = memoryStore()
 * await store.create(key, { cart: 3 }, Date.now() + 60_000) // true
 */
export interface SessionStore {
  /**
   * The limits of a store that bounds itself (memoryStore), so a caller can keep one user's share of it
   * fair. Absent on stores that grow with their disk or server.
   */
  readonly capacity?: { entries: number; bytes: number }
  /** The record's data, or null when it is missing or expired. Never creates anything. */
  load(key: string): Promise<SessionData | null>
  /** Inserts. Resolves false (and writes nothing) when a live record already has this key. */
  create(key: string, data: SessionData, expiresAt: number, options?: StoreWriteOptions): Promise<boolean>
  /** Replaces a live record. Resolves false (and writes nothing) when the record is missing or expired. */
  update(key: string, data: SessionData, expiresAt: number, options?: StoreWriteOptions): Promise<boolean>
  /** Removes the record. Missing is not an error. */
  delete(key: string): Promise<void>
  /** Moves the expiry of a live record without rewriting its data. Resolves false when it is missing. */
  touch?(key: string, expiresAt: number): Promise<boolean>
  /** Removes expired records and resolves with how many were removed. */
  clearExpired?(): Promise<number>
}

/**
 * How a record may be treated when its store is full. Stores that never evict (file, PostgreSQL, Redis
 * with `maxmemory-policy noeviction`) can ignore it.
 * @example
 * await store.create(key, record, expiresAt, { evict: false }) // kept until expiresAt, or STORE_FULL
 */
export interface StoreWriteOptions {
  /**
   * false: the record must live until its expiry (an idempotency record: evicting it lets its request
   * run twice). A store that evicts to make room never evicts it, and fails a write it cannot fit
   * with a `BackwardError` `STORE_FULL` instead. `'first'`: evict it before any other record (a
   * session that exists only to hold an anonymous recorded post: a flood of them must not push out
   * logged-in users). An `update` without options keeps the record's kind.
   * @default true
   */
  evict?: boolean | 'first'
}

const STORE_KEY = /^[0-9a-f]{64}$/

/**
 * Throws unless `key` is a store key (64 lower-case hex characters). Stores call it first, so no
 * caller can smuggle `../`, `*`, a newline or a quote into a file name, a Redis key or SQL.
 * @example
 * assertStoreKey(await hashKey(id))
 */
export function assertStoreKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || !STORE_KEY.test(key)) {
    throw new BackwardError('INVALID_KEY', '[backward] A store key must be 64 lower-case hex characters (a SHA-256 digest). Pass keys through hashKey().')
  }
}

/**
 * Serializes session data to JSON, refusing what JSON cannot hold faithfully.
 * @example
 * encodeData({ a: 1 }) // '{"a":1}'
 */
export function encodeData(data: SessionData): string {
  try {
    return JSON.stringify(data)
  } catch (cause) {
    throw new BackwardError('NOT_SERIALIZABLE', '[backward] Session data must be JSON-serializable (no cycles, no BigInt).', { cause })
  }
}

/**
 * Parses stored JSON into session data. Anything that is not a JSON object gives null, never a throw:
 * a corrupt record is treated as a missing one.
 * @example
 * decodeData('{"a":1}') // { a: 1 }
 */
export function decodeData(text: string): SessionData | null {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as SessionData) : null
  } catch {
    return null
  }
}
