import type { Context, MiddlewareHandler } from 'hono'
import { getCookie, generateCookie } from 'hono/cookie'
import { BackwardError, isBackwardError } from '../shared/errors.ts'
import { hashKey, isSessionId, newSessionId } from './ids.ts'
import { reportSuspicious, setSuspiciousHandler, warnSuspicious, type SuspiciousHandler } from './suspicious.ts'
import { logStoreError, problem, storeUnavailable } from './problem.ts'
import { createSessionHandle, MAX_EXPIRY_SECONDS, type Session, type SessionHandle, type SessionPolicy } from './session-core.ts'
import type { SessionData, SessionStore, StoreWriteOptions } from './store.ts'
import { isCookieStore, type CookieSessionStore } from './stores/cookie.ts'

declare module 'hono' {
  interface ContextVariableMap {
    session: Session
  }
}

/**
 * The Hono environment that `session()` provides: `new Hono<BackwardEnv>()` types `c.var.session`.
 * (Importing `backward/server` also adds `session` to Hono's `ContextVariableMap`, so a plain
 * `new Hono()` is typed too.)
 * @example
 * const app = new Hono<BackwardEnv>()
 */
export interface BackwardEnv {
  Variables: { session: Session }
}

/** Cookie attributes of the session cookie. */
export interface SessionCookieOptions {
  /** @default 'sessionid' */
  name?: string
  /** @default undefined (host-only) */
  domain?: string
  /** @default '/' */
  path?: string
  /**
   * `undefined` means Secure when the request came over HTTPS. Behind a TLS proxy, set `true`: the
   * request URL says http there, so without it the session cookie lacks Secure and the no-JS action
   * cookie loses its `__Host-` name, and a sibling subdomain can plant both.
   * `SameSite=None` and the `__Secure-`/`__Host-` name prefixes need `true`: session() throws otherwise.
   * @default undefined
   */
  secure?: boolean
  /** @default true */
  httpOnly?: boolean
  /** `false` omits the attribute. @default 'Lax' */
  sameSite?: 'Strict' | 'Lax' | 'None' | false
}

/** Options for {@link session}. */
export interface SessionOptions {
  /** Where sessions live: `fileStore`, `memoryStore`, `cookieStore`, `redisStore`, `postgresStore`, `cachedStore`. */
  store: SessionStore | CookieSessionStore
  cookie?: SessionCookieOptions
  /** Session lifetime in seconds, counted from the last save. @default 1209600 (two weeks) */
  maxAge?: number
  /** Browser-length cookies unless a session sets its own expiry. @default false */
  expireAtBrowserClose?: boolean
  /** Save (and renew the cookie) on every request: a rolling, idle expiry. @default false */
  saveEveryRequest?: boolean
  /** Called with store failures (the request gets a 503). @default console.error */
  onStoreError?: (error: unknown) => void
  /**
   * The server secret that keys the user tag the browser sees (an HMAC of the user id) and login()'s
   * replay proof. At least 32 characters; with several, the first is used (list a new one first when
   * rotating). Without one, a random secret is made per process and a warning is printed once: tags
   * then change on every restart and differ between processes, so actions queued in a browser before
   * a restart (or answered by another process) are refused as another user's.
   * @default a random per-process secret
   */
  secret?: string | readonly string[] | undefined
  /**
   * Largest session, encoded as JSON, that a server-side store is asked to save. A bigger one fails
   * with SESSION_TOO_LARGE (a 500 naming the cause) instead of slowing every later request that
   * loads it. cookieStore keeps its own 4 KB rule (COOKIE_TOO_LARGE).
   * @default 262144 (256 KiB)
   */
  maxSessionBytes?: number
  /**
   * Security events (planted or duplicated cookies, tampered cookies, over-limit records, cross-site
   * replay triggers, reused Idempotency-Keys), from every backward middleware after this one.
   * @default one console.warn line per kind per minute
   */
  onSuspicious?: SuspiciousHandler | undefined
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/** Browsers drop a cookie whose name and value exceed 4096 bytes. */
const MAX_COOKIE_BYTES = 4096
/** Hono (and RFC 6265bis) cap Max-Age at 400 days. */
const MAX_AGE_LIMIT = MAX_EXPIRY_SECONDS
/** Attribute values that would end the attribute or the header early. */
const UNSAFE_ATTRIBUTE = /[;\x00-\x1f\x7f]/

/**
 * Per-request internals, on the public session object under a module-private symbol. (A WeakMap
 * would do too, but one entry per request makes every garbage collection walk its ephemeron table.)
 */
const INTERNALS = Symbol('backward.internals')
interface Internals {
  handle: SessionHandle
  config: SessionConfig
  loadedKey: string | null
  /** Set by handOverSession: this request's session was passed to an inner request, which owns it now. */
  handedOver: { line: string | null } | null
  /** Set-Cookie lines sent only when the session was saved (cookieOnCommit), such as the login signal. */
  afterCommit: string[] | null
}
const internalsOf = (session: Session): Internals | undefined => (session as { [INTERNALS]?: Internals })[INTERNALS]

interface CookieAttributes {
  before: string
  after: string
}

interface SessionConfig {
  store: SessionStore | CookieSessionStore
  cookie: Required<Omit<SessionCookieOptions, 'domain' | 'secure'>> & Pick<SessionCookieOptions, 'domain' | 'secure'>
  policy: SessionPolicy
  saveEveryRequest: boolean
  onStoreError: (error: unknown) => void
  onSuspicious: SuspiciousHandler
  /** The name on secure requests when it differs (`__Host-` + the default name), else null. See sessionCookieName. */
  hostName: string | null
  /** Largest encoded session a server-side store is asked to save (SessionOptions.maxSessionBytes). */
  maxSessionBytes: number
  /** The key of user tags and login proofs (see SessionOptions.secret). */
  secret: string
  /** The constant tail of the Set-Cookie header (Domain, Path, HttpOnly, Secure, SameSite), over http and https. */
  attributes: { http: CookieAttributes; https: CookieAttributes }
}

/** backward-internal: the handle behind a session (login and logout write reserved keys through it). */
export function sessionHandle(session: Session): SessionHandle {
  const handle = internalsOf(session)?.handle
  if (handle === undefined) throw new BackwardError('CONFIG', '[backward] This session was not created by session(). Add app.use(session({ store })) before this route.')
  return handle
}

/** backward-internal: the settled options of the middleware that made this session. */
export function sessionConfig(session: Session): SessionConfig {
  return internalsOf(session)!.config
}

/**
 * Django-grade sessions for Hono. Sets `c.var.session`; loads it when the request has a session
 * cookie, and saves it after the handler only when it changed (or on every request with
 * `saveEveryRequest`). Stores see only a SHA-256 of the id.
 * @example
 * import { fileStore } from 'backward/server/file'
 * app.use(session({ store: fileStore({ dir: '.sessions' }) }))
 * app.get('/', (c) => c.text(`visits: ${c.var.session.setDefault('visits', 0)}`))
 */
export function session(options: SessionOptions): MiddlewareHandler {
  const config = settle(options)
  const { store, policy } = config

  return async function session(c, next) {
    setSuspiciousHandler(c, config.onSuspicious)
    const name = sessionCookieName(config, c.req.url)
    const raw = getCookie(c, name)
    if (raw !== undefined) checkCookieHeader(c, name, raw, store)
    let handle: SessionHandle
    let loadedKey: string | null
    try {
      // `Vary: Cookie` is set as soon as the handler reads the session, before its response exists:
      // a header added to a finished response costs far more (the server adapter re-encodes it).
      const vary = () => c.finalized || c.header('Vary', 'Cookie', { append: true })
      ;({ handle, loadedKey } = await open(store, raw, policy, vary, () => reportSuspicious(c, 'tampered-cookie', 'a session cookie that backward did not issue (or no secret opens) was ignored; a fresh session was used')))

    } catch (error) {
      if (!isOutage(error)) throw error
      return storeUnavailable(c, error, config.onStoreError)
    }
    const internals: Internals = { handle, config, loadedKey, handedOver: null, afterCommit: null }
    ;(handle.session as { [INTERNALS]?: Internals })[INTERNALS] = internals
    c.set('session', handle.session)

    await next()

    try {
      if (internals.handedOver !== null) commitHandedOver(c, handle, raw, config, internals.handedOver.line)
      else await commit(c, handle, raw, config)
      // Only a saved session may announce itself (the login signal): a failed commit sends none.
      if (internals.afterCommit !== null && c.res.status < 500) for (const line of internals.afterCommit) c.res.headers.append('Set-Cookie', line)
    } catch (error) {
      if (isBackwardError(error, 'SESSION_INTERRUPTED')) {
        c.res = problem(400, 'urn:backward:session-interrupted', 'Session interrupted', {
          detail: "The request's session was deleted before the request completed. The user may have logged out in a concurrent request.",
        })
        return
      }
      if (isOutage(error)) {
        storeUnavailable(c, error, config.onStoreError)
        return
      }
      if (isBackwardError(error, 'SESSION_TOO_LARGE')) reportSuspicious(c, 'oversized-session', error.message.replace('[backward] ', ''))
      throw error
    }
  }
}

/**
 * One rule at load and at save. A driver's own error, or STORE_UNAVAILABLE, is an outage: a 503 with
 * Retry-After, because retrying will work once the store is back. Any other BackwardError (CONFIG
 * for a missing table or bad grants, COOKIE_TOO_LARGE, NOT_SERIALIZABLE, STORE_CONFLICT) is a bug or
 * a misconfiguration that no retry fixes: it is thrown to the app's error handler (Hono logs it and
 * answers 500), so it is loud in logs and monitoring instead of passing for a blip.
 */
function isOutage(error: unknown): boolean {
  // STORE_FULL too: a bounded memoryStore full of records that must not be evicted frees room as they expire.
  return !(error instanceof BackwardError) || error.code === 'STORE_UNAVAILABLE' || error.code === 'STORE_FULL'
}

function settle(options: SessionOptions): SessionConfig {
  if (options === null || typeof options !== 'object' || options.store === null || typeof options.store !== 'object') {
    throw new BackwardError('CONFIG', '[backward] session(): pass { store }, for example session({ store: fileStore({ dir: ".sessions" }) }).')
  }
  const maxAge = options.maxAge ?? 1_209_600
  if (!Number.isInteger(maxAge) || maxAge <= 0 || maxAge > MAX_AGE_LIMIT) {
    throw new BackwardError('CONFIG', `[backward] session(): maxAge must be a whole number of seconds between 1 and ${MAX_AGE_LIMIT} (400 days).`)
  }
  const maxSessionBytes = options.maxSessionBytes ?? 262_144
  if (!Number.isInteger(maxSessionBytes) || maxSessionBytes < 1024) {
    throw new BackwardError('CONFIG', '[backward] session(): maxSessionBytes must be a whole number of bytes, at least 1024.')
  }
  const c = options.cookie ?? {}
  const cookie = {
    name: c.name ?? 'sessionid',
    path: c.path ?? '/',
    httpOnly: c.httpOnly ?? true,
    sameSite: c.sameSite ?? 'Lax',
    ...(c.domain !== undefined ? { domain: c.domain } : {}),
    ...(c.secure !== undefined ? { secure: c.secure } : {}),
  } as SessionConfig['cookie']
  const attributes = checkCookie(cookie)
  const store = options.store
  if (!isCookieStore(store)) {
    for (const method of ['load', 'create', 'update', 'delete'] as const) {
      if (typeof store[method] !== 'function') throw new BackwardError('CONFIG', `[backward] session(): the store has no ${method}() method; it is not a SessionStore.`)
    }
  }
  return {
    store,
    cookie,
    attributes,
    policy: { maxAge, expireAtBrowserClose: options.expireAtBrowserClose ?? false, now: options.now ?? Date.now, guardReserved: true },
    saveEveryRequest: options.saveEveryRequest ?? false,
    onStoreError: options.onStoreError ?? logStoreError('session()'),
    onSuspicious: options.onSuspicious ?? defaultSuspicious,
    secret: settleSecret(options.secret),
    hostName: c.name === undefined && cookie.path === '/' && cookie.domain === undefined && cookie.secure !== false ? `__Host-${cookie.name}` : null,
    maxSessionBytes,
  }
}

const defaultSuspicious = warnSuspicious()
let processSecret: string | undefined

/** The first secret given, checked; or this process's random one, announced once (see SessionOptions.secret). */
function settleSecret(secret: SessionOptions['secret']): string {
  const first = typeof secret === 'string' ? secret : Array.isArray(secret) ? secret[0] : secret
  if (secret !== undefined && (typeof first !== 'string' || first.length < 32)) {
    throw new BackwardError('CONFIG', '[backward] session(): secret must be a string of at least 32 characters (use 32 random bytes, base64), or a non-empty list of them.')
  }
  if (first !== undefined) return first
  if (processSecret === undefined) {
    processSecret = newSessionId()
    console.warn('[backward] session(): no secret given, so a random one is used for this process. User tags and login proofs then change on every restart and differ between processes: actions queued in a browser before a restart, or confirmed by another process, are refused as another user\'s. Pass session({ secret: process.env.BACKWARD_SECRET }) with 32+ random characters.')
  }
  return processSecret
}

/**
 * Every cookie rule that could fail on a request is checked here, at start-up, and the header's
 * constant attributes are built. `secure: undefined` means "Secure on https only", so whatever needs
 * Secure on every request must say `secure: true`.
 */
function checkCookie(cookie: SessionConfig['cookie']): SessionConfig['attributes'] {
  const fail = (message: string): never => {
    throw new BackwardError('CONFIG', `[backward] session(): ${message}`)
  }
  const { name, path, domain, sameSite, secure } = cookie
  if (typeof name !== 'string' || !/^[\w!#$%&'*.^`|~+-]+$/.test(name)) fail('cookie.name is not a valid cookie name (letters, digits and !#$%&\'*.^`|~+-_ only).')
  if (sameSite !== 'Strict' && sameSite !== 'Lax' && sameSite !== 'None' && sameSite !== false) fail("cookie.sameSite must be 'Strict', 'Lax', 'None' or false.")
  if (sameSite === 'None' && secure !== true) {
    fail('SameSite=None cookies must be Secure, and browsers reject them otherwise: set cookie.secure: true (and serve over https).')
  }
  // Cookie name prefixes (RFC 6265bis 4.1.3); browsers match them case-insensitively.
  if (/^__secure-/i.test(name) && secure !== true) fail(`a "__Secure-" cookie name needs cookie.secure: true.`)
  if (/^__host-/i.test(name) && (secure !== true || path !== '/' || domain !== undefined)) {
    fail(`a "__Host-" cookie name needs cookie.secure: true, cookie.path "/" and no cookie.domain.`)
  }
  if (typeof path !== 'string' || !path.startsWith('/') || UNSAFE_ATTRIBUTE.test(path)) fail('cookie.path must start with "/" and hold no ";" or control characters.')
  if (domain !== undefined && (typeof domain !== 'string' || domain === '' || /\s/.test(domain) || UNSAFE_ATTRIBUTE.test(domain))) {
    fail('cookie.domain must be a host name such as "example.com", without ";", spaces or control characters.')
  }
  if (typeof cookie.httpOnly !== 'boolean') fail('cookie.httpOnly must be true or false.')
  // The constant part of every Set-Cookie header, serialized by Hono now, over http and over https
  // (a fixed `secure` applies to both): whatever Hono would refuse is refused at start-up.
  try {
    return { http: cookieAttributes(cookie, secure ?? false), https: cookieAttributes(cookie, secure ?? true) }
  } catch (error) {
    return fail(`the cookie options cannot make a Set-Cookie header (${(error as Error).message}).`)
  }
}

async function open(store: SessionStore | CookieSessionStore, raw: string | undefined, policy: SessionPolicy, onFirstAccess: () => void, onForged: () => void): Promise<{ handle: SessionHandle; loadedKey: string | null }> {
  if (isCookieStore(store)) {
    const data = raw === undefined ? null : await store.unseal(raw, onForged)
    return { handle: createSessionHandle(null, data, policy, onFirstAccess), loadedKey: null }
  }
  // A value that is not shaped like our ids is never looked up: nothing hostile reaches the store.
  if (!isSessionId(raw)) {
    if (raw !== undefined) onForged()
    return { handle: createSessionHandle(null, null, policy, onFirstAccess), loadedKey: null }
  }
  const loadedKey = await hashKey(raw)
  const data = await store.load(loadedKey)
  return { handle: createSessionHandle(raw, data, policy, onFirstAccess), loadedKey }
}

/** The store key of an id, reusing the one computed at load time. */
function keyOf(session: Session, id: string): Promise<string> | string {
  const internal = internalsOf(session)
  return internal !== undefined && internal.loadedKey !== null && internal.handle.loadedId === id ? internal.loadedKey : hashKey(id)
}

async function commit(c: Context, handle: SessionHandle, incomingId: string | undefined, config: SessionConfig): Promise<void> {
  const { session: s } = handle
  const { store } = config
  const server = isCookieStore(store) ? null : store
  // A flushed or cycled session's old record goes whatever the status: logout must stick. It runs on
  // every path below, after any Set-Cookie has been built (a header that cannot be built must not
  // leave the store half-changed).
  const retire = async () => {
    if (server !== null) for (const id of handle.retiredIds) await server.delete(await keyOf(s, id))
  }

  // Only a session this request loaded and emptied deletes the cookie (Django deletes whenever the
  // request had one). A stale cookie is never adopted anyway, and deleting it would race: a slow
  // request carrying an id that a concurrent login just retired would delete the new cookie.
  if (handle.loaded && s.isEmpty()) {
    const deletion = cookieHeader(c, config, '', 0)
    await retire()
    writeHeaders(c, deletion, true, true)
    return
  }
  if (c.res.status >= 500 || s.isEmpty()) {
    await retire()
    if (s.accessed) writeHeaders(c, null, true, false)
    return
  }

  // Read without marking the session accessed: what the handler did decides Vary, not this phase.
  const age = handle.expiryAge()
  const cookieAge = handle.expireAtBrowserClose() ? undefined : age
  const expiresAt = config.policy.now() + age * 1000
  let header: string
  if (s.modified || config.saveEveryRequest) {
    if (isCookieStore(store)) {
      const value = await store.seal(handle.snapshot(), expiresAt)
      if (!fits(config, value)) {
        throw new BackwardError('COOKIE_TOO_LARGE', `[backward] The session no longer fits in a cookie (${value.length} bytes sealed, the limit is ${MAX_COOKIE_BYTES}). Keep less in it, or use a server-side store.`)
      }
      header = cookieHeader(c, config, value, cookieAge)
    } else {
      // The header is built before the store is written, so a header failure cannot orphan a record.
      header = cookieHeader(c, config, handle.stored ? s.key! : handle.ensureId(), cookieAge)
      await retire()
      await save(store, handle, expiresAt, config.maxSessionBytes)
    }
  } else if (handle.stored && s.key !== null && s.key !== incomingId) {
    header = cookieHeader(c, config, s.key, cookieAge) // saved mid-request under a new id (saveSessionNow): the browser still needs it
    await retire()
  } else {
    await retire()
    if (s.accessed) writeHeaders(c, null, true, false)
    return
  }
  // Vary: Cookie whenever a session cookie is set: the Set-Cookie depends on the request's cookie,
  // even when the handler never read the session (saveEveryRequest; Django 68).
  writeHeaders(c, header, true, true)
}

async function save(store: SessionStore, handle: SessionHandle, expiresAt: number, maxBytes: number): Promise<string> {
  const data: SessionData = handle.snapshot()
  checkSize(data, maxBytes)
  if (handle.stored) {
    const id = handle.session.key!
    const key = await keyOf(handle.session, id)
    const ok = !handle.session.modified && store.touch !== undefined ? await store.touch(key, expiresAt) : await store.update(key, data, expiresAt, writeOptions(data))
    if (!ok) throw new BackwardError('SESSION_INTERRUPTED', '[backward] The session was deleted before the request completed.')
    handle.markStored()
    return id
  }
  const id = handle.ensureId()
  if (!(await store.create(await hashKey(id), data, expiresAt, writeOptions(data)))) {
    // 256 random bits do not collide; a false here means the store is misbehaving.
    throw new BackwardError('STORE_CONFLICT', '[backward] The store refused to create a new session record (key already exists).')
  }
  handle.markStored()
  return id
}

/**
 * Session key marking a session that loginRequired made only to hold an anonymous recorded post: it
 * lives `actionTtl`, and a store that evicts drops it before any other session (a flood of anonymous
 * posts must not push out logged-in users). login() removes it.
 */
export const SHORT_LIVED_KEY = '_backward_short'
const SPARE: StoreWriteOptions = { evict: 'first' }
const ORDINARY: StoreWriteOptions = { evict: true }
const writeOptions = (data: SessionData): StoreWriteOptions => (data[SHORT_LIVED_KEY] === true ? SPARE : ORDINARY)

/**
 * A session over `maxBytes` encoded is refused before the store sees it. The exact UTF-8 length is
 * counted only when the JSON's length in characters could pass the limit (a character is 1-3 bytes).
 */
function checkSize(data: SessionData, maxBytes: number): void {
  const json = JSON.stringify(data)
  if (json.length * 3 <= maxBytes) return
  const bytes = json.length > maxBytes ? json.length : new TextEncoder().encode(json).byteLength
  if (bytes > maxBytes) {
    throw new BackwardError('SESSION_TOO_LARGE', `[backward] The session is ${bytes} bytes encoded; the limit is ${maxBytes} (session({ maxSessionBytes })). Keep less in it.`)
  }
}

/**
 * Writes the response phase's headers in one go: the cookie, `Vary: Cookie` when the session was read,
 * `Cache-Control: no-store` when a cookie is set. A proxied `fetch()` answer has immutable headers:
 * it is copied once, then written.
 */
function writeHeaders(c: Context, cookie: string | null, vary: boolean, noStore: boolean): void {
  const write = (headers: Headers) => {
    if (vary) {
      const current = headers.get('Vary')
      if (current === null) headers.set('Vary', 'Cookie')
      else if (!/(^|,)\s*(cookie|\*)\s*(,|$)/i.test(current)) headers.set('Vary', `${current}, Cookie`)
    }
    if (cookie !== null) headers.append('Set-Cookie', cookie)
    if (noStore) headers.set('Cache-Control', 'no-store')
  }
  try {
    write(c.res.headers)
  } catch {
    c.res = new Response(c.res.body, c.res)
    write(c.res.headers)
  }
}

/** Whether a sealed value makes a cookie (name, `=`, value) that browsers keep. */
function fits(config: SessionConfig, sealed: string, reserve = 0): boolean {
  return (config.hostName ?? config.cookie.name).length + 1 + sealed.length + reserve <= MAX_COOKIE_BYTES
}

/**
 * backward-internal: whether this session, as it is now, would still be saved with `reserve` to
 * spare: sealed, in its 4 KB cookie; encoded, within `maxSessionBytes` for server-side stores. It seals once, so it is only for
 * rare paths (the login wall recording a form), where anonymous input must not turn the commit into a
 * COOKIE_TOO_LARGE 500.
 */
export async function fitsInCookie(session: Session, reserve = 0): Promise<boolean> {
  const handle = sessionHandle(session)
  const config = sessionConfig(session)
  if (!isCookieStore(config.store)) {
    try {
      checkSize(handle.snapshot(), config.maxSessionBytes - reserve)
      return true
    } catch {
      return false
    }
  }
  const value = await config.store.seal(handle.snapshot(), config.policy.now() + handle.expiryAge() * 1000)
  return fits(config, value, reserve)
}

/**
 * backward-internal: hands this request's server-side session over to an inner request that already ran
 * with it (the no-JS replay, after saveSessionNow). The inner request may have rotated or deleted the id,
 * so this request must not write its now stale copy (an update or touch of a gone id is
 * SESSION_INTERRUPTED, a 400 after the replayed side effect happened). Its commit only forwards `line`,
 * the inner answer's session Set-Cookie, if any. Later changes to this session are not saved.
 */
export function handOverSession(session: Session, line: string | null): void {
  const internal = internalsOf(session)
  if (internal === undefined || isCookieStore(internal.config.store)) throw new BackwardError('CONFIG', '[backward] handOverSession() needs a server-side session made by session().')
  internal.handedOver = { line }
}

/**
 * The response phase of a handed-over session: no store I/O. The inner answer's cookie when it set one;
 * otherwise the id saved mid-request, when the browser does not hold it yet or saveEveryRequest renews
 * it (that save just moved the record's expiry).
 */
function commitHandedOver(c: Context, handle: SessionHandle, incomingId: string | undefined, config: SessionConfig, line: string | null): void {
  const { session: s } = handle
  if (line === null && handle.stored && s.key !== null && (s.key !== incomingId || config.saveEveryRequest)) {
    line = cookieHeader(c, config, s.key, handle.expireAtBrowserClose() ? undefined : handle.expiryAge())
  }
  writeHeaders(c, line, true, line !== null)
}

/**
 * backward-internal: writes the session to its server-side store now, mid-request, so that an inner
 * request dispatched afterwards (the no-JS replay) sees it. The response phase then has nothing left to do.
 */
export async function saveSessionNow(session: Session): Promise<void> {
  const handle = sessionHandle(session)
  const config = sessionConfig(session)
  const { store } = config
  if (isCookieStore(store) || session.isEmpty()) return
  for (const id of handle.retiredIds) await store.delete(await keyOf(session, id))
  await save(store, handle, config.policy.now() + handle.expiryAge() * 1000, config.maxSessionBytes)
}

/**
 * The Set-Cookie value; `maxAge` undefined gives a browser-length cookie, 0 deletes it. The age is
 * clamped to 400 days, as browsers would clamp it: setExpiry refuses more, but a record written before
 * that check (or by hand) must still get its cookie rather than a 503.
 */
function cookieHeader(c: Context, config: SessionConfig, value: string, age: number | undefined): string {
  const { secure } = config.cookie
  const name = sessionCookieName(config, c.req.url)
  const { before, after } = (secure ?? c.req.url.startsWith('https:')) ? config.attributes.https : config.attributes.http
  if (age === undefined) return `${name}=${encodeURIComponent(value)}${before}${after}`
  const maxAge = Math.max(0, Math.floor(Math.min(age, MAX_AGE_LIMIT)))
  // A deletion carries the epoch as Expires, like Django, so every browser drops it at once.
  const expires = httpDate(maxAge > 0 ? config.policy.now() + maxAge * 1000 : 0)
  return `${name}=${encodeURIComponent(value)}; Max-Age=${maxAge}${before}; Expires=${expires}${after}`
}

/** An HTTP date has whole seconds, and most saves in a second share one: format each second once. */
let lastSecond = Number.NaN
let lastDate = ''
function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000)
  if (second !== lastSecond) {
    lastSecond = second
    lastDate = new Date(second * 1000).toUTCString()
  }
  return lastDate
}

/**
 * Hono's serializer, run once at start-up for the attributes that never change; a request only adds
 * the value, Max-Age and Expires, in Hono's order (its checks cost more than the rest of a session save).
 * `before` is what Hono writes between Max-Age and Expires (Domain, Path), `after` the rest.
 */
function cookieAttributes(cookie: SessionConfig['cookie'], secure: boolean): CookieAttributes {
  const { name, path, domain, httpOnly, sameSite } = cookie
  const epoch = `; Expires=${new Date(0).toUTCString()}`
  const full = generateCookie(name, '', {
    path,
    httpOnly,
    secure,
    ...(domain !== undefined ? { domain } : {}),
    ...(sameSite !== false ? { sameSite } : {}),
    maxAge: 0,
    expires: new Date(0),
  })
  const head = `${name}=; Max-Age=0`
  const at = full.indexOf(epoch)
  return { before: full.slice(head.length, at), after: full.slice(at + epoch.length) }
}

/**
 * backward-internal: the session cookie's name for a request. On HTTPS (or with `cookie.secure: true`)
 * the default name carries the `__Host-` prefix: the browser then accepts it only from this exact host,
 * Secure, Path=/ and without Domain, so a sibling subdomain cannot plant a session (fixation). A name
 * the app chose, a Domain or a Path other than "/" keep the name as given.
 */
export function sessionCookieName(config: SessionConfig, url: string): string {
  return config.hostName !== null && (config.cookie.secure ?? url.startsWith('https:')) ? config.hostName : config.cookie.name
}

/**
 * A cookie backward sets, sent twice, was planted: by a sibling subdomain (a Domain cookie) or a longer
 * Path. Browsers send the longer path first, so the planted value may be the one read. Reported only;
 * a `__Host-` name (the default on HTTPS) cannot be planted at all.
 */
function checkCookieHeader(c: Context, name: string, raw: string, store: SessionStore | CookieSessionStore): void {
  const header = c.req.header('Cookie') ?? ''
  const first = header.indexOf(name + '=')
  if (first !== -1 && header.indexOf(name + '=', first + name.length + 1 + raw.length) !== -1 && countCookie(header, name) > 1) {
    reportSuspicious(c, 'planted-cookie', `the session cookie was sent more than once (a sibling subdomain or another path set one); the first was used${isCookieStore(store) ? '' : ' if it is a live session'}`)
  }
}

/** How many times `name` appears as a cookie name in a Cookie header. */
export function countCookie(header: string, name: string): number {
  let n = 0
  for (const pair of header.split(';')) if (pair.trim().startsWith(name + '=')) n++
  return n
}

/**
 * backward-internal: a Set-Cookie line sent with the response only when this session is saved (not on a
 * 5xx, a store outage or an oversized session). login() sends its signal so: a login whose session was
 * not saved must not announce itself.
 */
export function cookieOnCommit(session: Session, line: string): void {
  const internal = internalsOf(session)
  if (internal === undefined) throw new BackwardError('CONFIG', '[backward] This session was not created by session(). Add app.use(session({ store })) before this route.')
  ;(internal.afterCommit ??= []).push(line)
}
