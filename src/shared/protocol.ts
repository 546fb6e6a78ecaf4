/**
 * backward's wire protocol: the names both sides agree on. Web standards only, no runtime state.
 */

/** RFC 9457 problem `type` for "this request needs a logged-in user". */
export const LOGIN_REQUIRED_TYPE = 'urn:backward:login-required'
/** RFC 9457 problem `type` for "the session store is unavailable, try again". */
export const STORE_UNAVAILABLE_TYPE = 'urn:backward:store-unavailable'
/** problem+json `type` of idempotency()'s 409 while the first request with a key still runs: the SDK retries it, unlike an application 409. */
export const REQUEST_IN_PROGRESS_TYPE = 'urn:backward:request-in-progress'
/** Media type of problem details (RFC 9457). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json'
/** The `WWW-Authenticate` scheme that names the login URL. */
export const AUTH_SCHEME = 'Backward'
/** Header that replays carry so the server runs each action at most once. */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key'
/**
 * Cookie that `login()` sets (readable by scripts, short-lived) to tell the browser SDK that a login
 * just happened and who logged in. Its value is a user tag (see `USER_TAG_PATTERN`), never the user id.
 * A cross-site page cannot set it, so it cannot trigger a replay.
 */
export const LOGIN_SIGNAL_COOKIE = 'backward_login'
/**
 * The login signal's name on HTTPS pages: the `__Host-` prefix makes the browser accept it only from
 * this exact host (Secure, Path=/, no Domain), so a sibling subdomain cannot plant one. On an https
 * page the SDK reads only this name.
 */
export const LOGIN_SIGNAL_COOKIE_SECURE = '__Host-backward_login'
/**
 * Header the browser SDK puts on the requests it may save: the page's path and query. The login wall's
 * 401 takes `next` from it rather than from the Referer.
 */
export const PAGE_HEADER = 'Backward-Page'
/** Shape of a user tag: 22 base64url characters derived from the user id by the server. */
export const USER_TAG_PATTERN = /^[A-Za-z0-9_-]{22}$/
/** Default name of the query parameter that carries the page to return to. */
export const DEFAULT_REDIRECT_FIELD = 'next'

/**
 * The body of a `401` from `loginRequired()`.
 * @example
 * { type: 'urn:backward:login-required', title: 'Login required', status: 401, loginUrl: '/login?next=%2Fpeople' }
 */
export interface LoginRequiredProblem {
  type: typeof LOGIN_REQUIRED_TYPE
  title: string
  status: 401
  loginUrl: string
  detail?: string
}

/**
 * Builds the `WWW-Authenticate` value for a login URL.
 * @example
 * loginChallenge('/login?next=%2F') // 'Backward login_url="/login?next=%2F"'
 */
export function loginChallenge(loginUrl: string): string {
  // RFC 9110 quoted-string: escape backslash and double quote.
  return `${AUTH_SCHEME} login_url="${loginUrl.replace(/[\\"]/g, (ch) => '\\' + ch)}"`
}

/**
 * Reads a backward login-required problem from parsed JSON, or returns null. Never throws.
 * @example
 * const problem = parseLoginRequired(await res.clone().json())
 */
export function parseLoginRequired(value: unknown): LoginRequiredProblem | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const v = value as Record<string, unknown>
  if (v.type !== LOGIN_REQUIRED_TYPE) return null
  if (typeof v.loginUrl !== 'string' || v.loginUrl.length === 0 || v.loginUrl.length > 4096) return null
  return {
    type: LOGIN_REQUIRED_TYPE,
    title: typeof v.title === 'string' ? v.title : 'Login required',
    status: 401,
    loginUrl: v.loginUrl,
    ...(typeof v.detail === 'string' ? { detail: v.detail } : {}),
  }
}

/**
 * Query parameter that `GET /backward/login/redirect` adds to the landing URL when a recorded
 * no-JavaScript form post did not go through after login: `/people?backward_replay=failed` (see
 * `REPLAY_OUTCOME` for the values). The record is gone either way (a replay runs at most once), so the
 * page should tell the person to try again. Server-rendered pages can read it without any script.
 */
export const REPLAY_OUTCOME_PARAM = 'backward_replay'

/**
 * The values of `REPLAY_OUTCOME_PARAM`. `failed`: the replayed handler threw or answered 4xx/5xx, or the
 * server cannot replay at all. `discarded`: the action was not replayed because it was older than
 * `actionTtl`, or this browser did not hold its action cookie (cleared cookies, another browser, a
 * planted session).
 * @example
 * new URL(location.href).searchParams.get(REPLAY_OUTCOME_PARAM) === REPLAY_OUTCOME.discarded
 */
export const REPLAY_OUTCOME = { failed: 'failed', discarded: 'discarded' } as const
