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
   * Called when the cache fails; the request goes on with the store alone.
   * @default logs `[backward] Session cache <operation> failed …` with `console.error` (no key, no data)
   */
  onError?: (error: unknown, operation: CacheOperation) => void
}

function describe(error: unknown): string {
  // Only a name and a stable code: a client error may carry the command, and with it a key or data.
  const name = error instanceof Error ? error.name : typeof error
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? `${name} ${code}` : name
}

function logError(error: unknown, operation: CacheOperation): void {
  console.error(`[backward] Session cache ${operation} failed (${describe(error)}); the request continues with the store of record.`)
}

/**
 * Write-through caching, like Django's `cached_db`: reads try the cache, then the store (filling the
 * cache); writes go to the store first, then the cache; deletes reach both. The cache is a
 * `SessionStore` too. A failing cache is reported through `onError` and never fails a request. When
 * writing the cache fails, the cached entry is dropped so a stale copy is not served.
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

  /** Puts the record in the cache whether or not the cache holds it already. */
  async function put(key: string, data: SessionData, expiresAt: number): Promise<void> {
    const written = await quietly('write', async () => (await cache.update(key, data, expiresAt)) || (await cache.create(key, data, expiresAt)))
    if (written !== true) await drop(key)
  }

  const cachedStore: SessionStore = {
    async load(key) {
      assertStoreKey(key)
      const cached = await quietly('load', () => cache.load(key))
      if (cached !== undefined && cached !== null) return cached
      if (entries === undefined) return store.load(key)
      // Fill the cache only when the store can say when the record expires: a guessed TTL could
      // keep a session readable in the cache after it expired in the store.
      const entry = await entries.loadEntry(key)
      if (entry === null) return null
      await put(key, entry.data, entry.expiresAt)
      return entry.data
    },
    async create(key, data, expiresAt) {
      assertStoreKey(key)
      const created = await store.create(key, data, expiresAt)
      if (created) await put(key, data, expiresAt)
      return created
    },
    async update(key, data, expiresAt) {
      assertStoreKey(key)
      const updated = await store.update(key, data, expiresAt)
      // A missing record in the store means any cached copy is stale (another request logged out).
      if (updated) await put(key, data, expiresAt)
      else await drop(key)
      return updated
    },
    async delete(key) {
      assertStoreKey(key)
      await store.delete(key)
      await drop(key)
    },
  }
  const { touch, clearExpired } = store
  if (touch !== undefined) {
    cachedStore.touch = async (key, expiresAt) => {
      assertStoreKey(key)
      const touched = await touch.call(store, key, expiresAt)
      const cacheTouch = cache.touch
      if (!touched || cacheTouch === undefined || (await quietly('touch', () => cacheTouch.call(cache, key, expiresAt))) !== true) await drop(key)
      return touched
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
