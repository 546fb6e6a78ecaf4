export {
  AUTH_SCHEME,
  DEFAULT_REDIRECT_FIELD,
  IDEMPOTENCY_HEADER,
  LOGIN_SIGNAL_COOKIE,
  LOGIN_REQUIRED_TYPE,
  PROBLEM_CONTENT_TYPE,
  REPLAY_OUTCOME,
  REPLAY_OUTCOME_PARAM,
  REQUEST_IN_PROGRESS_TYPE,
  STORE_UNAVAILABLE_TYPE,
  USER_TAG_PATTERN,
  loginChallenge,
  parseLoginRequired,
} from './protocol.ts'
export type { LoginRequiredProblem } from './protocol.ts'
export { BackwardError, isBackwardError } from './errors.ts'
export type { BackwardErrorCode } from './errors.ts'
export { isSafeRedirect } from './safe-redirect.ts'
export type { SafeRedirectOptions } from './safe-redirect.ts'
