// A storage for the fault trials: IndexedDB (idbStorage), except that some writes fail (twice) with the
// QuotaExceededError a full disk gives, as IndexedDB reports it (a DOMException named QuotaExceededError).
import type { BackwardStorage } from '../../src/client/index.ts'

/**
 * Wraps `inner` so that each token in `full` fails one write and the one retry the SDK makes after
 * freeing space (so the refusal is what the trial sees), then is spent:
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
  const left = new Map([...full].map((t) => [t, 2]))
  return {
    ...inner,
    async set(key, value) {
      const spent = token(key, value)
      const n = spent === undefined ? 0 : (left.get(spent) ?? 0)
      if (n > 0) {
        left.set(spent!, n - 1)
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
      }
      return inner.set(key, value)
    },
  }
}
