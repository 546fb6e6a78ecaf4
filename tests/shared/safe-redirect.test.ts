import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isSafeRedirect } from '../../src/shared/safe-redirect.ts'
import type { SafeRedirectOptions } from '../../src/shared/safe-redirect.ts'

const raw = String.raw

// Django, tests/utils_tests/test_http.py, URLHasAllowedHostAndSchemeTests.test_bad_urls
// (allowed_hosts={"testserver", "testserver2"}); raw strings kept as raw strings.
const DJANGO_BAD = [
  'http://example.com',
  'http:///example.com',
  'https://example.com',
  'ftp://example.com',
  raw`\\example.com`,
  raw`\\\example.com`,
  raw`/\\/example.com`,
  raw`\\\example.com`,
  raw`\\example.com`,
  raw`\\//example.com`,
  raw`/\/example.com`,
  raw`\/example.com`,
  raw`/\example.com`,
  'http:///example.com',
  raw`http:/\//example.com`,
  raw`http:\/example.com`,
  raw`http:/\example.com`,
  'javascript:alert("XSS")',
  '\njavascript:alert(x)',
  'java\nscript:alert(x)',
  '\x08//example.com',
  raw`http://otherserver\@example.com`,
  raw`http:\\testserver\@example.com`,
  raw`http://testserver\me:pass@example.com`,
  raw`http://testserver\@example.com`,
  raw`http:\\testserver\confirm\me@example.com`,
  'http:999999999',
  'ftp:9999999999',
  '\n',
  'http://[2001:cdba:0000:0000:0000:0000:3257:9652/',
  'http://2001:cdba:0000:0000:0000:0000:3257:9652]/',
]

// test_good_urls (allowed_hosts={"otherserver", "testserver"}).
const DJANGO_GOOD = [
  '/view/?param=http://example.com',
  '/view/?param=https://example.com',
  '/view?param=ftp://example.com',
  'view/?param=//example.com',
  'https://testserver/',
  'HTTPS://testserver/',
  '//testserver/',
  'http://testserver/confirm?email=me@example.com',
  '/url%20with%20spaces/',
  'path/http:2222222222',
]

const rows = (urls: readonly string[]) => urls.map((url) => [JSON.stringify(url), url] as const)

describe('isSafeRedirect: Django url_has_allowed_host_and_scheme tests', () => {
  it.each(rows(DJANGO_BAD))('test_bad_urls %s → false', (_, url) => {
    expect(isSafeRedirect(url, { allowedHosts: ['testserver', 'testserver2'] })).toBe(false)
  })

  it.each(rows(DJANGO_GOOD))('test_good_urls %s → true', (_, url) => {
    expect(isSafeRedirect(url, { allowedHosts: new Set(['otherserver', 'testserver']) })).toBe(true)
  })

  it.each([
    ['user:pass@testserver', true],
    ['testserver', false],
  ] as const)('test_basic_auth: http://user:pass@testserver/ with allowed %s → %s', (host, expected) => {
    expect(isSafeRedirect('http://user:pass@testserver/', { allowedHosts: [host] })).toBe(expected)
  })

  it.each([
    ['/confirm/me@example.com', true],
    [raw`http://testserver\@example.com`, false],
  ] as const)('test_no_allowed_hosts %s → %s', (url, expected) => {
    expect(isSafeRedirect(url)).toBe(expected)
    expect(isSafeRedirect(url, {})).toBe(expected)
    expect(isSafeRedirect(url, { allowedHosts: [] })).toBe(expected)
  })

  it.each([
    ['http://good.com/good', true],
    ['http://good.co/evil', false],
  ] as const)('test_allowed_hosts_str %s → %s', (url, expected) => {
    expect(isSafeRedirect(url, { allowedHosts: 'good.com' })).toBe(expected)
  })

  it.each(['https://example.com/p', 'HTTPS://example.com/p', '/view/?param=http://example.com'])(
    'test_secure_param_https_urls %s → true',
    (url) => {
      expect(isSafeRedirect(url, { allowedHosts: ['example.com'], requireHttps: true })).toBe(true)
    },
  )

  it.each(['http://example.com/p', 'ftp://example.com/p', '//example.com/p'])(
    'test_secure_param_non_https_urls %s → false',
    (url) => {
      expect(isSafeRedirect(url, { allowedHosts: ['example.com'], requireHttps: true })).toBe(false)
    },
  )
})

const GOOD_HOSTS: SafeRedirectOptions = { allowedHosts: ['testserver', 'good.com'] }

describe('security', () => {
  const bypasses: Record<string, string[]> = {
    'backslashes in the authority': [
      raw`/\evil.com`,
      raw`\\evil.com`,
      raw`\/evil.com`,
      raw`http:\\evil.com`,
      raw`https:\\evil.com`,
      raw`https:/\evil.com`,
      raw`//good.com\@evil.com`,
      raw`https://good.com\@evil.com`,
      raw`https://evil.com\@good.com`,
      raw`https://good.com\.evil.com`,
    ],
    'control characters, tabs, newlines and stripped whitespace': [
      '\x00//evil.com',
      '\x01//evil.com',
      '\x1f//evil.com',
      '\x7f//evil.com',
      '\x85//evil.com',
      '\t//evil.com',
      '\r\n//evil.com',
      '\v//evil.com',
      '\f//evil.com',
      ' //evil.com',
      '\u00a0//evil.com',
      '\u3000//evil.com',
      '/\t/evil.com',
      '/\n/evil.com',
      '/\r/evil.com',
      '/\x00/evil.com',
      '\\\t\\evil.com',
      'https:/\t/evil.com',
      'https://good.com\t.evil.com/',
      ' /relative',
      '/relative ',
      '/relative\n',
      '/ok?x=\n',
    ],
    'Unicode category C, zero-width and bidi characters': [
      '\u200b//evil.com',
      '/\u200b/evil.com',
      '\u200c//evil.com',
      '\u200d//evil.com',
      '\u2060//evil.com',
      '\ufeff//evil.com',
      '\u00ad//evil.com',
      '\u202e//moc.live',
      '\u2066//evil.com',
      '/\u2028/evil.com',
      '\u2029//evil.com',
      '\ud800//evil.com',
      '\ue000//evil.com',
      'https://good.com\u200b/',
      '/path\u202e/txt.exe',
    ],
    'percent-encoded slashes and backslashes in the leading position': [
      '/%2F%2Fevil.com',
      '/%2f%2fevil.com',
      '%2F%2Fevil.com',
      '/%2Fevil.com',
      '/%5Cevil.com',
      '/%5cevil.com',
      '%5C%5Cevil.com',
      '/%2F%5Cevil.com',
      '/%252F%252Fevil.com',
      '/%255Cevil.com',
      '/%25252F%25252Fevil.com',
      '/%2525252F%2525252Fevil.com',
      '/%09/evil.com',
      '%0A//evil.com',
      '%20//evil.com',
      '/%00/evil.com',
      '/%E2%80%8B/evil.com',
      '/%EF%BC%8F/evil.com',
      'https:%2F%2Fevil.com',
      '//good.com%2F@evil.com',
    ],
    'scheme tricks': [
      'javascript:alert(1)',
      'JaVaScRiPt:alert(1)',
      'javascript://good.com/%0Aalert(1)',
      'javascript://testserver/%0aalert(1)',
      'java\tscript:alert(1)',
      'java\nscript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'DATA:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
      'vbscript:msgbox(1)',
      'file:///etc/passwd',
      'blob:https://good.com/uuid',
      'ftp://good.com/',
      'ws://good.com/',
      'https:evil.com',
      'https:/evil.com',
      'http:evil.com',
      '//evil.com',
      '///evil.com',
      '////evil.com',
      '//evil.com/good.com',
      '/\\/evil.com',
    ],
    userinfo: [
      'https://good.com@evil.com',
      'https://good.com:pass@evil.com',
      '//good.com@evil.com',
      '//good.com%40evil.com',
      'https://good.com%40evil.com/',
      'https://good.com%2540evil.com/',
      'https://:@evil.com',
      'https://user@good.com/',
    ],
    'IPv6 brackets': [
      'http://[::1/',
      'http://::1]/',
      '//[::1',
      '//::1]/',
      'http://[good.com]/',
      'http://[::1]evil.com/',
      'http://][/',
    ],
    ports: ['https://good.com:443/', 'https://good.com:8443/', '//good.com:80/', 'https://good.com:/'],
    'fullwidth and NFKC characters': [
      '／／evil.com',
      '/／evil.com',
      '＼＼evil.com',
      '/＼evil.com',
      '//evil．com',
      'https://good．com/',
      'https://good.com．evil.com/',
      'https://ｇood.com/',
      'ｊavascript:alert(1)',
      'ｈttps://evil.com',
      'https：//evil.com',
      '/％２Ｆ％２Ｆevil.com',
      'https://good.com＠evil.com/',
      'https://bücher.de/',
    ],
    'overlong input': ['/' + 'a'.repeat(2048), 'https://good.com/' + 'a'.repeat(2040)],
    // Stricter than Django: on the site, but the browser's path becomes `//evil.com`, which anything
    // that redirects to the path (as a path) turns into an off-site redirect.
    'dot segments that resolve to a // path': [
      '/.//evil.com',
      '/a/./..//evil.com',
      '/a/..//evil.com',
      '/a/b/../..//evil.com',
      '/..//evil.com',
      './/evil.com',
      '..//evil.com',
      'a/..//evil.com',
      '/%2E//evil.com',
      '/.%2F/evil.com',
      '/.\\/evil.com',
      '//testserver//evil.com',
      'https://testserver//evil.com',
      'https://good.com/.//evil.com',
      '/.//evil.com?x=1',
    ],
  }

  for (const [category, urls] of Object.entries(bypasses)) {
    it.each(rows(urls))(`${category}: %s → false`, (_, url) => {
      expect(isSafeRedirect(url, GOOD_HOSTS)).toBe(false)
    })
  }

  it.each([
    ['[::1]', 'http://[::1]/'],
    ['[::1]:8000', 'http://[::1]:8000/x'],
    ['good.com:443', 'https://good.com:443/'],
    ['GOOD.com', 'HTTPS://GOOD.COM/'],
    ['xn--bcher-kva.de', 'https://xn--bcher-kva.de/'],
  ] as const)('an allowed authority is matched verbatim, case-insensitively: %s allows %s', (host, url) => {
    expect(isSafeRedirect(url, { allowedHosts: [host] })).toBe(true)
  })

  it('a port is part of the authority, as in Django', () => {
    expect(isSafeRedirect('http://[0:0::1]:8000/', { allowedHosts: ['[::1]:8000'] })).toBe(false)
    expect(isSafeRedirect('https://good.com/', { allowedHosts: ['good.com:443'] })).toBe(false)
    expect(isSafeRedirect('https://good.com:443/', { allowedHosts: ['good.com'] })).toBe(false)
  })

  it('non-ASCII allowed hosts never match: configure punycode', () => {
    expect(isSafeRedirect('https://bücher.de/', { allowedHosts: ['bücher.de'] })).toBe(false)
    // A Kelvin sign (U+212A) lower-cases to "k" in JavaScript; we compare ASCII only.
    expect(isSafeRedirect('https://k.com/', { allowedHosts: ['\u212a.com'] })).toBe(false)
  })

  it.each(rows([
    '/café/menu',
    '/caf%C3%A9/menu',
    '/%E6%97%A5%E6%9C%AC',
    '/search?q=%2F%2Fevil.com',
    '/login?next=https%3A%2F%2Fevil.com',
    '/a%2Fb',
    '/files/100%25',
    '/a%252Fb',
    '/?q=\\\\evil.com',
    '/#//evil.com',
    '?next=//evil.com',
    '#/route',
    '.',
    '../../x',
    '/foo\\bar',
    '/url with spaces/',
    '/' + 'a'.repeat(2047),
    '/a//b',
    '/a/.//b',
    '/a/b/..//c',
    '/./x',
    '/?next=//evil.com',
  ]))('still allows the harmless %s', (_, url) => {
    expect(isSafeRedirect(url, GOOD_HOSTS)).toBe(true)
  })

  it('rejects a too-deeply encoded path rather than guess (four rounds)', () => {
    expect(isSafeRedirect('/a%2525252Fok', GOOD_HOSTS)).toBe(false)
    expect(isSafeRedirect('/a%25252Fok', GOOD_HOSTS)).toBe(true)
    // Three rounds deep, a leading `//` is still found.
    expect(isSafeRedirect('/%25252Fok', GOOD_HOSTS)).toBe(false)
  })

  it.each([undefined, null, 0, 42, NaN, true, {}, [], ['/'], new String('/'), new URL('https://good.com/'), Symbol('x'), () => '/'])(
    'a non-string %s is never safe',
    (url) => {
      expect(isSafeRedirect(url, GOOD_HOSTS)).toBe(false)
    },
  )

  it('the empty string and whitespace are never safe', () => {
    for (const url of ['', ' ', '\n', '\t', '\u3000']) expect(isSafeRedirect(url, GOOD_HOSTS)).toBe(false)
  })

  it('hostile options fail closed and never throw', () => {
    const hostile = [
      null,
      { allowedHosts: 42 },
      { allowedHosts: { [Symbol.iterator]: () => { throw new Error('boom') } } },
      { get allowedHosts(): never { throw new Error('boom') } },
      { get requireHttps(): never { throw new Error('boom') } },
    ] as unknown as SafeRedirectOptions[]
    for (const options of hostile) expect(isSafeRedirect('//good.com/', options)).toBe(false)
    // null options mean "no options": relative URLs are still fine.
    expect(isSafeRedirect('/x', null as unknown as SafeRedirectOptions)).toBe(true)
    // Non-string entries are ignored, strings still count.
    expect(isSafeRedirect('//good.com/', { allowedHosts: [1, 'good.com'] as unknown as string[] })).toBe(true)
  })

  it('does not mutate or keep the caller options', () => {
    const allowedHosts = ['Good.com']
    const options = Object.freeze({ allowedHosts: Object.freeze(allowedHosts), requireHttps: false })
    expect(isSafeRedirect('https://good.com/', options)).toBe(true)
    expect(allowedHosts).toEqual(['Good.com'])
  })
})

describe('properties', () => {
  const HOSTS = ['testserver', 'otherserver']
  const BASE = 'https://testserver/base/'
  const NUM_RUNS = 3000

  // The safety property: whatever we call safe, a browser resolves onto an allowed host (or the
  // page itself) over http(s), also when `\` is read as `/`.
  function landsSafely(candidate: string): boolean {
    for (const form of [candidate, candidate.replace(/\\/g, '/')]) {
      const target = new URL(form, BASE)
      if (target.protocol !== 'http:' && target.protocol !== 'https:') return false
      if (!HOSTS.includes(target.host)) return false
    }
    return true
  }

  function safeImpliesLandsSafely(arb: fc.Arbitrary<string>, minTrue: number): void {
    let trues = 0
    fc.assert(
      fc.property(arb, fc.boolean(), (candidate, requireHttps) => {
        let result: unknown
        expect(() => {
          result = isSafeRedirect(candidate, { allowedHosts: HOSTS, requireHttps })
        }).not.toThrow()
        expect(typeof result).toBe('boolean')
        if (result === true) {
          trues++
          expect(landsSafely(candidate), candidate).toBe(true)
        }
      }),
      { numRuns: NUM_RUNS },
    )
    // Guard against a vacuous property: the generator must produce accepted URLs too.
    expect(trues).toBeGreaterThanOrEqual(minTrue)
  }

  // Pieces that URL parsers disagree about, glued together at random.
  const PIECES = [
    '/', '//', '\\', '\\\\', ':', '@', '?', '#', '[', ']', '.', '..', ' ', '\t', '\n', '\x00', '\x08',
    '%2F', '%2f', '%5C', '%25', '%40', '%09', '%0A', '%20', 'testserver', 'otherserver', 'evil.com',
    'http', 'https', 'HTTPS', 'javascript', 'ftp', 'data', ':443', ':80', '::1', 'user:pass',
    '／', '．', '＼', '\u3000', '\u200b', '\u202e', '\ufeff', '\u00a0', 'é', 'ｊ',
  ]
  const glued = fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }).map((parts) => parts.join(''))
  const webUrls = fc
    .tuple(
      fc.webUrl({ withQueryParameters: true, withFragments: true, validSchemes: ['http', 'https', 'ftp'] }),
      fc.constantFrom('testserver', 'otherserver', 'evil.com', 'testserver:8080', 'testserver@evil.com'),
      fc.constantFrom('keep', 'host', 'relative', 'scheme-relative'),
    )
    .map(([url, host, mode]) => {
      if (mode === 'keep') return url
      const swapped = url.replace(/^([a-z]+:\/\/)[^/?#]*/, `$1${host}`)
      if (mode === 'relative') return swapped.replace(/^[a-z]+:\/\/[^/?#]*/, '')
      return mode === 'scheme-relative' ? swapped.replace(/^[a-z]+:/, '') : swapped
    })

  it('never throws and is boolean on any string (fc.string)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), (s) => typeof isSafeRedirect(s, { allowedHosts: HOSTS }) === 'boolean'),
      { numRuns: NUM_RUNS },
    )
  })

  it('never throws on full Unicode and graphemes, and the safety property holds', () => {
    safeImpliesLandsSafely(fc.string({ unit: 'binary', maxLength: 64 }), 1)
    safeImpliesLandsSafely(fc.string({ unit: 'grapheme', maxLength: 32 }), 1)
  })

  it('safe ⇒ a browser lands on an allowed host over http(s): glued URL pieces', () => {
    safeImpliesLandsSafely(glued, 50)
  })

  it('safe ⇒ a browser lands on an allowed host over http(s): fc.webUrl', () => {
    safeImpliesLandsSafely(webUrls, 100)
  })

  it('never throws on overlong or arbitrary non-string input', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => isSafeRedirect(value, { allowedHosts: HOSTS }) === false || typeof value === 'string'),
      { numRuns: NUM_RUNS },
    )
    fc.assert(
      fc.property(fc.string({ minLength: 2049, maxLength: 4000 }), (s) => isSafeRedirect(s, { allowedHosts: HOSTS }) === false),
      { numRuns: 200 },
    )
  })

  const STRIPPED = [
    ' ', '\t', '\n', '\r', '\v', '\f', '\x00', '\x01', '\x08', '\x1b', '\x1f', '\x7f', '\x85',
    '\u00a0', '\u00ad', '\u200b', '\u200e', '\u202e', '\u2028', '\u3000', '\ufeff',
  ]
  const junk = fc.array(fc.constantFrom(...STRIPPED), { minLength: 1, maxLength: 4 }).map((p) => p.join(''))

  it('prefixing any Django-bad case with whitespace or control characters keeps it false', () => {
    fc.assert(
      fc.property(fc.constantFrom(...DJANGO_BAD), junk, (bad, prefix) => {
        expect(isSafeRedirect(prefix + bad, { allowedHosts: ['testserver', 'testserver2'] })).toBe(false)
      }),
      { numRuns: NUM_RUNS },
    )
  })

  it('a control, format or separator character anywhere in a Django-good case makes it false', () => {
    const invisible = fc.constantFrom(...STRIPPED.filter((c) => /[\p{C}\p{Zl}\p{Zp}]/u.test(c)))
    fc.assert(
      fc.property(fc.constantFrom(...DJANGO_GOOD), invisible, fc.nat(), (good, c, at) => {
        const i = at % (good.length + 1)
        expect(isSafeRedirect(good.slice(0, i) + c + good.slice(i), { allowedHosts: HOSTS })).toBe(false)
      }),
      { numRuns: NUM_RUNS },
    )
  })
})
