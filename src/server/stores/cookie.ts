import { BackwardError } from '../../shared/errors.ts'
import { fromBase64Url, toBase64Url } from '../base64url.ts'
import { createAead } from '../aead.ts'
import { decodeData, encodeData, type SessionData } from '../store.ts'

/** Options for {@link cookieStore}. */
export interface CookieStoreOptions {
  /**
   * Secrets of at least 32 characters. The first seals; every one opens, so a new secret goes first
   * and an old one stays listed until the cookies it sealed have expired.
   */
  secrets: readonly string[]
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/**
 * A stateless store: the session data travels in the cookie itself, encrypted and authenticated
 * (AES-256-GCM). It needs no server, but it **cannot be revoked server-side**: a stolen cookie stays
 * valid until it expires, and logout only clears the browser's copy.
 */
export interface CookieSessionStore {
  readonly kind: 'cookie'
  seal(data: SessionData, expiresAt: number): Promise<string>
  /** The data, or null for anything forged, truncated, expired, issued in the future or unreadable. */
  /** `onForged` is called when no secret opens the value or it is not a sealed session at all (not when it merely expired). */
  unseal(value: string, onForged?: () => void): Promise<SessionData | null>
}

const PREFIX = 'b1.'
/** A sealed value longer than a cookie can be is not worth decrypting. */
const MAX_SEALED_LENGTH = 4096
/** Clock skew tolerated on the issued-at time, in milliseconds. */
const SKEW_MS = 60_000
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * Builds a cookie store. Keys are derived once (HKDF-SHA-256) from each secret.
 * @example
 * app.use(session({ store: cookieStore({ secrets: [process.env.SESSION_SECRET!] }) }))
 */
export function cookieStore(options: CookieStoreOptions): CookieSessionStore {
  const secrets = options?.secrets
  if (!Array.isArray(secrets) || secrets.length === 0) {
    throw new BackwardError('CONFIG', '[backward] cookieStore: pass { secrets: [secret] } with at least one secret.')
  }
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < 32) {
      throw new BackwardError('CONFIG', '[backward] cookieStore: every secret must be a string of at least 32 characters (use 32 random bytes, base64).')
    }
  }
  const now = options.now ?? Date.now
  const aead = createAead(secrets)

  return {
    kind: 'cookie',
    async seal(data, expiresAt) {
      return PREFIX + toBase64Url(await aead.seal(encoder.encode(encodeData({ iat: now(), exp: expiresAt, d: data }))))
    },
    async unseal(value, onForged) {
      const forged = () => (onForged?.(), null)
      if (typeof value !== 'string' || !value.startsWith(PREFIX) || value.length > MAX_SEALED_LENGTH) return forged()
      const bytes = fromBase64Url(value.slice(PREFIX.length))
      if (bytes === null) return forged()
      const plain = await aead.open(bytes)
      if (plain === null) return forged()
      const payload = decodeData(decoder.decode(plain))
      if (payload === null) return null
      const { iat, exp, d } = payload
      const t = now()
      if (typeof iat !== 'number' || typeof exp !== 'number' || iat > t + SKEW_MS || exp <= t) return null
      if (typeof d !== 'object' || d === null || Array.isArray(d)) return null
      return d as SessionData
    },
  }
}

/** True when `store` is a cookie store rather than a server-side `SessionStore`. */
export function isCookieStore(store: unknown): store is CookieSessionStore {
  return typeof store === 'object' && store !== null && (store as { kind?: unknown }).kind === 'cookie'
}
