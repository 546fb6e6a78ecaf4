// d1Store on a real D1 database: miniflare's (workerd's SQLite), reached from Node through the binding
// miniflare hands out. The store contract, migrate(), the error mapping, a session() round trip through
// app.request(), and the README's Workers sample bundled without nodejs_compat and served on workerd.
import { readFileSync } from 'node:fs'
import { build } from 'esbuild'
import { Hono } from 'hono'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { login, logout, session, type BackwardEnv } from '../../src/server/index.ts'
import { D1_SESSIONS_SQL, d1SessionsSql, d1Store, type D1DatabaseLike } from '../../src/server/stores/d1.ts'
import { createJar } from '../helpers/jar.ts'
import { describeStoreContract, freshKey } from './store-contract.ts'

const SECRET = 'x'.repeat(32)
const later = () => Date.now() + 60_000
const mf = new Miniflare({ modules: true, script: 'export default { fetch: () => new Response(null, { status: 404 }) }', compatibilityDate: '2026-04-01', d1Databases: ['DB'] })
const db = (await mf.getD1Database('DB')) as D1DatabaseLike & { exec(sql: string): Promise<unknown> }
afterAll(() => mf.dispose())

let tables = 0
const newTable = () => `t${++tables}`
const count = async (table: string) => (await db.prepare(`SELECT count(*) AS n FROM "${table}"`).first<{ n: number }>())!.n

async function migrated(table = newTable()) {
  const store = d1Store({ db, table })
  await store.migrate()
  return { store, table }
}

/** A binding that records each SQL text and its values, then passes the statement to the real one. */
function recording(inner: D1DatabaseLike = db) {
  const sent: { sql: string; values: unknown[] }[] = []
  const wrapped: D1DatabaseLike = {
    prepare(sql) {
      const entry = { sql, values: [] as unknown[] }
      sent.push(entry)
      const statement = inner.prepare(sql)
      return {
        bind: (...values) => ((entry.values = values), statement.bind(...values)),
        run: () => statement.run(),
        first: () => statement.first(),
      } as ReturnType<D1DatabaseLike['prepare']>
    },
    batch: (statements) => inner.batch(statements),
  }
  return { db: wrapped, sent }
}

/** A binding whose every call fails the way D1 fails with `message`. */
function failing(message: string): D1DatabaseLike {
  const fail = async () => {
    throw new Error(message)
  }
  const statement = { bind: () => statement, run: fail, first: fail }
  return { prepare: () => statement, batch: fail }
}

let contractTable = ''
describeStoreContract(
  'd1Store (miniflare D1)',
  async () => (await migrated((contractTable = newTable()))).store,
  async () => {
    await db.prepare(`DROP TABLE "${contractTable}"`).run()
  },
)

describe('d1Store', () => {
  it('migrate creates the table and the expiry index, and may run twice', async () => {
    const { store, table } = await migrated()
    await store.migrate()
    const columns = await db.prepare(`SELECT name, type, pk FROM pragma_table_info('${table}') ORDER BY cid`).bind().run()
    expect((columns as unknown as { results: unknown[] }).results).toEqual([
      { name: 'key', type: 'TEXT', pk: 1 },
      { name: 'data', type: 'TEXT', pk: 0 },
      { name: 'expires_at', type: 'INTEGER', pk: 0 },
    ])
    const index = await db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL").bind(table).first<{ sql: string }>()
    expect(index?.sql).toMatch(/ON "t\d+" \("expires_at"\)/)
  })

  it('exports the default SQL, one statement per line (db.exec and wrangler run it as is)', async () => {
    expect(D1_SESSIONS_SQL).toBe(d1SessionsSql('backward_sessions'))
    expect(D1_SESSIONS_SQL.split('\n')).toEqual([expect.stringMatching(/^CREATE TABLE IF NOT EXISTS "backward_sessions" \(/), expect.stringMatching(/^CREATE INDEX IF NOT EXISTS "backward_sessions_expires_at_idx" ON "backward_sessions"/)])
    const table = newTable()
    await db.exec(d1SessionsSql(table))
    await db.exec(d1SessionsSql(table)) // again: IF NOT EXISTS
    const store = d1Store({ db, table })
    const key = await freshKey()
    expect(await store.create(key, { via: 'exec' }, later())).toBe(true)
    expect(await store.load(key)).toEqual({ via: 'exec' })
  })

  it('checks expiry in SQL against the injected clock', async () => {
    let now = 1_000_000
    const table = newTable()
    const store = d1Store({ db, table, now: () => now })
    await store.migrate()
    const key = await freshKey()
    expect(await store.create(key, { a: 1 }, now + 1000)).toBe(true)
    expect(await store.loadEntry(key)).toEqual({ data: { a: 1 }, expiresAt: 1_001_000 })
    expect(await store.create(key, { a: 2 }, now + 5000)).toBe(false) // live: never overwritten
    now += 1000 // expires_at > now is false at the exact expiry
    expect(await store.load(key)).toBeNull()
    expect(await store.update(key, { a: 3 }, now + 5000)).toBe(false)
    expect(await store.touch(key, now + 5000)).toBe(false)
    expect(await store.create(key, { a: 4 }, now + 5000)).toBe(true) // a dead key may be taken over
    expect(await store.load(key)).toEqual({ a: 4 })
    expect(await count(table)).toBe(1)
  })

  it('does not resurrect a session deleted through another handle on the same database', async () => {
    const { store, table } = await migrated()
    const key = await freshKey()
    await store.create(key, { user: 'u1' }, later())
    await db.prepare(`DELETE FROM "${table}" WHERE key = ?1`).bind(key).run() // another isolate logs out
    expect(await store.update(key, { user: 'u1', cart: 3 }, later())).toBe(false)
    expect(await store.touch(key, later())).toBe(false)
    expect(await count(table)).toBe(0)
  })

  it('concurrent creates of one key: exactly one wins', async () => {
    const { store } = await migrated()
    const key = await freshKey()
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.create(key, { claim: i }, later())))
    expect(results.filter(Boolean)).toHaveLength(1)
    expect(await store.load(key)).toEqual({ claim: results.indexOf(true) })
  })

  it('clearExpired removes 2,500 expired rows in batches and leaves live rows alone', async () => {
    const { table } = await migrated()
    const { db: counted, sent } = recording()
    const store = d1Store({ db: counted, table })
    await db
      .prepare(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 2500) INSERT INTO "${table}" SELECT printf('%064x', n), '{}', ?1 FROM g`)
      .bind(Date.now() - 60_000)
      .run()
    const live = [await freshKey(), await freshKey()]
    for (const key of live) await store.create(key, { v: 'live' }, later())
    sent.length = 0
    const started = performance.now()
    expect(await store.clearExpired({ batchSize: 1000 })).toBe(2500)
    console.log(`[d1] clearExpired removed 2500 rows in ${(performance.now() - started).toFixed(0)} ms (miniflare)`)
    expect(sent.map((s) => s.values[1])).toEqual([1000, 1000, 1000]) // the short third batch ends it
    expect(await count(table)).toBe(2)
    for (const key of live) expect(await store.load(key)).toEqual({ v: 'live' })
    expect(await store.clearExpired()).toBe(0)
    await expect(store.clearExpired({ batchSize: 0 })).rejects.toMatchObject({ code: 'CONFIG' })
    await expect(store.clearExpired({ batchSize: 1.5 })).rejects.toMatchObject({ code: 'CONFIG' })
  })

  it('keeps data SQLite text would mangle (NUL, lone surrogates) and the key order', async () => {
    const { store } = await migrated()
    const key = await freshKey()
    const data = { z: 1, a: 'nul \u0000 byte', lone: '\ud800', b: 2 }
    await store.create(key, data, later())
    const loaded = await store.load(key)
    expect(loaded).toEqual(data)
    expect(Object.keys(loaded!)).toEqual(['z', 'a', 'lone', 'b'])
  })

  it('carries a session() round trip through app.request(), with login rotation and logout', async () => {
    const { store, table } = await migrated()
    const app = new Hono<BackwardEnv>()
    app.use(session({ store, secret: SECRET }))
    app.post('/cart', (c) => (c.var.session.set('cart', (c.var.session.get('cart', 0) as number) + 1), c.json({ cart: c.var.session.get('cart') })))
    app.get('/cart', (c) => c.json({ cart: c.var.session.get('cart', 0) }))
    app.post('/login', async (c) => c.text(await login(c, 'ada')))
    app.post('/logout', (c) => (logout(c), c.text('bye')))
    const jar = createJar()
    const send = async (method: string, path: string) => {
      const res = await app.request(path, { method, headers: { Cookie: jar.header() } })
      jar.store(res)
      return res
    }
    expect(await (await send('POST', '/cart')).json()).toEqual({ cart: 1 })
    expect(await (await send('POST', '/cart')).json()).toEqual({ cart: 2 })
    const anonymous = jar.cookies.get('sessionid')!
    const rows = async () => (await db.prepare(`SELECT key FROM "${table}"`).bind().run()) as unknown as { results: { key: string }[] }
    expect((await rows()).results).toEqual([{ key: expect.stringMatching(/^[0-9a-f]{64}$/) }])
    expect((await rows()).results[0]!.key).not.toContain(anonymous) // the store sees only the hash

    await send('POST', '/login')
    expect(jar.cookies.get('sessionid')).not.toBe(anonymous) // rotated
    expect(await (await send('GET', '/cart')).json()).toEqual({ cart: 2 }) // anonymous data kept
    expect((await rows()).results).toHaveLength(1) // the old row is gone

    const loggedIn = jar.cookies.get('sessionid')!
    await send('POST', '/logout')
    expect(await count(table)).toBe(0)
    // The old cookie, replayed after logout, loads nothing and creates nothing.
    const stale = await app.request('/cart', { headers: { Cookie: `sessionid=${loggedIn}` } })
    expect(await stale.json()).toEqual({ cart: 0 })
    expect(await count(table)).toBe(0)
  })

  describe('errors', () => {
    it('a missing table is a CONFIG error that says to migrate', async () => {
      const store = d1Store({ db, table: 'never_migrated' })
      const key = await freshKey()
      await expect(store.load(key)).rejects.toMatchObject({ code: 'CONFIG', message: expect.stringContaining('store.migrate()') })
      await expect(store.create(key, {}, later())).rejects.toMatchObject({ code: 'CONFIG' })
      await expect(store.update(key, {}, later())).rejects.toMatchObject({ code: 'CONFIG' })
      await expect(store.delete(key)).rejects.toMatchObject({ code: 'CONFIG' })
      await expect(store.clearExpired()).rejects.toMatchObject({ code: 'CONFIG' })
    })

    it('any other D1 failure is STORE_UNAVAILABLE, and the message carries no key or data', async () => {
      const store = d1Store({ db: failing('D1_ERROR: Network connection lost.') })
      const key = await freshKey()
      for (const attempt of [store.load(key), store.create(key, { secret: 's3cr3t' }, later()), store.update(key, {}, later()), store.delete(key), store.touch(key, later()), store.clearExpired(), store.migrate()]) {
        const error = await attempt.then(() => null, (e: unknown) => e as Error & { code: string })
        expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE' })
        expect(error!.message).not.toContain(key)
        expect(error!.message).not.toContain('s3cr3t')
      }
    })

    it('a "no such table" on the cause (as deployed D1 reports it) is CONFIG too', async () => {
      const error = Object.assign(new Error('D1_ERROR'), { cause: new Error('no such table: backward_sessions: SQLITE_ERROR') })
      const statement = { bind: () => statement, run: () => Promise.reject(error), first: () => Promise.reject(error) }
      const store = d1Store({ db: { prepare: () => statement, batch: () => Promise.reject(error) } })
      await expect(store.load(await freshKey())).rejects.toMatchObject({ code: 'CONFIG', cause: error })
    })
  })

  describe('security', () => {
    it.each(['sessions; DROP TABLE users', 'sessions"', '"sessions"', 'main.sessions', 'Sessions', '1sessions', 'sessions--', '', 'x'.repeat(65), 'sqlite_master', 'sqlite_sessions', ' sessions'])('rejects the table name %j at start-up', (table) => {
      expect(() => d1Store({ db, table })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      expect(() => d1SessionsSql(table)).toThrow(expect.objectContaining({ code: 'CONFIG' }))
    })

    it('refuses a missing or wrong binding at start-up', () => {
      expect(() => d1Store({ db: undefined as never })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      expect(() => d1Store({ db: {} as never })).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringContaining('env.DB') }))
      expect(() => d1Store(undefined as never)).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      expect(d1Store({ db, table: '_s1' })).toBeTruthy()
    })

    it('rejects hostile store keys and non-finite expiries before any query', async () => {
      const { db: spy, sent } = recording()
      const store = d1Store({ db: spy })
      for (const key of ['*', 'a\nb', '../x', "'; DROP TABLE backward_sessions; --", '{tag}', `${'0'.repeat(63)}'`, 'A'.repeat(64)]) {
        await expect(store.load(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.loadEntry(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.create(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.update(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.delete(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.touch(key, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
      }
      const key = await freshKey()
      for (const bad of [NaN, Infinity, '1' as never]) await expect(store.create(key, {}, bad)).rejects.toMatchObject({ code: 'CONFIG' })
      expect(sent).toEqual([])
    })

    it('sends keys and data only as bound values, never in the SQL text', async () => {
      const { table } = await migrated()
      const { db: spy, sent } = recording()
      const store = d1Store({ db: spy, table })
      const key = await freshKey()
      const hostile = { v: "'); DROP TABLE sqlite_master; --" }
      await store.create(key, hostile, later())
      await store.update(key, hostile, later())
      expect(await store.load(key)).toEqual(hostile)
      const texts = sent.map((s) => s.sql).join('\n')
      expect(texts).not.toContain('DROP')
      expect(texts).not.toContain(key)
      expect(sent.every((s) => s.values[0] === key)).toBe(true)
    })

    it('the module imports nothing but backward itself (no node:*, no driver)', () => {
      const imports = [...readFileSync('src/server/stores/d1.ts', 'utf8').matchAll(/^import .* from '([^']+)'/gm)].map((m) => m[1])
      expect(imports).toEqual(['../../shared/errors.ts', '../store.ts'])
    })
  })
})

describe("the README's Workers sample, bundled without nodejs_compat and served on workerd with D1", () => {
  let worker: Miniflare | undefined
  beforeAll(async () => {
    const result = await build({
      entryPoints: ['tests/server/d1-worker-sample.ts'],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      conditions: ['source'], // `backward/server` resolves to src/ here; an app's install resolves to dist/
      target: 'es2022',
      logLevel: 'silent',
    })
    worker = new Miniflare({
      modules: true,
      script: result.outputFiles[0]!.text,
      compatibilityDate: '2026-04-01',
      compatibilityFlags: [],
      d1Databases: ['DB'],
      bindings: { BACKWARD_SECRET: SECRET },
    })
    // What `wrangler d1 migrations apply` does with the migration file the sample's header writes.
    await ((await worker.getD1Database('DB')) as { exec(sql: string): Promise<unknown> }).exec(D1_SESSIONS_SQL)
  })
  afterAll(() => worker?.dispose())

  it('serves the login wall, a login and the protected page, keeps the session in D1, and purges on cron', async () => {
    const base = 'http://localhost'
    const anonymous = await worker!.dispatchFetch(`${base}/me`, { headers: { Accept: 'application/json' } })
    expect(anonymous.status).toBe(401)
    expect(await anonymous.json()).toMatchObject({ type: 'urn:backward:login-required', loginUrl: '/login?next=%2Fme' })

    const form = (password: string, origin = base) => ({ method: 'POST', redirect: 'manual' as const, headers: { Origin: origin, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `username=ada&password=${password}` })
    expect((await worker!.dispatchFetch(`${base}/login`, form('wrong'))).status).toBe(401)
    expect((await worker!.dispatchFetch(`${base}/login`, form('demo', 'https://evil.example'))).status).toBe(403) // csrf()
    const signedIn = await worker!.dispatchFetch(`${base}/login`, form('demo'))
    expect(signedIn.status).toBe(303)
    expect(signedIn.headers.get('Location')).toMatch(/^\/backward\/login\/redirect\?backward_proof=[\w-]{43}$/)
    await signedIn.arrayBuffer()
    const cookie = signedIn.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')
    const me = await worker!.dispatchFetch(`${base}/me`, { headers: { Cookie: cookie } })
    expect(me.status).toBe(200)
    expect(await me.text()).toBe('Hello, ada')

    const d1 = (await worker!.getD1Database('DB')) as D1DatabaseLike
    const row = await d1.prepare('SELECT count(*) AS n FROM backward_sessions WHERE expires_at > ?1').bind(Date.now()).first<{ n: number }>()
    expect(row!.n).toBe(1)
    const fetcher = (await worker!.getWorker()) as unknown as { scheduled(options: { cron: string }): Promise<{ outcome: string }> }
    expect((await fetcher.scheduled({ cron: '17 3 * * *' })).outcome).toBe('ok')
  })
})

describe('d1Store throughput inside workerd (miniflare D1, no nodejs_compat)', () => {
  it('measures sequential store operations and session requests in the worker, where D1 is a binding call', async () => {
    const entry = `
      import { Hono } from 'hono'
      import { session } from './src/server/index.ts'
      import { d1Store } from './src/server/stores/d1.ts'
      export default {
        async fetch(_request, env) {
          const store = d1Store({ db: env.DB })
          await store.migrate()
          const n = 300
          const keys = Array.from({ length: n }, (_, i) => i.toString(16).padStart(64, '0'))
          let started = Date.now()
          for (const key of keys) {
            await store.create(key, { user: 'u1', cart: [1, 2, 3] }, Date.now() + 60000)
            await store.load(key)
            await store.update(key, { user: 'u1', cart: [1, 2, 3, 4] }, Date.now() + 60000)
          }
          const storeMs = Date.now() - started
          const app = new Hono()
          app.use(session({ store, secret: '${SECRET}' }))
          app.get('/', (c) => (c.var.session.set('n', (c.var.session.get('n', 0)) + 1), c.text(String(c.var.session.get('n')))))
          const first = await app.request('/')
          const cookie = first.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')
          started = Date.now()
          let last = ''
          for (let i = 0; i < n; i++) last = await (await app.request('/', { headers: { Cookie: cookie } })).text()
          const requestMs = Date.now() - started
          return Response.json({ ops: 3 * n, storeMs, requests: n, requestMs, last })
        },
      }`
    const result = await build({ stdin: { contents: entry, resolveDir: process.cwd(), loader: 'js' }, bundle: true, write: false, format: 'esm', platform: 'neutral', mainFields: ['module', 'main'], conditions: ['source'], target: 'es2022', logLevel: 'silent' })
    const bench = new Miniflare({ modules: true, script: result.outputFiles[0]!.text, compatibilityDate: '2026-04-01', compatibilityFlags: [], d1Databases: ['DB'] })
    try {
      const report = (await (await bench.dispatchFetch('http://localhost/')).json()) as { ops: number; storeMs: number; requests: number; requestMs: number; last: string }
      expect(report.last).toBe(String(report.requests + 1)) // every request loaded and saved the one session
      const rate = (count: number, ms: number) => Math.round((count * 1000) / Math.max(ms, 1))
      console.log(`[d1] in workerd: ${rate(report.ops, report.storeMs)} store ops/s (sequential create/load/update), ${rate(report.requests, report.requestMs)} session requests/s (load + update each)`)
    } finally {
      await bench.dispose()
    }
  })
})
