import type { Context, HonoRequest, MiddlewareHandler } from 'hono'
import { BackwardError, isBackwardError } from '../shared/errors.ts'
import { IDEMPOTENCY_HEADER, LOGIN_REQUIRED_TYPE, PROBLEM_CONTENT_TYPE, REQUEST_IN_PROGRESS_TYPE } from '../shared/protocol.ts'
import { getUserId } from './auth.ts'
import { isLoginWallAnswer } from './login-required.ts'
import { fromBase64Url, toBase64Url } from './base64url.ts'
import { concatBytes } from './bytes.ts'
import { hashKey } from './ids.ts'
import { nodeCrypto } from './node-crypto.ts'
import { logStoreError, problem, storeUnavailable } from './problem.ts'
import type { SessionData, SessionStore } from './store.ts'
import { reportSuspicious } from './suspicious.ts'

/** Options for {@link idempotency}. */
export interface IdempotencyOptions {
  /**
   * Where records live. Any `SessionStore` works: memory, file, Redis, PostgreSQL. Records are written
   * with `{ evict: false }`: a store that makes room by evicting (memoryStore) never drops one before
   * its `ttl`, and refuses new keys when full instead (503). A Redis server must run with
   * `maxmemory-policy noeviction`: every record has a TTL, so the `volatile-*` policies (and the
   * `allkeys-*` ones) may evict them under memory pressure, and an evicted key runs its request again.
   */
  store: SessionStore
  /**
   * How long a key is held, in seconds: a finished response is kept this long for repeats, and a run
   * whose answer could not be written (or whose process died) keeps its key taken (409) this long.
   * @default 86400
   */
  ttl?: number
  /**
   * @deprecated Still validated, no longer used: a running key is held for `ttl`, because a lock that
   * expired while its handler ran (or after its answer failed to save) let a repeat run it twice.
   * @default 60
   */
  lockTtl?: number
  /** Largest response body kept for repeats, in bytes; a larger one (or a `text/event-stream`) is handed on and not kept. @default 1048576 */
  maxBodyBytes?: number
  /**
   * Who owns a key, for apps that authenticate otherwise (bearer tokens): a non-empty string, or null
   * for "nobody" (the request runs with no idempotency). Replaces the default: the logged-in user's id,
   * else the session's key, else nobody.
   * @default undefined
   */
  scope?: (c: Context) => string | null | Promise<string | null>
  /**
   * Most live keys one owner (a user, a session, a `scope`) may hold within `ttl`, counted by this
   * `idempotency()` in this process (N processes allow up to N times as many). A new key over it gets `429` with `Retry-After` (when the owner's oldest key expires); its
   * repeats and every other owner are unaffected. On a store that states its capacity (memoryStore)
   * the share is also at most a tenth of its entries and of its bytes, so one owner can never fill it.
   * 429, not 503: the limit is this client's own excess (RFC 6585), not the server's state.
   * @default 1000
   */
  maxKeysPerScope?: number
  /** Called with store failures (the request gets a 503) and with answers that could not be recorded. @default console.error */
  onStoreError?: (error: unknown) => void
}

/** Response headers that are replayed. Never Set-Cookie: a repeat must not hand out the first session. */
const KEPT_HEADERS = ['content-type', 'content-language', 'location', 'etag', 'last-modified']
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/
/**
 * Statuses the browser SDK treats as transient (it sends the action again). A handler answering one
 * says "not done, try again", so its key is freed; caching it would answer every retry with it.
 */
const RETRYABLE = new Set([408, 409, 425, 429, 502, 503, 504])
/** Request bytes that go into the fingerprint; a longer body adds only its Content-Length after them. */
const FINGERPRINT_BYTES = 1_048_576
/** Pauses between attempts to save an answer: a store blip must not leave the key running. */
const SAVE_RETRY_MS = [50, 200]
const NULL_BODY = new Set([204, 205, 304])
const MULTIPART = /^\s*multipart\/form-data\s*(;|$)/i
const URLENCODED = /^\s*application\/x-www-form-urlencoded\s*(;|$)/i
const encoder = new TextEncoder()
/** The fingerprint of a form too large to parse: its type, without the boundary. */
const LARGE_FORM = encoder.encode(`multipart/form-data >${FINGERPRINT_BYTES}`)
const RECORD_VERSION = 1
/** The part of a bounded store (its `capacity`) that one owner may hold. */
const SCOPE_SHARE = 0.1
/** Retry-After of the 503 for a full store: records leave only when they expire, so not a tight loop. */
const STORE_FULL_RETRY_S = 60
/** Bytes of a problem+json 401 read to see whether it is the login wall's. */
const WALL_PEEK_BYTES = 4096

interface Running {
  v: number
  state: 'running'
  fp: string
}
interface Done {
  v: number
  state: 'done'
  fp: string
  status: number
  headers: [string, string][]
  /** base64url bytes, or null when the body was not kept (an event stream, too large, failed or cancelled). */
  body: string | null
}

/**
 * Runs each request that carries an `Idempotency-Key` at most once. The rules, after Stripe and
 * draft-ietf-httpapi-idempotency-key-header:
 * - A key belongs to the logged-in user, else to the session (its key), else to `scope(c)` when given.
 *   A request with no owner runs with no idempotency: nothing is stored, nothing is shared. Without
 *   `session()` mounted before it (and no `scope`), the request fails with a `CONFIG` error.
 * - A repeat gets the first response (status, kept headers, body) with `Idempotent-Replayed: true`.
 *   A first response that was a `text/event-stream`, longer than `maxBodyBytes`, failed part-way or
 *   was cancelled by its client is not kept: a repeat gets its status with a problem body
 *   `urn:backward:response-not-kept`.
 * - Every response body is handed on as it arrives (a stream starts at once). Its record is written
 *   when the body ends, and the body's end waits for that write; until then the key is running.
 * - A repeat while the first still runs gets `409` `urn:backward:request-in-progress`, `Retry-After: 1`.
 * - The same key with another method, path, query or body gets `422` `urn:backward:idempotency-key-reused`.
 *   A `multipart/form-data` body counts as its entries (names, values, files' names, types and bytes),
 *   not its bytes: the boundary is new on every send. Mount it before any middleware that reads the
 *   body off `c.req.raw` (reading through `c.req.json()` and kin is fine), else a `CONFIG` error.
 * - A handler answering 408, 409, 425, 429, 502, 503 or 504 frees the key (it says it did nothing; the
 *   SDK retries those). Every other answer is kept for `ttl`, a 500 from a thrown error included: it
 *   may have come after a side effect.
 * - The login wall's `401` (`urn:backward:login-required`) frees the key and stores nothing: nothing
 *   ran, and the SDK's replay after login must run. Mount it before or after `loginRequired()`.
 * - A key is the owner's and the key's, nothing else: the method, path, query and body go into the
 *   fingerprint, so another request under a used key is a 422 (reported as `reused-idempotency-key`),
 *   never a second run.
 * - Records are never evicted to make room (`{ evict: false }`). A full store refuses new keys with
 *   `503` `urn:backward:idempotency-store-full` and `Retry-After` (reported as `store-full`); old keys
 *   keep answering. One owner holds at most `maxKeysPerScope` live keys (429 beyond).
 * - At most once wins over availability: the running record lives for `ttl`, so a run whose answer
 *   could not be saved (store down) or whose process died answers repeats with 409, never runs again.
 *   An answer too large for a full store is kept as its status only (`response-not-kept`).
 * @example
 * import { fileStore } from 'backward/server/file'
 * app.use(session({ store: fileStore({ dir: '.sessions' }) }))
 * app.use('/api/*', idempotency({ store: fileStore({ dir: '.idempotency' }) }))
 */
export function idempotency(options: IdempotencyOptions): MiddlewareHandler {
  const store = options?.store
  if (store === undefined || typeof store.create !== 'function') throw new BackwardError('CONFIG', '[backward] idempotency(): pass { store }, any SessionStore.')
  const ttlMs = (options.ttl ?? 86_400) * 1000
  const lockMs = (options.lockTtl ?? 60) * 1000
  const maxBodyBytes = options.maxBodyBytes ?? 1_048_576
  const scope = options.scope
  const maxKeysPerScope = options.maxKeysPerScope ?? 1000
  const onStoreError = options.onStoreError ?? logStoreError('idempotency()')
  for (const [name, value] of [['ttl', ttlMs], ['lockTtl', lockMs], ['maxBodyBytes', maxBodyBytes]] as const) {
    if (!Number.isFinite(value) || value <= 0) throw new BackwardError('CONFIG', `[backward] idempotency(): ${name} must be a positive number.`)
  }
  if (!Number.isInteger(maxKeysPerScope) || maxKeysPerScope < 1) throw new BackwardError('CONFIG', '[backward] idempotency(): maxKeysPerScope must be a positive integer.')
  const capacity = store.capacity
  const share = {
    keys: Math.min(maxKeysPerScope, capacity === undefined ? Infinity : Math.max(1, Math.floor(capacity.entries * SCOPE_SHARE))),
    bytes: capacity === undefined ? Infinity : capacity.bytes * SCOPE_SHARE,
  }
  const ledger = keyLedger()
  if (scope !== undefined && typeof scope !== 'function') throw new BackwardError('CONFIG', '[backward] idempotency(): scope must be a function of the context that returns a string or null.')

  /** Saves the answer. Retried briefly; a record that vanished is recreated so a repeat never runs again. */
  async function remember(storeKey: string, done: Done): Promise<void> {
    let data = done as unknown as SessionData
    for (let attempt = 0; ; attempt++) {
      try {
        const expiresAt = Date.now() + ttlMs
        if ((await store.update(storeKey, data, expiresAt, KEEP)) || (await store.create(storeKey, data, expiresAt, KEEP))) {
          ledger.hold(storeKey, expiresAt, recordSize(data))
          return
        }
        onStoreError(new BackwardError('STORE_CONFLICT', '[backward] idempotency(): another run took this key while the handler ran; its answer was not recorded.'))
        return
      } catch (error) {
        if (isBackwardError(error, 'STORE_FULL') && data.body !== null) {
          // No room for the body: keep the status, so repeats get "not kept" instead of 409 for a day.
          data = { ...data, body: null }
          attempt--
          continue
        }
        if (attempt >= SAVE_RETRY_MS.length) return onStoreError(error)
        await new Promise((resolve) => setTimeout(resolve, SAVE_RETRY_MS[attempt]))
      }
    }
  }

  return async function idempotency(c, next) {
    const key = c.req.header(IDEMPOTENCY_HEADER)
    if (key === undefined) return next()
    if (!KEY_PATTERN.test(key)) {
      return problem(400, 'urn:backward:bad-idempotency-key', 'Invalid Idempotency-Key', { detail: 'Use 1 to 255 visible ASCII characters, such as a UUID.' })
    }
    const owner = await ownerOf(c, scope)
    if (owner === null) return next()
    const url = new URL(c.req.url)
    const fp = await fingerprint(c.req, url)
    // The owner and the key only: the method, path, query and body are the fingerprint's, so another
    // request under a used key finds its record and gets 422 (a path in here let it run again).
    const storeKey = await hashKey(JSON.stringify([owner, key]), 'idempotency')
    try {
      // Every anonymous session shares one account: a new session is free to make, so a share per
      // session would let one client fill the store for everyone.
      const account = owner.startsWith(ANONYMOUS_PREFIX) ? ANONYMOUS_ACCOUNT : owner
      const held = ledger.of(account)
      const known = ledger.has(storeKey)
      if (!known && (held.count >= share.keys || held.bytes >= share.bytes)) {
        // Over its share. A repeat of a key held elsewhere (another process, before a restart) still
        // gets its answer; a new key waits until this owner's oldest one expires.
        const record = await store.load(storeKey)
        if (record !== null) return answerRepeat(c, record, fp)
        reportSuspicious(c, 'store-full', `one owner holds ${held.count} live idempotency keys (${held.bytes} bytes), its share (${share.keys} keys); a new key was refused with 429`)
        return problem(429, 'urn:backward:too-many-idempotency-keys', 'Too many Idempotency-Keys', { detail: 'This client holds too many unexpired Idempotency-Keys. Retry after the time given.' }, { 'Retry-After': String(held.retryAfter) })
      }
      // The lock lives as long as an answer would: if the answer is never written, repeats get 409
      // until then instead of a second run (at most once beats availability).
      const expiresAt = Date.now() + ttlMs
      const running = { v: RECORD_VERSION, state: 'running', fp } satisfies Running as unknown as SessionData
      // Counted before the write is awaited: 2,000 new keys sent at once must not all pass the check.
      if (!known) ledger.add(storeKey, account, expiresAt, recordSize(running))
      const created = await store.create(storeKey, running, expiresAt, KEEP).catch((error: unknown) => {
        if (!known) ledger.drop(storeKey)
        throw error
      })
      if (!created) {
        if (!known) ledger.drop(storeKey) // taken elsewhere (another process): not this one's to count
        return answerRepeat(c, await store.load(storeKey), fp)
      }
    } catch (error) {
      if (isBackwardError(error, 'STORE_FULL')) {
        // Full of records that must live out their ttl: refuse the new key (nothing ran), keep the old.
        reportSuspicious(c, 'store-full', 'the idempotency store is full of unexpired records; a new key was refused with 503')
        c.res = problem(503, 'urn:backward:idempotency-store-full', 'Idempotency store full', { detail: 'The server cannot take new Idempotency-Keys right now. Retry later.' }, { 'Retry-After': String(STORE_FULL_RETRY_S) })
        return c.res
      }
      return storeUnavailable(c, error, onStoreError)
    }

    await next()

    const { status } = c.res
    if (RETRYABLE.has(status) || isLoginWallAnswer(c.res) || (await isLoginWall(c.res))) {
      // The handler said it did nothing (or the login wall stopped it): free the key, so the retry (the
      // SDK's replay after login) runs. If the delete fails the key stays taken (409): never a rerun.
      ledger.drop(storeKey)
      await store.delete(storeKey).catch(onStoreError)
      return
    }
    const headers = KEPT_HEADERS.flatMap((name) => {
      const value = c.res.headers.get(name)
      return value === null ? [] : [[name, value] as [string, string]]
    })
    // remember() reports its own failures; this catch is for an onStoreError that throws: the answer
    // (perhaps already half sent) must not fail for it.
    const save = (body: Uint8Array | null) =>
      remember(storeKey, { v: RECORD_VERSION, state: 'done', fp, status, headers, body: body === null ? null : toBase64Url(body) }).catch(() => {})
    const res = c.res
    if (res.body === null) {
      await save(new Uint8Array(0))
      return
    }
    const length = Number(res.headers.get('content-length') ?? Number.NaN)
    const keep = !/^\s*text\/event-stream/i.test(res.headers.get('content-type') ?? '') && !(length > maxBodyBytes)
    const tap = passThrough(res.body, maxBodyBytes, keep, save)
    c.res = new Response(tap.stream, res)
    // A body that is already whole (a string, JSON, bytes: read within this turn) is saved before the
    // response leaves, as a repeat or an outage right after it expects. Any other body is a stream: it
    // leaves now, and its record is written when it ends (its end waits for that write).
    if (await Promise.race([tap.read.then(() => true), nextTurn()])) await tap.saved()
  }
}

/** The key's owner as a tagged string, or null for "nobody". Tags keep a user id apart from a session key. */
async function ownerOf(c: Context, scope: IdempotencyOptions['scope']): Promise<string | null> {
  if (scope !== undefined) {
    const owner = await scope(c)
    if (owner === null) return null
    if (typeof owner !== 'string' || owner === '') throw new BackwardError('CONFIG', '[backward] idempotency(): scope(c) must return a non-empty string or null.')
    return JSON.stringify(['scope', owner])
  }
  const session = c.get('session')
  if (session === undefined) {
    // Without a session every caller would share one key space: bob would get alice's receipt.
    throw new BackwardError('CONFIG', '[backward] idempotency(): no session on this request. Mount app.use(session({ store })) before idempotency(), or pass { scope: (c) => yourUserId }.')
  }
  const user = getUserId(c)
  if (user !== null) return JSON.stringify(['user', user])
  return session.key === null ? null : JSON.stringify(['session', session.key])
}

/**
 * SHA-256 of the method, path, query and body, base64url. A body counts as its first MiB (then its
 * Content-Length when longer); a `multipart/form-data` body as its entries, because every send of a
 * FormData gets a new random boundary, and the SDK rebuilds its FormData on every replay. The body is
 * read from a clone, so a handler that streams `c.req.raw.body` still can.
 */
async function fingerprint(req: HonoRequest, url: URL): Promise<string> {
  const parts: Uint8Array[] = [encoder.encode(`${req.method} ${url.pathname}${url.search}\n`)]
  const type = req.header('content-type') ?? ''
  const multipart = MULTIPART.test(type)
  const length = req.header('content-length')
  const raw = req.raw
  const cached = firstCached(req) !== undefined
  if ((raw.bodyUsed || raw.body?.locked === true) && !cached) {
    // Read straight off c.req.raw, not through c.req.json() and kin (which Hono keeps): the bytes are
    // gone, so there is nothing to fingerprint, and the handler could not read them either.
    throw new BackwardError('CONFIG', '[backward] idempotency() must run before any middleware that reads the request body (or that middleware must read it through c.req.json(), c.req.text(), c.req.arrayBuffer() or c.req.parseBody(), which keep it). Mount idempotency() earlier.')
  }
  if (raw.body === null && !cached) return sha256(parts)
  if (multipart && Number(length) > FINGERPRINT_BYTES) {
    // Too large to parse here. Its length is left out: it counts the boundary, whose length changes
    // from send to send in some browsers (Firefox before its geckoformboundary). Within one owner's key
    // that only lets another upload of this size get the first answer instead of a 422.
    parts.push(LARGE_FORM)
    return sha256(parts)
  }
  let head: Uint8Array<ArrayBuffer>
  let whole: boolean
  if (raw.bodyUsed) {
    // An earlier middleware read it through Hono, which keeps it.
    if (multipart) {
      const entries = await req.formData().catch(() => null) // malformed: its bytes below
      if (entries !== null) return sha256([...parts, ...(await formParts(entries))])
    } else if (URLENCODED.test(type) && firstCached(req) === 'formData') {
      // Kept only as FormData (an earlier c.req.formData()): Hono would turn that back into multipart
      // bytes with a random boundary. Serialized again it is what a browser sends for these entries.
      const entries = [...(await req.formData())].map(([name, value]) => [name, typeof value === 'string' ? value : value.name])
      return sha256([...parts, encoder.encode(new URLSearchParams(entries).toString()).subarray(0, FINGERPRINT_BYTES)])
    }
    const bytes = new Uint8Array(await req.arrayBuffer())
    head = bytes.subarray(0, FINGERPRINT_BYTES)
    whole = bytes.byteLength < FINGERPRINT_BYTES
  } else {
    ;({ head, whole } = await readHead(raw.clone().body!, FINGERPRINT_BYTES))
    if (multipart && !whole) return sha256([...parts, LARGE_FORM]) // chunked, no Content-Length
    if (multipart) {
      const entries = await new Response(head, { headers: { 'content-type': type } }).formData().catch(() => null)
      if (entries !== null) return sha256([...parts, ...(await formParts(entries))])
    }
  }
  parts.push(head)
  if (!whole) parts.push(encoder.encode(`\n${length ?? '?'}`))
  return sha256(parts)
}

/** The first `max` bytes of a stream, and whether that was all of it (false at `max` bytes or more). */
async function readHead(body: ReadableStream<Uint8Array>, max: number): Promise<{ head: Uint8Array<ArrayBuffer>; whole: boolean }> {
  const reader = body.getReader()
  const parts: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return { head: concatBytes(parts), whole: true }
    parts.push(value.subarray(0, max - size))
    size += value.byteLength
    if (size >= max) {
      // Not awaited: a tee branch's cancel settles only once the handler's branch is done too.
      reader.cancel().catch(() => {})
      return { head: concatBytes(parts), whole: false }
    }
  }
}

/**
 * A form's entries, in order, each field length-prefixed so no two forms encode alike: the name, then
 * a string's value, or a file's name, type and bytes. Never the boundary or the part headers.
 */
async function formParts(form: FormData): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [encoder.encode('multipart/form-data\n')]
  const field = (bytes: Uint8Array) => parts.push(encoder.encode(`${bytes.byteLength}:`), bytes)
  for (const [name, value] of form) {
    field(encoder.encode(name))
    if (typeof value === 'string') {
      parts.push(encoder.encode('s'))
      field(encoder.encode(value))
    } else {
      parts.push(encoder.encode('f'))
      field(encoder.encode(value.name))
      field(encoder.encode(value.type))
      field(new Uint8Array(await value.arrayBuffer()))
    }
  }
  return parts
}

/** Which body Hono keeps first: the one it converts from for any other kind. */
function firstCached(req: HonoRequest): string | undefined {
  for (const key in req.bodyCache) return key
  return undefined
}

/** SHA-256 of the parts run together, base64url (Node's synchronous hash where there is one). */
async function sha256(parts: Uint8Array[]): Promise<string> {
  const node = nodeCrypto()
  if (node !== undefined) {
    const hash = node.createHash('sha256')
    for (const part of parts) hash.update(part)
    return toBase64Url(hash.digest())
  }
  return toBase64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', concatBytes(parts))))
}

/**
 * The response, handed on as it arrives, with a copy of its body while it stays within `max` (and
 * `keep`). The record is saved once, at the first of: the body's end (kept, if it was copied whole),
 * its failure or the client's cancel (not kept: the handler ran, so a repeat must not run it again).
 * The stream's end waits for that save, so a client that read it all and repeats at once gets the
 * record, not a 409. Read ahead up to `max` bytes, so a body that is already whole is read (and
 * saved) even before anyone reads it.
 */
function passThrough(body: ReadableStream<Uint8Array>, max: number, keep: boolean, save: (body: Uint8Array | null) => Promise<void>) {
  const reader = body.getReader()
  let copy: Uint8Array[] | null = keep ? [] : null
  let size = 0
  let saving: Promise<void> | undefined
  let cancelled = false
  let markRead!: () => void
  const read = new Promise<void>((resolve) => (markRead = resolve))
  const finish = (whole: boolean) => {
    markRead()
    return (saving ??= save(whole && copy !== null ? concatBytes(copy) : null))
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let chunk: ReadableStreamReadResult<Uint8Array>
        try {
          chunk = await reader.read()
        } catch (error) {
          await finish(false)
          if (!cancelled) controller.error(error) // the same failure the handler's stream had
          return
        }
        if (cancelled) return
        if (chunk.done) {
          await finish(true)
          if (!cancelled) controller.close()
          return
        }
        if (copy !== null) {
          size += chunk.value.byteLength
          // Past max: stop copying; the record says "not kept" when the body ends.
          if (size > max || !(chunk.value instanceof Uint8Array)) copy = null
          else copy.push(chunk.value)
        }
        controller.enqueue(chunk.value)
      },
      cancel(reason) {
        cancelled = true
        reader.cancel(reason).catch(() => {})
        return finish(false)
      },
    },
    { highWaterMark: max, size: (chunk) => chunk?.byteLength ?? 1 },
  )
  return { stream, read, saved: () => saving ?? Promise.resolve() }
}

/** Resolves after everything already queued (a whole body's reads among it) has run. */
function nextTurn(): Promise<false> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate : setTimeout)(() => resolve(false)))
}

function answerRepeat(c: Context, record: SessionData | null, fp: string): Response {
  // Records written before fingerprints existed carry none: they match anything.
  if (record !== null && typeof record.fp === 'string' && record.fp !== fp) {
    reportSuspicious(c, 'reused-idempotency-key', 'an Idempotency-Key was sent again with another method, path, query or body; answered 422')
    return problem(422, 'urn:backward:idempotency-key-reused', 'Idempotency-Key reused', { detail: 'This Idempotency-Key was used for a different request (method, path, query or body). Use a new key for a new request.' })
  }
  if (record === null || record.state !== 'done') {
    return problem(409, REQUEST_IN_PROGRESS_TYPE, 'Request in progress', { detail: 'A request with this Idempotency-Key is still running. Retry later.' }, { 'Retry-After': '1' })
  }
  const done = record as unknown as Done
  const headers = new Headers(done.headers)
  headers.set('Idempotent-Replayed', 'true')
  if (done.body === null && !NULL_BODY.has(done.status)) {
    // Same status, so the SDK and the page see what the first answer was; the body says why it is empty.
    const location = headers.get('location')
    return problem(done.status, 'urn:backward:response-not-kept', 'Response not kept', { detail: 'This request already ran. Its response was an event stream, larger than maxBodyBytes or cut short, so only its status was kept.' }, {
      'Idempotent-Replayed': 'true',
      ...(location !== null ? { Location: location } : {}),
    })
  }
  return new Response(NULL_BODY.has(done.status) || done.body === null ? null : fromBase64Url(done.body), { status: done.status, headers })
}

const KEEP = { evict: false } as const
const ANONYMOUS_PREFIX = JSON.stringify(['session', '']).slice(0, -3)
const ANONYMOUS_ACCOUNT = JSON.stringify(['anonymous sessions'])

/** What a record costs a bounded store, near enough: its JSON's bulk (the body) plus the rest. */
function recordSize(data: SessionData): number {
  return 64 + (typeof data.body === 'string' ? data.body.length : 0) + JSON.stringify({ ...data, body: null }).length
}

/** True for the login wall's 401 (problem+json `urn:backward:login-required`). Reads a clone, at most 4 KiB. */
async function isLoginWall(res: Response): Promise<boolean> {
  if (res.status !== 401 || res.body === null) return false
  if (!(res.headers.get('content-type') ?? '').toLowerCase().startsWith(PROBLEM_CONTENT_TYPE)) return false
  const { head, whole } = await readHead(res.clone().body!, WALL_PEEK_BYTES)
  if (!whole) return false
  try {
    return (JSON.parse(new TextDecoder().decode(head)) as { type?: unknown })?.type === LOGIN_REQUIRED_TYPE
  } catch {
    return false
  }
}

interface Held {
  owner: string
  expiresAt: number
  size: number
}

/**
 * The keys this process took, per owner, until they expire: what `maxKeysPerScope` counts. One map in
 * expiry order (every key lives `ttl`, and a saved answer moves its key to the back), so expired keys
 * leave from the front in O(1) each; its size follows the live keys.
 */
function keyLedger(now: () => number = Date.now) {
  const held = new Map<string, Held>()
  const owners = new Map<string, { keys: Map<string, Held>; bytes: number }>()
  function drop(storeKey: string): void {
    const entry = held.get(storeKey)
    if (entry === undefined) return
    held.delete(storeKey)
    const mine = owners.get(entry.owner)!
    mine.keys.delete(storeKey)
    mine.bytes -= entry.size
    if (mine.keys.size === 0) owners.delete(entry.owner)
  }
  function prune(): void {
    const t = now()
    for (const [storeKey, entry] of held) {
      if (entry.expiresAt > t) return
      drop(storeKey)
    }
  }
  function add(storeKey: string, owner: string, expiresAt: number, size: number): void {
    drop(storeKey)
    const entry = { owner, expiresAt, size }
    held.set(storeKey, entry)
    const mine = owners.get(owner) ?? { keys: new Map<string, Held>(), bytes: 0 }
    owners.set(owner, mine)
    mine.keys.set(storeKey, entry)
    mine.bytes += size
  }
  return {
    has: (storeKey: string) => held.has(storeKey),
    drop,
    add,
    /** The owner's live keys, bytes, and seconds until its oldest key expires. */
    of(owner: string) {
      prune()
      const mine = owners.get(owner)
      const oldest = mine?.keys.values().next().value
      return { count: mine?.keys.size ?? 0, bytes: mine?.bytes ?? 0, retryAfter: Math.max(1, Math.ceil(((oldest?.expiresAt ?? 0) - now()) / 1000)) }
    },
    /** A saved answer: the key's new expiry and size (it moves to the back). */
    hold(storeKey: string, expiresAt: number, size: number): void {
      const entry = held.get(storeKey)
      if (entry !== undefined) add(storeKey, entry.owner, expiresAt, size)
    },
  }
}
