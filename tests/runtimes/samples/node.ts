// node.ts
// Run: npx tsx node.ts (PORT, default 3000; BACKWARD_SECRET: 32+ random characters)
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { csrf } from 'hono/csrf'
import { backwardRoutes, login, loginRequired, memoryStore, requireUser, session, type BackwardEnv } from 'backward/server'

const app = new Hono<BackwardEnv>()
app.use(csrf()) // refuse cross-site form posts, login CSRF included
app.use(session({ store: memoryStore(), secret: process.env.BACKWARD_SECRET })) // one process: use fileStore, redisStore or postgresStore to keep sessions
app.get('/me', loginRequired(), (c) => c.text(`Hello, ${requireUser(c)}`))
app.post('/login', async (c) => {
  const form = await c.req.parseBody()
  const userId = form.password === 'demo' ? String(form.username) : null // your user store here
  if (userId === null) return c.text('Wrong username or password.', 401)
  return c.redirect(await login(c, userId), 303)
})
app.route('/backward', backwardRoutes({ loginUrl: '/login', app }))

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000) })
