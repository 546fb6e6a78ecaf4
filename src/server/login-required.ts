import type { Context, MiddlewareHandler } from 'hono'
import { BackwardError } from '../shared/errors.ts'
import { DEFAULT_REDIRECT_FIELD, LOGIN_REQUIRED_TYPE, PAGE_HEADER, loginChallenge } from '../shared/protocol.ts'
import { isSafeRedirect } from '../shared/safe-redirect.ts'
import { MAX_NEXT_LENGTH, getUserId } from './auth.ts'
import { reportSuspicious } from './suspicious.ts'
import { problem } from './problem.ts'
import { newSessionId } from './ids.ts'
import { ACTION_KEY, NEXT_KEY, actionCookie, formEnctype, nonceHash, readLimited, recordForm } from './recorded-action.ts'
import { assertLocalPath, isNavigation, isProvenSameOrigin, isSecureRequest, pathAndQuery, sameOriginReferer, withNext, type RequestFacts } from './request-kind.ts'
import { SHORT_LIVED_KEY, fitsInCookie, sessionConfig, sessionHandle } from './session.ts'
import { isCookieStore } from './stores/cookie.ts'

/**
 * Sealed characters a cookie-store session must keep free when the wall records into it: what login()
 * adds next, so the login itself cannot overflow the cookie. Measured: the user id, the signal note, the
 * login proof and an expiry add about 600 for a 256-character id with `remember`.
 */
const LOGIN_HEADROOM = 768

/** Options for {@link loginRequired}. */
export interface LoginRequiredOptions {
  /** Where people log in. A path on this site. @default '/login' */
  loginUrl?: string
  /** Query parameter that carries the page to come back to. @default 'next' */
  redirectField?: string
  /** Decides who is logged in. @default a user id set by login() */
  isAuthenticated?: (c: Context) => boolean | Promise<boolean>
  /** Record no-JavaScript form posts (same-origin only) for replay after login. @default true */
  recordForms?: boolean
  /**
   * Largest record kept, in bytes as stored (JSON, files as base64): what an anonymous client can make
   * the server keep is bounded by this, not by the body's size (escaping can grow a body 6×). Larger
   * posts still get the redirect, are not recorded, and are reported to `onSuspicious`. With the cookie
   * store, a record whose sealed session would not fit in 4 KB is not recorded either.
   * @default 65536
   */
  maxRecordBytes?: number
  /** Most form fields recorded (Django's DATA_UPLOAD_MAX_NUMBER_FIELDS); more are not recorded. @default 1000 */
  maxRecordFields?: number
  /**
   * How long a session that exists only to hold a recorded post lives, in seconds: the anonymous
   * session then expires with its action, not after the session's `maxAge`. Match backwardRoutes'
   * `actionTtl`. @default 900
   */
  actionTtl?: number
  /** Other origins (`https://app.example.com`) whose form posts count as same-origin. @default [] */
  trustedOrigins?: string[]
}

/**
 * Guards a route for logged-in users. Anyone else gets backward's answer: a `401` problem for fetches
 * (the browser SDK saves the request and hands off to login), or a `303` to the login page for page
 * navigations, with the destination kept in the session and a same-origin no-JavaScript form post
 * recorded for replay after login.
 * @example
 * app.post('/api/follow/:id', loginRequired(), (c) => follow(c))
 * app.use('/settings/*', loginRequired({ loginUrl: '/accounts/login' }))
 */
export function loginRequired(options: LoginRequiredOptions = {}): MiddlewareHandler {
  const loginUrl = options.loginUrl ?? '/login'
  // A path on this site, so the wall itself can never redirect off-site.
  assertLocalPath(loginUrl, 'loginRequired(): loginUrl', '/login')
  const field = options.redirectField ?? DEFAULT_REDIRECT_FIELD
  const isAuthenticated = options.isAuthenticated ?? ((c: Context) => getUserId(c) !== null)
  const recordForms = options.recordForms ?? true
  const maxRecordBytes = options.maxRecordBytes ?? 65_536
  const maxRecordFields = options.maxRecordFields ?? 1000
  const actionTtl = options.actionTtl ?? 900
  const trustedOrigins = [...(options.trustedOrigins ?? [])]
  if (!Number.isInteger(maxRecordBytes) || maxRecordBytes < 0) throw new BackwardError('CONFIG', '[backward] loginRequired(): maxRecordBytes must be a whole number of bytes.')
  if (!Number.isInteger(maxRecordFields) || maxRecordFields < 0) throw new BackwardError('CONFIG', '[backward] loginRequired(): maxRecordFields must be a whole number.')
  if (!Number.isInteger(actionTtl) || actionTtl <= 0) throw new BackwardError('CONFIG', '[backward] loginRequired(): actionTtl must be a positive whole number of seconds.')
  const limits = { bytes: maxRecordBytes, fields: maxRecordFields }

  return async function loginRequired(c, next) {
    if (await isAuthenticated(c)) return next()
    const facts: RequestFacts = { method: c.req.method, url: new URL(c.req.url), headers: c.req.raw.headers }

    if (!isNavigation(facts)) {
      // The SDK says which page it is on; other clients are judged by their Referer, then the URL itself.
      const target = withNext(loginUrl, field, bounded(sdkPage(facts) ?? sameOriginReferer(facts) ?? (facts.method === 'GET' ? pathAndQuery(facts.url) : null)))
      const res = problem(401, LOGIN_REQUIRED_TYPE, 'Login required', { loginUrl: target }, { 'WWW-Authenticate': loginChallenge(target), Vary: 'Cookie' })
      wallAnswers.add(res)
      return res
    }

    // The page to come back to travels in the login URL only: no session is made to hold it, so
    // cookieless visits to protected pages store nothing.
    if (facts.method !== 'POST' || !recordForms || !isProvenSameOrigin(facts, trustedOrigins)) {
      return toLogin(c, withNext(loginUrl, field, bounded(facts.method === 'GET' || facts.method === 'HEAD' ? pathAndQuery(facts.url) : sameOriginReferer(facts))), null)
    }
    // A page to land on after the replay: the form's page, never the POST-only URL.
    const destination = bounded(sameOriginReferer(facts))
    const session = c.get('session')
    if (session === undefined) throw new BackwardError('CONFIG', '[backward] loginRequired() needs session() earlier in the chain: app.use(session({ store })).')
    const config = sessionConfig(session)
    const contentType = c.req.header('Content-Type') ?? ''
    // A form body's stored size is at least a third of its bytes (`%41` stores as `A`), so three times
    // the cap is all that could ever fit; the rest is not read.
    const bytes = formEnctype(contentType) === null ? null : await readLimited(c.req.raw, maxRecordBytes * 3 + 1024)
    // The query is part of the action (`/transfer?acct=123`); the replay keeps it on this origin.
    const recorded = bytes === null ? null : await recordForm(pathAndQuery(facts.url), contentType, bytes, config.policy.now(), limits)
    if (bytes === null && formEnctype(contentType) !== null) reportSuspicious(c, 'oversized-record', `a form post of more than ${maxRecordBytes * 3 + 1024} bytes was not recorded`)
    if (typeof recorded === 'string') reportSuspicious(c, 'oversized-record', recorded)
    const action = typeof recorded === 'string' ? null : recorded
    let actionCookieLine: string | null = null
    if (action !== null) {
      const handle = sessionHandle(session)
      const anonymous = session.isEmpty()
      // Bind the record to this browser (see ACTION_COOKIE): the session keeps only the nonce's hash.
      const nonce = newSessionId()
      handle.setInternal(ACTION_KEY, { ...action, nonce: await nonceHash(nonce) })
      if (destination !== null) handle.setInternal(NEXT_KEY, destination)
      // A session made only for this record lives as long as the record can be replayed.
      if (anonymous) {
        session.setExpiry(actionTtl)
        handle.setInternal(SHORT_LIVED_KEY, true)
      }
      // A cookie store holds about 4 KB (escaping and sealing can more than double a form's bytes), and
      // a server-side session is capped by maxSessionBytes: anonymous input must not make the commit
      // (or the login after it) a COOKIE_TOO_LARGE or SESSION_TOO_LARGE 500. What does not fit is not
      // kept, as for a cross-site post, and is reported.
      if (!(await fitsInCookie(session, LOGIN_HEADROOM))) {
        handle.deleteInternal(ACTION_KEY)
        handle.deleteInternal(NEXT_KEY)
        if (anonymous) session.clear()
        reportSuspicious(c, 'oversized-record', `a form post was not recorded: the session holding it would pass ${isCookieStore(config.store) ? 'a 4 KB cookie' : 'maxSessionBytes'}`)
      } else actionCookieLine = actionCookie(nonce, isSecureRequest(config.cookie.secure, facts.url))
    }
    return toLogin(c, withNext(loginUrl, field, destination), actionCookieLine)
  }
}

/** The wall's answers (its 401s and 303s), so that idempotency() never keeps one as a key's answer. */
const wallAnswers = new WeakSet<Response>()

/** backward-internal: whether `res` is the login wall's own 401 or 303. */
export function isLoginWallAnswer(res: Response): boolean {
  return wallAnswers.has(res)
}

/** The 303 to the login page, never cached, with the action cookie when a post was recorded. */
function toLogin(c: Context, target: string, actionCookieLine: string | null): Response {
  const res = c.redirect(target, 303)
  wallAnswers.add(res)
  res.headers.set('Cache-Control', 'no-store')
  if (actionCookieLine !== null) res.headers.append('Set-Cookie', actionCookieLine)
  return res
}

/** A `next` longer than MAX_NEXT_LENGTH is dropped, not cut (a cut URL is another URL). */
function bounded(next: string | null): string | null {
  return next !== null && next.length <= MAX_NEXT_LENGTH ? next : null
}

/** The page the browser SDK said it is on (PAGE_HEADER): a path on this site, or null. */
function sdkPage({ headers }: RequestFacts): string | null {
  const page = headers.get(PAGE_HEADER)
  return page !== null && page.startsWith('/') && isSafeRedirect(page) ? page : null
}
