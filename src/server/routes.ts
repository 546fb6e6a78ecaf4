import { Hono, type Context } from 'hono'
import { BackwardError } from '../shared/errors.ts'
import { DEFAULT_REDIRECT_FIELD, IDEMPOTENCY_HEADER } from '../shared/protocol.ts'
import { isSafeRedirect } from '../shared/safe-redirect.ts'
import { getUserId } from './auth.ts'
import { ACTION_KEY, NEXT_KEY, readRecordedAction, replayBody, type RecordedAction } from './recorded-action.ts'
import { withNext } from './request-kind.ts'
import { saveSessionNow, sessionHandle } from './session.ts'

/** Anything with Hono's `fetch(request, env, ctx)`: the app the no-JavaScript replay runs through. */
export interface FetchApp {
  fetch(request: Request, env?: unknown, executionCtx?: never): Response | Promise<Response>
}

/** Options for {@link backwardRoutes}. */
export interface BackwardRoutesOptions {
  /** Where people log in; used when someone reaches the redirect endpoint logged out. @default '/login' */
  loginUrl?: string
  /** Where to land when there is no safe destination. A path on this site. @default '/' */
  defaultRedirect?: string
  /**
   * The app to replay recorded no-JavaScript form posts through (usually your root Hono app). Without it,
   * recorded posts are discarded after login and only the redirect happens.
   */
  app?: FetchApp
  /** Hosts besides the request's own that a `next` may point to. @default [] */
  allowedHosts?: string[]
  /** @default 'next' */
  redirectField?: string
  /** A recorded action older than this (seconds) is discarded, not replayed. @default 3600 */
  actionTtl?: number
  /** Decides who is logged in. @default a user id set by login() */
  isAuthenticated?: (c: Context) => boolean | Promise<boolean>
}

const REPLAY_HEADER = 'X-Backward-Replay'

function assertLocalPath(value: string, name: string): void {
  if (!value.startsWith('/') || value.startsWith('//') || !isSafeRedirect(value)) {
    throw new BackwardError('CONFIG', `[backward] backwardRoutes(): ${name} must be a path on this site, like "/".`)
  }
}

/**
 * backward's routes, mounted at `/backward`. `GET /backward/login/redirect` is where your login handler
 * sends people after a successful login (Django's `LOGIN_REDIRECT_URL`): it replays a recorded
 * no-JavaScript form post once, then redirects to where the person was, through `isSafeRedirect`.
 * @example
 * app.route('/backward', backwardRoutes({ loginUrl: '/login', app }))
 */
export function backwardRoutes(options: BackwardRoutesOptions = {}): Hono {
  const loginUrl = options.loginUrl ?? '/login'
  const defaultRedirect = options.defaultRedirect ?? '/'
  assertLocalPath(loginUrl, 'loginUrl')
  assertLocalPath(defaultRedirect, 'defaultRedirect')
  const field = options.redirectField ?? DEFAULT_REDIRECT_FIELD
  const actionTtlMs = (options.actionTtl ?? 3600) * 1000
  const extraHosts = [...(options.allowedHosts ?? [])]
  const isAuthenticated = options.isAuthenticated ?? ((c: Context) => getUserId(c) !== null)
  const routes = new Hono()

  routes.get('/login/redirect', async function loginRedirect(c) {
    const url = new URL(c.req.url)
    const safe = (candidate: unknown): candidate is string =>
      typeof candidate === 'string' && isSafeRedirect(candidate, { allowedHosts: [url.host, ...extraHosts], requireHttps: url.protocol === 'https:' })
    const queryNext = c.req.query(field)

    if (!(await isAuthenticated(c))) return redirect(c, withNext(loginUrl, field, safe(queryNext) ? queryNext : null))

    const session = c.get('session')
    if (session === undefined) throw new BackwardError('CONFIG', '[backward] backwardRoutes() needs session() earlier in the chain: app.use(session({ store })).')
    const handle = sessionHandle(session)
    const action = readRecordedAction(session.get(ACTION_KEY))
    const savedNext = session.get(NEXT_KEY)
    handle.deleteInternal(ACTION_KEY)
    handle.deleteInternal(NEXT_KEY)
    // One-shot: the record is gone from the store before the replay runs, so a second visit
    // (a reload, a second tab) finds nothing to replay.
    await saveSessionNow(session)

    let landing: string | null = null
    const cookies: string[] = []
    if (action !== null && options.app !== undefined && Date.now() - action.at < actionTtlMs) {
      const res = await replay(options.app, c, action)
      cookies.push(...res.headers.getSetCookie())
      const target = res.headers.get('Location')
      if (res.status >= 300 && res.status < 400 && target !== null && safe(target)) landing = target
    }
    landing ??= safe(queryNext) ? queryNext : safe(savedNext) ? savedNext : defaultRedirect
    const res = redirect(c, landing)
    for (const cookie of cookies) res.headers.append('Set-Cookie', cookie)
    return res
  })

  return routes
}

function redirect(c: Context, target: string): Response {
  const res = c.redirect(target, 303)
  res.headers.set('Cache-Control', 'no-store')
  return res
}

/** Runs a recorded form post through the app, as the now-logged-in user, marked as same-origin. */
async function replay(app: FetchApp, c: Context, action: RecordedAction): Promise<Response> {
  const url = new URL(c.req.url)
  const { body, contentType } = replayBody(action)
  const headers = new Headers({
    Accept: 'text/html',
    Origin: url.origin,
    'Sec-Fetch-Site': 'same-origin',
    'Sec-Fetch-Mode': 'navigate',
    'Sec-Fetch-Dest': 'document',
    [IDEMPOTENCY_HEADER]: action.id,
    [REPLAY_HEADER]: '1',
  })
  const cookie = c.req.header('Cookie')
  if (cookie !== undefined) headers.set('Cookie', cookie)
  if (contentType !== null) headers.set('Content-Type', contentType)
  const request = new Request(new URL(action.path, url.origin), { method: action.method, headers, body, redirect: 'manual' })
  let ctx: never | undefined
  try {
    ctx = c.executionCtx as never
  } catch {
    ctx = undefined // Node has no execution context
  }
  return app.fetch(request, c.env, ctx)
}
