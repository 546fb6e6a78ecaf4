import { toBase64Url } from './base64url.ts'
import { nodeCrypto } from './node-crypto.ts'

/**
 * Session ids: 256 bits from the platform CSPRNG, base64url, 43 characters. 43 characters carry 258
 * bits, so the last one only ever has its low two bits clear: one of 16 characters. Anything else is
 * not an id we issued.
 */
const ID_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/**
 * A new session id (256 random bits, base64url).
 * @example
 * newSessionId() // 'q3v…' (43 characters)
 */
export function newSessionId(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(32)))
}

/**
 * True when `value` has the exact shape of an id backward issues. Anything else (too short, too long,
 * `/`, `..`, NUL, 10,000 characters) is rejected before it reaches a store.
 * @example
 * isSessionId('abc') // false
 */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value)
}

/**
 * The store key for an id: hex SHA-256 of `namespace:id` (Node's synchronous hash where there is
 * one). Stores only ever see this digest.
 * @example
 * await hashKey(id) // '3f7a…' (64 hex characters)
 */
export async function hashKey(id: string, namespace = 'session'): Promise<string> {
  const input = `${namespace}:${id}`
  const node = nodeCrypto()
  if (node !== undefined) return node.createHash('sha256').update(input).digest('hex')
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(input)))
  let hex = ''
  for (const byte of digest) hex += HEX[byte]
  return hex
}
