import { createStore } from 'idb-keyval'
import type { BackwardStorage } from './types.ts'

/** Storage key of the remembered user tag. Action keys are UUIDs, so they never collide with it. */
export const USER_KEY = 'user'
/** Storage key of the time of the last clear() (a logout), in any tab: a request that started before it is not saved. */
export const CLEARED_KEY = 'cleared'

/**
 * backward's IndexedDB storage: its own database (`backward`, store `actions`) through idb-keyval's
 * `createStore`. The database opens on first use, never at import. A write resolves when its
 * transaction completes; a read when its request succeeds.
 * @example
 * createBackward({ storage: idbStorage() })
 */
export function idbStorage(): BackwardStorage {
  const store = createStore('backward', 'actions')
  // idb-keyval's get/set/del/clear/values, in one helper: same transactions, fewer bytes (its
  // values() also carries a cursor fallback for browsers without getAll).
  const run = (mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest) =>
    store(
      mode,
      (s) =>
        new Promise<unknown>((resolve, reject) => {
          const request = op(s)
          const tx = s.transaction
          // A write is done when its transaction commits: a full disk shows up only then (abort).
          if (mode == 'readwrite') {
            tx.oncomplete = resolve
            tx.onabort = () => reject(tx.error)
          } else {
            request.onsuccess = () => resolve(request.result)
            request.onerror = () => reject(request.error)
          }
        }),
    )
  return {
    get: (key) => run('readonly', (s) => s.get(key)),
    set: (key, value) => run('readwrite', (s) => s.put(value, key)) as Promise<never>,
    del: (key) => run('readwrite', (s) => s.delete(key)) as Promise<never>,
    values: () => run('readonly', (s) => s.getAll()) as Promise<unknown[]>,
    clear: () => run('readwrite', (s) => s.clear()) as Promise<never>,
  }
}

/**
 * Storage that lives as long as the page: the fallback when IndexedDB is unavailable, and handy in tests.
 * @example
 * createBackward({ storage: memoryStorage() })
 */
export function memoryStorage(): BackwardStorage {
  const map = new Map<string, unknown>()
  return {
    get: async (key) => map.get(key),
    set: async (key, value) => void map.set(key, value),
    del: async (key) => void map.delete(key),
    values: async () => [...map.values()],
    clear: async () => map.clear(),
  }
}
