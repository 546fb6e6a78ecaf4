import { BackwardError } from '../shared/errors.ts'
import { DEFAULT_REDIRECT_FIELD } from '../shared/protocol.ts'
import type { BackwardEvents, CreateBackwardOptions, LoginRequiredInfo } from './types.ts'

// Loaded on the first login hand-off only: most page loads never meet a login wall.

type Here = NonNullable<CreateBackwardOptions['location']>

/**
 * The login URL to go to: `url` resolved against the page (absolute, so a path like `//x` can never
 * turn scheme-relative), with `next=<this page>` when it has none.
 * @example
 * loginTarget('/login', location) // 'https://app.example/login?next=%2Fpeople%3Fpage%3D2'
 */
export function loginTarget(url: string, here: Here): string {
  const target = new URL(url, here.href)
  if (!target.searchParams.has(DEFAULT_REDIRECT_FIELD))
    target.searchParams.set(DEFAULT_REDIRECT_FIELD, here.pathname + here.search + here.hash)
  return target.href
}

/**
 * Navigates to the login URL when it is on this page's origin, else emits an `error` (UNSAFE_REDIRECT).
 * The URL comes from a server's answer: it is never followed off this site. In the browser the check is
 * exact: the browser's own URL parser resolves the URL, and the resolved absolute URL is what is
 * followed, so no parser difference is left to exploit (`isSafeRedirect` exists for servers, whose
 * parsers differ from the browser's).
 * @example
 * goToLogin(info, location, emit)
 */
export function goToLogin(
  info: LoginRequiredInfo,
  here: Here,
  emit: (name: 'error', event: BackwardEvents['error']) => void,
): void {
  let target: URL | undefined
  try {
    target = new URL(info.loginUrl, here.href)
  } catch {}
  if (target && target.origin == here.origin && /^https?:$/.test(target.protocol)) here.assign(target.href)
  else emit('error', { error: new BackwardError('UNSAFE_REDIRECT', 'login URL is off this site; fix loginUrl'), action: info.action })
}
