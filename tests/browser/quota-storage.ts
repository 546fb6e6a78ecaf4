// A storage for the fault trials: IndexedDB (idbStorage), except that some writes fail once with the
// QuotaExceededError a full disk gives, as IndexedDB reports it (a DOMException named QuotaExceededError).
import type { BackwardStorage } from '../../src/client/index.ts'

/**
 * Wraps `inner` so that each token in `full` fails one write, then is spent:
 * - an action tag (the last path segment of the action's URL): that action's first save;
 * - `user`: the write of the logged-in user's tag (on a login signal);
 * - `retry`: the first write of an action that failed a replay (its attempts count).
 * @example
 * quotaStorage(idbStorage(), new Set(['t3-1', 'user']))
 */
export function quotaStorage(inner: BackwardStorage, full: Set<string>): BackwardStorage {
  const token = (key: string, value: unknown): string | undefined => {
    if (key == 'user') return 'user'
    const action = value as { url?: string; attempts?: number }
    if (action?.attempts) return 'retry'
    return action?.url ? new URL(action.url).pathname.split('/').pop() : undefined
  }
  return {
    ...inner,
    async set(key, value) {
      const spent = token(key, value)
      if (spent !== undefined && full.delete(spent)) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
      return inner.set(key, value)
    },
  }
}
