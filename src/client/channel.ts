import type { ReplayContext } from './replay.ts'
import type { BackwardChannel } from './types.ts'

// Pages of one site tell each other about a login, so that a page that stayed after a login-required
// answer (a popup's opener) replays its own actions and gets their results. Loaded with the hand-off
// (the page that stays listens) or the replay (the page that took the login signal announces it).
// Nothing here is trusted: a message only makes a page call replay(), which asks the server who is
// logged in before it sends anything.

/** "I took the login signal": every listening page replays. */
const LOGIN = 'backward:login'
/** "Mine": a listening page answers LOGIN, and the page that took the signal leaves the queue to it. */
const CLAIM = 'backward:claim'
/** How long the page that took the signal waits for a CLAIM before it replays itself. */
const CLAIM_MS = 200
// The localStorage key of the fallback (browsers without BroadcastChannel: Safari before 15.4).
const KEY = 'backward-message'

/**
 * This instance's channel, opened on first use: `options.channel`, else a BroadcastChannel named
 * `backward`, else localStorage `storage` events (they reach other tabs only); null where neither works.
 * One object serves both roles: a BroadcastChannel never hears its own messages.
 * @example
 * channelOf(ctx)?.postMessage('backward:login')
 */
export function channelOf(ctx: ReplayContext): BackwardChannel | null {
  if (ctx.channel === undefined) ctx.channel = ctx.options.channel !== undefined ? ctx.options.channel : open()
  return ctx.channel
}

function open(): BackwardChannel | null {
  try {
    if (typeof BroadcastChannel == 'function') return new BroadcastChannel('backward')
    // Throws where storage is blocked (a sandboxed frame, cookies off): then no channel at all.
    localStorage.getItem(KEY)
    const target = new EventTarget()
    addEventListener('storage', (event) => {
      if (event.key == KEY && event.newValue) target.dispatchEvent(new MessageEvent('message', { data: event.newValue.split(' ')[0] }))
    })
    // A random tail: writing the value the key already holds fires no event.
    return Object.assign(target, { postMessage: (data: string) => localStorage.setItem(KEY, data + ' ' + Math.random()) }) as BackwardChannel
  } catch {
    return null
  }
}

/**
 * Makes this page listen for logins in other pages (once per instance): on one, it claims the replay
 * and runs it, and `info.loggedIn` promises resolve. Called when a custom `onLoginRequired` keeps the
 * page: this page made the actions and waits for their answers.
 * @example
 * const loggedIn = listen(ctx)
 */
export function listen(ctx: ReplayContext): Promise<true> {
  const channel = channelOf(ctx)
  return new Promise((resolve) => {
    const hear = ({ data }: MessageEvent) => {
      if (data != LOGIN) return
      channel!.removeEventListener('message', hear)
      resolve(true)
    }
    channel?.addEventListener('message', hear)
    if (channel && !ctx.listening) {
      ctx.listening = true
      channel.addEventListener('message', ({ data }) => {
        if (data != LOGIN) return
        channel.postMessage(CLAIM)
        ctx.replay().catch(() => {})
      })
    }
  })
}

/**
 * Tells the other pages that this one took the login signal. With `wait`, waits (up to CLAIM_MS) for a
 * page that claims the replay, and resolves true when one did: this page then sends nothing.
 * @example
 * if (await announce(ctx, true)) return // the opener replays
 */
export async function announce(ctx: ReplayContext, wait?: boolean): Promise<boolean> {
  const channel = channelOf(ctx)
  if (!channel) return false
  let claimed = false
  let hear = (_: MessageEvent) => {}
  await new Promise<void>((resolve) => {
    hear = ({ data }) => void (data == CLAIM && ((claimed = true), resolve()))
    channel.addEventListener('message', hear)
    channel.postMessage(LOGIN)
    if (wait) setTimeout(resolve, CLAIM_MS)
    else resolve()
  })
  channel.removeEventListener('message', hear)
  return claimed
}
