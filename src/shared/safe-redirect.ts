/**
 * The open-redirect guard: a port of Django's `url_has_allowed_host_and_scheme`
 * (django/utils/http.py), hardened against the ways browsers and servers re-read a URL.
 * Web standards only (`URL`, `String#normalize`), so the same check runs in the browser and on the server.
 */

/** Options for {@link isSafeRedirect}. */
export interface SafeRedirectOptions {
  /**
   * Hosts (`host` or `host:port`, compared case-insensitively, ASCII/punycode only) a redirect may go to.
   * As in Django the whole authority is compared verbatim: `good.com:443` is not `good.com`.
   * @default []
   */
  allowedHosts?: Iterable<string> | string
  /** Only `https` absolute URLs are allowed (relative URLs still are). @default false */
  requireHttps?: boolean
}

// Django's MAX_URL_LENGTH (CVE-2025-27556). We apply it to the raw input, before any work.
const MAX_URL_LENGTH = 2048
// Percent-decoding rounds we look through (single, double, triple encoding); deeper is refused.
const MAX_DECODE_ROUNDS = 3
// A relative URL must land back on the page's own origin, whether the page is http or https.
const BASES = ['http://backward.invalid/', 'https://backward.invalid/']
// Unicode category C (controls incl. tab/CR/LF, zero-width and bidi formats, lone surrogates,
// private use, unassigned) plus line/paragraph separators: browsers strip some of them silently.
const INVISIBLE = /[\p{C}\p{Zl}\p{Zp}]/u
// WHATWG URL strips leading and trailing C0 controls and spaces; Django strips whitespace.
// Either way the checked string would not be the parsed one, so edges must be clean.
const EDGE_SPACE = /^\s|\s$/
// Python's urlsplit: a scheme is an ASCII letter then letters, digits, `+-.`, before the first `:`.
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/
// Non-ASCII where a scheme would be (before the first `/`, `\`, `?`, `#`): `ｊavascript:`, `／／evil`.
const NON_ASCII_LEAD = /^[^/\\?#]*[^\x00-\x7f]/
const NON_ASCII = /[^\x00-\x7f]/

/**
 * Whether `url` is safe to redirect to: relative, or on an allowed host with an http(s) scheme. Never throws.
 * @example
 * isSafeRedirect(next, { allowedHosts: ['example.com'] }) ? c.redirect(next) : c.redirect('/')
 */
export function isSafeRedirect(url: unknown, options?: SafeRedirectOptions): boolean {
  try {
    if (typeof url !== 'string' || url.length > MAX_URL_LENGTH) return false
    const allowed = options?.allowedHosts
    const hosts = new Set<string>()
    // A non-iterable `allowedHosts` throws here and fails closed.
    for (const host of typeof allowed === 'string' ? [allowed] : (allowed ?? [])) {
      if (typeof host === 'string') hosts.add(asciiLower(host))
    }
    const schemes = options?.requireHttps ? ['https'] : ['http', 'https']
    const all = forms(url)
    return all !== undefined && all.every((form) => isSafeForm(form, hosts, schemes))
  } catch {
    return false
  }
}

// Every reading of the URL some consumer may act on: as written, NFKC-normalised (IDNA and
// Windows' Python normalise; `／／evil.com` becomes `//evil.com`), and after each round of
// percent-decoding of the part before `?`/`#` (a server that decodes `/%2F%2Fevil.com` and
// redirects again sends the browser to `//evil.com`). Queries and fragments carry encoded data
// legitimately (`?next=https%3A%2F%2F…`), so they are left as they are.
function forms(url: string): string[] | undefined {
  const out: string[] = []
  for (let form of new Set([url, url.normalize('NFKC')])) {
    for (let round = 0; ; round++) {
      out.push(form, form.normalize('NFKC'))
      const next = decodeHead(form)
      if (next === form) break
      if (round === MAX_DECODE_ROUNDS) return undefined
      form = next
    }
  }
  return out
}

function decodeHead(url: string): string {
  const end = url.search(/[?#]/)
  const head = end < 0 ? url : url.slice(0, end)
  return head.replace(/(?:%[\da-f]{2})+/gi, decodeRun) + (end < 0 ? '' : url.slice(end))
}

// decodeURIComponent throws on malformed UTF-8; then decode the ASCII escapes alone, which are
// the ones that matter (`%2F`, `%5C`, `%09`, `%40`).
function decodeRun(run: string): string {
  try {
    return decodeURIComponent(run)
  } catch {
    return run.replace(/%[0-7][\da-f]/gi, (e) => String.fromCharCode(parseInt(e.slice(1), 16)))
  }
}

function isSafeForm(form: string, hosts: Set<string>, schemes: string[]): boolean {
  if (form === '' || INVISIBLE.test(form) || EDGE_SPACE.test(form) || NON_ASCII_LEAD.test(form)) return false
  // Django: "Chrome treats \ completely as / in paths but it could be part of some basic auth
  // credentials so we need to check both URLs."
  return [form, form.replace(/\\/g, '/')].every((u) => check(u, hosts, schemes))
}

// Django's `_url_has_allowed_host_and_scheme`, then the browser's own parser must agree.
function check(url: string, hosts: Set<string>, schemes: string[]): boolean {
  // 1. Chrome reads `///evil.com` as absolute; urlsplit does not.
  if (url.startsWith('///')) return false
  // 2. urlsplit raises (bad IPv6 brackets) → unsafe.
  const parts = split(url)
  if (parts === undefined) return false
  const { scheme, netloc } = parts
  // 3. `http:///evil.com`, `http:999`: a scheme without a host; Chrome finds a host anyway.
  if (scheme && !netloc) return false
  // 4. Chrome ignores leading control characters and may see a scheme-relative URL.
  if (/^\p{C}/u.test(url)) return false
  // 5. `//host` is http; only http(s) (or https with requireHttps) may leave the page.
  const effective = scheme || (netloc ? 'http' : '')
  if (effective && !schemes.includes(effective)) return false
  // 6. The authority is compared verbatim (port and userinfo included), case-insensitively.
  //    Non-ASCII authorities are refused: IDNA would map them (`．` → `.`) behind our back.
  if (netloc && (NON_ASCII.test(netloc) || !hosts.has(asciiLower(netloc)))) return false
  return browserAgrees(url, netloc, schemes)
}

// Python's urlsplit, as far as scheme and netloc go (Python 3.12+, after Django's strip).
function split(url: string): { scheme: string; netloc: string } | undefined {
  let scheme = ''
  let rest = url
  const colon = url.indexOf(':')
  if (colon > 0 && SCHEME.test(url.slice(0, colon))) {
    scheme = url.slice(0, colon).toLowerCase()
    rest = url.slice(colon + 1)
  }
  if (!rest.startsWith('//')) return { scheme, netloc: '' }
  const end = rest.slice(2).search(/[/?#]/)
  const netloc = end < 0 ? rest.slice(2) : rest.slice(2, end + 2)
  const open = netloc.indexOf('[')
  const close = netloc.indexOf(']')
  // "Invalid IPv6 URL": one bracket without the other.
  if ((open < 0) !== (close < 0)) return undefined
  // Python checks the bracketed host is an IPv6 address; we let the WHATWG parser decide
  // (it refuses IPvFuture and zone ids too, which no browser can reach anyway).
  if (open >= 0 && !isIPv6(netloc.slice(open + 1).split(']')[0] ?? '')) return undefined
  return { scheme, netloc }
}

function isIPv6(host: string): boolean {
  try {
    return new URL(`http://[${host}]/`).hostname.startsWith('[')
  } catch {
    return false
  }
}

// The browser is the one that follows the redirect, so its parse must match ours: a relative URL
// stays on the page's origin, an absolute one reaches the host we approved, over http(s).
//
// Stricter than Django: the browser's resolved path must not start with `//`. `/.//evil.com`,
// `/a/..//evil.com` and `//testserver//evil.com` stay on the site, but the browser removes the dot
// segments (without any decoding) and ends up on the path `//evil.com`. Anything that later redirects
// to that path, as a path (a trailing-slash or locale redirect, `Location: ${url.pathname}`, a
// `next` built from `location.pathname`), sends the person to evil.com. No real page needs such a
// path; every Django good URL still passes. The root bases are the worst case: `..` stops at the root.
function browserAgrees(url: string, netloc: string, schemes: string[]): boolean {
  for (const base of BASES) {
    const target = new URL(url, base)
    if (target.pathname.startsWith('//')) return false
    if (!netloc) {
      if (`${target.origin}/` !== base) return false
      continue
    }
    if (!schemes.includes(target.protocol.slice(0, -1))) return false
    if (target.host !== new URL(`${target.protocol}//${netloc}/`).host) return false
  }
  return true
}

// ASCII-only, so a Kelvin sign (U+212A) in a config cannot lower-case into a `k`.
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32))
}
