import { BackwardError } from '../../shared/errors.ts'
import { assertStoreKey, type SessionData, type SessionStore } from '../store.ts'

/** Which cache call failed, as passed to `onError`. */
export type CacheOperation = 'load' | 'write' | 'delete' | 'touch' | 'clearExpired'

/** A store that can also report a record's expiry, so a cache filled on a read expires with it. */
interface EntryStore extends SessionStore {
  loadEntry(key: string): Promise<{ data: SessionData; expiresAt: number } | null>
}

/** Options for {@link cachedStore}. */
export interface CachedStoreOptions {
  /** The fast store read first, such as `redisStore(…)` or `memoryStore()`. Share it between app instances. */
  cache: SessionStore
  /** The store of record, such as `postgresStore(…)`. Its answers always win. */
  store: SessionStore
  /**
   * How long the cache remembers a deleted session, in seconds. The tombstone must outlive any read
   * that was already under way when the delete ran (it read the store before the delete and fills
   * the cache after it): that gap is one cache round trip, unless the cache client queues commands
   * while it reconnects (ioredis and node-redis do by default, for seconds). A tombstone costs one
   * small key per logout and answers a replayed logged-out cookie without touching the store.
   * @default 60
   */
  tombstoneTtl?: number
  /** Clock for tombstone expiry, for tests. @default Date.now */
  now?: () => number
  /**
   * Called when the cache fails on a read or a write; the request goes on with the store alone. A
   * delete whose cache part fails is not reported here: it rejects with `STORE_UNAVAILABLE` instead.
   * @default logs `[backward] Session cache <operation> failed …` with `console.error` (no key, no data)
   */
  onError?: (error: unknown, operation: CacheOperation) => void
}

// What a delete leaves in the cache. `_` keys are reserved for backward, so no app data looks like this.
const TOMBSTONE_KEY = '_backward_deleted'

function isTombstone(data: SessionData): boolean {
  return Object.hasOwn(data, TOMBSTONE_KEY) && data[TOMBSTONE_KEY] === true
}

// Rounds of update-then-create (or create-then-update) before giving up: a round fails only when a
// concurrent writer creates or removes the entry between the two calls.
const UPSERT_ROUNDS = 3

function describe(error: unknown): string {
  // Only a name and a stable code: a client error may carry the command, and with it a key or data.
  const name = error instanceof Error ? error.name : typeof error
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? `${name} ${code}` : name
}

function logError(error: unknown, operation: CacheOperation): void {
  console.error(`[backward] Session cache ${operation} failed (${describe(error)}); the request continues with the store of record.`)
}

function cacheDeleteFailed(cause?: unknown): BackwardError {
  return new BackwardError(
    'STORE_UNAVAILABLE',
    '[backward] cachedStore: the session was deleted from the store, but the cache could not record the delete and may still serve it. Retry (the logout) once the cache is back.',
    cause === undefined ? undefined : { cause },
  )
}

/**
 * Write-through caching, like Django's `cached_db`, that never brings a deleted session back. Reads
 * try the cache, then the store, and fill the cache insert-only; writes go to the store first, then
 * update the cache entry if there is one; a delete removes the record from the store, then leaves a
 * short-lived tombstone in the cache that fills cannot overwrite and reads treat as missing. A cache
 * failure on a read or a write is reported through `onError` and never fails the request; a cache
 * failure on a delete rejects with `STORE_UNAVAILABLE` (a 503: the person retries the logout), because
 * a session that outlives its logout is worse than a 503.
 * @example
 * const store = cachedStore({ cache: redisStore({ client: redis }), store: postgresStore({ pool }) })
 * app.use(session({ store }))
 */
export function cachedStore(options: CachedStoreOptions): SessionStore {
  const { cache, store } = options ?? {}
  for (const [name, value] of [['cache', cache], ['store', store]] as const) {
    if (typeof value?.load !== 'function' || typeof value.create !== 'function' || typeof value.update !== 'function' || typeof value.delete !== 'function') {
      throw new BackwardError('CONFIG', `[backward] cachedStore: ${name} must be a SessionStore (load, create, update, delete).`)
    }
  }
  const tombstoneTtl = options.tombstoneTtl ?? 60
  if (typeof tombstoneTtl !== 'number' || !Number.isFinite(tombstoneTtl) || tombstoneTtl <= 0) {
    throw new BackwardError('CONFIG', '[backward] cachedStore: tombstoneTtl must be a positive number of seconds.')
  }
  const now = options.now ?? Date.now
  const onError = options.onError ?? logError
  const entries = typeof (store as Partial<EntryStore>).loadEntry === 'function' ? (store as EntryStore) : undefined

  async function quietly<T>(operation: CacheOperation, action: () => Promise<T>): Promise<T | undefined> {
    try {
      return await action()
    } catch (error) {
      try {
        onError(error, operation)
      } catch {
        // A throwing logger must not fail the request either.
      }
      return undefined
    }
  }

  async function drop(key: string): Promise<void> {
    await quietly('delete', () => cache.delete(key))
  }

  /** Insert-or-overwrite through the store contract. False when concurrent writers kept flipping the entry. */
  async function upsert(key: string, data: SessionData, expiresAt: number, createFirst: boolean): Promise<boolean> {
    for (let round = 0; round < UPSERT_ROUNDS; round++) {
      if (createFirst ? await cache.create(key, data, expiresAt) : await cache.update(key, data, expiresAt)) return true
      if (createFirst ? await cache.update(key, data, expiresAt) : await cache.create(key, data, expiresAt)) return true
    }
    return false
  }

  /** Leaves a tombstone (update first: there is usually an entry to cover). Throws on a cache failure. */
  function bury(key: string): Promise<boolean> {
    return upsert(key, { [TOMBSTONE_KEY]: true }, now() + tombstoneTtl * 1000, false)
  }

  /** A tombstone on a write path, where a cache failure is only logged: dropped instead when it fails. */
  async function buryQuietly(key: string): Promise<void> {
    if ((await quietly('write', () => bury(key))) !== true) await drop(key)
  }

  /**
   * Mirrors a write the store of record accepted. `create` overwrites whatever the cache holds (a
   * tombstone of an earlier record with this key); `update` changes an existing entry only, so a
   * missing entry stays missing and the next read fills it.
   */
  async function mirror(key: string, data: SessionData, expiresAt: number, mode: 'create' | 'update'): Promise<void> {
    const written = await quietly('write', () => (mode === 'create' ? upsert(key, data, expiresAt, true) : cache.update(key, data, expiresAt)))
    // A failed write may have left the previous copy in the cache: drop it, so it is not served.
    if (written === undefined || (mode === 'create' && written === false)) return drop(key)
    if (!written) return
    // A delete that ran between our store write and this cache write left a tombstone, which the cache
    // write has just overwritten with live data. The store of record says whether that happened.
    let live: boolean
    try {
      live = (await store.load(key)) !== null
    } catch (error) {
      await drop(key)
      throw error
    }
    if (!live) await buryQuietly(key)
  }

  const cachedStore: SessionStore = {
    async load(key) {
      assertStoreKey(key)
      const cached = await quietly('load', () => cache.load(key))
      // A tombstone is the answer: the session was deleted, and the store is not asked again.
      if (cached !== undefined && cached !== null) return isTombstone(cached) ? null : cached
      if (entries === undefined) return store.load(key)
      // Fill the cache only when the store can say when the record expires: a guessed TTL could
      // keep a session readable in the cache after it expired in the store.
      const entry = await entries.loadEntry(key)
      if (entry === null) return null
      // Insert-only: if a delete ran after our read, its tombstone makes this fill fail, as it must.
      await quietly('write', () => cache.create(key, entry.data, entry.expiresAt))
      return entry.data
    },
    async create(key, data, expiresAt) {
      assertStoreKey(key)
      const created = await store.create(key, data, expiresAt)
      if (created) await mirror(key, data, expiresAt, 'create')
      return created
    },
    async update(key, data, expiresAt) {
      assertStoreKey(key)
      const updated = await store.update(key, data, expiresAt)
      // A missing record in the store means any cached copy is stale (another request logged out).
      if (updated) await mirror(key, data, expiresAt, 'update')
      else await buryQuietly(key)
      return updated
    },
    async delete(key) {
      assertStoreKey(key)
      await store.delete(key)
      let buried: boolean
      try {
        buried = await bury(key)
      } catch (cause) {
        throw cacheDeleteFailed(cause)
      }
      if (!buried) throw cacheDeleteFailed()
    },
  }
  const { touch, clearExpired } = store
  if (touch !== undefined) {
    cachedStore.touch = async (key, expiresAt) => {
      assertStoreKey(key)
      const touched = await touch.call(store, key, expiresAt)
      if (!touched) {
        await buryQuietly(key)
        return false
      }
      // A cache without touch keeps its earlier expiry: the entry only leaves the cache sooner, and the
      // next read refills it. Touching a tombstone only keeps it longer, which is harmless.
      const cacheTouch = cache.touch
      if (cacheTouch !== undefined && (await quietly('touch', () => cacheTouch.call(cache, key, expiresAt))) === undefined) await drop(key)
      return true
    }
  }
  if (clearExpired !== undefined) {
    // The store's count is the answer; the cache (a memoryStore, say) is purged on the side.
    cachedStore.clearExpired = async () => {
      const cacheClear = cache.clearExpired
      if (cacheClear !== undefined) await quietly('clearExpired', () => cacheClear.call(cache))
      return clearExpired.call(store)
    }
  }
  return cachedStore
}
