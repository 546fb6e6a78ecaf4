/**
 * The no-JavaScript action that `loginRequired` records in the session and the login-redirect route
 * replays once. Stored as JSON in the session, with files as base64.
 */
import { generateCookie } from 'hono/cookie'
import { toBase64Url, fromBase64Url } from './base64url.ts'
import { hashKey } from './ids.ts'

export const ACTION_KEY = '_backward_action'
export const NEXT_KEY = '_backward_next'
/**
 * The cookie that binds a recorded action to the browser that made it. A session cookie can be planted
 * (cookie injection from a sibling subdomain, a network attacker on http), so a session alone does not
 * prove whose action it holds. On HTTPS the name carries the `__Host-` prefix: the browser accepts it
 * only from this exact host, Secure, Path=/ and without Domain, so a sibling cannot plant one.
 */
const ACTION_COOKIE = 'backward_action'
/** Namespace of the nonce's hash in the record (see hashKey). */
const NONCE_NAMESPACE = 'action-nonce'
const FORMAT_VERSION = 1
const FORM_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'] as const

export interface RecordedAction {
  v: typeof FORMAT_VERSION
  id: string
  method: 'POST'
  /** Path and query the form posted to (same origin). */
  path: string
  enctype: (typeof FORM_TYPES)[number]
  /** Text fields and files in form order; a file is `[name, { file, type, data }]` with base64url bytes. */
  fields: [string, string | { file: string; type: string; data: string }][]
  /** Epoch milliseconds. */
  at: number
  /** SHA-256 (hex) of the browser's action cookie; a record without it is never replayed. */
  nonce?: string
}

/** The form enctype of a Content-Type header, or null when it is not one an HTML form sends. */
export function formEnctype(contentType: string | null): RecordedAction['enctype'] | null {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase()
  return (FORM_TYPES as readonly string[]).includes(type) ? (type as RecordedAction['enctype']) : null
}

/**
 * Reads at most `limit` bytes of a body. Resolves null when the body is larger, without buffering the rest.
 * `Content-Length` is checked first, then the bytes are counted, since the header may lie or be absent.
 */
export async function readLimited(request: Request, limit: number): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = Number(request.headers.get('Content-Length') ?? Number.NaN)
  if (Number.isFinite(declared) && declared > limit) return null
  if (request.body === null) return new Uint8Array(0)
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => {})
      return null
    }
    chunks.push(value)
  }
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

/** The caps of a record: its size as stored (JSON, UTF-8) and its number of fields. */
export interface RecordLimits {
  bytes: number
  fields: number
}

/**
 * Builds the record from a form body: null when the body cannot be parsed as the declared form, a
 * sentence saying which cap it passed when it is over `limits` (nothing is kept then).
 */
export async function recordForm(path: string, contentType: string, bytes: Uint8Array<ArrayBuffer>, now: number, limits: RecordLimits): Promise<RecordedAction | string | null> {
  const enctype = formEnctype(contentType)
  if (enctype === null) return null
  const tooMany = (count: number) => `a form of ${count > limits.fields ? 'more than ' + limits.fields : count} fields was not recorded (limit ${limits.fields})`
  const fields: RecordedAction['fields'] = []
  if (enctype === 'text/plain') {
    const lines = new TextDecoder().decode(bytes).split(/\r\n/)
    if (lines.length > limits.fields) return tooMany(lines.length)
    for (const line of lines) {
      const eq = line.indexOf('=')
      if (eq > 0) fields.push([line.slice(0, eq), line.slice(eq + 1)])
    }
  } else {
    // Counted before parsing: a body of 100,000 empty fields is refused without building them.
    if (enctype === 'application/x-www-form-urlencoded' && countByte(bytes, 0x26) >= limits.fields) return tooMany(countByte(bytes, 0x26) + 1)
    let form: FormData
    try {
      form = await new Response(bytes, { headers: { 'Content-Type': contentType } }).formData()
    } catch {
      return null
    }
    for (const [name, value] of form) {
      if (fields.length >= limits.fields) return tooMany(limits.fields + 1)
      if (typeof value === 'string') fields.push([name, value])
      else fields.push([name, { file: value.name, type: value.type, data: toBase64Url(new Uint8Array(await value.arrayBuffer())) }])
    }
  }
  const action: RecordedAction = { v: FORMAT_VERSION, id: crypto.randomUUID(), method: 'POST', path, enctype, fields, at: now }
  // As stored: the JSON the session keeps, in UTF-8 (escaping grows `"` and control characters 2-6×).
  const stored = encoder.encode(JSON.stringify(action)).byteLength
  if (stored > limits.bytes) return `a form post of ${stored} bytes as stored was not recorded (limit ${limits.bytes})`
  // What a form sends stores at most about twice its size (a field of quotes; files as base64 grow a
  // third). More is a body built to amplify (control characters store as \u0001, six bytes each).
  if (stored > 2 * bytes.byteLength + AMPLIFY_SLACK) return `a form post of ${bytes.byteLength} bytes that would store as ${stored} was not recorded (more than twice its size)`
  return action
}

function countByte(bytes: Uint8Array, byte: number): number {
  let n = 0
  for (let i = bytes.indexOf(byte); i !== -1; i = bytes.indexOf(byte, i + 1)) n++
  return n
}

const encoder = new TextEncoder()
/** Bytes a record may carry beyond twice its body: its id, path, time and field names. */
const AMPLIFY_SLACK = 1024

/** Validates a record read back from the session; anything unexpected gives null. */
export function readRecordedAction(value: unknown): RecordedAction | null {
  if (typeof value !== 'object' || value === null) return null
  const a = value as Partial<RecordedAction>
  if (a.v !== FORMAT_VERSION || a.method !== 'POST' || typeof a.id !== 'string' || typeof a.at !== 'number') return null
  if (typeof a.path !== 'string' || !a.path.startsWith('/') || a.path.startsWith('//') || a.path.includes('\\')) return null
  if (typeof a.enctype !== 'string' || formEnctype(a.enctype) === null || !Array.isArray(a.fields) || !a.fields.every(isField)) return null
  if (a.nonce !== undefined && (typeof a.nonce !== 'string' || !/^[0-9a-f]{64}$/.test(a.nonce))) return null
  return a as RecordedAction
}

/** One `[name, value]` entry: a text field, or a file with base64url bytes. */
function isField(entry: unknown): boolean {
  if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') return false
  const value: unknown = entry[1]
  if (typeof value === 'string') return true
  if (typeof value !== 'object' || value === null) return false
  const f = value as Record<string, unknown>
  return typeof f.file === 'string' && typeof f.type === 'string' && typeof f.data === 'string' && fromBase64Url(f.data) !== null
}

/** The body to send when replaying a recorded form, with the Content-Type it needs (none for multipart: fetch sets the boundary). */
export function replayBody(action: RecordedAction): { body: BodyInit; contentType: string | null } {
  if (action.enctype === 'multipart/form-data') {
    const form = new FormData()
    for (const [name, value] of action.fields) {
      if (typeof value === 'string') form.append(name, value)
      else form.append(name, new Blob([fromBase64Url(value.data) ?? new Uint8Array(0)], { type: value.type }), value.file)
    }
    return { body: form, contentType: null }
  }
  if (action.enctype === 'text/plain') {
    return { body: action.fields.map(([k, v]) => `${k}=${typeof v === 'string' ? v : v.file}`).join('\r\n'), contentType: 'text/plain' }
  }
  const params = new URLSearchParams()
  for (const [name, value] of action.fields) params.append(name, typeof value === 'string' ? value : value.file)
  return { body: params, contentType: 'application/x-www-form-urlencoded' }
}

/** The action cookie's name: `__Host-` prefixed whenever it is Secure (see ACTION_COOKIE). */
export function actionCookieName(secure: boolean): string {
  return secure ? `__Host-${ACTION_COOKIE}` : ACTION_COOKIE
}

/**
 * The action cookie's Set-Cookie line: HttpOnly, SameSite=Lax, Path=/, host-only. `value` '' deletes it.
 * Without a Max-Age it lasts the browser session: the record's age is enforced by backwardRoutes'
 * `actionTtl`, and the redirect route deletes the cookie on its first visit after login.
 */
export function actionCookie(value: string, secure: boolean): string {
  return generateCookie(actionCookieName(secure), value, {
    path: '/',
    httpOnly: true,
    sameSite: 'Lax',
    secure,
    ...(value === '' ? { maxAge: 0, expires: new Date(0) } : {}),
  })
}

/** The hash of a nonce as the record keeps it: the session never holds the cookie's value itself. */
export function nonceHash(nonce: string): Promise<string> {
  return hashKey(nonce, NONCE_NAMESPACE)
}
