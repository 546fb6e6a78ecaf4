/**
 * Property-based tests (fast-check): thousands of generated cases per property, each checking for a
 * crash and for a wrong answer. Covers the cookie path through `session()`, session id validation,
 * the cookie store's `unseal`, the recorded no-JavaScript action codec, and the login wall's pure
 * request helpers. The problem+json decoder is in tests/shared/properties.test.ts.
 */
import fc from 'fast-check'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { session } from '../../src/server/session.ts'
import { memoryStore } from '../../src/server/stores/memory.ts'
import { cookieStore } from '../../src/server/stores/cookie.ts'
import { isSessionId, newSessionId } from '../../src/server/ids.ts'
import { readRecordedAction, recordForm, replayBody, type RecordedAction } from '../../src/server/recorded-action.ts'
import { isProvenSameOrigin, withNext } from '../../src/server/request-kind.ts'
import type { SessionStore } from '../../src/server/store.ts'
import type { CookieSessionStore } from '../../src/server/stores/cookie.ts'

const SECRET = 'a-property-test-secret-of-at-least-32-chars'
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Characters a Cookie header can carry through `Headers` (no CR, LF or NUL; Latin-1 only). */
const headerChar = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom(';', '=', ' ', '"', '%', '\t', ',') },
)
const headerText = (maxLength: number) => fc.string({ unit: headerChar, maxLength })
const base64urlText = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...BASE64URL), minLength, maxLength })

/** Flips one bit of one character inside the base64url alphabet (a near-miss of a real value). */
function mutate(value: string, index: number, bit: number): string {
  const i = index % value.length
  const c = BASE64URL.indexOf(value[i]!)
  return value.slice(0, i) + BASE64URL[c ^ (1 << (bit % 6))] + value.slice(i + 1)
}

/** A Cookie header assembled from parts: real-looking pairs, near-misses of a real value, and noise. */
function cookieHeader(real: string) {
  const value = fc.oneof(
    headerText(60),
    base64urlText(43, 43),
    fc.constant(real),
    fc.tuple(fc.nat(), fc.nat()).map(([i, b]) => mutate(real, i, b)),
    fc.nat({ max: real.length }).map((n) => real.slice(0, n)),
    fc.constantFrom(`"${real}"`, `${real} `, `${real};`, encodeURIComponent(real) + '%00', real + real),
  )
  const name = fc.oneof({ weight: 4, arbitrary: fc.constant('sessionid') }, { weight: 1, arbitrary: fc.constantFrom('SESSIONID', 'sessionid ', ' sessionid', 'other') }, { weight: 1, arbitrary: headerText(10) })
  const pair = fc.tuple(name, value).map(([n, v]) => `${n}=${v}`)
  return fc.oneof({ weight: 3, arbitrary: fc.array(pair, { minLength: 1, maxLength: 4 }).map((pairs) => pairs.join('; ')) }, { weight: 1, arbitrary: headerText(200) })
}

function app(store: SessionStore | CookieSessionStore) {
  const a = new Hono()
  a.use(session({ store, onStoreError: () => {} }))
  a.get('/read', (c) => c.json({ key: c.var.session.key, data: Object.fromEntries(c.var.session.entries()) }))
  a.get('/set', (c) => (c.var.session.set('n', 1), c.text('ok')))
  return a
}

describe('session() cookie parsing (properties)', () => {
  it('server-side store: any Cookie header gives 200, and the only id ever adopted is the one issued', async () => {
    const store = memoryStore()
    const a = app(store)
    const first = await a.request('/set')
    const issued = first.headers.getSetCookie()[0]!.split(';')[0]!.slice('sessionid='.length)
    expect(isSessionId(issued)).toBe(true)
    await fc.assert(
      fc.asyncProperty(cookieHeader(issued), async (cookie) => {
        const read = await a.request('/read', { headers: { Cookie: cookie } })
        expect(read.status).toBe(200)
        const body = (await read.json()) as { key: string | null; data: Record<string, unknown> }
        if (body.key === null) expect(body.data).toEqual({})
        else {
          expect(body.key).toBe(issued)
          expect(body.data).toEqual({ n: 1 })
          expect(cookie).toContain(issued)
        }
        // A write never hands out an id the header named, unless it is the issued one.
        const set = await a.request('/set', { headers: { Cookie: cookie } })
        expect(set.status).toBe(200)
        const line = set.headers.getSetCookie().find((l) => l.startsWith('sessionid='))
        if (line !== undefined) {
          const id = line.split(';')[0]!.slice('sessionid='.length)
          expect(isSessionId(id)).toBe(true)
          if (id !== issued) expect(cookie).not.toContain(id)
        }
      }),
      { numRuns: 1500 },
    )
    // The flood of hostile cookies created nothing but the sessions the /set calls started.
    expect(store.size).toBeLessThanOrEqual(1501)
  })

  it('cookie store: any Cookie header gives 200, and data appears only for the sealed value issued', async () => {
    const a = app(cookieStore({ secrets: [SECRET] }))
    const first = await a.request('/set')
    const sealed = first.headers.getSetCookie()[0]!.split(';')[0]!.slice('sessionid='.length)
    await fc.assert(
      fc.asyncProperty(cookieHeader(sealed), async (cookie) => {
        const read = await a.request('/read', { headers: { Cookie: cookie } })
        expect(read.status).toBe(200)
        const body = (await read.json()) as { data: Record<string, unknown> }
        if (Object.keys(body.data).length > 0) {
          expect(body.data).toEqual({ n: 1 })
          expect(cookie).toContain(sealed.slice(0, -1)) // the issued seal (its last character's spare bits aside)
        }
      }),
      { numRuns: 1000 },
    )
  })
})

describe('session ids (properties)', () => {
  it('every new id is accepted, is 32 bytes, and is canonical base64url', () => {
    fc.assert(
      fc.property(fc.nat(), () => {
        const id = newSessionId()
        expect(isSessionId(id)).toBe(true)
        const bytes = Buffer.from(id, 'base64url')
        expect(bytes.length).toBe(32)
        expect(bytes.toString('base64url')).toBe(id)
      }),
      { numRuns: 5000 },
    )
  })

  it('accepts a string exactly when it is the canonical base64url of 32 bytes (what newSessionId makes)', () => {
    const candidates = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary', maxLength: 60 }),
      base64urlText(40, 46),
      base64urlText(43, 43),
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.uint8Array({ minLength: 31, maxLength: 33 }).map((b) => Buffer.from(b).toString('base64')),
    )
    fc.assert(
      fc.property(candidates, (value) => {
        const canonical = /^[A-Za-z0-9_-]*$/.test(value) && Buffer.from(value, 'base64url').length === 32 && Buffer.from(value, 'base64url').toString('base64url') === value
        expect(isSessionId(value)).toBe(canonical)
      }),
      { numRuns: 5000 },
    )
  })

  it('rejects every non-string', () => {
    fc.assert(
      fc.property(fc.anything().filter((v) => typeof v !== 'string'), (v) => {
        expect(isSessionId(v)).toBe(false)
      }),
      { numRuns: 1000 },
    )
  })
})

describe('cookieStore unseal (properties)', () => {
  const store = cookieStore({ secrets: [SECRET] })
  const data = { user: 'ada', n: 1 }

  it('any string opens to null and never throws', async () => {
    const strings = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), base64urlText(0, 200).map((s) => 'b1.' + s), base64urlText(0, 5000).map((s) => 'b1.' + s))
    await fc.assert(
      fc.asyncProperty(strings, async (s) => {
        expect(await store.unseal(s)).toBeNull()
      }),
      { numRuns: 3000 },
    )
  })

  it('a real seal with any bit of its bytes flipped, or truncated, or extended, opens to null', async () => {
    const sealed = await store.seal(data, Date.now() + 3_600_000)
    expect(await store.unseal(sealed)).toEqual(data)
    const bytes = Buffer.from(sealed.slice(3), 'base64url')
    const flipped = fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.nat({ max: 7 })).map(([i, bit]) => {
      const copy = Buffer.from(bytes)
      copy[i]! ^= 1 << bit
      return 'b1.' + copy.toString('base64url')
    })
    const truncated = fc.nat({ max: sealed.length - 1 }).map((n) => sealed.slice(0, n))
    const extended = base64urlText(1, 8).map((s) => sealed + s)
    await fc.assert(
      fc.asyncProperty(fc.oneof(flipped, truncated, extended), async (s) => {
        expect(await store.unseal(s)).toBeNull()
      }),
      { numRuns: 3000 },
    )
  })

  it('a real seal with any character changed opens to null, unless the change decodes to the same bytes', async () => {
    const sealed = await store.seal(data, Date.now() + 3_600_000)
    const original = Buffer.from(sealed.slice(3), 'base64url')
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: sealed.length - 4 }), fc.nat({ max: 5 }), async (i, bit) => {
        const text = 'b1.' + mutate(sealed.slice(3), i, bit)
        const result = await store.unseal(text)
        // Base64 lets the spare low bits of the last character vary; that changes no byte, so no forgery.
        if (result !== null) expect(Buffer.from(text.slice(3), 'base64url').equals(original)).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })
})

describe('recorded no-JavaScript action codec (properties)', () => {
  /** Well-formed Unicode (no lone surrogates: UTF-8, which every form body is, cannot carry them). */
  const text = fc.string({ unit: 'binary', maxLength: 30 })
  const fileType = fc.constantFrom('', 'image/png', 'text/plain', 'application/octet-stream', 'application/json')
  // A file part needs a file name: with filename="" the platform's parser reads the part as a text field,
  // and text fields are line-break normalized (CRLF) whenever a FormData is serialized, by browsers too.
  const fileName = fc.string({ unit: 'binary', minLength: 1, maxLength: 30 })
  const entry = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(text, text) },
    { weight: 1, arbitrary: fc.tuple(text, fc.record({ file: fileName, type: fileType, bytes: fc.uint8Array({ maxLength: 300 }) })) },
  )

  /** The entries a server reads from a body: what the handler would see. */
  async function entriesOf(body: BodyInit, contentType: string | null): Promise<unknown[]> {
    const form = await new Response(body, contentType === null ? {} : { headers: { 'Content-Type': contentType } }).formData()
    const out: unknown[] = []
    for (const [name, value] of form) out.push(typeof value === 'string' ? [name, value] : [name, { file: value.name, type: value.type, bytes: [...new Uint8Array(await value.arrayBuffer())] }])
    return out
  }

  /** Records a body as loginRequired does, stores it as session JSON, reads it back and rebuilds the replay body. */
  async function roundTrip(bytes: Uint8Array<ArrayBuffer>, contentType: string): Promise<{ body: BodyInit; contentType: string | null }> {
    // loginRequired's default caps (64 KiB as stored, 1,000 fields): generated forms stay under them.
    const action = await recordForm('/act', contentType, bytes, 1, { bytes: 65_536, fields: 1000 })
    expect(action).not.toBeNull()
    expect(typeof action).toBe('object') // a string would say which cap it passed
    const stored = readRecordedAction(JSON.parse(JSON.stringify(action)))
    expect(stored).toEqual(action)
    return replayBody(stored!)
  }

  it('multipart: any fields and file bytes replay exactly as the handler first saw them', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 6 }), async (entries) => {
        const form = new FormData()
        for (const [name, value] of entries) {
          if (typeof value === 'string') form.append(name, value)
          else form.append(name, new File([value.bytes], value.file, { type: value.type }))
        }
        const request = new Request('http://localhost/act', { method: 'POST', body: form })
        const contentType = request.headers.get('Content-Type')!
        const bytes = new Uint8Array(await request.arrayBuffer())
        const replay = await roundTrip(bytes, contentType)
        const replayRequest = new Request('http://localhost/act', { method: 'POST', body: replay.body })
        expect(await entriesOf(await replayRequest.arrayBuffer(), replayRequest.headers.get('Content-Type'))).toEqual(await entriesOf(bytes, contentType))
      }),
      { numRuns: 1500 },
    )
  })

  it('urlencoded: any fields replay exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(text, text), { maxLength: 8 }), async (fields) => {
        const bytes = new TextEncoder().encode(new URLSearchParams(fields).toString())
        const replay = await roundTrip(bytes, 'application/x-www-form-urlencoded; charset=UTF-8')
        expect(replay.contentType).toBe('application/x-www-form-urlencoded')
        expect([...new URLSearchParams(String(replay.body))]).toEqual(fields)
      }),
      { numRuns: 1500 },
    )
  })

  it('text/plain: fields whose names have no "=" and no line break replay exactly', async () => {
    const name = fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((s) => !/[=\r\n]/.test(s))
    const value = fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !/[\r\n]/.test(s))
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(name, value), { maxLength: 8 }), async (fields) => {
        const bytes = new TextEncoder().encode(fields.map(([k, v]) => `${k}=${v}`).join('\r\n'))
        const replay = await roundTrip(bytes, 'text/plain')
        expect(replay.body).toBe(fields.map(([k, v]) => `${k}=${v}`).join('\r\n'))
      }),
      { numRuns: 1000 },
    )
  })

  it('readRecordedAction never throws, and whatever it accepts replayBody can rebuild', () => {
    const nearAction = fc.record(
      {
        v: fc.oneof(fc.constant(1), fc.jsonValue()),
        id: fc.oneof(fc.uuid(), fc.jsonValue()),
        method: fc.oneof(fc.constant('POST'), fc.constant('GET'), fc.jsonValue()),
        path: fc.oneof(fc.constantFrom('/act', '//evil.example', '/\\evil', 'act', 'https://evil.example/'), fc.string()),
        enctype: fc.oneof(fc.constantFrom('multipart/form-data', 'application/x-www-form-urlencoded', 'text/plain', 'application/json'), fc.jsonValue()),
        fields: fc.oneof(
          fc.array(fc.tuple(fc.string(), fc.oneof(fc.string(), fc.record({ file: fc.string(), type: fc.string(), data: fc.oneof(base64urlText(0, 20), fc.string()) })))),
          fc.jsonValue(),
          fc.array(fc.jsonValue()),
        ),
        at: fc.oneof(fc.integer(), fc.jsonValue()),
      },
      { requiredKeys: [] },
    )
    fc.assert(
      fc.property(fc.oneof(nearAction, fc.jsonValue()), (value) => {
        const action: RecordedAction | null = readRecordedAction(value)
        if (action === null) return
        expect(action.path.startsWith('/') && !action.path.startsWith('//') && !action.path.includes('\\')).toBe(true)
        expect(() => replayBody(action)).not.toThrow()
      }),
      { numRuns: 5000 },
    )
  })
})

describe('login wall request helpers (properties)', () => {
  const segment = fc.string({ unit: fc.constantFrom(...'abcxyz019-._~!$&\'()*+,;=:@%/'.split('')), maxLength: 12 })
  const path = segment.filter((p) => !p.startsWith('/')) // loginRequired refuses a loginUrl that starts with // or holds whitespace
  const loginUrl = fc
    .tuple(path, fc.option(fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 })), { maxLength: 3 })), fc.option(segment))
    .map(([path, query, hash]) => `/${path}${query === null ? '' : '?' + new URLSearchParams(query).toString()}${hash === null ? '' : '#' + hash}`)

  it('withNext keeps the login URL and adds exactly one parameter that decodes to next', () => {
    fc.assert(
      fc.property(loginUrl, fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 60 }), (login, field, next) => {
        const before = new URL(login, 'http://localhost')
        const after = new URL(withNext(login, field, next), 'http://localhost')
        expect(after.origin).toBe('http://localhost')
        expect(after.pathname).toBe(before.pathname)
        expect(after.hash).toBe(before.hash)
        expect([...after.searchParams]).toEqual([...before.searchParams, [field, next]])
        expect(withNext(login, field, null)).toBe(login)
      }),
      { numRuns: 3000 },
    )
  })

  it('isProvenSameOrigin is true only with Sec-Fetch-Site: same-origin, or without it an Origin that is this site or trusted', () => {
    const site = fc.option(fc.oneof(fc.constantFrom('same-origin', 'same-site', 'cross-site', 'none', 'SAME-ORIGIN', 'same-origin '), headerText(15)))
    const origin = fc.option(fc.oneof(fc.constantFrom('http://localhost', 'https://localhost', 'http://localhost:80', 'http://localhost.evil.example', 'null', 'https://trusted.example', 'http://evil.example'), headerText(30)))
    const trusted = fc.subarray(['https://trusted.example', 'http://other.example'])
    fc.assert(
      fc.property(site, origin, trusted, (s, o, t) => {
        const headers = new Headers()
        if (s !== null) headers.set('Sec-Fetch-Site', s)
        if (o !== null) headers.set('Origin', o)
        const proven = isProvenSameOrigin({ method: 'POST', url: new URL('http://localhost/act'), headers }, t)
        const siteHeader = headers.get('Sec-Fetch-Site')
        const originHeader = headers.get('Origin')
        // Sec-Fetch-Site wins when present: same-origin is proven; same-site and cross-site only from a trusted Origin.
        const expected =
          siteHeader === 'same-origin' ||
          ((siteHeader === 'same-site' || siteHeader === 'cross-site') && originHeader !== null && t.includes(originHeader)) ||
          (siteHeader === null && originHeader !== null && (originHeader === 'http://localhost' || t.includes(originHeader)))
        expect(proven).toBe(expected)
        if (siteHeader === null && originHeader === null) expect(proven).toBe(false) // no proof, no recording
      }),
      { numRuns: 3000 },
    )
  })
})
