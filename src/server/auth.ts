import type { Context } from 'hono'
import { generateCookie } from 'hono/cookie'
import { BackwardError } from '../shared/errors.ts'
import { DEFAULT_REDIRECT_FIELD, LOGIN_SIGNAL_COOKIE, LOGIN_SIGNAL_COOKIE_SECURE } from '../shared/protocol.ts'
import { hmac } from './hmac.ts'
import { hashKey, newSessionId } from './ids.ts'
import { ACTION_KEY, NEXT_KEY, readRecordedAction } from './recorded-action.ts'
import { isSecureRequest, withNext } from './request-kind.ts'
import { SHORT_LIVED_KEY, cookieOnCommit, fitsInCookie, sessionConfig, sessionHandle } from './session.ts'
import type { Session } from './session-core.ts'
import { isCookieStore } from './stores/cookie.ts'

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
/**
 * Session key of login()'s one-time proof: the hash of the token its landing URL carries, and when it
 * was made. The redirect endpoint replays a recorded post only with it (or after a same-origin POST).
 */
export const PROOF_KEY = '_backward_proof'
/** Query parameter of the login proof on the landing URL. */
export const PROOF_PARAM = 'backward_proof'
/** Namespace of the proof's hash (see hashKey). */
export const PROOF_NAMESPACE = 'login-proof'
/** How long a login proof stays good: the redirect chain after a login, an SSO round trip included. */
export const PROOF_MAX_AGE_MS = 600_000
/** Session key noting the path of a recorded action that login() had to drop for room (cookie store). */
export const DROPPED_KEY = '_backward_dropped'
/** Longest `next` kept anywhere: longer is dropped, not cut (a cut URL is another URL). */
export const MAX_NEXT_LENGTH = 2048
/** Characters a login must keep free in a cookie session for what the redirect endpoint and the app add. */
const LOGIN_RESERVE = 256

/** A user id: a non-empty string (at most 256 characters) or a safe integer. */
export type UserId = string | number

/** Options for {@link login}. */
export interface LoginOptions {
  /**
   * The page to come back to. Checked by the redirect endpoint (`isSafeRedirect`); longer than 2,048
   * characters is dropped.
   * @default the `next` of the login request's query, or of its same-origin Referer (the login page)
   */
  next?: string
  /** Where backwardRoutes' login-redirect endpoint is mounted. @default '/backward/login/redirect' */
  redirectTo?: string
  /** The query parameter that carries the page to come back to, as in backwardRoutes' `redirectField`. @default 'next' */
  redirectField?: string
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
 * The opaque tag the browser SDK sees for a user: 22 base64url characters (132 bits) of an HMAC of the
 * id, keyed with the session's `secret`. Without the secret nobody can compute the tag of a given id,
 * so a tag cannot be brute-forced from guessable ids (an unkeyed hash of `42` fell in seconds).
 * @example
 * await userTag(c, 42) // 'Qm9…' (22 characters)
 */
export async function userTag(c: Context, userId: UserId): Promise<string> {
  return hmac(sessionConfig(c.var.session).secret, `backward-user:${JSON.stringify(userId)}`, 22)
}

/** Where login()'s answer sends the person when `LoginOptions.redirectTo` is not given. */
const DEFAULT_LANDING = '/backward/login/redirect'

/**
 * Logs a user in. Rotates the session id (stops session fixation) and keeps the anonymous data, so a
 * saved destination or a recorded action survives; a session that belonged to another user is
 * flushed first. (A planted anonymous session keeps its recorded action too, but the redirect route
 * replays an action only in the browser that holds its action cookie: see recorded-action.ts.)
 *
 * Resolves to the URL to redirect to: the login-redirect endpoint with a one-time proof that this
 * login happened (a third-party page cannot trigger a recorded post's replay without it) and the page
 * to come back to (`next` of the login request's query, or of its same-origin Referer, which is the
 * login page the person came through).
 *
 * It also tells the browser SDK, through a short-lived script-readable cookie set only when the session
 * is saved, that a login happened; the redirect endpoint sets that cookie again on its own host (see SIGNAL_KEY).
 * @example
 * if (await checkPassword(form)) return c.redirect(await login(c, user.id, { remember: form.remember === 'on' }), 303)
 */
export async function login(c: Context, userId: UserId, options: LoginOptions = {}): Promise<string> {
  assertUserId(userId)
  const session = c.var.session
  const handle = sessionHandle(session)
  const config = sessionConfig(session)
  const current = session.get(USER_KEY)
  if (current !== undefined && current !== userId) session.flush()
  else session.cycleKey()
  handle.setInternal(USER_KEY, userId)
  handle.setInternal(SIGNAL_KEY, config.policy.now())
  const proof = newSessionId()
  handle.setInternal(PROOF_KEY, { h: await hashKey(proof, PROOF_NAMESPACE), at: config.policy.now() })
  // An anonymous session made only to hold a recorded action was given the action's short life (see
  // loginRequired): a logged-in one goes back to the global policy unless `remember` says otherwise.
  if (session.get(SHORT_LIVED_KEY) === true) {
    handle.deleteInternal(SHORT_LIVED_KEY)
    session.setExpiry(null)
  }
  if (options.remember === true) session.setExpiry(config.policy.maxAge)
  else if (options.remember === false) session.setExpiry(0)
  if (isCookieStore(config.store)) await makeRoom(session)
  cookieOnCommit(session, signalCookie(c, await userTag(c, userId), SIGNAL_MAX_AGE))
  const field = options.redirectField ?? DEFAULT_REDIRECT_FIELD
  const next = options.next !== undefined && options.next !== '' ? options.next : loginNext(c, field)
  const landing = options.redirectTo ?? DEFAULT_LANDING
  return withNext(withNext(landing, PROOF_PARAM, proof), field, next !== null && next.length <= MAX_NEXT_LENGTH ? next : null)
}

/** The `next` the login request carries: in its own query, or in its same-origin Referer's (the login page). */
function loginNext(c: Context, field: string): string | null {
  const own = c.req.query(field)
  if (own !== undefined && own !== '') return own
  const referer = c.req.header('Referer')
  if (referer === undefined) return null
  try {
    const page = new URL(referer)
    return page.origin === new URL(c.req.url).origin ? page.searchParams.get(field) : null
  } catch {
    return null
  }
}

/**
 * A cookie session that the login would push past 4 KB drops the saved destination, then the recorded
 * action (noted under DROPPED_KEY, so the redirect endpoint reports a discard), instead of failing the
 * login with COOKIE_TOO_LARGE. Anonymous input put them there; the login itself must always succeed.
 */
async function makeRoom(session: Session): Promise<void> {
  const handle = sessionHandle(session)
  if (await fitsInCookie(session, LOGIN_RESERVE)) return
  handle.deleteInternal(NEXT_KEY)
  if (await fitsInCookie(session, LOGIN_RESERVE)) return
  const action = readRecordedAction(session.get(ACTION_KEY))
  handle.deleteInternal(ACTION_KEY)
  if (action !== null) handle.setInternal(DROPPED_KEY, action.path.replace(/[?#].*$/s, ''))
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
 * The logged-in user's id, for routes behind `loginRequired()`: never null there, so no cast is needed.
 * Throws a `CONFIG` error when nobody is logged in, which means the route is not guarded.
 * @example
 * app.post('/api/follow/:id', loginRequired(), async (c) => c.json(await follow(requireUser(c), c.req.param('id'))))
 */
export function requireUser(c: Context): UserId {
  const userId = getUserId(c)
  if (userId === null) throw new BackwardError('CONFIG', '[backward] requireUser() ran for a request with no logged-in user: put loginRequired() before this handler.')
  return userId
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
  return userId === null ? null : signalCookie(c, await userTag(c, userId), SIGNAL_MAX_AGE)
}

/**
 * The login signal is always host-only, whatever the session cookie's Domain: the browser SDK deletes
 * it with `Path=/` and no Domain (a script cannot know the server's Domain setting), and a deletion
 * without the Domain never removes a Domain cookie. Such a cookie would outlive its single use and
 * make every page load within its Max-Age replay again. Only this host's pages need to see it.
 */
function signalCookie(c: Context, value: string, maxAge: number): string {
  const { cookie } = sessionConfig(c.var.session)
  const secure = isSecureRequest(cookie.secure, new URL(c.req.url))
  // `__Host-` on https: Secure, Path=/ and no Domain, so a sibling subdomain cannot plant one.
  return generateCookie(secure ? LOGIN_SIGNAL_COOKIE_SECURE : LOGIN_SIGNAL_COOKIE, value, { path: '/', sameSite: 'Lax', secure, maxAge })
}
