import { BackwardError } from '../shared/errors.ts'
import { IDEMPOTENCY_HEADER, LOGIN_SIGNAL_COOKIE, LOGIN_SIGNAL_COOKIE_SECURE, USER_TAG_PATTERN } from '../shared/protocol.ts'
import { announce } from './channel.ts'
import { USER_KEY } from './storage.ts'
import type { Backward, BackwardAction, BackwardChannel, BackwardEvents, BackwardStorage, CreateBackwardOptions, ReplayResult } from './types.ts'

// The idempotency layer's answer while the first run of a key is still going: REQUEST_IN_PROGRESS_TYPE
// in src/shared/protocol.ts, copied here because importing it puts a shared chunk in the page-load entry.
const IN_PROGRESS_TYPE = 'urn:backward:request-in-progress'
// The cross-tab lease used when Web Locks are missing: its localStorage key and how long it holds.
const LEASE_KEY = 'backward-replay'
const LEASE_MS = 10000
const noop = () => {}

/** What a replay needs from the instance that runs it. */
export interface ReplayContext {
  /** A storage call, with the instance's quota handling and memory fallback; `again` marks the one retry after a full disk. */
  store<T>(op: (storage: BackwardStorage) => Promise<T>, action?: BackwardAction, again?: 1): Promise<T>
  emit<K extends keyof BackwardEvents>(name: K, event: BackwardEvents[K]): void
  /** The instance's `on`. */
  on: Backward['on']
  pending(): Promise<BackwardAction[]>
  /** Deletes the expired actions in `storage`, with an `expired` event each. */
  purge(storage: BackwardStorage): Promise<void>
  /** The instance's `ttl`, in seconds: a record that expires later than `createdAt + ttl` was not written by backward. */
  ttl: number
  send(request: Request): Promise<Response>
  now(): number
  /** For `beforeReplay` and `isLoginRequired`. */
  options: CreateBackwardOptions
  maxAttempts: number
  /** Schedules the next replay of this tab after `attempt` failures. */
  retry(attempt: number): void
  /** bw.fetch promises waiting for an in-page login, by action id. */
  waiting: Map<string, Response>
  /** True without Web Locks: tabs then take turns through a localStorage lease. */
  lease: boolean
  /** The page's location (see `CreateBackwardOptions.location`). */
  location: NonNullable<CreateBackwardOptions['location']>
  /** Where the login signal cookie is read and deleted. */
  jar: { cookie: string } | undefined
  /** The instance's `replay()`. */
  replay: Backward['replay']
  /** The channel to other pages (channel.ts), once opened; null when there is none. */
  channel?: BackwardChannel | null
  /** True once this instance listens for logins in other pages. */
  listening?: boolean
}

/**
 * Reads and deletes the login signal cookie of this page's scheme: on https only the `__Host-` one,
 * which a sibling subdomain cannot plant (a plain one there is ignored). Returns its user tag; undefined
 * when absent or malformed; false when the name is there twice (a planted duplicate), which is reported.
 */
function takeSignal({ jar, location, emit }: ReplayContext): string | false | undefined {
  const secure = location.protocol == 'https:'
  const prefix = (secure ? LOGIN_SIGNAL_COOKIE_SECURE : LOGIN_SIGNAL_COOKIE) + '='
  let [value, twice] = jar?.cookie.split(/; */).filter((c) => c.startsWith(prefix)) ?? []
  if (!value) return
  // Single use, whatever it holds. A __Host- cookie is written (deleted too) only with Secure. A planted
  // duplicate with a Domain attribute cannot be deleted from here: confirmUser is the guard.
  jar!.cookie = prefix + '; Max-Age=0; Path=/' + (secure ? '; Secure' : '')
  if (twice) {
    const detail = 'login signal cookie twice: not replayed'
    emit('suspicious', { kind: 'signal-conflict', detail })
    return void emit('error', { error: new BackwardError('SIGNAL_CONFLICT', detail + '; call replay()') }), false
  }
  return USER_TAG_PATTERN.test((value = value.slice(prefix.length))) ? value : undefined
}

/**
 * Asks `userUrl` (this site only, never cached) who is logged in: the signal cookie only says that a
 * login happened. Returns the user's tag, or undefined after an `error` event (a network failure, an
 * answer other than 200 JSON with a tag, nobody logged in, a `userUrl` off this site).
 */
async function confirmUser({ options, location, send, emit }: ReplayContext): Promise<string | undefined> {
  let cause: unknown
  try {
    // The default lives here, not in createBackward: only a replay needs it.
    const url = new URL(options.userUrl ?? '/backward/user', location.href)
    // Another site gets no cookie of ours, and must not decide whose actions are sent.
    if (url.origin != location.origin) throw url
    const response = await send(new Request(url, { credentials: 'same-origin', cache: 'no-store' }))
    const user = response.status == 200 && ((await response.json()) as { user?: unknown })?.user
    if (typeof user == 'string' && USER_TAG_PATTERN.test(user)) return user
    cause = response
  } catch (error) {
    cause = error
  }
  emit('error', { error: new BackwardError('USER_UNCONFIRMED', 'userUrl (same-origin) named no user: not replayed', { cause }) })
}

/**
 * One replay run of the instance: takes the login signal (this module loads before it is taken, so a
 * failed load leaves the signal for the next page), tells the other pages, confirms the user with
 * `userUrl`, remembers that user, and sends the queue as that user. With `onLoad`, sends nothing unless
 * the signal was there (a page load replays only right after a login), and leaves the queue to a page
 * that claims it (a popup's opener, waiting for this login). Emits `drained` with what it did, even
 * when it throws (`beforeReplay` did).
 * @example
 * const { replayed } = await replayNow(ctx, true, () => false)
 */
export async function replayNow(ctx: ReplayContext, onLoad: boolean | undefined, stale: () => boolean): Promise<ReplayResult> {
  const result: ReplayResult = { replayed: [], failed: [], expired: [], remaining: [] }
  const offs = [
    ctx.on('replayed', (event) => result.replayed.push(event)),
    ctx.on('failed', (event) => result.failed.push(event)),
    ctx.on('expired', ({ action }) => result.expired.push(action)),
  ]
  try {
    const signal = takeSignal(ctx)
    // A login just happened: the pages waiting for it replay. A fresh page (a popup that landed back
    // on the site) leaves the queue to the one that claims it, which made those actions.
    if (signal && (await announce(ctx, onLoad))) return result
    // After a clock change or a long-open page, some may have expired since creation: reported now.
    await ctx.store(ctx.purge)
    // Without a signal, an empty queue needs no question to the server.
    if (signal === false || (onLoad && !signal) || !(signal || (await ctx.pending())[0])) return result
    const user = await confirmUser(ctx)
    // A clear() (a logout) meanwhile: remember nobody.
    if (!user || stale()) return result
    // The server's answer wins: a signal is readable and, on plain http, plantable.
    if (signal && signal != user) ctx.emit('suspicious', { kind: 'signal-mismatch', detail: 'signal and userUrl differ' })
    await ctx.store((s) => s.set(USER_KEY, user))
    await replayQueue(ctx, user, stale)
    return result
  } finally {
    offs.forEach((off) => off())
    result.remaining = await ctx.pending().catch(() => [])
    ctx.emit('drained', result)
  }
}

/**
 * The instance's answer to a `QuotaExceededError`: the first time, free space (drop expired actions,
 * with an `expired` event each) and run `op` once more; the second time, report QUOTA_EXCEEDED (an
 * `error` event with the action) and throw it.
 * @example
 * catch (cause) { if (cause.name == 'QuotaExceededError') return diskFull(ctx, op, action, cause, again) }
 */
export async function diskFull<T>(
  ctx: ReplayContext,
  op: (storage: BackwardStorage) => Promise<T>,
  action: BackwardAction | undefined,
  cause: unknown,
  again?: 1,
): Promise<T> {
  if (again) {
    const error = new BackwardError('QUOTA_EXCEEDED', 'storage full; action not saved', { cause })
    ctx.emit('error', { error, action })
    throw error
  }
  return ctx.store(async (s) => (await ctx.purge(s), op(s)), action, 1)
}

/** Whether a 409 is the idempotency layer's "first run still going" (transient), not an application conflict (final). */
async function inProgress(response: Response): Promise<boolean> {
  return response.headers.has('retry-after') || ((await response.clone().json().catch(noop)) as { type?: unknown } | undefined)?.type == IN_PROGRESS_TYPE
}

/**
 * Takes or renews this tab's replay lease (localStorage, for browsers without Web Locks): false when
 * another tab holds one that has not expired. localStorage is not atomic across tabs, so a new lease
 * is re-read a moment after writing it: of two tabs that wrote at once, the one whose write landed
 * last keeps it. Without localStorage (blocked, sandboxed) it says yes: the server's Idempotency-Key
 * is then the only guard against two tabs sending one action.
 * @example
 * if (!(await takeLease(localStorage, me, Date.now, true))) return
 */
export async function takeLease(leases: NonNullable<CreateBackwardOptions['leases']>, me: string, now: () => number, settle?: boolean): Promise<boolean> {
  try {
    const read = () => (leases.getItem(LEASE_KEY) ?? '').split(' ')
    const [owner, until] = read()
    if (owner && owner != me && +until! > now()) return false
    leases.setItem(LEASE_KEY, me + ' ' + (now() + LEASE_MS))
    if (settle) await new Promise((resolve) => setTimeout(resolve, 50))
    return read()[0] == me
  } catch {
    return true
  }
}



/** True for a record that backward cannot have written: a URL off this origin or not http(s), an expiry past `ttl`. */
function foreign(action: BackwardAction, { location, ttl }: ReplayContext): boolean {
  try {
    const url = new URL(action.url)
    return !(url.origin == location.origin && /^https?:$/.test(url.protocol) && action.expiresAt <= action.createdAt + ttl * 1000)
  } catch {
    return true
  }
}

/**
 * Rebuilds the request of a saved action, with `extra` headers (from `beforeReplay`) and the
 * action's id as `Idempotency-Key`.
 * @example
 * await fetch(toRequest(action))
 */
export function toRequest(action: BackwardAction, extra?: HeadersInit): Request {
  const headers = new Headers(action.headers)
  new Headers(extra).forEach((value, name) => headers.set(name, value))
  headers.set(IDEMPOTENCY_HEADER, action.id)
  let body = action.body as BodyInit | null
  if (Array.isArray(action.body)) {
    // fetch writes a fresh multipart boundary, which is why Content-Type was not saved.
    const data = new FormData()
    for (const [name, value] of action.body)
      data.append(name, typeof value == 'string' ? value : new File([value.bytes], value.name, value))
    body = data
  }
  return new Request(action.url, { method: action.method, headers, body, credentials: action.credentials, mode: action.mode })
}

/**
 * Sends the queue oldest first, as `user`. Each action leaves the queue only once its outcome is
 * known. Stops at the first action that must wait (logged out, network down, server busy), so that
 * later actions never overtake it. `stale()` turns true when the queue was cleared (a logout).
 * Without Web Locks, tabs take turns through a localStorage lease (see `takeLease`); a tab that finds
 * the lease taken tries again later.
 * @example
 * await replayQueue(ctx, 'AAAAAAAAAAAAAAAAAAAAAA', () => false)
 */
export async function replayQueue(ctx: ReplayContext, user: string | null, stale: () => boolean): Promise<void> {
  const { store, emit, send } = ctx
  let leases: CreateBackwardOptions['leases']
  try {
    // Reading localStorage throws where storage is blocked (a sandboxed frame, cookies off).
    leases = ctx.lease ? (ctx.options.leases ?? localStorage) : undefined
  } catch {}
  const me = '' + Math.random()
  if (leases && !(await takeLease(leases, me, ctx.now, true))) return ctx.retry(1)
  try {
    for (const action of await ctx.pending()) {
      // Lost the lease (it expired during a long send and another tab took it): that tab goes on.
      if (stale() || (leases && !(await takeLease(leases, me, ctx.now)))) return
      // Another tab (without Web Locks) may have settled it since we listed: never send what is gone.
      if (!(await store((s) => s.get(action.id)))) continue
      // Not written by backward (a script or an extension wrote IndexedDB): never sent anywhere, nor
      // shown to beforeReplay, which may add a CSRF token.
      const invalid = foreign(action, ctx)
      const expired = action.expiresAt <= ctx.now()
      // Never replay as someone else: an action made by a known user goes to that user only.
      const mismatch = action.user != null && action.user != user
      const extra = invalid || expired || mismatch ? false : await ctx.options.beforeReplay?.(action)
      let response: Response | undefined
      let error: unknown
      let retry
      if (extra !== false) {
        try {
          response = await send(toRequest(action, extra === true ? undefined : (extra as HeadersInit)))
        } catch (cause) {
          error = cause
        }
        // The waiting bw.fetch gets a clone, so that it and the event's listeners can each read a body.
        if (response && ctx.waiting.has(action.id)) ctx.waiting.set(action.id, response.clone())
        // Still logged out: keep everything, in order, for the next login.
        if (response?.status == 401 || (response && (await ctx.options.isLoginRequired?.(response)))) return
        // The network, a timeout, a first run of the same key still going (the idempotency layer's 409,
        // typed and with Retry-After), a rate limit, a gateway or a store outage (503): transient, so the
        // action is never dropped for it. It stays, in order; retries are scheduled up to maxAttempts,
        // then it waits for the next replay() or login. Any other 5xx is retried up to maxAttempts, then
        // dropped with `failed`. Any other 409 is the application's answer: final, like a 4xx.
        const status = response?.status ?? 0
        const transient = !status || /^(408|425|429|502|503|504)$/.test('' + status) || (status == 409 && (await inProgress(response!)))
        retry = transient || status >= 500
        if (retry && (++action.attempts < ctx.maxAttempts || transient)) {
          // Written back only while it is still queued: another tab may have settled it meanwhile (its
          // first run is the one we got 409 for), and a write now would bring it back. A full disk only
          // loses the attempt count; the action itself is already saved.
          if (await store((s) => s.get(action.id))) await store((s) => s.set(action.id, action), action).catch(noop)
          if (action.attempts < ctx.maxAttempts) ctx.retry(action.attempts)
          return
        }
      }
      // The outcome is known: only now does the action leave the queue.
      await store((s) => s.del(action.id))
      if (invalid) {
        emit('failed', { action, reason: 'invalid' })
        emit('suspicious', { kind: 'foreign-record', detail: 'record off this origin or past ttl', action })
      } else if (expired) emit('expired', { action })
      else if (response && !retry) emit('replayed', { action, response })
      else emit('failed', { action, reason: mismatch ? 'user-mismatch' : extra === false ? 'vetoed' : response ? 'server' : 'network', response, error })
    }
  } finally {
    try {
      if (leases?.getItem(LEASE_KEY)?.startsWith(me + ' ')) leases.removeItem(LEASE_KEY)
    } catch {}
  }
}
