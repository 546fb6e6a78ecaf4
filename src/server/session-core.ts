/**
 * The session object, framework-free. It keeps data in a Map (so `__proto__` is just a key), tracks
 * `accessed` and `modified` the way Django does, and records what the response phase must do
 * (create, update, delete) instead of doing I/O itself. That keeps every method synchronous.
 */
import { BackwardError } from '../shared/errors.ts'
import { newSessionId } from './ids.ts'
import type { SessionData } from './store.ts'

/** Key of the per-session expiry override (Django's `_session_expiry`). */
export const EXPIRY_KEY = '_session_expiry'
/**
 * The longest lifetime a session can have, in seconds: 400 days. RFC 6265bis makes browsers cap a
 * cookie's Max-Age and Expires there, and Hono refuses to write a longer one.
 */
export const MAX_EXPIRY_SECONDS = 400 * 24 * 60 * 60
const TEST_COOKIE_KEY = 'testcookie'
const TEST_COOKIE_VALUE = 'worked'

/** The session on `c.var.session`. Follows Django's `SessionBase`; values are JSON. */
export interface Session {
  /** The session id, or null before the first save and after `flush()`. Read-only. */
  readonly key: string | null
  /** True once anything read or wrote the data. */
  readonly accessed: boolean
  /** True once anything changed the data; the response phase then saves it. */
  readonly modified: boolean
  get<T = unknown>(key: string): T | undefined
  get<T>(key: string, fallback: T): T
  set(key: string, value: unknown): void
  /** Removes a key; throws when it is missing (Django's `del session[key]`). */
  delete(key: string): void
  has(key: string): boolean
  /** Removes and returns a key. A missing key returns `fallback` and does not mark the session modified. */
  pop<T = unknown>(key: string, ...fallback: [T?]): T
  setDefault<T>(key: string, value: T): T
  update(values: Record<string, unknown>): void
  clear(): void
  keys(): string[]
  values(): unknown[]
  entries(): [string, unknown][]
  /** True when there is no session key and no data. */
  isEmpty(): boolean
  /** Removes the data, the stored record and the cookie. */
  flush(): void
  /** Keeps the data under a new key and deletes the old record (call it on privilege changes). */
  cycleKey(): void
  /**
   * Seconds of idle expiry, a Date, 0 for a browser-length cookie, or null for the global policy.
   * Throws a RangeError for more than 400 days ahead (browsers cap cookies there); a negative number
   * or a past Date expires the session at once.
   */
  setExpiry(value: number | Date | null): void
  getExpiryAge(): number
  getExpiryDate(): Date
  getExpireAtBrowserClose(): boolean
  setTestCookie(): void
  testCookieWorked(): boolean
  deleteTestCookie(): void
}

export interface SessionPolicy {
  /** Seconds. */
  maxAge: number
  expireAtBrowserClose: boolean
  now: () => number
  /** Reserved keys (`_…`) may only be written through the internal handle. */
  guardReserved: boolean
}

/** What the response phase has to do, as decided by the session's state. */
export interface SessionHandle {
  session: Session
  /** The id the request came with (only when it loaded a live record). */
  readonly loadedId: string | null
  /** True when the request brought a live session (a stored record, or a valid sealed cookie). */
  readonly loaded: boolean
  /** Ids whose records must be deleted (after flush or cycleKey). */
  readonly retiredIds: readonly string[]
  /** Data as a plain object for the store. */
  snapshot(): SessionData
  /** Assigns a fresh id when the session has none (first save, or after flush). */
  ensureId(): string
  /** Called after a successful save: the current id is now stored and nothing is pending. */
  markStored(): void
  /** True when the current id has a stored record to update. */
  readonly stored: boolean
  /** The expiry age in seconds, read without marking the session accessed (for the response phase). */
  expiryAge(): number
  /** `getExpireAtBrowserClose()`, read without marking the session accessed. */
  expireAtBrowserClose(): boolean
  /** Writes a key, reserved or not (backward's own login/logout use it). */
  setInternal(key: string, value: unknown): void
  deleteInternal(key: string): void
}

function reserved(key: string): boolean {
  return key.startsWith('_')
}

function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new TypeError('[backward] Session keys must be strings.')
}

function assertJsonValue(value: unknown): void {
  const kind = typeof value
  if (value === undefined || kind === 'function' || kind === 'symbol' || kind === 'bigint' || (kind === 'number' && !Number.isFinite(value))) {
    throw new BackwardError('NOT_SERIALIZABLE', '[backward] Session values must be JSON: no undefined, functions, symbols, BigInt, NaN or Infinity.')
  }
}

/** One request's session state. Methods live once, on shared prototypes: a request allocates this and two small objects. */
interface State {
  data: Map<string, unknown>
  currentId: string | null
  stored: boolean
  accessed: boolean
  modified: boolean
  retiredIds: string[]
  policy: SessionPolicy
  onFirstAccess: (() => void) | undefined
}

const STATE = Symbol('backward.session')
type WithState = { [STATE]: State }

function read(st: State): Map<string, unknown> {
  if (!st.accessed) {
    st.accessed = true
    st.onFirstAccess?.()
  }
  return st.data
}

function write(st: State): Map<string, unknown> {
  read(st)
  st.modified = true
  return st.data
}

function guard(st: State, key: string): void {
  assertKey(key)
  if (st.policy.guardReserved && reserved(key)) {
    throw new BackwardError('RESERVED_KEY', `[backward] Session keys that start with "_" are reserved for backward; rename "${key.slice(0, 40)}".`)
  }
}

function retire(st: State): void {
  if (st.currentId !== null && st.stored) st.retiredIds.push(st.currentId)
  st.stored = false
}

function expiryAge(st: State, expiry: unknown): number {
  if (typeof expiry === 'number' && expiry !== 0) return expiry
  if (typeof expiry === 'string') {
    const at = Date.parse(expiry)
    if (Number.isFinite(at)) return Math.floor((at - st.policy.now()) / 1000)
  }
  return st.policy.maxAge
}

function expireAtBrowserClose(st: State, expiry: unknown): boolean {
  return expiry === undefined || expiry === null ? st.policy.expireAtBrowserClose : expiry === 0
}

function tooLong(): RangeError {
  return new RangeError(`[backward] setExpiry: at most ${MAX_EXPIRY_SECONDS} seconds (400 days) ahead; browsers cap cookie lifetimes there. For longer sessions, renew them (saveEveryRequest, or setExpiry again later).`)
}

function missing(key: string, detail = ''): BackwardError {
  return new BackwardError('MISSING_KEY', `[backward] The session has no key "${key.slice(0, 40)}"${detail}.`)
}

const sessionPrototype: Session & ThisType<Session & WithState> = {
  get key() {
    return (this as WithState)[STATE].currentId
  },
  get accessed() {
    return (this as WithState)[STATE].accessed
  },
  get modified() {
    return (this as WithState)[STATE].modified
  },
  get(key: string, fallback?: unknown) {
    assertKey(key)
    const map = read(this[STATE])
    return map.has(key) ? map.get(key) : fallback
  },
  set(key, value) {
    const st = this[STATE]
    guard(st, key)
    assertJsonValue(value)
    write(st).set(key, value)
  },
  delete(key) {
    const st = this[STATE]
    guard(st, key)
    if (!read(st).has(key)) throw missing(key)
    write(st).delete(key)
  },
  has(key) {
    assertKey(key)
    return read(this[STATE]).has(key)
  },
  pop: function pop(this: WithState, key: string, ...fallback: unknown[]) {
    const st = this[STATE]
    guard(st, key)
    const map = read(st)
    if (map.has(key)) {
      const value = map.get(key)
      write(st).delete(key)
      return value
    }
    if (fallback.length === 0) throw missing(key, ' and pop() got no default')
    return fallback[0]
  } as Session['pop'],
  setDefault(key, value) {
    const st = this[STATE]
    guard(st, key)
    const map = read(st)
    if (map.has(key)) return map.get(key) as typeof value
    assertJsonValue(value)
    write(st).set(key, value)
    return value
  },
  update(values) {
    const st = this[STATE]
    const entries = Object.entries(values)
    for (const [key, value] of entries) {
      guard(st, key)
      assertJsonValue(value)
    }
    const map = write(st)
    for (const [key, value] of entries) map.set(key, value)
  },
  clear() {
    write(this[STATE]).clear()
  },
  keys() {
    return [...read(this[STATE]).keys()]
  },
  values() {
    return [...read(this[STATE]).values()]
  },
  entries() {
    return [...read(this[STATE]).entries()]
  },
  isEmpty() {
    const st = this[STATE]
    return st.currentId === null && st.data.size === 0
  },
  flush() {
    const st = this[STATE]
    write(st).clear()
    retire(st)
    st.currentId = null
  },
  cycleKey() {
    const st = this[STATE]
    read(st)
    retire(st)
    st.currentId = newSessionId()
    st.modified = true
  },
  setExpiry(value) {
    const st = this[STATE]
    if (value === null) {
      write(st).delete(EXPIRY_KEY)
      return
    }
    // Refused here, not clamped: the caller asked for something no browser keeps, and failing where
    // it is asked beats a 503 (or a silently shorter session) when the response is written.
    if (value instanceof Date) {
      if (!Number.isFinite(value.getTime())) throw new TypeError('[backward] setExpiry: the Date is invalid.')
      if (value.getTime() - st.policy.now() > MAX_EXPIRY_SECONDS * 1000) throw tooLong()
      write(st).set(EXPIRY_KEY, value.toISOString())
      return
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new TypeError('[backward] setExpiry takes seconds, a Date, 0 (browser-length) or null (the global policy).')
    }
    if (Math.trunc(value) > MAX_EXPIRY_SECONDS) throw tooLong()
    write(st).set(EXPIRY_KEY, Math.trunc(value))
  },
  // The three getters read through the data, as Django's do through get(): they mark the session
  // accessed, so a response that depends on the expiry carries Vary: Cookie.
  getExpiryAge() {
    const st = this[STATE]
    return expiryAge(st, read(st).get(EXPIRY_KEY))
  },
  getExpiryDate() {
    const st = this[STATE]
    const expiry = read(st).get(EXPIRY_KEY)
    if (typeof expiry === 'string' && Number.isFinite(Date.parse(expiry))) return new Date(expiry)
    return new Date(st.policy.now() + expiryAge(st, expiry) * 1000)
  },
  getExpireAtBrowserClose() {
    const st = this[STATE]
    return expireAtBrowserClose(st, read(st).get(EXPIRY_KEY))
  },
  setTestCookie() {
    this.set(TEST_COOKIE_KEY, TEST_COOKIE_VALUE)
  },
  testCookieWorked() {
    return this.get(TEST_COOKIE_KEY) === TEST_COOKIE_VALUE
  },
  deleteTestCookie() {
    if (read(this[STATE]).has(TEST_COOKIE_KEY)) this.delete(TEST_COOKIE_KEY)
  },
}

interface HandleFields {
  session: Session
  loadedId: string | null
  loaded: boolean
  [STATE]: State
}

const handlePrototype: Omit<SessionHandle, 'session' | 'loadedId' | 'loaded'> & ThisType<HandleFields> = {
  get retiredIds() {
    return (this as unknown as HandleFields)[STATE].retiredIds
  },
  get stored() {
    return (this as unknown as HandleFields)[STATE].stored
  },
  snapshot() {
    // fromEntries defines own properties, so a "__proto__" key stays data, never a prototype.
    return Object.fromEntries(this[STATE].data)
  },
  expiryAge() {
    const st = this[STATE]
    return expiryAge(st, st.data.get(EXPIRY_KEY))
  },
  expireAtBrowserClose() {
    const st = this[STATE]
    return expireAtBrowserClose(st, st.data.get(EXPIRY_KEY))
  },
  ensureId() {
    const st = this[STATE]
    return (st.currentId ??= newSessionId())
  },
  markStored() {
    const st = this[STATE]
    st.stored = true
    st.modified = false
    st.retiredIds.length = 0
  },
  setInternal(key, value) {
    assertJsonValue(value)
    write(this[STATE]).set(key, value)
  },
  deleteInternal(key) {
    const st = this[STATE]
    if (st.data.has(key)) write(st).delete(key)
  },
}

/**
 * Builds a session around loaded data. `id` is the request's session id when its record loaded, else null.
 * `onFirstAccess` runs once, when the data is first read or written.
 * @example
 * const handle = createSessionHandle(null, null, policy)
 */
export function createSessionHandle(id: string | null, loaded: SessionData | null, policy: SessionPolicy, onFirstAccess?: () => void): SessionHandle {
  const currentId = loaded === null ? null : id
  const state: State = {
    data: loaded === null ? new Map() : new Map(Object.entries(loaded)),
    currentId,
    stored: currentId !== null,
    accessed: false,
    modified: false,
    retiredIds: [],
    policy,
    onFirstAccess,
  }
  const session = Object.create(sessionPrototype) as Session & WithState
  session[STATE] = state
  const handle = Object.create(handlePrototype) as SessionHandle & HandleFields
  handle.session = session
  handle.loadedId = currentId
  handle.loaded = loaded !== null
  handle[STATE] = state
  return handle
}
