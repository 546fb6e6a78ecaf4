/** The demo's Hono app: backward/server on a tiny social network. `server.ts` runs it. */
import { Hono } from 'hono'
import { csrf } from 'hono/csrf'
import { secureHeaders } from 'hono/secure-headers'
import { bodyLimit } from 'hono/body-limit'
import { serveStatic } from '@hono/node-server/serve-static'
import { backwardRoutes, getUserId, idempotency, login, loginRequired, logout, session, type SessionStore } from 'backward/server'
import { PEOPLE, checkPassword, createData } from './data.ts'
import { loginPage, noJsPage } from './pages.ts'

export interface DemoOptions {
  /** Session store. */
  store: SessionStore
  /** Store for Idempotency-Key records. */
  idempotencyStore: SessionStore
  /** Built SPA (demo/dist). */
  staticDir: string
}

const MAX_IMAGE_BYTES = 5 * 1024 * 1024

export function createDemoApp({ store, idempotencyStore, staticDir }: DemoOptions) {
  const data = createData()
  const app = new Hono()
  const user = (c: Parameters<typeof getUserId>[0]) => getUserId(c) as string | null

  app.use(secureHeaders({ referrerPolicy: 'same-origin', contentSecurityPolicy: { defaultSrc: ["'self'"], imgSrc: ["'self'", 'blob:', 'data:'], styleSrc: ["'self'"], scriptSrc: ["'self'"] } }))
  // Hono's csrf() refuses cross-site form posts (login CSRF included) by Origin / Sec-Fetch-Site.
  app.use(csrf())
  app.use(session({ store }))

  // --- login, logout: server-rendered so they work without JavaScript
  app.get('/login', (c) => {
    return c.html(loginPage({ waiting: c.req.query('next') !== undefined }))
  })
  app.post('/login', bodyLimit({ maxSize: 16 * 1024 }), async (c) => {
    const form = await c.req.parseBody()
    const userId = checkPassword(form.username, form.password)
    if (userId === null) {
      return c.html(loginPage({ waiting: c.req.query('next') !== undefined, error: 'Wrong username or password.', username: typeof form.username === 'string' ? form.username : '' }), 401)
    }
    // login() answers where to go: backward's landing, with a one-time proof of this login and the
    // `next` of this request's query (the landing checks it with isSafeRedirect).
    return c.redirect(await login(c, userId, { remember: form.remember === 'on' }), 303)
  })
  app.post('/logout', (c) => {
    logout(c)
    return c.redirect('/', 303)
  })
  app.route('/backward', backwardRoutes({ loginUrl: '/login', app }))

  // --- the API the SPA talks to
  app.get('/api/me', (c) => c.json({ user: user(c) }))
  app.get('/api/people', (c) => {
    const me = user(c)
    const following = me ? data.follows(me) : new Set<string>()
    return c.json(PEOPLE.map((p) => ({ ...p, following: following.has(p.id) })))
  })
  app.get('/api/activity', (c) => c.json(data.activity()))
  app.get('/api/posts', (c) => c.json(data.posts().map(({ image, ...post }) => ({ ...post, image: image && { name: image.name, type: image.type, size: image.size, sha256: image.sha256, url: `/api/posts/${post.id}/image` } }))))
  app.get('/api/posts/:id/image', (c) => {
    const image = data.posts().find((p) => p.id === Number(c.req.param('id')))?.image
    if (!image) return c.notFound()
    return c.body(image.bytes.slice().buffer, 200, { 'Content-Type': image.type || 'application/octet-stream', 'X-Content-Type-Options': 'nosniff' })
  })

  app.use('/api/follow/*', loginRequired(), idempotency({ store: idempotencyStore }))
  app.post('/api/follow/:id', (c) => {
    const person = PEOPLE.find((p) => p.id === c.req.param('id'))
    if (!person) return c.json({ error: 'No such person' }, 404)
    data.follow(user(c)!, person.id, 'sdk')
    return c.json({ following: person.id, name: person.name })
  })
  app.delete('/api/follow/:id', (c) => {
    data.unfollow(user(c)!, c.req.param('id'))
    return c.json({ following: null })
  })

  app.use('/api/posts', loginRequired(), idempotency({ store: idempotencyStore }))
  app.post('/api/posts', bodyLimit({ maxSize: MAX_IMAGE_BYTES + 64 * 1024 }), async (c) => {
    const form = await c.req.parseBody()
    const text = typeof form.text === 'string' ? form.text.trim().slice(0, 500) : ''
    const file = form.image instanceof File && form.image.size > 0 ? form.image : null
    if (!text && !file) return c.json({ error: 'Write something or attach an image.' }, 422)
    if (file && !file.type.startsWith('image/')) return c.json({ error: 'Attach an image file.' }, 422)
    const post = data.addPost(user(c)!, text, file, file ? new Uint8Array(await file.arrayBuffer()) : null)
    return c.json({ id: post.id, text: post.text, image: post.image && { name: post.image.name, size: post.image.size, sha256: post.image.sha256, url: `/api/posts/${post.id}/image` } }, 201)
  })

  // --- the no-JavaScript page: plain HTML forms, recorded and replayed by the server
  app.get('/nojs', (c) => {
    const me = user(c)
    return c.html(noJsPage({ user: me, following: me ? data.follows(me) : new Set(), done: c.req.query('done') }))
  })
  app.post('/nojs/follow/:id', loginRequired(), (c) => {
    const person = PEOPLE.find((p) => p.id === c.req.param('id'))
    if (!person) return c.text('No such person', 404)
    data.follow(user(c)!, person.id, 'no-js')
    return c.redirect(`/nojs?done=${person.id}`, 303)
  })

  // --- the SPA
  app.use('/*', serveStatic({ root: staticDir }))
  app.get('*', serveStatic({ root: staticDir, path: 'index.html' }))

  return { app, data }
}
