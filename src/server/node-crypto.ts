/**
 * Node's `node:crypto`, looked up on first use through `process.getBuiltinModule`, never imported:
 * `backward/server` must load where there is no Node built-in. Node (20.16+), Bun and Deno have it;
 * workerd has it only with the `nodejs_compat` flag; edge-runtime (Vercel) has no `process` at all.
 * Where it is absent, backward uses WebCrypto, with the same results. Node's is preferred because it
 * is synchronous: WebCrypto's calls are queued as jobs in Node, which on a hot path costs more than
 * the work itself (bench/RESULTS.md, "Crypto paths").
 */

/** Not looked up yet (undefined), absent or hidden (null), or the module. */
let found: NodeCrypto | null | undefined

/**
 * `node:crypto` when this runtime has it, else undefined. Looked up once, at the first call.
 * @example
 * const node = nodeCrypto()
 * if (node !== undefined) node.createHash('sha256').update('x').digest('hex')
 */
export function nodeCrypto(): NodeCrypto | undefined {
  if (found === undefined) {
    const lookup = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule
    found = (lookup?.('node:crypto') as NodeCrypto | undefined) ?? null
  }
  return found ?? undefined
}

/**
 * Which crypto backward uses from now on: `'web'` hides `node:crypto`, as on workerd and edge-runtime;
 * `'auto'` looks it up again. For tests and the bench, which run both paths in one process. Stores
 * made before the switch (`cookieStore`) keep the path they started with.
 * @example
 * setCryptoPath('web') // hashKey, userTag and cookieStore now use WebCrypto
 */
export function setCryptoPath(path: 'auto' | 'web'): void {
  found = path === 'web' ? null : undefined
}

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
