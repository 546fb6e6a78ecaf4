import { DEFAULT_REDIRECT_FIELD } from '../shared/protocol.ts'
import { isSafeRedirect } from '../shared/safe-redirect.ts'
import type { CreateBackwardOptions } from './types.ts'

// Loaded on the first login hand-off only: most page loads never meet a login wall, and the
// open-redirect guard is as big as the rest of the SDK.

type Here = NonNullable<CreateBackwardOptions['location']>

/**
 * The login URL to go to: `url` resolved against the page, with `next=<this page>` when it has
 * none, as a path when it is on this site (so the string checked is the string followed).
 * @example
 * loginTarget('/login', location) // '/login?next=%2Fpeople%3Fpage%3D2'
 */
export function loginTarget(url: string, here: Here): string {
  const target = new URL(url, here.href)
  if (!target.searchParams.has(DEFAULT_REDIRECT_FIELD))
    target.searchParams.set(DEFAULT_REDIRECT_FIELD, here.pathname + here.search + here.hash)
  return target.origin == here.origin ? target.pathname + target.search + target.hash : target.href
}

/**
 * Navigates to `url` when it passes `isSafeRedirect` for this page's host; returns whether it did.
 * The URL comes from a server's answer, so it is never followed off this site.
 * @example
 * if (!goToLogin(info.loginUrl, location)) showLoginLink()
 */
export function goToLogin(url: string, here: Here): boolean {
  const safe = isSafeRedirect(url, { allowedHosts: here.host, requireHttps: here.protocol == 'https:' })
  if (safe) here.assign(url)
  return safe
}
