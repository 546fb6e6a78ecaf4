import { BackwardError } from '../shared/errors.ts'
import { DEFAULT_REDIRECT_FIELD } from '../shared/protocol.ts'
import { listen } from './channel.ts'
import type { ReplayContext } from './replay.ts'
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
 * Before navigating with a queue in memory (`info.persisted` false), emits an `error` (NOT_PERSISTED).
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
  if (target && target.origin == here.origin && /^https?:$/.test(target.protocol)) {
    // In memory mode the queue dies with this page: say so before leaving, rather than pretend it is kept.
    if (!info.persisted)
      emit('error', { error: new BackwardError('NOT_PERSISTED', 'no IndexedDB: leaving for login loses the saved actions; log in within the page (onLoginRequired)'), action: info.action })
    here.assign(target.href)
  } else emit('error', { error: new BackwardError('UNSAFE_REDIRECT', 'login URL is off this site; fix loginUrl'), action: info.action })
}

/**
 * The hand-off itself, once the page's other requests are back: resolves the login URL, starts
 * listening for a login in another page (`info.loggedIn`), emits `login-required`, then either
 * navigates (the default) or awaits `onLoginRequired` and replays when it resolves `true` (an in-page
 * login, or a popup's: `info.loggedIn`).
 * @example
 * await handOff(ctx, info)
 */
export async function handOff(ctx: ReplayContext, info: LoginRequiredInfo): Promise<void> {
  const { location, emit, options } = ctx
  info.loginUrl = loginTarget(info.loginUrl, location)
  info.loggedIn = listen(ctx)
  emit('login-required', info)
  if (!options.onLoginRequired) goToLogin(info, location, emit)
  else if ((await Promise.resolve(info).then(options.onLoginRequired).catch(() => {})) === true) await ctx.replay()
}
