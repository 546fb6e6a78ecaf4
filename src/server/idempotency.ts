import type { MiddlewareHandler } from 'hono'
import { BackwardError } from '../shared/errors.ts'
import { IDEMPOTENCY_HEADER } from '../shared/protocol.ts'
import { getUserId } from './auth.ts'
import { fromBase64Url, toBase64Url } from './base64url.ts'
import { hashKey } from './ids.ts'
import { logStoreError, problem, storeUnavailable } from './problem.ts'
import type { SessionStore } from './store.ts'

/** Options for {@link idempotency}. */
export interface IdempotencyOptions {
  /** Where records live. Any `SessionStore` works: memory, file, Redis, PostgreSQL. */
  store: SessionStore
  /** How long a finished response is kept for repeats, in seconds. @default 86400 */
  ttl?: number
  /** How long a running request holds its key before a crash is assumed, in seconds. @default 60 */
  lockTtl?: number
  /** Largest response body kept for repeats, in bytes; a larger one is answered again without its body. @default 1048576 */
  maxBodyBytes?: number
  /** Called with store failures (the request gets a 503). @default console.error */
  onStoreError?: (error: unknown) => void
}

/** Response headers that are replayed. Never Set-Cookie: a repeat must not hand out the first session. */
const KEPT_HEADERS = ['content-type', 'content-language', 'location', 'etag', 'last-modified']
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/

interface Running {
  state: 'running'
}
interface Done {
  state: 'done'
  status: number
  headers: [string, string][]
  body: string | null
}

/**
 * Runs each request that carries an `Idempotency-Key` at most once. A repeat gets the first response
 * (status, headers, body) with `Idempotent-Replayed: true`; a repeat that arrives while the first is
 * still running gets `409`. Keys are scoped to the logged-in user, the method and the path, so one
 * user's key can never return another user's response. A 5xx frees the key so it can be retried.
 * @example
 * app.use('/api/*', idempotency({ store: fileStore({ dir: '.idempotency' }) }))
 */
export function idempotency(options: IdempotencyOptions): MiddlewareHandler {
  const store = options?.store
  if (store === undefined || typeof store.create !== 'function') throw new BackwardError('CONFIG', '[backward] idempotency(): pass { store }, any SessionStore.')
  const ttlMs = (options.ttl ?? 86_400) * 1000
  const lockMs = (options.lockTtl ?? 60) * 1000
  const maxBodyBytes = options.maxBodyBytes ?? 1_048_576
  const onStoreError = options.onStoreError ?? logStoreError('idempotency()')
  for (const [name, value] of [['ttl', ttlMs], ['lockTtl', lockMs], ['maxBodyBytes', maxBodyBytes]] as const) {
    if (!Number.isFinite(value) || value <= 0) throw new BackwardError('CONFIG', `[backward] idempotency(): ${name} must be a positive number.`)
  }

  return async function idempotency(c, next) {
    const key = c.req.header(IDEMPOTENCY_HEADER)
    if (key === undefined) return next()
    if (!KEY_PATTERN.test(key)) {
      return problem(400, 'urn:backward:bad-idempotency-key', 'Invalid Idempotency-Key', { detail: 'Use 1 to 255 visible ASCII characters, such as a UUID.' })
    }
    const scope = JSON.stringify([getUserId(c), c.req.method, new URL(c.req.url).pathname, key])
    let storeKey: string
    try {
      storeKey = await hashKey(scope, 'idempotency')
      if (!(await store.create(storeKey, { state: 'running' } satisfies Running, Date.now() + lockMs))) {
        return answerRepeat(await store.load(storeKey))
      }
    } catch (error) {
      return storeUnavailable(c, error, onStoreError)
    }

    await next()

    try {
      if (c.res.status >= 500) {
        await store.delete(storeKey)
        return
      }
      const bytes = new Uint8Array(await c.res.clone().arrayBuffer())
      const headers = KEPT_HEADERS.flatMap((name) => {
        const value = c.res.headers.get(name)
        return value === null ? [] : [[name, value] as [string, string]]
      })
      const done: Done = { state: 'done', status: c.res.status, headers, body: bytes.byteLength <= maxBodyBytes ? toBase64Url(bytes) : null }
      await store.update(storeKey, done as unknown as Record<string, unknown>, Date.now() + ttlMs)
    } catch (error) {
      // The handler ran; failing to remember it must not turn its answer into an error.
      onStoreError(error)
    }
  }
}

function answerRepeat(record: Record<string, unknown> | null): Response {
  if (record === null || record.state === 'running') {
    return problem(409, 'urn:backward:request-in-progress', 'Request in progress', { detail: 'A request with this Idempotency-Key is still running. Retry later.' }, { 'Retry-After': '1' })
  }
  const done = record as unknown as Done
  const headers = new Headers(done.headers)
  headers.set('Idempotent-Replayed', 'true')
  const body = done.body === null ? null : fromBase64Url(done.body)
  return new Response(done.status === 204 || done.status === 304 ? null : body, { status: done.status, headers })
}
