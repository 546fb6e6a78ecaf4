import { BackwardError } from '../../shared/errors.ts'
import { assertStoreKey, decodeData, encodeData, type SessionData, type SessionStore } from '../store.ts'

/** Options for {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most records kept. When full, expired records are purged first, then the least recently written
   * or touched record is evicted (its user is logged out), so memory stays bounded under a flood of new sessions.
   * @default 10000
   */
  maxEntries?: number
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

interface Entry {
  json: string
  expiresAt: number
}

/**
 * An in-process store for development and tests. Bounded; lost on restart; not shared between processes.
 * Records are kept as JSON text, so callers never share mutable objects with the store.
 * @example
 * app.use(session({ store: memoryStore({ maxEntries: 50_000 }) }))
 */
export function memoryStore(options: MemoryStoreOptions = {}): SessionStore & { readonly size: number } {
  const maxEntries = options.maxEntries ?? 10_000
  const now = options.now ?? Date.now
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new BackwardError('CONFIG', '[backward] memoryStore: maxEntries must be a positive integer.')
  }
  const entries = new Map<string, Entry>()

  function live(key: string): Entry | undefined {
    const entry = entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now()) {
      entries.delete(key)
      return undefined
    }
    return entry
  }

  // When full, a sweep for expired records scans every entry: at most once a second, so a flood of
  // new sessions against a full store costs one eviction per write, not a scan of 10,000 entries.
  let lastSweep = -Infinity

  function makeRoom(): void {
    if (entries.size < maxEntries) return
    const t = now()
    if (t - lastSweep >= 1000) {
      lastSweep = t
      for (const [key, entry] of entries) if (entry.expiresAt <= t) entries.delete(key)
    }
    // Map iteration is insertion order, and writes re-insert, so the first key is the least recently written.
    while (entries.size >= maxEntries) {
      const oldest = entries.keys().next().value as string
      entries.delete(oldest)
    }
  }

  function write(key: string, data: SessionData, expiresAt: number): void {
    const json = encodeData(data)
    entries.delete(key)
    makeRoom()
    entries.set(key, { json, expiresAt })
  }

  return {
    get size() {
      return entries.size
    },
    async load(key) {
      assertStoreKey(key)
      const entry = live(key)
      return entry === undefined ? null : decodeData(entry.json)
    },
    async create(key, data, expiresAt) {
      assertStoreKey(key)
      if (live(key) !== undefined) return false
      write(key, data, expiresAt)
      return true
    },
    async update(key, data, expiresAt) {
      assertStoreKey(key)
      if (live(key) === undefined) return false
      write(key, data, expiresAt)
      return true
    },
    async delete(key) {
      assertStoreKey(key)
      entries.delete(key)
    },
    async touch(key, expiresAt) {
      assertStoreKey(key)
      const entry = live(key)
      if (entry === undefined) return false
      entry.expiresAt = expiresAt
      // Re-insert: an active session moves to the back of the eviction order, like a write.
      entries.delete(key)
      entries.set(key, entry)
      return true
    },
    async clearExpired() {
      const t = now()
      let removed = 0
      for (const [key, entry] of entries) {
        if (entry.expiresAt <= t) {
          entries.delete(key)
          removed++
        }
      }
      return removed
    },
  }
}
