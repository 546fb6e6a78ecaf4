// bun.ts
// Run: bun run bun.ts (PORT, default 3000; BACKWARD_SECRET: 32+ random characters)
import { Hono } from 'hono'
import { csrf } from 'hono/csrf'
import { backwardRoutes, login, loginRequired, memoryStore, requireUser, session, type BackwardEnv } from 'backward/server'

const app = new Hono<BackwardEnv>()
app.use(csrf()) // refuse cross-site form posts, login CSRF included
app.use(session({ store: memoryStore(), secret: process.env.BACKWARD_SECRET })) // one process: use redisStore or postgresStore for more
app.get('/me', loginRequired(), (c) => c.text(`Hello, ${requireUser(c)}`))
app.post('/login', async (c) => {
  const form = await c.req.parseBody()
  const userId = form.password === 'demo' ? String(form.username) : null // your user store here
  if (userId === null) return c.text('Wrong username or password.', 401)
  return c.redirect(await login(c, userId), 303)
})
app.route('/backward', backwardRoutes({ loginUrl: '/login', app }))

export default { port: Number(process.env.PORT ?? 3000), fetch: app.fetch }
