import { Hono, type Context } from 'hono'
import { getCookie } from 'hono/cookie'
import { BackwardError, isBackwardError } from '../shared/errors.ts'
import { DEFAULT_REDIRECT_FIELD, IDEMPOTENCY_HEADER, REPLAY_OUTCOME, REPLAY_OUTCOME_PARAM } from '../shared/protocol.ts'
import { isSafeRedirect } from '../shared/safe-redirect.ts'
import { DROPPED_KEY, MAX_NEXT_LENGTH, PROOF_KEY, PROOF_MAX_AGE_MS, PROOF_NAMESPACE, PROOF_PARAM, SIGNAL_KEY, getUserId, pendingLoginSignal, userTag } from './auth.ts'
import { sameString } from './hmac.ts'
import { reportSuspicious } from './suspicious.ts'
import { hashKey, isSessionId, newSessionId } from './ids.ts'
import { logStoreError, storeUnavailable } from './problem.ts'
import { ACTION_KEY, NEXT_KEY, actionCookie, actionCookieName, nonceHash, readLimited, readRecordedAction, replayBody, type RecordedAction } from './recorded-action.ts'
import { assertLocalPath, isProvenSameOrigin, isSecureRequest, withNext } from './request-kind.ts'
import { countCookie, handOverSession, saveSessionNow, sessionConfig, sessionCookieName, sessionHandle } from './session.ts'
import type { Session } from './session-core.ts'
import type { SessionStore } from './store.ts'
import { isCookieStore, type CookieSessionStore } from './stores/cookie.ts'

/** Anything with Hono's `fetch(request, env, ctx)`: the app the no-JavaScript replay runs through. */
export interface FetchApp {
  fetch(request: Request, env?: unknown, executionCtx?: never): Response | Promise<Response>
}

/**
 * Why a recorded action did not go through. `failed`: the replayed handler threw or answered 4xx/5xx.
 * `unavailable`: the server cannot replay at all (cookieStore without replayStore). `unbound`: this
 * browser does not hold the action cookie the record was made with (cookies cleared, another browser,
 * a planted session). `expired`: older than `actionTtl`. `too-large`: a cookie session that login()
 * had to make room in (4 KB). The last three are not replayed (status null) and land with
 * `?backward_replay=discarded`; the first two with `failed`.
 */
export type ReplayFailureReason = 'failed' | 'unavailable' | 'unbound' | 'expired' | 'too-large'

/** What `onReplayError` is told: the route, the reason and the status, never the body or the form. */
export interface ReplayFailure {
  method: 'POST'
  /** The path the form posted to, without its query (a query can carry tokens). */
  path: string
  reason: ReplayFailureReason
  /** The replayed handler's status, or null when it threw or did not run. */
  status: number | null
  /** What was thrown, or a CONFIG `BackwardError` when the server cannot replay at all. */
  error?: unknown
}

/** Options for {@link backwardRoutes}. */
export interface BackwardRoutesOptions {
  /** Where people log in; used when someone reaches the redirect endpoint logged out. @default '/login' */
  loginUrl?: string
  /** Where to land when there is no safe destination. A path on this site. @default '/' */
  defaultRedirect?: string
  /**
   * The app to replay recorded no-JavaScript form posts through (usually your root Hono app). Without it,
   * recorded posts are discarded after login and only the redirect happens.
   */
  app?: FetchApp
  /** Hosts besides the request's own that a `next` may point to. @default [] */
  allowedHosts?: string[]
  /** @default 'next' */
  redirectField?: string
  /** A recorded action older than this (seconds) is discarded, not replayed. @default 900 (15 minutes) */
  actionTtl?: number
  /**
   * Where each replay is claimed (an insert-only `create`) so a recorded action runs once, even across
   * concurrent visits or a re-sent old cookie. Any server-side `SessionStore`. Required with
   * `cookieStore` sessions, which cannot forget anything: without it their recorded posts are discarded
   * (reported once through `onReplayError`).
   * @default the session's own store when it is server-side
   */
  replayStore?: SessionStore
  /**
   * Called when a replayed form post throws or answers 4xx/5xx (the person lands with
   * `?backward_replay=failed`), once when replays cannot run at all (cookieStore without replayStore),
   * and when a recorded post is discarded unreplayed, expired or not bound to this browser (the person
   * lands with `?backward_replay=discarded`). See {@link ReplayFailureReason}.
   * @default console.error for failures, console.warn for discards, with the method, path and reason
   */
  onReplayError?: (failure: ReplayFailure) => void
  /** Called with replay-store failures (the request gets a 503 and the action stays recorded). @default console.error */
  onStoreError?: (error: unknown) => void
  /** Decides who is logged in. @default a user id set by login() */
  isAuthenticated?: (c: Context) => boolean | Promise<boolean>
}

const REPLAY_HEADER = 'X-Backward-Replay'
/** A claim outlives the window in which its action could still be replayed, with room for clock skew. */
const CLAIM_MARGIN_MS = 5 * 60_000

function logReplayError({ method, path, reason, status, error }: ReplayFailure): void {
  // A CONFIG message is ours and safe to print; anything else might carry data, so only the route and status.
  if (isBackwardError(error, 'CONFIG')) console.error(error.message)
  else if (reason === 'expired' || reason === 'unbound' || reason === 'too-large') {
    const why = reason === 'expired' ? 'it was older than actionTtl' : reason === 'unbound' ? 'this browser did not hold its action cookie' : 'the cookie session had no room for it at login'
    console.warn(`[backward] backwardRoutes(): a recorded ${method} ${path} was discarded, not replayed, because ${why}; the person landed with ?${REPLAY_OUTCOME_PARAM}=${REPLAY_OUTCOME.discarded}.`)
  } else console.error(`[backward] backwardRoutes(): the replayed ${method} ${path} ${status === null ? 'threw' : `answered ${status}`}; the person landed with ?${REPLAY_OUTCOME_PARAM}=${REPLAY_OUTCOME.failed}. Check that handler.`)
}

/**
 * backward's routes, mounted at `/backward`. `GET /backward/login/redirect` is where your login handler
 * sends people after a successful login (Django's `LOGIN_REDIRECT_URL`): it replays a recorded
 * no-JavaScript form post once (only in the browser that recorded it, within `actionTtl`), then redirects
 * to where the person was, through `isSafeRedirect`. A replay that fails adds `?backward_replay=failed`,
 * a recorded post that is too old or not bound to this browser `?backward_replay=discarded`. When login()
 * just ran (maybe on another host that shares the session cookie), it sets the login signal for this host.
 * @example
 * app.route('/backward', backwardRoutes({ loginUrl: '/login', app }))
 */
export function backwardRoutes(options: BackwardRoutesOptions = {}): Hono {
  const loginUrl = options.loginUrl ?? '/login'
  const defaultRedirect = options.defaultRedirect ?? '/'
  assertLocalPath(loginUrl, 'backwardRoutes(): loginUrl', '/login')
  assertLocalPath(defaultRedirect, 'backwardRoutes(): defaultRedirect', '/')
  const field = options.redirectField ?? DEFAULT_REDIRECT_FIELD
  const actionTtl = options.actionTtl ?? 900
  if (typeof actionTtl !== 'number' || !Number.isFinite(actionTtl) || actionTtl <= 0) throw new BackwardError('CONFIG', '[backward] backwardRoutes(): actionTtl must be a positive number of seconds.')
  const actionTtlMs = actionTtl * 1000
  const replayStore = options.replayStore
  if (replayStore !== undefined && (isCookieStore(replayStore) || typeof replayStore?.create !== 'function' || typeof replayStore.delete !== 'function')) {
    throw new BackwardError('CONFIG', '[backward] backwardRoutes(): replayStore must be a server-side SessionStore (memoryStore, fileStore, redisStore, postgresStore), not cookieStore.')
  }
  const onReplayError = options.onReplayError ?? logReplayError
  const onStoreError = options.onStoreError ?? logStoreError('backwardRoutes()')
  const extraHosts = [...(options.allowedHosts ?? [])]
  const isAuthenticated = options.isAuthenticated ?? ((c: Context) => getUserId(c) !== null)
  // The session store is only known per request, so a cookieStore without replayStore cannot fail at
  // start-up; it is reported once, and its recorded posts are discarded rather than replayed twice.
  let reportedNoClaims = false
  const report = (failure: ReplayFailure) => {
    try {
      onReplayError(failure)
    } catch {
      // A failing report must not turn the landing into an error page.
    }
  }
  const routes = new Hono()

  // The user the browser SDK must confirm before it replays (it never trusts the login signal alone):
  // the keyed tag of the logged-in user, or null. Same-origin reads only: no CORS headers are sent.
  routes.get('/user', async function currentUser(c) {
    const session = c.get('session')
    if (session === undefined) throw new BackwardError('CONFIG', '[backward] backwardRoutes() needs session() earlier in the chain: app.use(session({ store })).')
    // A session cookie sent twice was planted (a sibling subdomain's Domain cookie): the session read
    // may be the attacker's, so no user is confirmed and the SDK keeps its queue.
    const planted = countCookie(c.req.header('Cookie') ?? '', sessionCookieName(sessionConfig(session), c.req.url)) > 1
    const userId = !planted && (await isAuthenticated(c)) ? getUserId(c) : null
    const res = c.json({ user: userId === null ? null : await userTag(c, userId) })
    res.headers.set('Cache-Control', 'no-store')
    res.headers.set('Vary', 'Cookie')
    return res
  })

  routes.get('/login/redirect', (c) => land(c, 'GET'))
  // The "Continue" form of the confirmation page: a same-origin POST with its one-time token.
  routes.post('/login/redirect', (c) => land(c, 'POST'))

  /**
   * The landing after a login. A recorded post is replayed only with proof that this request follows
   * the login: login()'s one-time token in the query, or the confirmation page's same-origin POST.
   * Anything else (a third-party page's link or image to this GET) gets the confirmation page.
   */
  async function land(c: Context, method: 'GET' | 'POST'): Promise<Response> {
    // Hono answers HEAD with the GET handler: a HEAD must change nothing (no replay, no token).
    if (c.req.method === 'HEAD') return new Response(null, { status: 204, headers: { 'Cache-Control': 'no-store' } })
    const url = new URL(c.req.url)
    const safe = (candidate: unknown): candidate is string =>
      typeof candidate === 'string' && candidate.length <= MAX_NEXT_LENGTH && isSafeRedirect(candidate, { allowedHosts: [url.host, ...extraHosts], requireHttps: url.protocol === 'https:' })
    const queryNext = c.req.query(field)

    if (!(await isAuthenticated(c))) return redirect(c, withNext(loginUrl, field, safe(queryNext) ? queryNext : null))

    const session = c.get('session')
    if (session === undefined) throw new BackwardError('CONFIG', '[backward] backwardRoutes() needs session() earlier in the chain: app.use(session({ store })).')
    const handle = sessionHandle(session)
    const config = sessionConfig(session)
    const secure = isSecureRequest(config.cookie.secure, url)
    const nonce = getCookie(c, actionCookieName(secure))
    const action = readRecordedAction(session.get(ACTION_KEY))
    const savedNext = session.get(NEXT_KEY)
    const signal = await pendingLoginSignal(c)
    // The record, the saved page and login()'s signal note are used once. They are removed before a
    // replay (the replayed request must not see them), or at the end, but never by a visit that lost the
    // claim: the winner removed them already, and a write from the loser's stale copy would undo the
    // replayed handler's session changes.
    let forgotten = false
    const forget = () => {
      if (forgotten) return
      forgotten = true
      for (const key of [ACTION_KEY, NEXT_KEY, SIGNAL_KEY, PROOF_KEY, CONFIRM_KEY, DROPPED_KEY]) handle.deleteInternal(key)
    }

    let landing: string | null = null
    let outcome: (typeof REPLAY_OUTCOME)[keyof typeof REPLAY_OUTCOME] | null = null
    const cookies: string[] = []
    let innerSetNonce = false
    const discard = action === null || options.app === undefined ? null : await discardReason(action, nonce, config.policy.now(), actionTtlMs)
    if (action !== null && discard === null && options.app !== undefined && !(await proven(c, method, session))) {
      // Not forgotten: the person's own "Continue" replays it. Nothing else changes on this visit.
      forgotten = true
      const site = c.req.header('Sec-Fetch-Site') ?? 'unknown'
      reportSuspicious(c, 'cross-site-trigger', `the login-redirect endpoint was reached by ${method} without login()'s proof (Sec-Fetch-Site: ${site}) while a recorded post waited; a confirmation page was shown instead of replaying it`)
      return confirmationPage(c, session, queryNext !== undefined && safe(queryNext) ? queryNext : null, field)
    }
    const dropped = session.get(DROPPED_KEY)
    if (typeof dropped === 'string') {
      outcome = REPLAY_OUTCOME.discarded
      report({ method: 'POST', path: dropped, reason: 'too-large', status: null })
    }
    if (action !== null && discard !== null) {
      outcome = REPLAY_OUTCOME.discarded
      report({ method: 'POST', path: pathOf(action), reason: discard, status: null })
    } else if (action !== null && options.app !== undefined) {
      const claims = replayStore ?? (isCookieStore(config.store) ? null : config.store)
      if (claims === null) {
        outcome = REPLAY_OUTCOME.failed
        if (!reportedNoClaims) {
          reportedNoClaims = true
          const error = new BackwardError('CONFIG', '[backward] backwardRoutes(): the session uses cookieStore, which cannot make a replay run once (an old cookie can be sent again). Pass backwardRoutes({ replayStore }) with any server-side store to replay recorded no-JavaScript form posts; until then they are discarded.')
          report({ method: 'POST', path: pathOf(action), reason: 'unavailable', status: null, error })
        }
      } else {
        // One-shot: an insert-only create on a key derived from the action id. Two concurrent visits,
        // or a re-sent old cookie, find the claim taken and skip the replay.
        const claimKey = await hashKey(action.id, 'replay')
        const now = config.policy.now()
        let innerCookie: string | null
        try {
          if (!(await claims.create(claimKey, { claimed: now }, Math.max(action.at + actionTtlMs, now) + CLAIM_MARGIN_MS))) {
            forgotten = true // already replayed by another visit: leave the session alone
            return finish()
          }
        } catch (error) {
          return storeUnavailable(c, error, onStoreError) // the action stays recorded: a reload retries
        }
        forget()
        try {
          innerCookie = await persistForReplay(session)
        } catch (error) {
          await claims.delete(claimKey).catch(() => {}) // nothing ran: let a retry claim it again
          // Logged out by a concurrent request: nothing is replayed, and session() answers 400 on commit.
          if (isBackwardError(error, 'SESSION_INTERRUPTED')) return finish()
          return storeUnavailable(c, error, config.onStoreError)
        }
        let res: Response | null = null
        let thrown: unknown
        try {
          res = await replay(options.app, c, action, rebuildCookies(c.req.header('Cookie'), sessionCookieName(config, c.req.url), actionCookieName(secure), innerCookie))
        } catch (error) {
          thrown = error
        }
        if (res === null || res.status >= 400) {
          outcome = REPLAY_OUTCOME.failed
          report({ method: 'POST', path: pathOf(action), reason: 'failed', status: res?.status ?? null, ...(res === null ? { error: thrown } : {}) })
        }
        const inner = res === null ? { sessionLine: null, setNonce: false } : splitInnerCookies(res, sessionCookieName(config, c.req.url), actionCookieName(secure), cookies)
        innerSetNonce = inner.setNonce
        if (!isCookieStore(config.store)) {
          // The inner request owns the session now (it may have rotated or deleted the id): this request
          // writes nothing more to the store, and sends the inner answer's session cookie, if any.
          if (innerCookie !== null) handOverSession(session, inner.sessionLine)
          else if (inner.sessionLine !== null) cookies.push(inner.sessionLine)
        } else if (inner.sessionLine !== null) await adoptSealed(session, config.store, inner.sessionLine)
        const target = res?.headers.get('Location') ?? null
        if (outcome === null && res !== null && res.status >= 300 && res.status < 400 && target !== null) landing = followLocation(target, action.path, url, safe)
      }
    }
    return finish()

    function finish(): Response {
      forget()
      landing ??= safe(queryNext) ? queryNext : safe(savedNext) ? savedNext : defaultRedirect
      const res = redirect(c, outcome !== null ? withNext(landing, REPLAY_OUTCOME_PARAM, outcome) : landing)
      for (const cookie of cookies) res.headers.append('Set-Cookie', cookie)
      // The action cookie is single use: gone after the first visit that finds it (or finds a record).
      if (!innerSetNonce && (nonce !== undefined || action !== null)) res.headers.append('Set-Cookie', actionCookie('', secure))
      // Host-only, on the host the browser lands on (see SIGNAL_KEY): set again even when login() ran on
      // this host too, which is the same cookie twice.
      if (signal !== null) res.headers.append('Set-Cookie', signal)
      return res
    }
  }

  return routes
}

/** Session key of the confirmation page's one-time token (its hash and when it was made). */
const CONFIRM_KEY = '_backward_confirm'
const CONFIRM_FIELD = 'backward_confirm'
const MAX_CONFIRM_TOKENS = 3

/**
 * Whether this landing follows the login: GET with login()'s one-time token (`?backward_proof=`), or
 * POST from this origin with the confirmation page's token. A token is compared by its hash, in
 * constant time, and is good for PROOF_MAX_AGE_MS.
 */
async function proven(c: Context, method: 'GET' | 'POST', session: Session): Promise<boolean> {
  const now = sessionConfig(session).policy.now()
  const matches = async (token: unknown, stored: unknown): Promise<boolean> => {
    if (typeof token !== 'string' || !isSessionId(token) || typeof stored !== 'object' || stored === null) return false
    const { h, at } = stored as { h?: unknown; at?: unknown }
    if (typeof h !== 'string' || typeof at !== 'number' || !(now - at < PROOF_MAX_AGE_MS && now - at >= -60_000)) return false
    return sameString(await hashKey(token, PROOF_NAMESPACE), h)
  }
  if (method === 'GET') return matches(c.req.query(PROOF_PARAM), session.get(PROOF_KEY))
  const facts = { method, url: new URL(c.req.url), headers: c.req.raw.headers }
  if (!isProvenSameOrigin(facts)) return false
  let token: unknown
  try {
    const body = await readLimited(c.req.raw, 4096)
    token = body === null ? null : new URLSearchParams(new TextDecoder().decode(body)).get(CONFIRM_FIELD)
  } catch {
    return false
  }
  for (const stored of confirmTokens(session, now)) if (await matches(token, stored)) return true
  return false
}

/** The confirmation page's live tokens: a few, so a second page (another tab, a reload) does not void the first. */
function confirmTokens(session: Session, now: number): { h: string; at: number }[] {
  const stored = session.get(CONFIRM_KEY)
  if (!Array.isArray(stored)) return []
  return stored.filter((t): t is { h: string; at: number } => typeof t?.h === 'string' && typeof t?.at === 'number' && now - t.at < PROOF_MAX_AGE_MS).slice(-MAX_CONFIRM_TOKENS)
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]!)

/**
 * The page a landing without proof gets while a recorded post waits: it asks the person to continue,
 * through a same-origin POST carrying a one-time token (CSRF-protected), and cannot be framed
 * (clickjacking) or leak its URL.
 */
async function confirmationPage(c: Context, session: Session, next: string | null, field: string): Promise<Response> {
  const token = newSessionId()
  const now = sessionConfig(session).policy.now()
  const live = confirmTokens(session, now).slice(1 - MAX_CONFIRM_TOKENS)
  sessionHandle(session).setInternal(CONFIRM_KEY, [...live, { h: await hashKey(token, PROOF_NAMESPACE), at: now }])
  const action = withNext(c.req.path, field, next)
  const html = `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Continue</title>
<main style="font:16px system-ui;max-width:32rem;margin:4rem auto"><h1>Finish what you started?</h1>
<p>You were doing something on this site when you were asked to log in. Continue to complete it, or cancel to leave it undone.</p>
<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="${CONFIRM_FIELD}" value="${token}"><button type="submit">Continue</button> <a href="/">Cancel</a></form></main>`
  return c.html(html, 200, {
    'Cache-Control': 'no-store',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'same-origin',
  })
}

/** Why a record must not be replayed, or null when it is young enough and made in this browser (the action cookie's hash matches the record's). */
async function discardReason(action: RecordedAction, nonce: string | undefined, now: number, ttlMs: number): Promise<'expired' | 'unbound' | null> {
  if (now - action.at >= ttlMs) return 'expired'
  if (nonce === undefined || action.nonce === undefined) return 'unbound'
  return (await nonceHash(nonce)) === action.nonce ? null : 'unbound'
}

/**
 * The replayed answer's `Location` as the browser would have followed it from the form's URL (a relative
 * `done` from `/transfer/42` is `/transfer/done`, not `/backward/login/done`), or null when the raw or the
 * resolved form fails isSafeRedirect. Same-origin targets become path, query and fragment.
 */
function followLocation(target: string, actionPath: string, url: URL, safe: (candidate: unknown) => candidate is string): string | null {
  if (!safe(target)) return null
  let resolved: URL
  try {
    resolved = new URL(target, new URL(actionPath, url.origin))
  } catch {
    return null
  }
  const candidate = resolved.origin === url.origin ? resolved.pathname + resolved.search + resolved.hash : resolved.href
  return safe(candidate) ? candidate : null
}

function pathOf(action: RecordedAction): string {
  const q = action.path.search(/[?#]/)
  return q === -1 ? action.path : action.path.slice(0, q)
}

/**
 * Makes the session the inner request will load match this one (record removed), and returns the session
 * cookie value it should carry. Server-side: saved now, then handed over (handOverSession), so this
 * request writes nothing after the replay and cannot overwrite or touch what the replayed handler left.
 * Cookie store: sealed now, so the inner request starts from it; its answer is adopted afterwards
 * (adoptSealed).
 */
async function persistForReplay(session: Session): Promise<string | null> {
  const { store, policy } = sessionConfig(session)
  if (session.isEmpty()) return null
  if (!isCookieStore(store)) {
    await saveSessionNow(session)
    return session.key
  }
  return store.seal(sessionHandle(session).snapshot(), policy.now() + session.getExpiryAge() * 1000)
}

/** The request's Cookie header with the session cookie set to `sessionValue` (or dropped) and the action cookie dropped. */
function rebuildCookies(header: string | undefined, sessionName: string, actionName: string, sessionValue: string | null): string {
  const kept = (header ?? '')
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => {
      const name = pair.slice(0, Math.max(0, pair.indexOf('='))).trim()
      return pair !== '' && name !== sessionName && name !== actionName
    })
  if (sessionValue !== null) kept.unshift(`${sessionName}=${sessionValue}`)
  return kept.join('; ')
}

/**
 * Moves the replayed answer's Set-Cookie lines to `out`, except the session cookie, which it returns:
 * one response must carry one session cookie. Server-side, the store already holds the inner writes and
 * the inner line (which names the id, maybe a rotated one) is the one to send (handOverSession). Cookie
 * store: this request's session takes the inner state (adoptSealed), so its own commit writes one
 * cookie with the replayed handler's changes. Also says whether the inner answer set an action cookie.
 */
function splitInnerCookies(res: Response, sessionName: string, actionName: string, out: string[]): { sessionLine: string | null; setNonce: boolean } {
  let sessionLine: string | null = null
  let setNonce = false
  for (const line of res.headers.getSetCookie()) {
    const name = line.slice(0, Math.max(0, line.indexOf('='))).trim()
    if (name === sessionName) sessionLine = line
    else {
      if (name === actionName) setNonce = true
      out.push(line)
    }
  }
  return { sessionLine, setNonce }
}

/** Cookie store: this request's session becomes what the replayed answer's session cookie holds. */
async function adoptSealed(session: Session, store: CookieSessionStore, sessionLine: string): Promise<void> {
  let value: string
  try {
    value = decodeURIComponent(sessionLine.slice(sessionLine.indexOf('=') + 1).split(';')[0]!.trim())
  } catch {
    return
  }
  if (value === '' || /;\s*max-age=(0|-\d+)\s*(;|$)/i.test(sessionLine)) {
    session.flush() // the replayed handler logged out
    return
  }
  const data = await store.unseal(value)
  if (data === null) return
  const handle = sessionHandle(session)
  session.clear()
  for (const [key, value] of Object.entries(data)) handle.setInternal(key, value)
}

function redirect(c: Context, target: string): Response {
  const res = c.redirect(target, 303)
  res.headers.set('Cache-Control', 'no-store')
  return res
}

/** Runs a recorded form post through the app, as the now-logged-in user, marked as same-origin. */
async function replay(app: FetchApp, c: Context, action: RecordedAction, cookie: string): Promise<Response> {
  const url = new URL(c.req.url)
  const { body, contentType } = replayBody(action)
  const headers = new Headers({
    Accept: 'text/html',
    Origin: url.origin,
    'Sec-Fetch-Site': 'same-origin',
    'Sec-Fetch-Mode': 'navigate',
    'Sec-Fetch-Dest': 'document',
    [IDEMPOTENCY_HEADER]: action.id,
    [REPLAY_HEADER]: '1',
  })
  if (cookie !== '') headers.set('Cookie', cookie)
  if (contentType !== null) headers.set('Content-Type', contentType)
  const target = new URL(action.path, url.origin)
  if (target.origin !== url.origin) throw new BackwardError('UNSAFE_REDIRECT', '[backward] A recorded action pointed off this origin; it was not replayed.')
  const request = new Request(target, { method: action.method, headers, body, redirect: 'manual' })
  let ctx: never | undefined
  try {
    ctx = c.executionCtx as never
  } catch {
    ctx = undefined // Node has no execution context
  }
  return app.fetch(request, c.env, ctx)
}
