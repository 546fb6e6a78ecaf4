import type { BackwardError } from '../shared/errors.ts'

/**
 * A file inside a saved FormData body: bytes, not a Blob (Safari cannot store Blobs reliably).
 * @example
 * { bytes: new ArrayBuffer(3), name: 'a.png', type: 'image/png', lastModified: 0 }
 */
export interface StoredFile {
  bytes: ArrayBuffer
  name: string
  type: string
  lastModified: number
}

/**
 * One FormData entry: a string, or a file kept as bytes plus its name and type.
 * @example
 * ['title', 'holiday']
 */
export type StoredFormEntry = [name: string, value: string | StoredFile]

/**
 * A request saved for replay, exactly as it sits in IndexedDB.
 * @example
 * for (const action of await bw.pending()) console.log(action.method, action.url)
 */
export interface BackwardAction {
  /** Record format. Records of another version are skipped, never guessed at. */
  version: 1
  /** A random UUID v4 (from `crypto.getRandomValues`); also the `Idempotency-Key` of every replay. */
  id: string
  method: string
  /** Absolute URL. */
  url: string
  /** Allow-listed headers only: never credentials or CSRF tokens. */
  headers: [string, string][]
  /** Raw bytes, FormData entries, or null for no body. */
  body: ArrayBuffer | StoredFormEntry[] | null
  credentials: RequestCredentials
  mode: RequestMode
  /** Epoch milliseconds, unique per instance (bumped by 1 ms on a tie): the queue's order. */
  createdAt: number
  /** Epoch milliseconds; after this the action is dropped with an `expired` event. */
  expiresAt: number
  /** The page (absolute URL) the action was made on. */
  returnTo: string
  /**
   * Tag of the user known when the action was captured (the last user the server confirmed), or null
   * when unknown. A replay sends it only when the server confirms that same user.
   */
  user: string | null
  /** Replays that ended in a network failure or a retryable answer (an in-progress 409, 429, 5xx). */
  attempts: number
}

/**
 * What `onLoginRequired` and the `login-required` event receive.
 * @example
 * createBackward({ onLoginRequired: ({ loginUrl }) => openLoginModal(loginUrl) })
 */
export interface LoginRequiredInfo {
  /** Where to log in, `next` included. */
  loginUrl: string
  /** The action that triggered the hand-off (the first, when many 401s arrive together). */
  action: BackwardAction
  /** The server's 401 answer. */
  response: Response
  /**
   * False when IndexedDB is unavailable and the queue lives in this page's memory: leaving the page
   * (the default hand-off navigates) loses the saved actions. Log in without leaving the page instead.
   */
  persisted: boolean
  /**
   * Resolves `true` when another page of this site (a login popup, another tab) reports a login: it
   * took the login signal cookie on load. Return it from `onLoginRequired` to replay in this page once
   * the popup's login is done. Never settles where pages cannot talk (no BroadcastChannel, no
   * localStorage, `channel: null`): race it with your own "popup closed" check.
   */
  loggedIn: Promise<true>
}

/**
 * What one replay run did: `bw.replay()` resolves with it, `bw.ready` with the on-load run's, and the
 * `drained` event carries it after every run.
 * @example
 * const { replayed, failed, remaining } = await bw.ready
 */
export interface ReplayResult {
  /** Sent, with the server's final answer (a 2xx, 4xx or application 409), in the order sent. */
  replayed: BackwardEvents['replayed'][]
  /** Dropped without a usable answer: another user's (`user-mismatch`), vetoed, invalid, or 5xx past `maxAttempts`. */
  failed: BackwardEvents['failed'][]
  /** Dropped during this run because their `ttl` passed (those purged at creation have only their `expired` event). */
  expired: BackwardAction[]
  /**
   * Still queued after the run: still logged out (401), a transient failure waiting for its retry, the
   * user not confirmed, or left to another page that is waiting for this login (a popup's opener).
   */
  remaining: BackwardAction[]
}

/**
 * How pages of one site tell each other that a login happened (a BroadcastChannel fits).
 * @example
 * createBackward({ channel: new BroadcastChannel('my-app-backward') })
 */
export interface BackwardChannel {
  postMessage(message: string): void
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void
}

/**
 * Why an action was dropped without a usable answer.
 * @example
 * bw.on('failed', ({ action, reason }) => reason == 'user-mismatch' && console.warn('dropped', action.url))
 */
export type FailReason = 'user-mismatch' | 'vetoed' | 'invalid' | 'network' | 'server'
// 'network' is kept for compatibility: network failures no longer drop an action. 'invalid': a stored
// record that backward cannot have written (another origin's URL, an expiry past its ttl).

/**
 * Event names and what their listeners receive (as properties of the event object).
 * @example
 * bw.on('error', ({ error }) => error.code == 'QUOTA_EXCEEDED' && toast('Storage is full'))
 */
export interface BackwardEvents {
  queued: { action: BackwardAction }
  'login-required': LoginRequiredInfo
  /** `response` is the replay's answer; a `bw.fetch` waiting on an in-page login gets a clone of it, so both can read the body. */
  replayed: { action: BackwardAction; response: Response }
  failed: { action: BackwardAction; reason: FailReason; response?: Response; error?: unknown }
  expired: { action: BackwardAction }
  /**
   * Something that looks like an attack, for the page's monitoring: the login signal cookie twice
   * (`signal-conflict`: a planted duplicate, nothing is replayed), a signal naming another user than the
   * server confirms (`signal-mismatch`: the server's answer wins), a stored record backward cannot
   * have written (`foreign-record`: dropped with `failed`, reason `invalid`).
   */
  suspicious: { kind: 'signal-conflict' | 'signal-mismatch' | 'foreign-record'; detail: string; action?: BackwardAction }
  /**
   * Codes: BODY_TOO_LARGE, QUOTA_EXCEEDED and CLEARED (the action was not saved; `bw.fetch` rejects
   * with the same error), STORAGE_UNAVAILABLE (the queue moved to memory), NOT_PERSISTED (a hand-off
   * is about to leave the page and lose that in-memory queue), UNSAFE_REDIRECT, SIGNAL_CONFLICT (the
   * login signal cookie was there twice: nothing replayed, the queue is kept), USER_UNCONFIRMED (`userUrl`
   * did not confirm a user: nothing replayed, the queue is kept), CONFIG (`userUrl` is off this site),
   * NOT_REPLAYABLE (a stream body that had not ended a second after the login-required answer: not
   * saved, and `bw.fetch` rejects with it).
   */
  error: { error: BackwardError; action?: BackwardAction }
  /** After every replay run (on load, `replay()`, a retry, a login in another page), with what it did. */
  drained: ReplayResult
}

/**
 * Where actions live. The default is IndexedDB through idb-keyval (`createStore('backward', 'actions')`).
 * Every method may throw; a `QuotaExceededError` is reported, any other failure switches to memory.
 * @example
 * createBackward({ storage: memoryStorage() })
 */
export interface BackwardStorage {
  get(key: string): Promise<unknown>
  set(key: string, value: unknown): Promise<void>
  del(key: string): Promise<void>
  values(): Promise<unknown[]>
  clear(): Promise<void>
}

/**
 * The subset of Web Locks backward uses.
 * @example
 * createBackward({ locks: navigator.locks })
 */
export interface BackwardLocks {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>
}

/**
 * Options for `createBackward`. Settled once, when the instance is made.
 * @example
 * createBackward({ loginUrl: '/login', ttl: 600, beforeReplay: () => ({ 'X-CSRF-Token': token() }) })
 */
export interface CreateBackwardOptions {
  /**
   * Login page, used when the server's answer names none (servers matched by `isLoginRequired`).
   * `next=<current page>` is added when missing.
   * @default undefined (the server's `loginUrl` from the 401 problem)
   */
  loginUrl?: string
  /**
   * Called once per hand-off, however many requests got 401 together. Resolve `true` after an
   * in-page login: backward replays and the original `bw.fetch` promises settle with the replayed
   * responses (clones of what the `replayed` event carries: each has a readable body). Anything else
   * settles them with the 401. When `info.persisted` is false (no IndexedDB: the queue is in memory),
   * navigating away loses the saved actions: log in in the page and resolve `true`. For a login popup,
   * open `info.loginUrl` in it and return `info.loggedIn`: the popup lands back on the site, takes the
   * login signal, and this page replays (see `channel`).
   * @default navigates to `info.loginUrl` when it is on this site; in memory mode, an `error`
   * (NOT_PERSISTED) is emitted first, since the navigation loses the queue
   */
  onLoginRequired?: (info: LoginRequiredInfo) => unknown
  /**
   * Tells a login-required answer from servers that do not speak backward's protocol.
   * @default a 401 `application/problem+json` of type `urn:backward:login-required`
   */
  isLoginRequired?: (response: Response) => boolean | Promise<boolean>
  /**
   * Which requests may be saved. Cross-origin requests are never saved, whatever this says: their
   * replay would carry the user's cookies to another site. Nor are requests with `credentials: 'omit'`:
   * logging in cannot change their answer.
   * @default unsafe methods (anything but GET, HEAD, OPTIONS, TRACE)
   */
  shouldQueue?: (request: Request) => boolean
  /**
   * Request headers kept besides `Accept`, `Accept-Language`, `Content-Language` and `Content-Type`.
   * `Authorization`, `Cookie`, `Proxy-Authorization`, `Idempotency-Key` and any CSRF/XSRF header
   * are dropped even when listed.
   * @default []
   */
  headers?: string[]
  /**
   * Seconds a saved action may wait for its replay.
   * @default 3600
   */
  ttl?: number
  /**
   * Largest body saved, in bytes. A larger one is refused (an `error` event, a rejected `bw.fetch`);
   * a stream body is read only up to this many bytes, and for at most one second after the
   * login-required answer (a stream that has not ended by then is refused with NOT_REPLAYABLE).
   * @default 10485760 (10 MiB)
   */
  maxBodyBytes?: number
  /**
   * Automatic retries of a replay that failed. A transient failure (the network, 408, 425, 429, 502,
   * 503, 504, and a 409 that is the server's "request in progress" answer: problem type
   * `urn:backward:request-in-progress` or a `Retry-After` header) never drops the action: after this
   * many attempts backward stops retrying by itself and the action waits for the next `replay()` or
   * login (call `bw.replay()` on the window's `online` event, for example). Any other 5xx drops the action at this count, with a `failed` event. Any
   * other 409 is the application's answer: final, reported with `replayed` like a 4xx.
   * @default 5
   */
  maxAttempts?: number
  /**
   * Milliseconds to wait before the next automatic retry.
   * @default attempt => Math.min(1000 * 2 ** attempt, 60000)
   */
  retryDelay?: (attempt: number) => number
  /**
   * Runs before each replay. Return `false` to drop the action (a `failed` event, reason `vetoed`),
   * or headers to set on this replay (a fresh CSRF token). If it throws, this replay stops there
   * (`replay()` rejects) and the action stays queued.
   * @default undefined
   */
  beforeReplay?: (action: BackwardAction) => unknown
  /** @default globalThis.fetch */
  fetch?: (request: Request) => Promise<Response>
  /** @default Date.now */
  now?: () => number
  /**
   * Ids of saved actions (also their `Idempotency-Key`).
   * @default a UUID v4 from `crypto.getRandomValues`, which exists on plain http too (`crypto.randomUUID` does not)
   */
  randomId?: () => string
  /**
   * Same-origin endpoint that names the logged-in user: `GET` answers 200 `{"user":"<tag>"}` or
   * `{"user":null}` (`backwardRoutes` serves it). Asked before every replay: the login signal cookie
   * only says that a login happened, never who logged in. Actions are replayed only for the user it
   * names.
   * @default '/backward/user'
   */
  userUrl?: string
  /** @default IndexedDB through idb-keyval, database `backward`, store `actions`; memory when unavailable */
  storage?: BackwardStorage
  /** @default navigator.locks; without it, tabs take turns through a lease in `leases` */
  locks?: BackwardLocks
  /**
   * Where tabs without Web Locks keep their replay lease (key `backward-replay`: a random owner and an
   * expiry, re-read after writing). Without it (storage blocked) the server's `Idempotency-Key` is the
   * only guard against two tabs sending one action.
   * @default globalThis.localStorage
   */
  leases?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>
  /**
   * The page's location: the base of relative URLs, the origin that may be saved, the page to return
   * to; `assign` navigates. In tests, `Object.assign(new URL('https://app.test/'), { assign })`.
   * @default globalThis.location
   */
  location?: Pick<Location, 'href' | 'origin' | 'host' | 'protocol' | 'pathname' | 'search' | 'hash' | 'assign'>
  /**
   * How this page hears that another page of the site (a login popup, another tab) took the login
   * signal, and tells the others when it takes one. A page that stayed after a login-required answer
   * (a custom `onLoginRequired`) listens: on a login elsewhere it answers "mine" and replays, so the
   * page that made the actions gets their results; the page that took the signal then leaves the queue
   * to it. `null` turns this off.
   * @default a BroadcastChannel named `backward`; where that is missing, `storage` events of the
   * localStorage key `backward-message` (they reach other tabs, not this one); where neither, none
   */
  channel?: BackwardChannel | null
  /** Where the login signal cookie is read and deleted. @default globalThis.document */
  document?: { cookie: string }
}

/**
 * What `createBackward` returns.
 * @example
 * const bw: Backward = createBackward()
 */
export interface Backward {
  /** Drop-in `fetch` that saves the request when the answer is "login required". */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>
  /** Sends a form like the browser would (action, method, enctype, submitter) through `fetch`. */
  submit(form: HTMLFormElement, submitter?: HTMLElement | null): Promise<Response>
  /**
   * Sends every `form[data-backward]` under `root` through `submit`. Returns an unsubscribe, whose
   * `ready` settles once interception is on (the forms code loads on first use; until then forms
   * submit natively).
   */
  interceptForms(root?: Node): (() => void) & { ready: Promise<void> }
  /**
   * Sends the saved actions, oldest first, once `userUrl` confirms who is logged in, and only that
   * user's (and anonymous) actions. Joins a replay already running in this tab. With `onLoad`, sends
   * only when the login signal cookie is present (what page load does).
   */
  replay(onLoad?: boolean): Promise<ReplayResult>
  /**
   * Settles once the work done at creation is over: expired actions deleted, and the on-load replay
   * when the login signal cookie was there. Resolves with that replay's result (empty when none ran),
   * never rejects.
   */
  ready: Promise<ReplayResult>
  /** The saved actions that have not expired, oldest first. */
  pending(): Promise<BackwardAction[]>
  /**
   * Forgets every saved action and the remembered user. Call it on logout. A request of this tab still
   * out is then not saved when its 401 comes back (an `error` CLEARED, and its `bw.fetch` rejects).
   */
  clear(): Promise<void>
  /** Listens to an event. Returns an unsubscribe. */
  on<K extends keyof BackwardEvents>(name: K, listener: (event: BackwardEvents[K]) => void): () => void
}
