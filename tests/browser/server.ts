// A real Hono server for the browser tests, built from backward/server: sessions in memory, a login
// wall on /api/*, idempotent replays, backward's login redirect route, and a test page whose script
// (tests/browser/page.ts) is bundled on the fly by esbuild. Run: `npx tsx tests/browser/server.ts`
// (PORT=0 picks a free port; the first line printed is `listening on <url>`).
import { serve } from '@hono/node-server'
import { build } from 'esbuild'
import { Hono } from 'hono'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { backwardRoutes, getUserId, idempotency, login, loginRequired, logout, memoryStore, session } from '../../src/server/index.ts'
import { IDEMPOTENCY_HEADER } from '../../src/shared/protocol.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))

// The page script and its on-demand chunks (hand-off, replay, forms), as an app's bundler splits them.
const bundle = await build({
  entryPoints: { page: 'tests/browser/page.ts' },
  absWorkingDir: root,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outdir: 'assets',
  write: false,
  logLevel: 'warning',
})
const assets = new Map(bundle.outputFiles.map((file) => [file.path.split('/').pop()!, file.text]))

const sha256 = (bytes: ArrayBuffer) => createHash('sha256').update(new Uint8Array(bytes)).digest('hex')

/**
 * What the tests assert on: every request that carried an Idempotency-Key, and every handler run.
 * `requests` is every /api request with the status it got and whether the idempotency layer answered
 * it as a repeat (the fault trials count raw sends, executions and double sends from these).
 */
const state = {
  arrivals: [] as { key: string; path: string }[],
  runs: [] as Record<string, unknown>[],
  requests: [] as { path: string; key: string | null; status: number; replayed: boolean }[],
}
// Statuses for the next replays (requests with an Idempotency-Key) to get, before the login wall and
// the idempotency layer: a server failing before the handler runs (POST /test/fail). By path prefix,
// so that concurrent fault trials (paths /api/fault/t<trial>-<n>) each get their own.
const failNext = new Map<string, number[]>()

const app = new Hono()
app.use(session({ store: memoryStore() }))

app.get('/assets/:file', (c) => {
  const text = assets.get(c.req.param('file'))
  return text === undefined ? c.notFound() : c.body(text, 200, { 'Content-Type': 'text/javascript; charset=utf-8' })
})

const PAGE = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>backward test page</title>
<h1>backward</h1>
<form id="post" data-backward method="post" action="/api/form" enctype="multipart/form-data">
  <input name="title" value="hello">
  <input type="file" name="doc">
  <button id="save" name="intent" value="save" formaction="/api/form?via=button">Save</button>
  <button id="draft" name="intent" value="draft" formenctype="application/x-www-form-urlencoded">Draft</button>
</form>
<script type="module" src="/assets/page.js"></script>
</html>`
app.get('/app', (c) => c.html(PAGE))

app.get('/login', (c) => {
  const next = c.req.query('next') ?? '/app'
  return c.html(`<!doctype html><meta charset="utf-8"><title>Log in</title>
<form method="post" action="/login?next=${encodeURIComponent(next)}">
  <input name="user" autocomplete="username"><button id="login">Log in</button>
</form>`)
})
app.post('/login', async (c) => {
  const form = await c.req.formData()
  // As an app's login handler does: login() answers backward's landing (a one-time proof, and the
  // `next` of this request's query), which replays and returns there.
  return c.redirect(await login(c, String(form.get('user') ?? 'alice'), { next: c.req.query('next') ?? '/app' }), 303)
})
app.post('/logout', (c) => {
  logout(c)
  return c.json({ ok: true })
})
app.route('/backward', backwardRoutes({ loginUrl: '/login' }))

// Counted before the idempotency layer: what the browser sent, not what the handler ran.
app.use('/api/*', async (c, next) => {
  const key = c.req.header(IDEMPOTENCY_HEADER)
  const path = new URL(c.req.url).pathname
  if (key !== undefined) state.arrivals.push({ key, path })
  const entry = { path, key: key ?? null, status: 0, replayed: false }
  state.requests.push(entry)
  const fail = key === undefined ? undefined : [...failNext].find(([prefix]) => path.startsWith(prefix))?.[1].shift()
  if (fail !== undefined) {
    entry.status = fail
    return c.json({ injected: true }, fail as 500)
  }
  await next()
  entry.status = c.res.status
  entry.replayed = c.res.headers.get('Idempotent-Replayed') === 'true'
})
// Query flags of the handler (tests/browser/scenarios.spec.ts): `delay=<ms>` holds the answer that
// long (its key stays "in progress"), `status=<code>` answers with that status after the run.
app.all('/api/*', loginRequired(), idempotency({ store: memoryStore() }), async (c) => {
  const url = new URL(c.req.url)
  const type = c.req.header('content-type') ?? ''
  const run: Record<string, unknown> = {
    method: c.req.method,
    path: url.pathname + url.search,
    key: c.req.header(IDEMPOTENCY_HEADER) ?? null,
    user: getUserId(c),
    contentType: type,
    // Every header as received, and the SHA-256 of the body's exact bytes (a form's too: its fields
    // below are parsed), read off a clone so that the parsing below still has the body.
    headers: Object.fromEntries(c.req.raw.headers),
    raw: sha256(await c.req.raw.clone().arrayBuffer()),
  }
  if (type.startsWith('multipart/form-data') || type.startsWith('application/x-www-form-urlencoded')) {
    const fields: Record<string, unknown> = {}
    for (const [name, value] of await c.req.formData()) {
      fields[name] =
        typeof value === 'string' ? value : { name: value.name, type: value.type, size: value.size, sha256: sha256(await value.arrayBuffer()) }
    }
    run.fields = fields
  } else {
    run.sha256 = sha256(await c.req.arrayBuffer())
  }
  state.runs.push(run)
  const delay = Number(url.searchParams.get('delay') ?? 0)
  if (delay) await new Promise((resolve) => setTimeout(resolve, delay))
  const status = Number(url.searchParams.get('status') ?? 200)
  if (status != 200) return c.json({ ok: false, status, run: state.runs.length }, status as 422)
  return c.json({ ok: true, run: state.runs.length })
})

app.get('/test/state', (c) => c.json(state))
app.post('/test/reset', (c) => {
  state.arrivals = []
  state.runs = []
  state.requests = []
  failNext.clear()
  return c.json({ ok: true })
})
app.post('/test/fail', async (c) => {
  const { prefix, statuses } = (await c.req.json()) as { prefix: string; statuses: number[] }
  failNext.set(prefix, statuses)
  return c.json({ ok: true })
})

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: '127.0.0.1' }, (info) => {
  console.log(`listening on http://127.0.0.1:${info.port}`)
})
