import { BackwardError } from '../shared/errors.ts'
import {
  DEFAULT_REDIRECT_FIELD,
  LOGIN_SIGNAL_COOKIE,
  PROBLEM_CONTENT_TYPE,
  USER_TAG_PATTERN,
  parseLoginRequired,
} from '../shared/protocol.ts'
import { DEFAULT_HEADERS, captureBody, keptHeaders, toRequest } from './capture.ts'
import { formRequest, interceptForms } from './forms.ts'
import { idbStorage, memoryStorage } from './storage.ts'
import type {
  Backward,
  BackwardAction,
  BackwardEvents,
  BackwardLocks,
  BackwardStorage,
  CreateBackwardOptions,
  LoginRequiredInfo,
} from './types.ts'

// Meta key for the remembered user tag. Action keys are UUIDs, so they never collide with it.
const USER_KEY = 'user'
const SAFE_METHODS = /^(GET|HEAD|OPTIONS|TRACE)$/
const noop = () => {}

/**
 * Makes a backward instance: a `fetch` that saves what a login wall turned away, and replays it once
 * after login. Nothing happens before you call it; on creation it replays only if the server's login
 * signal cookie is present.
 * @example
 * const bw = createBackward({ loginUrl: '/login' })
 * const res = await bw.fetch('/api/follow/42', { method: 'POST' })
 * bw.on('replayed', ({ action, response }) => toast(`${action.method} ${action.url}: ${response.status}`))
 */
export function createBackward(options: CreateBackwardOptions = {}): Backward {
  const {
    loginUrl,
    isLoginRequired,
    shouldQueue = (request: Request) => !SAFE_METHODS.test(request.method),
    ttl = 3600,
    maxBodyBytes = 10485760,
    maxAttempts = 5,
    retryDelay = (attempt: number) => Math.min(1000 * 2 ** attempt, 60000),
    beforeReplay,
    fetch: send = (request: Request) => fetch(request),
    now = Date.now,
    randomId = () => crypto.randomUUID(),
    locks = globalThis.navigator?.locks as BackwardLocks | undefined,
    location = globalThis.location as NonNullable<CreateBackwardOptions['location']>,
    document: jar = globalThis.document,
  } = options
  // The sum is finite only when each one is (NaN already failed the comparisons).
  if (!(ttl > 0 && maxAttempts > 0 && maxBodyBytes >= 0 && ttl + maxAttempts + maxBodyBytes < Infinity))
    throw new BackwardError('CONFIG', 'ttl and maxAttempts must be > 0, maxBodyBytes >= 0')
  if (isLoginRequired && !loginUrl && !options.onLoginRequired) throw new BackwardError('CONFIG', 'isLoginRequired needs loginUrl')
  const allowedHeaders = new Set([...DEFAULT_HEADERS, ...(options.headers ?? [])].map((name) => name.toLowerCase()))
  const allowedOrigins = new Set(options.allowedOrigins).add(location.origin)
  const listeners = new Map<string, Set<(event: never) => void>>()
  const inflight = new Set<Promise<unknown>>()
  // bw.fetch promises waiting for an in-page login, by action id: the 401, then the replay's answer.
  const waiting = new Map<string, Response>()
  let storage: BackwardStorage = options.storage ?? idbStorage()
  let inMemory = false
  let seq = 0
  let epoch = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let handing: Promise<void> | undefined
  let running: Promise<void> | undefined

  const emit = <K extends keyof BackwardEvents>(name: K, event: BackwardEvents[K]) =>
    listeners.get(name)?.forEach((listener) => {
      try {
        ;(listener as (event: BackwardEvents[K]) => void)(event)
      } catch (error) {
        // A broken listener must not break saving or replaying; report it like the browser would.
        setTimeout(() => {
          throw error
        })
      }
    })
  const page = () => location.pathname + location.search + location.hash

  const onLoginRequired =
    options.onLoginRequired ??
    (async ({ loginUrl: target, action }: LoginRequiredInfo) => {
      // Loaded on the first hand-off only: the guard is as big as the rest of the SDK, and most page
      // loads never meet a login wall.
      const { isSafeRedirect } = await import('../shared/safe-redirect.ts')
      // The URL comes from a server answer: never follow it off this site.
      if (isSafeRedirect(target, { allowedHosts: location.host, requireHttps: location.protocol == 'https:' })) location.assign(target)
      else emit('error', { error: new BackwardError('UNSAFE_REDIRECT', 'login URL is off this site; fix loginUrl'), action })
    })

  /** Runs a storage call. A full disk is reported; a broken IndexedDB (private mode) moves to memory. */
  async function store<T>(op: (storage: BackwardStorage) => Promise<T>, action?: BackwardAction): Promise<T> {
    try {
      return await op(storage)
    } catch (cause) {
      if ((cause as Error)?.name == 'QuotaExceededError') {
        const error = new BackwardError('QUOTA_EXCEEDED', 'storage full, action not saved; free space', { cause })
        emit('error', { error, action })
        throw error
      }
      if (inMemory) throw cause
      inMemory = true
      storage = memoryStorage()
      emit('error', { error: new BackwardError('STORAGE_UNAVAILABLE', 'no IndexedDB; queue kept in memory', { cause }) })
      return op(storage)
    }
  }
  const remembered = async () => ((await store((s) => s.get(USER_KEY))) as string | undefined) ?? null

  async function pending(): Promise<BackwardAction[]> {
    return ((await store((s) => s.values())) as BackwardAction[])
      .filter((value) => value?.version === 1)
      .sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq)
  }

  async function bwFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input instanceof Request ? input : new URL(input, location.href), init)
    // A cross-site request is never saved: its replay would carry this user's cookies elsewhere.
    if (!(allowedOrigins.has(new URL(request.url).origin) && shouldQueue(request))) return send(request)
    // Order and a copy are fixed before sending: a body can be read only once.
    const createdAt = now()
    const order = seq++
    const form = init?.body instanceof FormData ? [...init.body] : null
    const copy = request.clone()
    const step = (async () => {
      const response = await send(request)
      const problem =
        response.status == 401 && response.headers.get('content-type')?.includes(PROBLEM_CONTENT_TYPE)
          ? parseLoginRequired(await response.clone().json().catch(noop))
          : null
      if (!(problem || (isLoginRequired && (await isLoginRequired(response))))) return { response }
      const target = new URL(problem?.loginUrl ?? loginUrl ?? '', location.href)
      if (!target.searchParams.has(DEFAULT_REDIRECT_FIELD)) target.searchParams.set(DEFAULT_REDIRECT_FIELD, page())
      const action: BackwardAction = {
        version: 1,
        id: randomId(),
        seq: order,
        method: copy.method,
        url: copy.url,
        headers: keptHeaders(copy.headers, allowedHeaders, !!form),
        body: await captureBody(copy, form, maxBodyBytes).catch((error: BackwardError) => {
          emit('error', { error })
          throw error
        }),
        credentials: copy.credentials,
        mode: copy.mode,
        createdAt,
        expiresAt: createdAt + ttl * 1000,
        returnTo: page(),
        user: await remembered(),
        attempts: 0,
      }
      await store((s) => s.set(action.id, action), action)
      emit('queued', { action })
      // Same-site login pages are handed over as a path: what is checked is what is followed.
      const url = target.origin == location.origin ? target.pathname + target.search + target.hash : target.href
      return { response, info: { loginUrl: url, action, response } }
    })()
    inflight.add(step)
    const result = await step.finally(() => inflight.delete(step))
    return result.info ? handOff(result.info) : result.response
  }

  /** One hand-off to login for every 401 that arrives together; settles with the 401 or the replay's answer. */
  async function handOff(info: LoginRequiredInfo): Promise<Response> {
    const id = info.action.id
    waiting.set(id, info.response)
    handing ??= (async () => {
      // Let the page's other requests come back and be saved first: navigating now would abort them.
      while (inflight.size) await Promise.allSettled(inflight)
      emit('login-required', info)
      if ((await Promise.resolve(info).then(onLoginRequired).catch(noop)) === true) await replay().catch(noop)
    })().finally(() => (handing = undefined))
    await handing
    const response = waiting.get(id)!
    waiting.delete(id)
    return response
  }

  /** Reads and deletes the login signal cookie; returns its user tag. */
  function takeSignal(): string | undefined {
    const prefix = LOGIN_SIGNAL_COOKIE + '='
    const value = jar?.cookie.split(/; */).find((c) => c.startsWith(prefix))?.slice(prefix.length)
    if (value == null) return
    // Single use, whatever it holds.
    jar!.cookie = prefix + '; Max-Age=0; Path=/'
    return USER_TAG_PATTERN.test(value) ? value : undefined
  }

  async function run(): Promise<void> {
    const started = epoch
    const signal = takeSignal()
    if (signal) await store((s) => s.set(USER_KEY, signal))
    const user = signal ?? (await remembered())
    for (const action of await pending()) {
      if (started != epoch) return
      // Another tab (without Web Locks) may have settled it since we listed: never send what is gone.
      if (!(await store((s) => s.get(action.id)))) continue
      const expired = action.expiresAt <= now()
      // Never replay as someone else: an action made by a known user goes to that user only.
      const mismatch = action.user != null && action.user != user
      const extra = expired || mismatch ? false : await beforeReplay?.(action)
      let response: Response | undefined
      let error: unknown
      let retry
      if (extra !== false) {
        try {
          response = await send(toRequest(action, extra === true ? undefined : (extra as HeadersInit)))
        } catch (cause) {
          error = cause
        }
        if (response && waiting.has(action.id)) waiting.set(action.id, response)
        // Still logged out: keep everything, in order, for the next login.
        if (response?.status == 401 || (response && (await isLoginRequired?.(response)))) return
        // The network, a first run of the same key still going (409), a rate limit or a server
        // error: the action stays, in order, and is tried again later up to maxAttempts.
        const status = response?.status ?? 0
        retry = !(status && status < 500 && status != 409 && status != 429)
        if (retry && ++action.attempts < maxAttempts) {
          await store((s) => s.set(action.id, action), action)
          clearTimeout(timer)
          timer = setTimeout(() => replay().catch(noop), retryDelay(action.attempts))
          return
        }
      }
      // The outcome is known: only now does the action leave the queue.
      await store((s) => s.del(action.id))
      if (expired) emit('expired', { action })
      else if (response && !retry) emit('replayed', { action, response })
      else emit('failed', { action, reason: mismatch ? 'user-mismatch' : extra === false ? 'vetoed' : response ? 'server' : 'network', response, error })
    }
  }

  function replay(): Promise<void> {
    // One replay per tab (running), one tab at a time (Web Locks).
    return (running ??= (locks ? locks.request('backward-replay', run) : run()).finally(() => (running = undefined)))
  }

  const submit = (form: HTMLFormElement, submitter?: HTMLElement | null) => bwFetch(...formRequest(form, submitter))

  if (jar?.cookie.includes(LOGIN_SIGNAL_COOKIE + '=')) replay().catch(noop)

  return {
    fetch: bwFetch,
    submit,
    interceptForms: (root = globalThis.document) => interceptForms(root, submit),
    replay,
    pending,
    async clear() {
      epoch++
      clearTimeout(timer)
      await store((s) => s.clear())
    },
    on(name, listener) {
      const set = listeners.get(name) ?? new Set()
      listeners.set(name, set)
      set.add(listener as (event: never) => void)
      return () => void set.delete(listener as (event: never) => void)
    },
  }
}
