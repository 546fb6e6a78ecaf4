// Shared fixtures for the client unit tests: a fake page (location, cookie jar), an msw API that
// walls off logged-out requests with backward's 401 problem, and an event recorder.
import 'fake-indexeddb/auto'
import { HttpResponse, delay, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { createBackward, idbStorage } from '../../src/client/index.ts'
import type { CreateBackwardOptions } from '../../src/client/index.ts'
import { ORIGIN, cookieJar, fakeLocation, loginRequiredResponse, record } from './fakes.ts'

export * from './fakes.ts'
export const USER_A = 'AAAAAAAAAAAAAAAAAAAAAA'
export const USER_B = 'BBBBBBBBBBBBBBBBBBBBBB'

/** What the fake API saw. */
export interface Received {
  method: string
  url: string
  headers: Headers
  bytes: Uint8Array
  request: Request
}

/**
 * The fake API: `/api/*` answers 401 (backward's problem) until `loggedIn`, then `status`.
 * `/backward/user` (the SDK's `userUrl`) names `user`, or answers `userAnswer()` when set.
 */
export const api = {
  loggedIn: false,
  status: 200,
  user: USER_A as string | null,
  userAnswer: undefined as (() => Response) | undefined,
  /** The requests to `/backward/user`. */
  userChecks: [] as Request[],
  loginUrl: '/login?next=%2Fpeople',
  /** Per-call delay in ms (to make answers arrive out of order). */
  delays: [] as number[],
  received: [] as Received[],
  reset() {
    this.loggedIn = false
    this.status = 200
    this.loginUrl = '/login?next=%2Fpeople'
    this.delays = []
    this.received = []
    this.user = USER_A
    this.userAnswer = undefined
    this.userChecks = []
  },
}

export const server = setupServer(
  http.all(`${ORIGIN}/api/*`, async ({ request }) => {
    const copy = request.clone()
    const bytes = new Uint8Array(await request.arrayBuffer())
    const wait = api.delays[api.received.length]
    api.received.push({ method: request.method, url: request.url, headers: request.headers, bytes, request: copy })
    if (wait) await delay(wait)
    if (!api.loggedIn) return loginRequiredResponse(api.loginUrl)
    return HttpResponse.json({ ok: true, url: request.url }, { status: api.status })
  }),
  http.get(`${ORIGIN}/backward/user`, ({ request }) => {
    api.userChecks.push(request)
    return api.userAnswer?.() ?? HttpResponse.json({ user: api.user })
  }),
  http.all('https://evil.test/*', () => loginRequiredResponse()),
)

/** Installs msw for the file and resets the API between tests. */
export function useApi(): void {
  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
  afterEach(() => {
    api.reset()
    server.resetHandlers()
  })
  afterAll(() => server.close())
}

/**
 * A backward instance on a fresh page, with IndexedDB storage (fake-indexeddb) emptied first.
 * `options` override the defaults.
 */
export async function page(options: CreateBackwardOptions = {}, cookies: Record<string, string> = {}) {
  const location = options.location ?? fakeLocation()
  const jar = cookieJar(cookies)
  const storage = options.storage ?? idbStorage()
  if (!options.storage) await storage.clear()
  // No channel unless a test gives one: instances of earlier tests must not hear this one's logins.
  const bw = createBackward({ location, document: jar, storage, channel: null, ...options })
  const events = record(bw)
  return { bw, location, jar, storage, events }
}

/** A Web Locks stand-in: one holder per name at a time, like `navigator.locks` across tabs. */
export function fakeLocks() {
  const tails = new Map<string, Promise<unknown>>()
  let held = 0
  let most = 0
  return {
    get most() {
      return most
    },
    request<T>(name: string, callback: () => Promise<T>): Promise<T> {
      const run = (tails.get(name) ?? Promise.resolve()).then(async () => {
        most = Math.max(most, ++held)
        try {
          return await callback()
        } finally {
          held--
        }
      })
      tails.set(name, run.catch(() => {}))
      return run
    },
  }
}

export const bytesOf = (text: string) => new TextEncoder().encode(text)
export const textOf = (buffer: ArrayBuffer | Uint8Array) => new TextDecoder().decode(buffer)
