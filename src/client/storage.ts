import { clear, createStore, del, get, set, values } from 'idb-keyval'
import type { BackwardStorage } from './types.ts'

/**
 * backward's IndexedDB storage: its own database (`backward`, store `actions`) through idb-keyval.
 * The database opens on first use, never at import. A write resolves when its transaction completes.
 * @example
 * createBackward({ storage: idbStorage() })
 */
export function idbStorage(): BackwardStorage {
  const store = createStore('backward', 'actions')
  return {
    get: (key) => get(key, store),
    set: (key, value) => set(key, value, store),
    del: (key) => del(key, store),
    values: () => values(store),
    clear: () => clear(store),
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
