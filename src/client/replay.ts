import { IDEMPOTENCY_HEADER } from '../shared/protocol.ts'
import type { BackwardAction, BackwardEvents, BackwardStorage, CreateBackwardOptions } from './types.ts'

/** What a replay needs from the instance that runs it. */
export interface ReplayContext {
  /** A storage call, with the instance's quota reporting and memory fallback. */
  store<T>(op: (storage: BackwardStorage) => Promise<T>, action?: BackwardAction): Promise<T>
  emit<K extends keyof BackwardEvents>(name: K, event: BackwardEvents[K]): void
  pending(): Promise<BackwardAction[]>
  send(request: Request): Promise<Response>
  now(): number
  /** For `beforeReplay` and `isLoginRequired`. */
  options: CreateBackwardOptions
  maxAttempts: number
  /** Schedules the next replay of this tab after `attempt` failures. */
  retry(attempt: number): void
  /** bw.fetch promises waiting for an in-page login, by action id. */
  waiting: Map<string, Response>
}

/**
 * Rebuilds the request of a saved action, with `extra` headers (from `beforeReplay`) and the
 * action's id as `Idempotency-Key`.
 * @example
 * await fetch(toRequest(action))
 */
export function toRequest(action: BackwardAction, extra?: HeadersInit): Request {
  const headers = new Headers(action.headers)
  new Headers(extra).forEach((value, name) => headers.set(name, value))
  headers.set(IDEMPOTENCY_HEADER, action.id)
  let body = action.body as BodyInit | null
  if (Array.isArray(action.body)) {
    // fetch writes a fresh multipart boundary, which is why Content-Type was not saved.
    const data = new FormData()
    for (const [name, value] of action.body)
      data.append(name, typeof value == 'string' ? value : new File([value.bytes], value.name, value))
    body = data
  }
  return new Request(action.url, { method: action.method, headers, body, credentials: action.credentials, mode: action.mode })
}

/**
 * Sends the queue oldest first, as `user`. Each action leaves the queue only once its outcome is
 * known. Stops at the first action that must wait (logged out, network down, server busy), so that
 * later actions never overtake it. `stale()` turns true when the queue was cleared (a logout).
 * @example
 * await replayQueue(ctx, 'AAAAAAAAAAAAAAAAAAAAAA', () => false)
 */
export async function replayQueue(ctx: ReplayContext, user: string | null, stale: () => boolean): Promise<void> {
  const { store, emit, send } = ctx
  for (const action of await ctx.pending()) {
    if (stale()) return
    // Another tab (without Web Locks) may have settled it since we listed: never send what is gone.
    if (!(await store((s) => s.get(action.id)))) continue
    const expired = action.expiresAt <= ctx.now()
    // Never replay as someone else: an action made by a known user goes to that user only.
    const mismatch = action.user != null && action.user != user
    const extra = expired || mismatch ? false : await ctx.options.beforeReplay?.(action)
    let response: Response | undefined
    let error: unknown
    let retry
    if (extra !== false) {
      try {
        response = await send(toRequest(action, extra === true ? undefined : (extra as HeadersInit)))
      } catch (cause) {
        error = cause
      }
      if (response && ctx.waiting.has(action.id)) ctx.waiting.set(action.id, response)
      // Still logged out: keep everything, in order, for the next login.
      if (response?.status == 401 || (response && (await ctx.options.isLoginRequired?.(response)))) return
      // The network, a timeout, a first run of the same key still going (409), a rate limit, a
      // gateway or a store outage (503): transient, so the action is never dropped for it. It stays,
      // in order; retries are scheduled up to maxAttempts, then it waits for the next replay()
      // or login. Any other 5xx is retried up to maxAttempts, then dropped with `failed`.
      const status = response?.status ?? 0
      const transient = !status || /^(408|409|425|429|502|503|504)$/.test('' + status)
      retry = transient || status >= 500
      if (retry && (++action.attempts < ctx.maxAttempts || transient)) {
        // A full disk only loses the attempt count; the action itself is already saved.
        await store((s) => s.set(action.id, action), action).catch(() => {})
        if (action.attempts < ctx.maxAttempts) ctx.retry(action.attempts)
        return
      }
    }
    // The outcome is known: only now does the action leave the queue.
    await store((s) => s.del(action.id))
    if (expired) emit('expired', { action })
    else if (response && !retry) emit('replayed', { action, response })
    else emit('failed', { action, reason: mismatch ? 'user-mismatch' : extra === false ? 'vetoed' : response ? 'server' : 'network', response, error })
  }
}
