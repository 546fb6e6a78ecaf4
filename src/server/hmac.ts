import { toBase64Url } from './base64url.ts'
import { nodeCrypto } from './node-crypto.ts'

const encoder = new TextEncoder()
/** WebCrypto keys, imported once per secret (a secret is settled at start-up; there are few). */
const keys = new Map<string, Promise<CryptoKey>>()

/**
 * HMAC-SHA-256 of `input` under `secret`, base64url, cut to `length` characters (22 carry 132 bits).
 * Node's synchronous HMAC where there is one, WebCrypto elsewhere (workerd without `nodejs_compat`,
 * edge-runtime); both give the same tag.
 * @example
 * await hmac(secret, 'backward-user:42', 22) // 'Qm9…'
 */
export async function hmac(secret: string, input: string, length: number): Promise<string> {
  const node = nodeCrypto()
  if (node !== undefined) return toBase64Url(node.createHmac('sha256', secret).update(input).digest()).slice(0, length)
  let key = keys.get(secret)
  if (key === undefined) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
    keys.set(secret, key)
  }
  const mac = await crypto.subtle.sign('HMAC', await key, encoder.encode(input))
  return toBase64Url(new Uint8Array(mac)).slice(0, length)
}

/**
 * Compares two strings in time that depends on their length only, not on where they differ.
 * @example
 * sameString(sent, expected)
 */
export function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}
