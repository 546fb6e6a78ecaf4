import type { Context } from 'hono'
import { generateCookie } from 'hono/cookie'
import { BackwardError } from '../shared/errors.ts'
import { LOGIN_SIGNAL_COOKIE } from '../shared/protocol.ts'
import { toBase64Url } from './base64url.ts'
import { isSecureRequest } from './request-kind.ts'
import { sessionConfig, sessionHandle } from './session.ts'

/** Session key of the logged-in user's id (Django's `_auth_user_id`). */
export const USER_KEY = '_auth_user_id'
/**
 * Session key of login()'s one-shot note "a login just happened". The redirect endpoint consumes it and
 * sets the login signal again on its own host: login() may run on another host (a login form on
 * auth.example.com sharing a Domain session cookie with the SPA on app.example.com), and the signal is
 * host-only (see signalCookie), so only the endpoint the browser reaches on the SPA's host can set it there.
 */
export const SIGNAL_KEY = '_backward_signal'
/** How long the login signal cookie lives: long enough for the redirect chain after a login. */
const SIGNAL_MAX_AGE = 120

/** A user id: a non-empty string (at most 256 characters) or a safe integer. */
export type UserId = string | number

/** Options for {@link login}. */
export interface LoginOptions {
  /**
   * `true`: a persistent cookie for the session's `maxAge`. `false`: a browser-length cookie (the
   * "Remember me" box left unticked). Unset: the session's global policy.
   * @default undefined
   */
  remember?: boolean
}

function assertUserId(userId: unknown): asserts userId is UserId {
  const ok = (typeof userId === 'string' && userId.length > 0 && userId.length <= 256) || (typeof userId === 'number' && Number.isSafeInteger(userId))
  if (!ok) throw new BackwardError('CONFIG', '[backward] login(): the user id must be a non-empty string (≤ 256 characters) or a safe integer.')
}

/**
 * The opaque tag the browser SDK sees for a user: 22 base64url characters of SHA-256, never the id.
 * @example
 * await userTag(42) // 'Qm9…' (22 characters)
 */
export async function userTag(userId: UserId): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`backward-user:${JSON.stringify(userId)}`))
  return toBase64Url(new Uint8Array(digest)).slice(0, 22)
}

/**
 * Logs a user in. Rotates the session id (stops session fixation) and keeps the anonymous data, so a
 * saved destination or a recorded action survives; a session that belonged to another user is
 * flushed first. (A planted anonymous session keeps its recorded action too, but the redirect route
 * replays an action only in the browser that holds its action cookie: see recorded-action.ts.) Also tells the browser SDK, through a short-lived script-readable cookie, that a
 * login happened and who it was, so it can replay its queue; the redirect endpoint sets that cookie
 * again on its own host, once (see SIGNAL_KEY).
 * @example
 * if (await checkPassword(form)) { await login(c, user.id, { remember: form.remember === 'on' }); return c.redirect('/backward/login/redirect') }
 */
export async function login(c: Context, userId: UserId, options: LoginOptions = {}): Promise<void> {
  assertUserId(userId)
  const session = c.var.session
  const handle = sessionHandle(session)
  const current = session.get(USER_KEY)
  if (current !== undefined && current !== userId) session.flush()
  else session.cycleKey()
  handle.setInternal(USER_KEY, userId)
  handle.setInternal(SIGNAL_KEY, sessionConfig(session).policy.now())
  if (options.remember === true) session.setExpiry(sessionConfig(session).policy.maxAge)
  else if (options.remember === false) session.setExpiry(0)
  c.header('Set-Cookie', signalCookie(c, await userTag(userId), SIGNAL_MAX_AGE), { append: true })
}

/**
 * Logs out: flushes the session (data, stored record and cookie) and clears the login signal.
 * The page should also call `bw.clear()` so queued actions do not outlive the login.
 * @example
 * app.post('/logout', async (c) => { logout(c); return c.redirect('/') })
 */
export function logout(c: Context): void {
  c.var.session.flush()
  c.header('Set-Cookie', signalCookie(c, '', 0), { append: true })
}

/**
 * The logged-in user's id, or null.
 * @example
 * const userId = getUserId(c)
 */
export function getUserId(c: Context): UserId | null {
  const session = c.get('session')
  if (session === undefined) return null
  const id = session.get(USER_KEY)
  return typeof id === 'string' || typeof id === 'number' ? id : null
}

/**
 * backward-internal: the login signal's Set-Cookie line for this host when login() left its one-shot note
 * (SIGNAL_KEY) and someone is logged in, else null. It only reads: the caller removes the note when its
 * session write is the one that counts (see routes.ts, a visit that lost the replay claim writes nothing).
 */
export async function pendingLoginSignal(c: Context): Promise<string | null> {
  const at = c.var.session.get(SIGNAL_KEY)
  // "Just happened": within the signal's own lifetime. An older note (the app never visited the redirect
  // endpoint after that login) must not announce a login that is long past.
  if (typeof at !== 'number' || !(sessionConfig(c.var.session).policy.now() - at < SIGNAL_MAX_AGE * 1000)) return null
  const userId = getUserId(c)
  return userId === null ? null : signalCookie(c, await userTag(userId), SIGNAL_MAX_AGE)
}

/**
 * The login signal is always host-only, whatever the session cookie's Domain: the browser SDK deletes
 * it with `Path=/` and no Domain (a script cannot know the server's Domain setting), and a deletion
 * without the Domain never removes a Domain cookie. Such a cookie would outlive its single use and
 * make every page load within its Max-Age replay again. Only this host's pages need to see it.
 */
function signalCookie(c: Context, value: string, maxAge: number): string {
  const { cookie } = sessionConfig(c.var.session)
  return generateCookie(LOGIN_SIGNAL_COOKIE, value, {
    path: '/',
    sameSite: 'Lax',
    secure: isSecureRequest(cookie.secure, new URL(c.req.url)),
    maxAge,
  })
}
