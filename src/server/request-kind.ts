/**
 * Pure request classification for the login wall, with no Hono in it: is this a top-level navigation,
 * is it proven same-origin, what page should the person come back to.
 */
import { BackwardError } from '../shared/errors.ts'
import { isSafeRedirect } from '../shared/safe-redirect.ts'

/** The parts of a request the login wall looks at. */
export interface RequestFacts {
  method: string
  url: URL
  headers: Headers
}

/**
 * A top-level navigation gets a redirect; anything else (fetch, XHR, an API client) gets the 401 problem.
 * `Sec-Fetch-Mode` decides when the browser sends it; older clients are judged by `Accept`.
 */
export function isNavigation({ method, headers }: RequestFacts): boolean {
  const mode = headers.get('Sec-Fetch-Mode')
  if (mode !== null) return mode === 'navigate' && (headers.get('Sec-Fetch-Dest') ?? 'document') === 'document'
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return false
  if (headers.get('X-Requested-With') !== null) return false
  return /\btext\/html\b/i.test(headers.get('Accept') ?? '')
}

/**
 * True only when the browser proves the request came from this origin or a trusted one. No proof means
 * no: a request without `Sec-Fetch-Site` or `Origin` is treated as cross-site, so it is never recorded.
 * `Sec-Fetch-Site: same-origin` is proof on its own; `same-site` and `cross-site` count only with an
 * `Origin` listed in `trustedOrigins` (a trusted origin is by definition another origin, so the browser
 * never calls its posts same-origin); `none` (typed in the address bar, a bookmark) is never a form post.
 */
export function isProvenSameOrigin({ url, headers }: RequestFacts, trustedOrigins: readonly string[] = []): boolean {
  const site = headers.get('Sec-Fetch-Site')
  const origin = headers.get('Origin')
  if (site === 'same-origin') return true
  if (site === 'same-site' || site === 'cross-site') return origin !== null && trustedOrigins.includes(origin)
  if (site !== null) return false
  if (origin === null || origin === 'null') return false
  return origin === url.origin || trustedOrigins.includes(origin)
}

/**
 * Whether cookies set for this request are Secure: the session cookie's `secure` option when set (behind
 * a TLS proxy the request URL says http), otherwise whether the request came over HTTPS.
 */
export function isSecureRequest(secure: boolean | undefined, url: URL): boolean {
  return secure ?? url.protocol === 'https:'
}

/**
 * Throws CONFIG unless `value` is a path on this site that passes `isSafeRedirect` (the one redirect
 * check): `/login` yes; `//evil.com`, `/%2F%2Fevil.com`, `/\x00/evil`, `/.//evil.com` no.
 */
export function assertLocalPath(value: unknown, name: string, example: string): asserts value is string {
  if (typeof value !== 'string' || !value.startsWith('/') || !isSafeRedirect(value)) {
    throw new BackwardError('CONFIG', `[backward] ${name} must be a path on this site, like "${example}".`)
  }
}

/** The path and query of a URL, the form `next` takes. */
export function pathAndQuery(url: URL): string {
  return url.pathname + url.search
}

/** The same-origin Referer as a path and query, or null. */
export function sameOriginReferer({ url, headers }: RequestFacts): string | null {
  const referer = headers.get('Referer')
  if (referer === null) return null
  try {
    const parsed = new URL(referer)
    return parsed.origin === url.origin ? pathAndQuery(parsed) : null
  } catch {
    return null
  }
}

/**
 * Appends `field=value` to a login URL, keeping what it already has.
 * @example
 * withNext('/login', 'next', '/people?page=2') // '/login?next=%2Fpeople%3Fpage%3D2'
 */
export function withNext(loginUrl: string, field: string, next: string | null): string {
  if (next === null) return loginUrl
  const hash = loginUrl.indexOf('#')
  const base = hash === -1 ? loginUrl : loginUrl.slice(0, hash)
  const fragment = hash === -1 ? '' : loginUrl.slice(hash)
  const param = `${encodeURIComponent(field)}=${encodeURIComponent(next)}`
  return `${base}${base.includes('?') ? '&' : '?'}${param}${fragment}`
}
