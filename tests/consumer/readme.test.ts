/**
 * Proof as a new user: the packed tarball installed into a fresh app outside the repo, with the
 * lowest and the newest hono of the peer range; every ts block of the README copied verbatim and
 * type-checked with create-vite's strict settings; the quick start built with Vite and served with
 * tsx, and its journey driven in real Chromium (Follow while logged out → login → back on the page,
 * the follow ran once); the PostgreSQL and Redis samples used as session stores against the real
 * services.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgresService, redisService, titled } from '../helpers/services.ts'
import { packOnce, pkg } from './pack.ts'
import { consumerProject, readme, run, typeCheck } from './project.ts'
import { readmeFiles } from './readme.ts'

const lowest = /^\^(\d+\.\d+\.\d+)$/.exec(pkg.peerDependencies.hono ?? '')?.[1]
if (lowest === undefined) throw new Error(`[consumer] peerDependencies.hono should be "^X.Y.Z", not ${pkg.peerDependencies.hono}`)
// The newest hono the range is checked at is the one our own tests run on (pinned: CI stays
// reproducible); raise the devDependency to check a newer release.
const newest = pkg.devDependencies.hono!
const honos = [...new Set([lowest, newest])]

const postgres = await postgresService()
const redis = await redisService()

// Both installs start at once; each hono's suite waits for its own.
let projects: Map<string, Promise<string>>
let browser: Browser
beforeAll(async () => {
  const tarball = packOnce()
  projects = new Map(honos.map((hono) => [hono, tarball.then((path) => consumerProject(path, hono))]))
  projects.forEach((project) => project.catch(() => {})) // reported by the suite that awaits it
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  })
}, 240_000)
afterAll(async () => {
  await browser?.close()
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** `npx tsx server.ts` as the README says, in its own process group so that it ends with its children. */
async function startServer(dir: string): Promise<{ url: string; log: () => string; stop: () => void }> {
  const port = await freePort()
  const child: ChildProcess = spawn(join(dir, 'node_modules/.bin/tsx'), ['server.ts'], {
    cwd: dir,
    env: { ...process.env, PORT: String(port), BACKWARD_SECRET: randomBytes(32).toString('base64') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk))
  const stop = () => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGTERM')
  }
  const url = `http://localhost:${port}`
  for (const started = Date.now(); ; await new Promise((done) => setTimeout(done, 100))) {
    if (child.exitCode !== null) throw new Error(`[consumer] tsx server.ts exited with ${child.exitCode}:\n${output}`)
    if (Date.now() - started > 20_000) {
      stop()
      throw new Error(`[consumer] tsx server.ts did not answer on ${url} within 20 s:\n${output}`)
    }
    const res = await fetch(url + '/').catch(() => null)
    if (res?.ok) break
  }
  return { url, log: () => output, stop }
}

// Uses a README store module the way its prose says: app.use(session({ store, secret })).
const CHECK_STORE = `import { Hono } from 'hono'
import { session, type BackwardEnv, type SessionStore } from 'backward/server'

const { store } = (await import('./' + process.argv[2])) as { store: SessionStore }
const app = new Hono<BackwardEnv>()
app.use(session({ store, secret: '${'s'.repeat(32)}' }))
app.post('/', (c) => {
  c.var.session.set('cart', { items: [42] })
  return c.text('saved')
})
app.get('/', (c) => c.json({ cart: c.var.session.get('cart') ?? null, key: c.var.session.key !== null }))

const saved = await app.request('/', { method: 'POST' })
const cookie = saved.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')
const read = await app.request('/', { headers: { cookie } })
console.log(JSON.stringify({ saved: saved.status, cookie: cookie.length > 0, read: read.status, body: await read.json() }))
process.exit(0) // the sample's pool or client would keep the process alive
`

async function roundTrip(dir: string, module: string): Promise<unknown> {
  writeFileSync(join(dir, 'check-store.ts'), CHECK_STORE)
  const output = await run(join(dir, 'node_modules/.bin/tsx'), ['check-store.ts', module], { cwd: dir, timeout: 30_000 })
  return JSON.parse(output.trim().split('\n').at(-1)!)
}

describe('README code blocks', () => {
  it('name their files, and make the quick start and both store samples', () => {
    const { files, client } = readme() // throws, naming the line, on a ts block without its file name
    expect([...files.keys()]).toEqual(expect.arrayContaining(['client.ts', 'index.html', 'server.ts', 'store-postgres.ts', 'store-redis.ts']))
    expect(client).toEqual(['client.ts'])
  })

  it('the convention: a ts block starts with // <file>.ts, same-name blocks join in order, other languages pass', () => {
    const md = (...fences: string[]) => fences.map((fence) => fence.replace(/~~~/g, '```')).join('\n\nSome prose.\n\n')
    const files = readmeFiles(md('~~~ts\n// a.ts\nconst x = 1\n~~~', '~~~sh\nnpm i\n~~~', '~~~ts\n// a.ts\nconsole.log(x)\n~~~', '~~~html\n<!-- index.html -->\n<p></p>\n~~~'))
    expect(Object.fromEntries(files)).toEqual({ 'a.ts': '// a.ts\nconst x = 1\n\n// a.ts\nconsole.log(x)\n', 'index.html': '<!-- index.html -->\n<p></p>\n' })
    expect(() => readmeFiles(md('~~~sh\nls\n~~~', '~~~ts\nconst y = 2\n~~~'))).toThrow(/README\.md:7: the ```ts block starts with "const y = 2"/)
    expect(() => readmeFiles(md('~~~typescript\nlet z\n~~~'))).toThrow(/not "\/\/ <file>\.ts"/)
  })
})

describe.each(honos)('README as a new user, hono %s', (hono) => {
  let dir: string
  beforeAll(async () => {
    dir = await projects.get(hono)!
  }, 240_000)

  it('type-checks every ts block with create-vite strict settings', async () => {
    await typeCheck(dir)
  }, 60_000)

  it('quick start: Follow while logged out → login → back on the page, followed once', async () => {
    await run(join(dir, 'node_modules/.bin/vite'), ['build'], { cwd: dir, timeout: 60_000 })
    const server = await startServer(dir)
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      await page.goto(server.url + '/')
      await page.click('#follow')
      await page.waitForURL((url) => url.pathname === '/login', { timeout: 10_000 })
      expect(new URL(page.url()).searchParams.get('next')).toBe('/')
      await page.fill('input[name=username]', 'demo')
      await page.fill('input[name=password]', 'demo1234')
      await page.getByRole('button', { name: 'Log in' }).click()
      await page.waitForURL(server.url + '/', { timeout: 10_000 })
      await expect.poll(() => page.textContent('#status'), { timeout: 10_000 }).toBe('Following Ada ✓')
      // Once: a reload after the replay sends nothing again.
      await page.reload()
      await page.waitForTimeout(500)
      expect(server.log().match(/now follows ada/g), server.log()).toHaveLength(1)
    } finally {
      await context.close()
      server.stop()
    }
  }, 90_000)

  it.skipIf(!postgres.ok)(titled('store-postgres.ts: a session round-trips through PostgreSQL', postgres), async () => {
    expect(await roundTrip(dir, 'store-postgres.ts')).toEqual({ saved: 200, cookie: true, read: 200, body: { cart: { items: [42] }, key: true } })
  }, 40_000)

  it.skipIf(!redis.ok)(titled('store-redis.ts: a session round-trips through Redis', redis), async () => {
    expect(await roundTrip(dir, 'store-redis.ts')).toEqual({ saved: 200, cookie: true, read: 200, body: { cart: { items: [42] }, key: true } })
  }, 40_000)
})
