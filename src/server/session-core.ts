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
  /** Seconds of idle expiry, a Date, 0 for a browser-length cookie, or null for the global policy. */
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

/**
 * Builds a session around loaded data. `id` is the request's session id when its record loaded, else null.
 * @example
 * const handle = createSessionHandle(null, null, policy)
 */
export function createSessionHandle(id: string | null, loaded: SessionData | null, policy: SessionPolicy): SessionHandle {
  const data = new Map<string, unknown>(loaded === null ? [] : Object.entries(loaded))
  let currentId = loaded === null ? null : id
  let stored = currentId !== null
  let accessed = false
  let modified = false
  const retiredIds: string[] = []

  const read = () => {
    accessed = true
    return data
  }
  const write = () => {
    accessed = true
    modified = true
    return data
  }
  const guard = (key: string) => {
    assertKey(key)
    if (policy.guardReserved && reserved(key)) {
      throw new BackwardError('RESERVED_KEY', `[backward] Session keys that start with "_" are reserved for backward; rename "${key.slice(0, 40)}".`)
    }
  }
  const retire = () => {
    if (currentId !== null && stored) retiredIds.push(currentId)
    stored = false
  }

  function expiryAge(expiry: unknown): number {
    if (typeof expiry === 'number' && expiry !== 0) return expiry
    if (typeof expiry === 'string') {
      const at = Date.parse(expiry)
      if (Number.isFinite(at)) return Math.floor((at - policy.now()) / 1000)
    }
    return policy.maxAge
  }

  const session: Session = {
    get key() {
      return currentId
    },
    get accessed() {
      return accessed
    },
    get modified() {
      return modified
    },
    get(key: string, fallback?: unknown) {
      assertKey(key)
      const map = read()
      return map.has(key) ? map.get(key) : fallback
    },
    set(key, value) {
      guard(key)
      assertJsonValue(value)
      write().set(key, value)
    },
    delete(key) {
      guard(key)
      if (!read().has(key)) throw new BackwardError('MISSING_KEY', `[backward] The session has no key "${key.slice(0, 40)}".`)
      write().delete(key)
    },
    has(key) {
      assertKey(key)
      return read().has(key)
    },
    pop: function pop(key: string, ...fallback: unknown[]) {
      guard(key)
      const map = read()
      if (map.has(key)) {
        const value = map.get(key)
        write().delete(key)
        return value
      }
      if (fallback.length === 0) throw new BackwardError('MISSING_KEY', `[backward] The session has no key "${key.slice(0, 40)}" and pop() got no default.`)
      return fallback[0]
    } as Session['pop'],
    setDefault(key, value) {
      guard(key)
      const map = read()
      if (map.has(key)) return map.get(key) as typeof value
      assertJsonValue(value)
      write().set(key, value)
      return value
    },
    update(values) {
      const entries = Object.entries(values)
      for (const [key, value] of entries) {
        guard(key)
        assertJsonValue(value)
      }
      const map = write()
      for (const [key, value] of entries) map.set(key, value)
    },
    clear() {
      write().clear()
    },
    keys() {
      return [...read().keys()]
    },
    values() {
      return [...read().values()]
    },
    entries() {
      return [...read().entries()]
    },
    isEmpty() {
      return currentId === null && data.size === 0
    },
    flush() {
      write().clear()
      retire()
      currentId = null
    },
    cycleKey() {
      read()
      retire()
      currentId = newSessionId()
      modified = true
    },
    setExpiry(value) {
      if (value === null) {
        write().delete(EXPIRY_KEY)
        return
      }
      if (value instanceof Date) {
        if (!Number.isFinite(value.getTime())) throw new TypeError('[backward] setExpiry: the Date is invalid.')
        write().set(EXPIRY_KEY, value.toISOString())
        return
      }
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new TypeError('[backward] setExpiry takes seconds, a Date, 0 (browser-length) or null (the global policy).')
      }
      write().set(EXPIRY_KEY, Math.trunc(value))
    },
    getExpiryAge() {
      return expiryAge(data.get(EXPIRY_KEY))
    },
    getExpiryDate() {
      const expiry = data.get(EXPIRY_KEY)
      if (typeof expiry === 'string' && Number.isFinite(Date.parse(expiry))) return new Date(expiry)
      return new Date(policy.now() + expiryAge(expiry) * 1000)
    },
    getExpireAtBrowserClose() {
      const expiry = data.get(EXPIRY_KEY)
      return expiry === undefined || expiry === null ? policy.expireAtBrowserClose : expiry === 0
    },
    setTestCookie() {
      session.set(TEST_COOKIE_KEY, TEST_COOKIE_VALUE)
    },
    testCookieWorked() {
      return session.get(TEST_COOKIE_KEY) === TEST_COOKIE_VALUE
    },
    deleteTestCookie() {
      if (data.has(TEST_COOKIE_KEY)) session.delete(TEST_COOKIE_KEY)
    },
  }

  return {
    session,
    loadedId: currentId,
    loaded: loaded !== null,
    retiredIds,
    get stored() {
      return stored
    },
    snapshot() {
      // fromEntries defines own properties, so a "__proto__" key stays data, never a prototype.
      return Object.fromEntries(data)
    },
    ensureId() {
      currentId ??= newSessionId()
      return currentId
    },
    markStored() {
      stored = true
      modified = false
      retiredIds.length = 0
    },
    setInternal(key, value) {
      assertJsonValue(value)
      write().set(key, value)
    },
    deleteInternal(key) {
      if (data.has(key)) write().delete(key)
    },
  }
}
