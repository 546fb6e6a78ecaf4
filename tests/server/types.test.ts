// The types a new user leans on: c.var.session without any, a non-null user inside loginRequired
// routes without a cast, and BackwardError from backward/server.
import { Hono } from 'hono'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { BackwardError, isBackwardError, login, loginRequired, memoryStore, requireUser, session, type BackwardEnv, type Session, type UserId } from '../../src/server/index.ts'

describe('types for apps', () => {
  it('new Hono<BackwardEnv>() types c.var.session; requireUser gives a UserId, never null', async () => {
    const app = new Hono<BackwardEnv>()
    app.use(session({ store: memoryStore(), secret: 'k'.repeat(32) }))
    app.post('/login', async (c) => c.redirect(await login(c, 7), 303))
    app.get('/me', loginRequired(), (c) => {
      expectTypeOf(c.var.session).toEqualTypeOf<Session>()
      const user = requireUser(c)
      expectTypeOf(user).toEqualTypeOf<UserId>()
      return c.json({ user })
    })
    const login1 = await app.request('http://localhost/login', { method: 'POST' })
    const cookie = login1.headers.getSetCookie().find((l) => l.startsWith('sessionid='))!.split(';')[0]!
    expect(await (await app.request('http://localhost/me', { headers: { Cookie: cookie, Accept: 'application/json' } })).json()).toEqual({ user: 7 })
  })

  it('requireUser on an unguarded route throws a CONFIG BackwardError that says what to do', async () => {
    const app = new Hono()
    app.use(session({ store: memoryStore(), secret: 'k'.repeat(32) }))
    let caught: unknown
    app.get('/open', (c) => c.text(String(requireUser(c))))
    app.onError((error, c) => ((caught = error), c.text('no', 500)))
    expect((await app.request('http://localhost/open')).status).toBe(500)
    expect(caught).toBeInstanceOf(BackwardError)
    expect(isBackwardError(caught, 'CONFIG')).toBe(true)
    expect((caught as Error).message).toMatch(/loginRequired\(\)/)
  })
})
