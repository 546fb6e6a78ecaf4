/**
 * Pure request classification for the login wall, with no Hono in it: is this a top-level navigation,
 * is it proven same-origin, what page should the person come back to.
 */

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
 * True only when the browser proves the request came from this origin. No proof means no: a request
 * without `Sec-Fetch-Site` or `Origin` is treated as cross-site, so it is never recorded.
 */
export function isProvenSameOrigin({ url, headers }: RequestFacts, trustedOrigins: readonly string[] = []): boolean {
  const site = headers.get('Sec-Fetch-Site')
  if (site !== null) return site === 'same-origin'
  const origin = headers.get('Origin')
  if (origin === null || origin === 'null') return false
  return origin === url.origin || trustedOrigins.includes(origin)
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
