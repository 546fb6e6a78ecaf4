// Fakes of the page around the SDK (no IndexedDB here): location, cookie jar, login-required
// answers, an event recorder.
import { vi } from 'vitest'
import type { Backward, BackwardEvents } from '../../src/client/index.ts'
import { LOGIN_REQUIRED_TYPE, PROBLEM_CONTENT_TYPE, loginChallenge } from '../../src/shared/protocol.ts'

export const ORIGIN = 'https://app.test'

/** backward's login-required answer, as `loginRequired()` on the server sends it. */
export function loginRequiredResponse(loginUrl = '/login?next=%2Fpeople'): Response {
  return new Response(JSON.stringify({ type: LOGIN_REQUIRED_TYPE, title: 'Login required', status: 401, loginUrl }), {
    status: 401,
    headers: { 'Content-Type': PROBLEM_CONTENT_TYPE, 'WWW-Authenticate': loginChallenge(loginUrl) },
  })
}

/** A cookie jar that behaves like `document.cookie` for names, values and `Max-Age=0`. */
export function cookieJar(initial: Record<string, string> = {}) {
  const cookies = new Map(Object.entries(initial))
  const writes: string[] = []
  return {
    writes,
    get cookie() {
      return [...cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    },
    set cookie(line: string) {
      writes.push(line)
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim())
      const name = pair.slice(0, pair.indexOf('='))
      if (attributes.some((a) => /^max-age=0$/i.test(a))) cookies.delete(name)
      else cookies.set(name, pair.slice(pair.indexOf('=') + 1))
    },
  }
}

/** A page location at `href` whose `assign` is a spy. */
export function fakeLocation(href = `${ORIGIN}/people?page=2#top`) {
  return Object.assign(new URL(href), { assign: vi.fn<(url: string) => void>() })
}

export type Recorded = { [K in keyof BackwardEvents]: [K, BackwardEvents[K]] }[keyof BackwardEvents]

/** Every event of `bw`, in order. */
export function record(bw: Backward): Recorded[] {
  const log: Recorded[] = []
  for (const name of ['queued', 'login-required', 'replayed', 'failed', 'expired', 'error', 'suspicious'] as const)
    bw.on(name, (event) => log.push([name, event] as Recorded))
  return log
}

export const names = (log: Recorded[]) => log.map(([name]) => name)

