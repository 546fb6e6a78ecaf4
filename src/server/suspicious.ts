/**
 * Security events: what an attacker's probing looks like from the server. One hook, `onSuspicious`,
 * set on `session()`; every backward middleware reports through it (Django's `django.security.*`
 * loggers). Events carry the kind, the path and a short reason, never a cookie, a token or a body.
 */
import type { Context } from 'hono'

/**
 * What was seen.
 * - `planted-cookie`: a cookie backward sets was sent more than once (a sibling subdomain or a path
 *   cookie shadowing ours), or a login signal came in a form that backward never sets.
 * - `tampered-cookie`: a sealed session cookie that no secret opens.
 * - `oversized-record`: a no-JS form post over the record caps (bytes as stored, or fields); not recorded.
 * - `oversized-session`: a session whose encoded size passes the save limit; not saved.
 * - `cross-site-trigger`: the login-redirect endpoint reached without login()'s proof (a third-party page).
 * - `reused-idempotency-key`: an Idempotency-Key sent again with another method, path, query or body.
 * - `store-full`: the idempotency store is full (a new key was refused with 503), or one owner passed
 *   its fair share of it (`maxKeysPerScope`: 429).
 */
export type SuspiciousKind =
  | 'planted-cookie'
  | 'tampered-cookie'
  | 'oversized-record'
  | 'oversized-session'
  | 'cross-site-trigger'
  | 'reused-idempotency-key'
  | 'store-full'

/** One security event, as `onSuspicious` gets it. */
export interface SuspiciousEvent {
  kind: SuspiciousKind
  /** The request's path, without its query (a query can carry tokens). */
  path: string
  /** One sentence of what happened, with sizes or counts where they help; never a secret or a body. */
  detail: string
}

/** The hook's type. It must not throw; a throw is swallowed (a report never turns a request into a 500). */
export type SuspiciousHandler = (event: SuspiciousEvent, c: Context) => void

const WINDOW_MS = 60_000

/**
 * The default hook: one `console.warn` line per kind per minute, with how many were folded into it, so
 * a flood of probes cannot flood the log.
 * @example
 * session({ store, onSuspicious: warnSuspicious() })
 */
export function warnSuspicious(now: () => number = Date.now): SuspiciousHandler {
  const last = new Map<SuspiciousKind, { at: number; folded: number }>()
  return (event) => {
    const t = now()
    const seen = last.get(event.kind)
    if (seen !== undefined && t - seen.at < WINDOW_MS) {
      seen.folded++
      return
    }
    const folded = seen?.folded ?? 0
    last.set(event.kind, { at: t, folded: 0 })
    console.warn(`[backward] suspicious ${event.kind} at ${event.path}: ${event.detail}${folded > 0 ? ` (${folded} more of this kind in the last minute)` : ''}`)
  }
}

/** Used when no session() hook is reachable (idempotency() with its own `scope`, no session mounted). */
const fallback = warnSuspicious()
const HOOK = Symbol.for('backward.onSuspicious')

/** backward-internal: session() puts its hook on the context, so every middleware after it reports there. */
export function setSuspiciousHandler(c: Context, handler: SuspiciousHandler): void {
  ;(c as unknown as { [HOOK]?: SuspiciousHandler })[HOOK] = handler
}

/**
 * backward-internal: reports one event through the app's hook (or the default), never throwing.
 * @example
 * reportSuspicious(c, 'oversized-record', 'a form of 1,203 fields was not recorded (limit 1,000)')
 */
export function reportSuspicious(c: Context, kind: SuspiciousKind, detail: string): void {
  const handler = (c as unknown as { [HOOK]?: SuspiciousHandler })[HOOK] ?? fallback
  let path = '/'
  try {
    path = new URL(c.req.url).pathname
  } catch {}
  try {
    handler({ kind, path, detail }, c)
  } catch {
    // A failing report must not break the request it describes.
  }
}
