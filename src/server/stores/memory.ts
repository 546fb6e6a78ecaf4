import { BackwardError } from '../../shared/errors.ts'
import { assertStoreKey, decodeData, encodeData, type SessionData, type SessionStore, type StoreWriteOptions } from '../store.ts'

/** Options for {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most records kept. When full, expired records are purged first, then the least recently written
   * or touched record is evicted (its user is logged out), so memory stays bounded under a flood of new
   * sessions. Records written with `{ evict: false }` (idempotency records) are never evicted: a write
   * that finds no room without them fails with `STORE_FULL`.
   * @default 10000
   */
  maxEntries?: number
  /**
   * Most bytes kept: each record counts its stored JSON plus its key, as the heap holds them (one byte a
   * character, two when the JSON has a character above U+00FF). Full works as for `maxEntries`. A single
   * record larger than this is refused with `STORE_FULL`. A count alone let about 80 recorded 1 MiB
   * form posts exhaust the heap.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

interface Entry {
  json: string
  expiresAt: number
  /** JSON plus key, in heap bytes: what the record counts against `maxBytes`. */
  size: number
  /** `kept`: written with `{ evict: false }`, kept until it expires. `spare`: `{ evict: 'first' }`, evicted before any other. */
  kind: 'lru' | 'kept' | 'spare'
}

/**
 * An in-process store for development and tests. Bounded by count and by bytes; lost on restart; not
 * shared between processes. Records are kept as JSON text, so callers never share mutable objects with
 * the store.
 * @example
 * app.use(session({ store: memoryStore({ maxEntries: 50_000, maxBytes: 256 * 1024 * 1024 }) }))
 */
export function memoryStore(options: MemoryStoreOptions = {}): SessionStore & { readonly size: number; readonly bytes: number; readonly capacity: { entries: number; bytes: number } } {
  const maxEntries = options.maxEntries ?? 10_000
  const maxBytes = options.maxBytes ?? 67_108_864
  const now = options.now ?? Date.now
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new BackwardError('CONFIG', '[backward] memoryStore: maxEntries must be a positive integer.')
  }
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new BackwardError('CONFIG', '[backward] memoryStore: maxBytes must be a positive integer (bytes).')
  }
  // Three maps: eviction walks only the records it may drop, `spare` ones first. Map iteration is
  // insertion order, and writes re-insert, so the first key of a map is its least recently written.
  const lru = new Map<string, Entry>()
  const kept = new Map<string, Entry>()
  const spare = new Map<string, Entry>()
  const maps = { lru, kept, spare }
  let bytes = 0
  let keptBytes = 0

  function find(key: string): Entry | undefined {
    return lru.get(key) ?? spare.get(key) ?? kept.get(key)
  }

  function remove(key: string, entry: Entry): void {
    maps[entry.kind].delete(key)
    bytes -= entry.size
    if (entry.kind === 'kept') keptBytes -= entry.size
  }

  function live(key: string): Entry | undefined {
    const entry = find(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now()) {
      remove(key, entry)
      return undefined
    }
    return entry
  }

  function sweep(): number {
    const t = now()
    let removed = 0
    for (const map of [lru, kept, spare]) {
      for (const [key, entry] of map) {
        if (entry.expiresAt <= t) {
          remove(key, entry)
          removed++
        }
      }
    }
    return removed
  }

  const fits = (count: number, size: number) => count <= maxEntries && size <= maxBytes

  // When full, a sweep for expired records scans every entry: at most once a second, so a flood of
  // new sessions against a full store costs one eviction per write, not a scan of 10,000 entries.
  let lastSweep = -Infinity

  /** Makes room for `entry` in place of `old` (evicting only evictable records), or throws STORE_FULL having changed nothing but expired records. */
  function makeRoom(key: string, entry: Entry, old: Entry | undefined): void {
    const count = () => lru.size + kept.size + spare.size + 1 - (old === undefined ? 0 : 1)
    const size = () => bytes + entry.size - (old?.size ?? 0)
    if (fits(count(), size())) return
    const t = now()
    if (t - lastSweep >= 1000) {
      lastSweep = t
      sweep()
    }
    if (fits(count(), size())) return
    // Would it fit with every other evictable record gone? If not, refuse before evicting anyone.
    const keptOld = old?.kind === 'kept'
    if (!fits(kept.size + 1 - (keptOld ? 1 : 0), keptBytes + entry.size - (keptOld ? old.size : 0))) {
      throw new BackwardError('STORE_FULL', `[backward] memoryStore is full (maxEntries ${maxEntries}, maxBytes ${maxBytes}) with records that must be kept until they expire; raise the limits or retry later.`)
    }
    for (const map of [spare, lru]) {
      for (const [oldest, victim] of map) {
        if (fits(count(), size())) return
        if (oldest !== key) remove(oldest, victim)
      }
    }
  }

  function write(key: string, data: SessionData, expiresAt: number, old: Entry | undefined, options: StoreWriteOptions | undefined): void {
    const json = encodeData(data)
    // An update that does not say keeps the record's kind: a wrapper that drops the options (a cache
    // in front of the store) must not turn a kept record evictable.
    const evict = options?.evict
    const kind = evict === undefined ? (old?.kind ?? 'lru') : evict === false ? 'kept' : evict === 'first' ? 'spare' : 'lru'
    const entry: Entry = { json, expiresAt, size: heapBytes(json) + key.length, kind }
    if (entry.size > maxBytes) {
      throw new BackwardError('STORE_FULL', `[backward] memoryStore: a record of ${entry.size} bytes is larger than maxBytes (${maxBytes}); it was not stored. Raise maxBytes or store less.`)
    }
    makeRoom(key, entry, old)
    if (old !== undefined) remove(key, old)
    maps[entry.kind].set(key, entry)
    bytes += entry.size
    if (entry.kind === 'kept') keptBytes += entry.size
  }

  return {
    get size() {
      return lru.size + kept.size + spare.size
    },
    /** Bytes counted against `maxBytes`: stored JSON plus keys, of every record held (expired ones until swept). */
    get bytes() {
      return bytes
    },
    capacity: { entries: maxEntries, bytes: maxBytes },
    async load(key) {
      assertStoreKey(key)
      const entry = live(key)
      return entry === undefined ? null : decodeData(entry.json)
    },
    async create(key, data, expiresAt, options) {
      assertStoreKey(key)
      if (live(key) !== undefined) return false
      write(key, data, expiresAt, undefined, options)
      return true
    },
    async update(key, data, expiresAt, options) {
      assertStoreKey(key)
      const old = live(key)
      if (old === undefined) return false
      write(key, data, expiresAt, old, options)
      return true
    },
    async delete(key) {
      assertStoreKey(key)
      const entry = find(key)
      if (entry !== undefined) remove(key, entry)
    },
    async touch(key, expiresAt) {
      assertStoreKey(key)
      const entry = live(key)
      if (entry === undefined) return false
      entry.expiresAt = expiresAt
      if (entry.kind !== 'kept') {
        // Re-insert: an active session moves to the back of the eviction order, like a write.
        maps[entry.kind].delete(key)
        maps[entry.kind].set(key, entry)
      }
      return true
    },
    async clearExpired() {
      return sweep()
    },
  }
}

/** V8 keeps a string with only Latin-1 characters at one byte each, any other at two. */
const WIDE = /[^\x00-\xff]/
function heapBytes(text: string): number {
  return WIDE.test(text) ? text.length * 2 : text.length
}
