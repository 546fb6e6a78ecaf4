/**
 * Node's `node:crypto`, when the runtime has it, looked up once without a static import (the server
 * entry also runs on Workers and Deno, which fall back to WebCrypto). It is synchronous, and WebCrypto's
 * calls are queued as jobs in Node, which on a hot path costs more than the work itself.
 * Typed to the calls backward makes.
 * @example
 * if (nodeCrypto !== undefined) nodeCrypto.createHash('sha256').update('x').digest('hex')
 */
export const nodeCrypto = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined

interface NodeHash {
  update(data: string | Uint8Array): NodeHash
  digest(): Uint8Array
  digest(encoding: 'hex'): string
}

export interface NodeCipher {
  setAAD(aad: Uint8Array): void
  update(data: Uint8Array): Uint8Array
  final(): Uint8Array
}

export interface NodeCrypto {
  createHash(algorithm: 'sha256'): NodeHash
  createHmac(algorithm: 'sha256', key: string): NodeHash
  hkdfSync(digest: 'sha256', ikm: string, salt: Uint8Array, info: string, length: number): ArrayBuffer
  randomBytes(size: number): Uint8Array
  createCipheriv(algorithm: 'aes-256-gcm', key: Uint8Array, iv: Uint8Array): NodeCipher & { getAuthTag(): Uint8Array }
  createDecipheriv(algorithm: 'aes-256-gcm', key: Uint8Array, iv: Uint8Array): NodeCipher & { setAuthTag(tag: Uint8Array): void }
}
