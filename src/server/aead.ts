/**
 * AES-256-GCM with a key derived by HKDF-SHA-256, for the cookie store. Sealed bytes are
 * `iv (12) ‖ ciphertext ‖ tag (16)` on both paths, so either path opens what the other sealed.
 * Node's `node:crypto` is synchronous and several times faster than WebCrypto there, whose calls are
 * queued as jobs. Bun, Deno and workerd with `nodejs_compat` have it too; workerd without that flag
 * and edge-runtime have only WebCrypto (see node-crypto.ts).
 */
import { concatBytes } from './bytes.ts'
import { nodeCrypto, type NodeCrypto } from './node-crypto.ts'

const IV_BYTES = 12
const TAG_BYTES = 16
const INFO = 'backward cookie session key'
const AAD = new TextEncoder().encode('backward cookie session v1')

export interface Aead {
  seal(plain: Uint8Array): Promise<Uint8Array>
  /** The plaintext, or null when no key opens the bytes (forged, truncated, another secret). */
  open(sealed: Uint8Array): Promise<Uint8Array | null>
}

/** The Node path. Keys derived once, here. */
export function nodeAead(secrets: readonly string[], node: NodeCrypto): Aead {
  const keys = secrets.map((secret) => new Uint8Array(node.hkdfSync('sha256', secret, new Uint8Array(0), INFO, 32)))
  return {
    async seal(plain) {
      const iv = node.randomBytes(IV_BYTES)
      const cipher = node.createCipheriv('aes-256-gcm', keys[0]!, iv)
      cipher.setAAD(AAD)
      return concatBytes([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()])
    },
    async open(sealed) {
      if (sealed.length < IV_BYTES + TAG_BYTES) return null
      const iv = sealed.subarray(0, IV_BYTES)
      const body = sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)
      const tag = sealed.subarray(sealed.length - TAG_BYTES)
      for (const key of keys) {
        try {
          const decipher = node.createDecipheriv('aes-256-gcm', key, iv)
          decipher.setAAD(AAD)
          decipher.setAuthTag(tag)
          return concatBytes([decipher.update(body), decipher.final()])
        } catch {
          // wrong key or tampered: try the next secret
        }
      }
      return null
    },
  }
}

/** The WebCrypto path. Keys derived once, on first use. */
export function webAead(secrets: readonly string[]): Aead {
  let keys: Promise<CryptoKey[]> | undefined
  const getKeys = () => (keys ??= Promise.all(secrets.map(deriveKey)))
  return {
    async seal(plain) {
      const [key] = await getKeys()
      const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES))
      return concatBytes([iv, new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: AAD }, key!, plain as Uint8Array<ArrayBuffer>))])
    },
    async open(sealed) {
      if (sealed.length < IV_BYTES + TAG_BYTES) return null
      const iv = sealed.slice(0, IV_BYTES)
      const body = sealed.slice(IV_BYTES)
      for (const key of await getKeys()) {
        try {
          return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: AAD }, key, body))
        } catch {
          // wrong key or tampered: try the next secret
        }
      }
      return null
    },
  }
}

async function deriveKey(secret: string): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), 'HKDF', false, ['deriveKey'])
  return crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: new TextEncoder().encode(INFO) }, material, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
}

/** The fastest AEAD this runtime has. */
export function createAead(secrets: readonly string[]): Aead {
  const node = nodeCrypto()
  return node !== undefined ? nodeAead(secrets, node) : webAead(secrets)
}
