import { BackwardError } from '../shared/errors.ts'
import { LOGIN_SIGNAL_COOKIE, PAGE_HEADER, PROBLEM_CONTENT_TYPE, parseLoginRequired } from '../shared/protocol.ts'
import type { ReplayContext } from './replay.ts'
import { CLEARED_KEY, USER_KEY, idbStorage, memoryStorage } from './storage.ts'
import type {
  Backward,
  BackwardAction,
  BackwardEvents,
  BackwardLocks,
  BackwardStorage,
  CreateBackwardOptions,
  LoginRequiredInfo,
  ReplayResult,
} from './types.ts'

const SAFE_METHODS = /^(GET|HEAD|OPTIONS|TRACE)$/
const noop = () => {}

/**
 * Makes a backward instance: a `fetch` that saves what a login wall turned away, and replays it once
 * after login. Nothing happens before you call it; on creation it deletes expired actions, and replays
 * only if the server's login signal cookie is present (and `userUrl` confirms the user).
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
    fetch: send = (request: Request) => fetch(request),
    now = Date.now,
    // Its default, randomUuid, loads with the capture code: only a capture needs an id.
    randomId,
    locks = globalThis.navigator?.locks as BackwardLocks | undefined,
    location = globalThis.location as NonNullable<CreateBackwardOptions['location']>,
    document: jar = globalThis.document,
  } = options
  // The sum is finite only when each one is (NaN already failed the comparisons).
  if (!(ttl > 0 && maxAttempts > 0 && maxBodyBytes >= 0 && ttl + maxAttempts + maxBodyBytes < Infinity))
    throw new BackwardError('CONFIG', 'ttl, maxAttempts > 0; maxBodyBytes >= 0')
  if (isLoginRequired && !loginUrl && !options.onLoginRequired) throw new BackwardError('CONFIG', 'isLoginRequired needs loginUrl')
  // An EventTarget isolates listeners: one that throws is reported and the others still run.
  const events = new EventTarget()
  const inflight = new Set<Promise<unknown>>()
  // bw.fetch promises waiting for an in-page login, by action id: the 401, then the replay's answer.
  const waiting = new Map<string, Response>()
  let storage: BackwardStorage = options.storage ?? idbStorage()
  // The queue is in memory exactly when the storage it started with was given up on.
  const given = storage
  let last = 0
  let epoch = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let handing: Promise<void> | undefined
  let running: Promise<ReplayResult> | undefined

  const emit = <K extends keyof BackwardEvents>(name: K, event: BackwardEvents[K]) =>
    void events.dispatchEvent(Object.assign(new Event(name), event))

  /** Reports a refusal to save (an `error` event) and returns the error, for the caller to throw. */
  const refuse = (error: BackwardError, action?: BackwardAction) => (emit('error', { error, action }), error)

  /**
   * Runs a storage call. A full disk frees space and tries once more, then is reported (its code loads
   * on demand: a full disk is rare); a broken IndexedDB (private mode) moves to memory.
   */
  async function store<T>(op: (storage: BackwardStorage) => Promise<T>, action?: BackwardAction, again?: 1): Promise<T> {
    const used = storage
    try {
      return await op(used)
    } catch (cause) {
      if ((cause as Error)?.name == 'QuotaExceededError') return (await import('./replay.ts')).diskFull(context, op, action, cause, again)
      // A concurrent call already moved the queue to memory: run there too.
      if (used != storage) return op(storage)
      if (used != given) throw cause
      storage = memoryStorage()
      emit('error', { error: new BackwardError('STORAGE_UNAVAILABLE', 'no IndexedDB; queue in memory', { cause }) })
      return op(storage)
    }
  }

  async function pending(): Promise<BackwardAction[]> {
    return ((await store((s) => s.values())) as BackwardAction[])
      // Not `expiresAt > now()`: a record with no valid expiry is listed, for the replay to drop it as invalid.
      .filter((value) => value?.version === 1 && !(value.expiresAt <= now()))
      .sort((a, b) => a.createdAt - b.createdAt)
  }

  /** Deletes expired actions, with an `expired` event each: their bodies (a card number, say) must not linger. */
  async function purge(s: BackwardStorage): Promise<void> {
    for (const action of (await s.values()) as BackwardAction[])
      if (action?.version === 1 && action.expiresAt <= now()) await s.del(action.id), emit('expired', { action })
  }

  async function bwFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input instanceof Request ? input : new URL(input, location.href), init)
    // A cross-site request is never saved: its replay would carry this user's cookies elsewhere. Nor is
    // one sent without cookies (`credentials: 'omit'`): a login cannot change its answer, and its 401
    // at replay would hold up the whole queue.
    if (!(new URL(request.url).origin == location.origin && request.credentials != 'omit' && shouldQueue(request))) return send(request)
    // The login wall takes `next` from this page, not from the Referer (which can carry another page's
    // query). Same-origin only, and never saved (capture.ts denies it).
    request.headers.set(PAGE_HEADER, location.pathname + location.search)
    // Order, user, generation and a copy are fixed before sending: a body can be read only once, and
    // what is saved belongs to the moment the request was made.
    // Unique in this instance, so it orders requests made in the same millisecond too.
    const createdAt = (last = Math.max(now(), last + 1))
    // A logout (clear(), here or in another tab, which leaves its time under CLEARED_KEY) while the
    // request is out must not hand it to whoever logs in next: then it is not saved.
    const started = epoch
    const startedAt = now()
    const body = init?.body
    // FormData entries are read now (strings and Files cannot change).
    const form = body instanceof FormData ? [...body] : null
    // Cloning tees the body stream, which makes the browser upload it as a stream (slow): only a
    // Request or a stream body, which can be read once, is cloned. A mutable value (bytes,
    // URLSearchParams) is snapshot in a second Request built now: the caller may change or transfer
    // it once this call returns. Strings and Blobs cannot change: rebuilt from `init` on a 401.
    const copy =
      input instanceof Request || body instanceof ReadableStream
        ? request.clone()
        : body && typeof body == 'object' && !(body instanceof Blob || form) && new Request(request.url, init)
    const step = (async () => {
      const response = await send(request)
      const problem =
        response.status == 401 && response.headers.get('content-type')?.includes(PROBLEM_CONTENT_TYPE)
          ? parseLoginRequired(await response.clone().json().catch(noop))
          : null
      if (!(problem || (isLoginRequired && (await isLoginRequired(response))))) return { response }
      const source = copy || new Request(request.url, init)
      // A chunk that fails to load (an old deploy's file gone) is reported, like any refusal to save.
      const { keptHeaders, captureBody, randomUuid } = await import('./capture.ts').catch((cause) => {
        throw refuse(new BackwardError('LOAD_FAILED', 'capture code did not load: not saved', { cause }))
      })
      const action: BackwardAction = {
        version: 1,
        id: (randomId ?? randomUuid)(),
        method: source.method,
        url: source.url,
        headers: keptHeaders(source.headers, options.headers, !!form),
        body: await captureBody(source, form, maxBodyBytes).catch((error: BackwardError) => {
          throw refuse(error)
        }),
        credentials: source.credentials,
        mode: source.mode,
        createdAt,
        expiresAt: createdAt + ttl * 1000,
        returnTo: location.href,
        user: ((await store((s) => s.get(USER_KEY))) as string | undefined) ?? null,
        attempts: 0,
      }
      await store((s) => s.set(action.id, action), action)
      // Checked after the write, against a stamp clear() writes before it deletes anything: a logout in
      // any tab either deletes this record or is seen here, never neither. In the same millisecond the
      // order is unknown, so the logout wins. A stamp later than now is a clock that went back.
      const cleared = (await store((s) => s.get(CLEARED_KEY))) as number
      if (started != epoch || (cleared >= startedAt && cleared <= now())) {
        await store((s) => s.del(action.id))
        throw refuse(new BackwardError('CLEARED', 'clear() ran while sending: not saved, send it after login'), action)
      }
      emit('queued', { action })
      // hand-off.ts adds `loggedIn`.
      return { response, info: { loginUrl: problem?.loginUrl ?? loginUrl ?? '', action, response, persisted: storage == given } as LoginRequiredInfo }
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
      await (await import('./hand-off.ts')).handOff(context, info)
    })()
      // The action is saved whatever happens here (even a hand-off module that fails to load).
      .catch(noop)
      .finally(() => (handing = undefined))
    await handing
    const response = waiting.get(id)!
    waiting.delete(id)
    return response
  }

  function on<K extends keyof BackwardEvents>(name: K, listener: (event: BackwardEvents[K]) => void): () => void {
    events.addEventListener(name, listener as never)
    return () => events.removeEventListener(name, listener as never)
  }

  const context: ReplayContext = {
    store,
    emit,
    on,
    pending,
    purge,
    ttl,
    send,
    now,
    options,
    maxAttempts,
    waiting,
    lease: !locks,
    location,
    jar,
    replay,
    retry(attempt) {
      clearTimeout(timer)
      timer = setTimeout(() => replay().catch(noop), retryDelay(attempt))
    },
  }

  async function run(onLoad?: boolean): Promise<ReplayResult> {
    const started = epoch
    await purged
    // Loaded when a replay is due (once per login): other page loads skip these bytes.
    return (await import('./replay.ts')).replayNow(context, onLoad, () => started != epoch)
  }

  function replay(onLoad?: boolean): Promise<ReplayResult> {
    // One replay per tab (running), one tab at a time (Web Locks, else the lease in replay.ts).
    return (running ??= (locks ? locks.request('backward-replay', () => run(onLoad)) : run(onLoad)).finally(
      () => (running = undefined),
    ))
  }

  // Forms are opt-in, so their code loads when a page first uses them. Until then (or if it cannot
  // load) a form submits natively, which the server handles without JavaScript.
  const forms = () => import('./forms.ts')
  function submit(form: HTMLFormElement, submitter?: HTMLElement | null): Promise<Response> {
    // Read the form now: the page may reset it as soon as the submit event is over.
    const data = new FormData(form, submitter)
    return forms().then((m) => bwFetch(...m.formRequest(form, submitter, data)))
  }

  // On every creation, after this call returns (its listeners may then be in place). Replays wait for it.
  const purged = Promise.resolve()
    .then(() => store(purge))
    .catch(noop)
  // Matches `__Host-backward_login` too: replay.ts reads only the name of this page's scheme. `ready`
  // never rejects: a failed run (beforeReplay threw) reported its result with `drained`.
  const none = (): ReplayResult => ({ replayed: [], failed: [], expired: [], remaining: [] })
  const ready = jar?.cookie.includes(LOGIN_SIGNAL_COOKIE + '=') ? replay(true).catch(none) : purged.then(none)

  return {
    fetch: bwFetch,
    submit,
    interceptForms(root = globalThis.document) {
      let stop = noop
      let live = true
      const ready = forms().then((m) => void (live && (stop = m.interceptForms(root, submit))))
      // Not loading leaves forms to submit natively; `ready` still rejects for whoever awaits it.
      ready.catch(noop)
      return Object.assign(() => void ((live = false), stop()), { ready })
    },
    replay,
    ready,
    pending,
    async clear() {
      const at = now()
      epoch++
      clearTimeout(timer)
      // The stamp first, and it stays: see the check after a capture's write.
      await store((s) => s.set(CLEARED_KEY, at))
      for (const action of await pending()) await store((s) => s.del(action.id))
      await store((s) => s.del(USER_KEY))
    },
    on,
  }
}
