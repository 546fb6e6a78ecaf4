// worker.ts
// Run: npx wrangler dev (wrangler.toml: main = "worker.ts", a [[d1_databases]] binding named DB, and a
// cron trigger; BACKWARD_SECRET: 32+ random characters, set with `npx wrangler secret put BACKWARD_SECRET`)
// Table, once: node -e "import('backward/server/d1').then((m) => console.log(m.D1_SESSIONS_SQL))" > migrations/0001_backward_sessions.sql
//              npx wrangler d1 migrations apply DB --remote
import { Hono, type MiddlewareHandler } from 'hono'
import { csrf } from 'hono/csrf'
import { backwardRoutes, login, loginRequired, requireUser, session, type BackwardEnv } from 'backward/server'
import { d1Store, type D1DatabaseLike } from 'backward/server/d1'

type Bindings = { DB: D1DatabaseLike; BACKWARD_SECRET: string }
const app = new Hono<BackwardEnv & { Bindings: Bindings }>()
app.use(csrf()) // refuse cross-site form posts, login CSRF included
// Bindings come with each request, so session() is built from the first request's env, once per isolate.
let sessions: MiddlewareHandler | undefined
app.use((c, next) => (sessions ??= session({ store: d1Store({ db: c.env.DB }), secret: c.env.BACKWARD_SECRET }))(c, next))
app.get('/me', loginRequired(), (c) => c.text(`Hello, ${requireUser(c)}`))
app.post('/login', async (c) => {
  const form = await c.req.parseBody()
  const userId = form.password === 'demo' ? String(form.username) : null // your user store here
  if (userId === null) return c.text('Wrong username or password.', 401)
  return c.redirect(await login(c, userId), 303)
})
app.route('/backward', backwardRoutes({ loginUrl: '/login', app }))

export default {
  fetch: app.fetch,
  // The cron trigger purges expired sessions: [triggers] crons = ["17 3 * * *"]
  async scheduled(_controller: unknown, env: Bindings) {
    await d1Store({ db: env.DB }).clearExpired()
  },
}
