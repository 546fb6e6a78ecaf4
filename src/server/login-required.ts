import type { Context, MiddlewareHandler } from 'hono'
import { BackwardError } from '../shared/errors.ts'
import { DEFAULT_REDIRECT_FIELD, LOGIN_REQUIRED_TYPE, loginChallenge } from '../shared/protocol.ts'
import { getUserId } from './auth.ts'
import { problem } from './problem.ts'
import { newSessionId } from './ids.ts'
import { ACTION_KEY, NEXT_KEY, actionCookie, formEnctype, nonceHash, readLimited, recordForm } from './recorded-action.ts'
import { assertLocalPath, isNavigation, isProvenSameOrigin, isSecureRequest, pathAndQuery, sameOriginReferer, withNext, type RequestFacts } from './request-kind.ts'
import { fitsInCookie, sessionConfig, sessionHandle } from './session.ts'
import { isCookieStore } from './stores/cookie.ts'

/**
 * Sealed characters a cookie-store session must keep free when the wall records into it: what login()
 * adds next, so the login itself cannot overflow the cookie. Measured: the user id, the signal note and
 * an expiry add 80 + 4/3 of the id's JSON, 447 for a 256-character id with `remember`. A 2048-byte
 * ordinary form seals to about 3220, so it still records.
 */
const LOGIN_HEADROOM = 512

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
   * Largest form body recorded, in bytes (files included). Larger posts still get the redirect but are
   * not recorded. With the cookie store the cap is at most 2048 bytes, since a cookie holds about 4 KB,
   * and a form whose sealed session would not fit (escaping can double it) is not recorded either.
   * @default 1048576
   */
  maxRecordBytes?: number
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
  const maxRecordBytes = options.maxRecordBytes ?? 1_048_576
  const trustedOrigins = [...(options.trustedOrigins ?? [])]
  if (!Number.isInteger(maxRecordBytes) || maxRecordBytes < 0) throw new BackwardError('CONFIG', '[backward] loginRequired(): maxRecordBytes must be a whole number of bytes.')

  return async function loginRequired(c, next) {
    if (await isAuthenticated(c)) return next()
    const facts: RequestFacts = { method: c.req.method, url: new URL(c.req.url), headers: c.req.raw.headers }

    if (!isNavigation(facts)) {
      const target = withNext(loginUrl, field, sameOriginReferer(facts) ?? (facts.method === 'GET' ? pathAndQuery(facts.url) : null))
      return problem(401, LOGIN_REQUIRED_TYPE, 'Login required', { loginUrl: target }, { 'WWW-Authenticate': loginChallenge(target), Vary: 'Cookie' })
    }

    const session = c.get('session')
    if (session === undefined) throw new BackwardError('CONFIG', '[backward] loginRequired() needs session() earlier in the chain: app.use(session({ store })).')
    const handle = sessionHandle(session)
    const config = sessionConfig(session)
    const cookieSessions = isCookieStore(config.store)
    let destination: string | null
    let actionCookieLine: string | null = null
    if (facts.method === 'GET' || facts.method === 'HEAD') {
      destination = pathAndQuery(facts.url)
    } else {
      // A page to land on after the replay: the form's page, never the POST-only URL.
      destination = sameOriginReferer(facts)
      if (recordForms && facts.method === 'POST' && isProvenSameOrigin(facts, trustedOrigins)) {
        const contentType = c.req.header('Content-Type') ?? ''
        const cap = cookieSessions ? Math.min(maxRecordBytes, 2048) : maxRecordBytes
        const bytes = formEnctype(contentType) === null ? null : await readLimited(c.req.raw, cap)
        // The query is part of the action (`/transfer?acct=123`); the replay keeps it on this origin.
        const action = bytes === null ? null : await recordForm(pathAndQuery(facts.url), contentType, bytes, config.policy.now())
        if (action !== null) {
          // Bind the record to this browser (see ACTION_COOKIE): the session keeps only the nonce's hash.
          const nonce = newSessionId()
          handle.setInternal(ACTION_KEY, { ...action, nonce: await nonceHash(nonce) })
          actionCookieLine = actionCookie(nonce, isSecureRequest(config.cookie.secure, facts.url))
        }
      }
    }
    if (destination !== null) handle.setInternal(NEXT_KEY, destination)
    // A cookie store holds about 4 KB, and escaping and sealing can more than double a form's bytes (a
    // body of `"` or `%01`): anonymous input must not make the commit a COOKIE_TOO_LARGE 500. What does
    // not fit is not kept, as for a cross-site post; nothing is logged (the input is anyone's). The seal
    // runs only when something long was written: a record, or a destination beyond any ordinary URL.
    // The record goes first; the destination only if the session still does not fit without it.
    if (cookieSessions && (actionCookieLine !== null || (destination?.length ?? 0) > 1024) && !(await fitsInCookie(session, LOGIN_HEADROOM))) {
      let dropDestination = true
      if (actionCookieLine !== null) {
        handle.deleteInternal(ACTION_KEY)
        actionCookieLine = null
        dropDestination = !(await fitsInCookie(session, LOGIN_HEADROOM))
      }
      if (dropDestination && destination !== null) {
        handle.deleteInternal(NEXT_KEY)
        destination = null
      }
    }
    const res = c.redirect(withNext(loginUrl, field, destination), 303)
    res.headers.set('Cache-Control', 'no-store')
    if (actionCookieLine !== null) res.headers.append('Set-Cookie', actionCookieLine)
    return res
  }
}
