import { BackwardError } from '../shared/errors.ts'
import type { BackwardAction, StoredFormEntry } from './types.ts'

/** How long a body stream may take to be read for saving, once the login-required answer is in. */
const STREAM_MS = 1000

/** Headers kept by default: they describe the body, they prove nothing. */
export const DEFAULT_HEADERS = ['accept', 'accept-language', 'content-language', 'content-type']

// Never stored, even when allow-listed: credentials would outlive the session they belong to (the
// replay carries the new session's cookies), a CSRF token is bound to the old session, and the
// idempotency key is ours to set, as is Backward-Page (PAGE_HEADER: a replay has no page).
const DENIED = /^(authorization|cookie|proxy-authorization|idempotency-key|backward-page)$|csrf|xsrf/i

/**
 * Keeps the allow-listed headers of a request (the defaults plus `extra`), minus credentials and CSRF tokens.
 * This module loads on demand, on the first 401: the page-load path never pays for it.
 * @example
 * keptHeaders(request.headers) // [['content-type', 'application/json']]
 */
export function keptHeaders(headers: Headers, extra: string[] = [], dropContentType?: boolean): [string, string][] {
  const allowed = new Set([...DEFAULT_HEADERS, ...extra].map((name) => name.toLowerCase()))
  const kept: [string, string][] = []
  headers.forEach((value, name) => {
    if (allowed.has(name) && !DENIED.test(name) && !(dropContentType && name == 'content-type')) kept.push([name, value])
  })
  return kept
}

/**
 * Reads a request body into storable form: FormData entries (files as bytes, name and type) when
 * the caller passed FormData, raw bytes otherwise. Refuses a body over `max` bytes before saving any,
 * and stops reading a stream as soon as it goes over (BODY_TOO_LARGE), or when it has not ended within
 * STREAM_MS (NOT_REPLAYABLE).
 * @example
 * await captureBody(request.clone(), null, 1 << 20) // ArrayBuffer
 */
export async function captureBody(
  request: Request,
  form: [string, FormDataEntryValue][] | null,
  max: number,
): Promise<BackwardAction['body']> {
  const tooLarge = () =>
    new BackwardError('BODY_TOO_LARGE', 'body over maxBodyBytes, not saved')
  if (form) {
    // A Blob of every name and value measures UTF-8 strings and files without reading the files.
    if (new Blob(form.flat()).size > max) throw tooLarge()
    return Promise.all(
      form.map(async ([name, value]): Promise<StoredFormEntry> => [
        name,
        typeof value == 'string'
          ? value
          : { bytes: await value.arrayBuffer(), name: value.name, type: value.type, lastModified: value.lastModified },
      ]),
    )
  }
  if (!request.body) return null
  // Read with a cap on size and on time: a stream body may never end (or stall), the hand-off and the
  // caller's bw.fetch wait for this capture, and a tee keeps what it reads in memory.
  const reader = request.body.getReader() as ReadableStreamDefaultReader<Uint8Array<ArrayBuffer>>
  const chunks: Uint8Array<ArrayBuffer>[] = []
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BackwardError('NOT_REPLAYABLE', 'stream body did not end within a second: not saved; send bytes, a Blob or FormData to make it replayable')), STREAM_MS)
  })
  try {
    for (let size = 0, chunk; !(chunk = await Promise.race([reader.read(), late])).done; chunks.push(chunk.value))
      if ((size += chunk.value.length) > max) throw tooLarge()
  } catch (error) {
    throw (reader.cancel().catch(() => {}), error)
  } finally {
    clearTimeout(timer)
  }
  return new Blob(chunks).arrayBuffer()
}

/**
 * A random UUID v4 from `crypto.getRandomValues`, which exists in every context: `crypto.randomUUID`
 * is missing on plain http at a host other than localhost (an insecure context), where capture would
 * throw. The default `randomId`.
 * @example
 * randomUuid() // '3b241101-e2bb-4255-8caf-4136c566a962'
 */
export function randomUuid(): string {
  // Each 0, 1 and 8 becomes a random hex digit; 8 keeps its top bits (the RFC 9562 variant, 8 to b),
  // the 4 stays (the version).
  return '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
    (+c ^ (crypto.getRandomValues(new Uint8Array(1))[0]! & (15 >> (+c / 4)))).toString(16),
  )
}
