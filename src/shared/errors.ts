/** Stable error codes. Code that handles a `BackwardError` switches on `code`, never on the message. */
export type BackwardErrorCode =
  | 'CONFIG'
  | 'SESSION_INTERRUPTED'
  | 'STORE_UNAVAILABLE'
  | 'STORE_CONFLICT'
  | 'STORE_FULL'
  | 'INVALID_KEY'
  | 'RESERVED_KEY'
  | 'MISSING_KEY'
  | 'COOKIE_TOO_LARGE'
  | 'SESSION_TOO_LARGE'
  | 'BODY_TOO_LARGE'
  | 'STORAGE_UNAVAILABLE'
  | 'QUOTA_EXCEEDED'
  | 'NOT_SERIALIZABLE'
  | 'UNSAFE_REDIRECT'
  | 'CLEARED'
  | 'NOT_PERSISTED'
  | 'LOAD_FAILED'
  | 'SIGNAL_CONFLICT'
  | 'USER_UNCONFIRMED'
  | 'NOT_REPLAYABLE'

/**
 * The one error class backward throws. Messages start with `[backward]`, say what to do, and never
 * carry a session id, a token or a request body.
 * @example
 * try { await store.update(id, data, exp) } catch (e) { if (isBackwardError(e, 'SESSION_INTERRUPTED')) … }
 */
export class BackwardError extends Error {
  readonly code: BackwardErrorCode
  constructor(code: BackwardErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.startsWith('[backward]') ? message : `[backward] ${message}`, options)
    this.name = 'BackwardError'
    this.code = code
  }
}

/**
 * True when `error` is a `BackwardError`, optionally with the given `code`.
 * @example
 * if (isBackwardError(err, 'STORE_UNAVAILABLE')) return c.text('try later', 503)
 */
export function isBackwardError(error: unknown, code?: BackwardErrorCode): error is BackwardError {
  return error instanceof BackwardError && (code === undefined || error.code === code)
}
