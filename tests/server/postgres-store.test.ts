import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { idempotency } from '../../src/server/index.ts'
import pg from 'pg'
import { POSTGRES_SESSIONS_SQL, postgresSessionsSql, postgresStore } from '../../src/server/stores/postgres.ts'
import { postgresSchema } from '../helpers/pg.ts'
import { POSTGRES_URL, postgresService, titled } from '../helpers/services.ts'
import { describeStoreContract, freshKey } from './store-contract.ts'

const service = await postgresService()
const later = () => Date.now() + 60_000
let tables = 0

/** A second connection holding row locks on the first `n` rows of `table` (in an open transaction). */
async function lockRows(table: string, n: number): Promise<pg.Client> {
  const other = new pg.Client({ connectionString: POSTGRES_URL })
  await other.connect()
  await other.query('BEGIN')
  await other.query(`SELECT key FROM ${table} ORDER BY key LIMIT ${n} FOR UPDATE`)
  return other
}

describe.skipIf(!service.ok)(titled('postgresStore', service), () => {
  // Each file works in its own schema, each test in its own table: files and tests never see each other's rows.
  const sandbox = postgresSchema(4)
  const { schema } = sandbox
  const newTable = () => `${schema}.t${++tables}`

  let contractTable = ''
  describeStoreContract(
    'postgresStore',
    async () => {
      const store = postgresStore({ pool: sandbox.pool, table: (contractTable = newTable()) })
      await store.migrate()
      return store
    },
    async () => {
      await sandbox.pool.query(`DROP TABLE ${contractTable}`)
    },
  )

  async function migrated(table = newTable()) {
    const store = postgresStore({ pool: sandbox.pool, table })
    await store.migrate()
    return { store, table }
  }

  it('migrate creates the table and the expiry index, and may run twice', async () => {
    const { store, table } = await migrated()
    await store.migrate()
    const [, name] = table.split('.')
    const columns = await sandbox.pool.query('SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [schema, name])
    expect(columns.rows).toEqual([
      { column_name: 'key', data_type: 'text' },
      { column_name: 'data', data_type: 'text' },
      { column_name: 'expires_at', data_type: 'timestamp with time zone' },
    ])
    const indexes = await sandbox.pool.query('SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2', [schema, name])
    expect(indexes.rows.map((r: { indexdef: string }) => r.indexdef).join('\n')).toMatch(/\(expires_at\)/)
  })

  it('exports the default SQL', () => {
    expect(POSTGRES_SESSIONS_SQL).toBe(postgresSessionsSql('backward_sessions'))
    expect(POSTGRES_SESSIONS_SQL).toContain('CREATE TABLE IF NOT EXISTS "backward_sessions"')
    expect(POSTGRES_SESSIONS_SQL).toContain('CREATE INDEX IF NOT EXISTS "backward_sessions_expires_at_idx"')
  })

  it('does not resurrect a session deleted from a second connection', async () => {
    const { store, table } = await migrated()
    const key = await freshKey()
    expect(await store.create(key, { user: 'u1' }, later())).toBe(true)
    const other = new pg.Client({ connectionString: POSTGRES_URL })
    await other.connect()
    await other.query(`DELETE FROM ${table} WHERE key = $1`, [key])
    await other.end()
    expect(await store.update(key, { user: 'u1', cart: 3 }, later())).toBe(false)
    expect(await store.load(key)).toBeNull()
    expect((await sandbox.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0)
  })

  it('stores the expiry in expires_at and ignores expired rows on load', async () => {
    const { store, table } = await migrated()
    const key = await freshKey()
    const expiresAt = Date.now() + 120
    await store.create(key, { a: 1 }, expiresAt)
    const row = (await sandbox.pool.query(`SELECT (extract(epoch from expires_at) * 1000)::float8 AS ms FROM ${table} WHERE key = $1`, [key])).rows[0]
    expect(Math.abs(row.ms - expiresAt)).toBeLessThan(1)
    expect(await store.loadEntry(key)).toEqual({ data: { a: 1 }, expiresAt: expect.closeTo(expiresAt, 0) })
    await new Promise((r) => setTimeout(r, 170))
    expect(await store.load(key)).toBeNull()
    expect(await store.touch!(key, later())).toBe(false)
  })

  it('clearExpired removes 10,000 expired rows in batches and leaves live rows alone', async () => {
    const { store, table } = await migrated()
    await sandbox.pool.query(
      `INSERT INTO ${table} (key, data, expires_at)
       SELECT encode(sha256(('dead' || g)::bytea), 'hex'), '{"v":"dead"}', now() - interval '1 hour' FROM generate_series(1, 10000) AS g`,
    )
    const live = [await freshKey(), await freshKey(), await freshKey()]
    for (const key of live) await store.create(key, { v: 'live' }, later())
    const started = performance.now()
    const removed = await store.clearExpired({ batchSize: 1000 })
    const ms = performance.now() - started
    console.log(`[postgres] clearExpired removed ${removed} rows in ${ms.toFixed(0)} ms`)
    expect(removed).toBe(10_000)
    expect((await sandbox.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(3)
    for (const key of live) expect(await store.load(key)).toEqual({ v: 'live' })
    expect(await store.clearExpired()).toBe(0)
  })

  it('clearExpired deletes in batches of batchSize', async () => {
    const { store, table } = await migrated()
    await sandbox.pool.query(`INSERT INTO ${table} SELECT encode(sha256(('d' || g)::bytea), 'hex'), '{}', now() - interval '1 minute' FROM generate_series(1, 25) AS g`)
    const statements: number[] = []
    const counting = postgresStore({
      pool: { query: async (text: string, values?: unknown[]) => (text.startsWith('DELETE') && statements.push(values![1] as number), sandbox.pool.query(text, values)) },
      table,
    })
    expect(await counting.clearExpired({ batchSize: 10 })).toBe(25)
    expect(statements).toEqual([10, 10, 10, 10]) // the last one finds nothing left: that is when it stops
    await expect(store.clearExpired({ batchSize: 0 })).rejects.toMatchObject({ code: 'CONFIG' })
  })

  it('clearExpired does not stop early when rows locked by another connection (SKIP LOCKED) shorten a batch', async () => {
    const { store, table } = await migrated()
    await sandbox.pool.query(`INSERT INTO ${table} SELECT encode(sha256(('e' || g)::bytea), 'hex'), '{}', now() - interval '1 minute' FROM generate_series(1, 12) AS g`)
    // Another transaction (an app's SELECT … FOR UPDATE, or a second purge) holds 3 expired rows.
    const other = await lockRows(table, 3)
    const batches: number[] = []
    const purge = postgresStore({
      pool: {
        query: async (text: string, values?: unknown[]) => {
          const result = await sandbox.pool.query(text, values)
          if (text.startsWith('DELETE') && batches.push(result.rowCount ?? 0) === 1) await other.query('ROLLBACK') // the locks go after the first batch
          return result
        },
      },
      table,
    })
    try {
      // The first batch deletes 9 of its 10: the locked 3 were skipped, so it came back short.
      expect(await purge.clearExpired({ batchSize: 10 })).toBe(12)
      expect(batches).toEqual([9, 3, 0])
      expect((await sandbox.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0)
    } finally {
      await other.end()
    }
    expect(await store.clearExpired()).toBe(0)
  })

  it('clearExpired ends when the only expired rows left stay locked (no busy loop)', async () => {
    const { store, table } = await migrated()
    await sandbox.pool.query(`INSERT INTO ${table} SELECT encode(sha256(('f' || g)::bytea), 'hex'), '{}', now() - interval '1 minute' FROM generate_series(1, 5) AS g`)
    const other = await lockRows(table, 2)
    try {
      expect(await store.clearExpired({ batchSize: 10 })).toBe(3)
    } finally {
      await other.query('ROLLBACK')
      await other.end()
    }
    expect(await store.clearExpired()).toBe(2) // the next run gets them
  })

  it('keeps data that jsonb would refuse or reorder', async () => {
    const { store } = await migrated()
    const key = await freshKey()
    const data = { z: 1, a: 'nul \u0000 byte', lone: '\ud800', b: 2 }
    await store.create(key, data, later())
    const loaded = await store.load(key)
    expect(loaded).toEqual(data)
    expect(Object.keys(loaded!)).toEqual(['z', 'a', 'lone', 'b'])
  })

  it('a missing table is a CONFIG error that says to migrate', async () => {
    const store = postgresStore({ pool: sandbox.pool, table: `${schema}.never_migrated` })
    await expect(store.load(await freshKey())).rejects.toMatchObject({ code: 'CONFIG', message: expect.stringContaining('migrate()') })
  })

  it('an unreachable server is STORE_UNAVAILABLE', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test', connectionTimeoutMillis: 1000 })
    dead.on('error', () => {})
    const store = postgresStore({ pool: dead })
    await expect(store.load(await freshKey())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    await dead.end()
  })

  it('carries idempotency records: a repeated Idempotency-Key runs the handler once', async () => {
    const app = new Hono()
    let runs = 0
    app.use(idempotency({ store: (await migrated()).store, scope: () => 'user-1' }))
    app.post('/follow', (c) => c.json({ run: ++runs }, 201))
    const key = randomBytes(8).toString('hex')
    const send = () => app.request('/follow', { method: 'POST', headers: { 'Idempotency-Key': key } })
    const [first, second] = [await send(), await send()]
    expect([first.status, second.status]).toEqual([201, 201])
    expect(await second.json()).toEqual({ run: 1 })
    expect(second.headers.get('Idempotent-Replayed')).toBe('true')
    expect(runs).toBe(1)
  })

  describe('security', () => {
    it.each([
      'sessions; DROP TABLE users',
      'sessions"',
      '"sessions"',
      'a.b.c',
      'Sessions',
      '1sessions',
      'sessions--',
      '',
      'x'.repeat(49),
      'public.',
      ' sessions',
    ])('rejects the table name %j at start-up', (table) => {
      expect(() => postgresStore({ pool: sandbox.pool, table })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      expect(() => postgresSessionsSql(table)).toThrow(expect.objectContaining({ code: 'CONFIG' }))
    })

    it('accepts plain and schema-qualified names', () => {
      expect(postgresStore({ pool: sandbox.pool, table: 'auth.backward_sessions' })).toBeTruthy()
      expect(postgresStore({ pool: sandbox.pool, table: '_s1' })).toBeTruthy()
      expect(() => postgresStore({ pool: undefined as never })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
    })

    it('refuses a pool with no error listener (Node would crash when PostgreSQL restarts)', async () => {
      const bare = new pg.Pool({ connectionString: POSTGRES_URL })
      expect(() => postgresStore({ pool: bare })).toThrow(/pool\.on\('error'/)
      await bare.end()
    })

    it('rejects hostile store keys before any query', async () => {
      const sent: string[] = []
      const store = postgresStore({ pool: { query: async (text: string) => (sent.push(text), { rowCount: 0, rows: [] }) } })
      for (const key of ['*', 'a\nb', '../x', "'; DROP TABLE backward_sessions; --", '{tag}', `${'0'.repeat(63)}'`]) {
        await expect(store.load(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.create(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.update(key, {}, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.delete(key)).rejects.toMatchObject({ code: 'INVALID_KEY' })
        await expect(store.touch!(key, later())).rejects.toMatchObject({ code: 'INVALID_KEY' })
      }
      expect(sent).toEqual([])
    })

    it('sends data only as parameters, never in the SQL text', async () => {
      const texts: string[] = []
      const { table } = await migrated()
      const store = postgresStore({ pool: { query: async (text: string, values?: unknown[]) => (texts.push(text), sandbox.pool.query(text, values)) }, table })
      const key = await freshKey()
      const hostile = { v: "'); DROP TABLE pg_class; --" }
      await store.create(key, hostile, later())
      await store.update(key, hostile, later())
      expect(await store.load(key)).toEqual(hostile)
      expect(texts.join('\n')).not.toContain('DROP')
      expect(texts.join('\n')).not.toContain(key)
    })
  })
})
