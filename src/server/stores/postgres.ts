import { BackwardError } from '../../shared/errors.ts'
import { assertStoreKey, decodeData, encodeData, type SessionData, type SessionStore } from '../store.ts'

/** The one `pg` method postgresStore calls. A `Pool` (or a connected `Client`) from pg fits. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null; rows: unknown[] }>
  listenerCount?(event: string): number
}

/** Options for {@link postgresStore}. */
export interface PostgresStoreOptions {
  /**
   * A pg `Pool` with an `'error'` listener (pg emits idle-connection errors there; without a listener
   * Node ends the process when the database restarts). backward never imports pg.
   */
  pool: PgQueryable
  /**
   * Table name, optionally schema-qualified (`auth.sessions`). Lower-case letters, digits and `_`,
   * starting with a letter or `_`; at most 48 characters per part. Checked at start-up, then quoted.
   * @default 'backward_sessions'
   */
  table?: string
  /**
   * Clock, for tests. Expiry times come from the app's clock, so they are compared against the same
   * clock (not the database's `now()`): skew between the two can never stretch or cut a session.
   * @default Date.now
   */
  now?: () => number
}

/** Options for a postgresStore's `clearExpired`. */
export interface PostgresClearOptions {
  /** Rows deleted per statement, so a large purge never holds long locks or a huge transaction. @default 1000 */
  batchSize?: number
}

/** A {@link postgresStore}: a `SessionStore` plus `migrate()` and a batched `clearExpired()`. */
export interface PostgresStore extends SessionStore {
  /** Creates the table and its expiry index if they do not exist (the SQL of {@link postgresSessionsSql}). */
  migrate(): Promise<void>
  /** Deletes expired rows in batches, until a batch finds none, and resolves with how many were removed. */
  clearExpired(options?: PostgresClearOptions): Promise<number>
  /** Like `load`, with the record's expiry (ms since the epoch). `cachedStore` uses it to fill its cache. */
  loadEntry(key: string): Promise<{ data: SessionData; expiresAt: number } | null>
}

// Part length 48 keeps the derived index name (`<table>_expires_at_idx`) within PostgreSQL's 63 bytes.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}(?:\.[a-z_][a-z0-9_]{0,47})?$/

/**
 * The table postgresStore uses. `data` is text holding JSON, not jsonb: jsonb rejects `\u0000` in
 * strings and reorders keys, and the store never queries inside the data anyway.
 * @example
 * await pool.query(postgresSessionsSql('backward_sessions'))  // or: await store.migrate()
 */
export function postgresSessionsSql(table = 'backward_sessions'): string {
  const parts = checkTable(table)
  const name = parts.map((part) => `"${part}"`).join('.')
  const index = `"${parts[parts.length - 1]}_expires_at_idx"`
  return [
    `CREATE TABLE IF NOT EXISTS ${name} (`,
    '  "key" text PRIMARY KEY,',
    '  "data" text NOT NULL,',
    '  "expires_at" timestamptz NOT NULL',
    ');',
    `CREATE INDEX IF NOT EXISTS ${index} ON ${name} ("expires_at");`,
  ].join('\n')
}

/** The SQL that creates the default table `backward_sessions`, for migration tools that run plain SQL. */
export const POSTGRES_SESSIONS_SQL: string = postgresSessionsSql()

function checkTable(table: unknown): string[] {
  if (typeof table !== 'string' || !IDENTIFIER.test(table)) {
    throw new BackwardError('CONFIG', '[backward] postgresStore: table must be a plain name or schema.name of lower-case letters, digits and _ (at most 48 characters each).')
  }
  return table.split('.')
}

// SQLSTATE classes that mean the query itself or the setup is wrong (42: syntax or access rule, such
// as a missing table; 3F: missing schema). Anything else (08 connection, 53 resources, 57 shutdown,
// or no SQLSTATE at all: a refused or dropped socket) means the database is unavailable for now.
const SETUP_CLASSES = new Set(['42', '3F'])

function wrap(cause: unknown): BackwardError {
  const code = (cause as { code?: unknown } | null)?.code
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && SETUP_CLASSES.has(code.slice(0, 2))) {
    return new BackwardError('CONFIG', `[backward] postgresStore: PostgreSQL rejected the session query (SQLSTATE ${code}). Run store.migrate() or check the table name and grants.`, { cause })
  }
  return new BackwardError('STORE_UNAVAILABLE', '[backward] postgresStore: PostgreSQL did not answer. Check that it is running and reachable; sessions resume when it is back.', { cause })
}

/**
 * A session store on PostgreSQL through a `pg` pool you create. One row per session; `create` is an
 * insert that never overwrites a live row, `update` changes only a live row (so a concurrent logout
 * is never undone), `load` ignores expired rows, and `clearExpired` deletes them in batches. Every
 * query is parameterised; the table name is checked at start-up and quoted.
 * @example
 * import pg from 'pg'
 * import { postgresStore } from 'backward/server/postgres'
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * pool.on('error', (error) => console.error('[pg] idle client error:', error.message)) // before postgresStore
 * const store = postgresStore({ pool })
 * await store.migrate() // creates the table and its index once
 * app.use(session({ store }))
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  const pool = options?.pool
  if (typeof pool?.query !== 'function') {
    throw new BackwardError('CONFIG', '[backward] postgresStore: pass { pool } with a pg Pool.')
  }
  if (typeof pool.listenerCount === 'function' && pool.listenerCount('error') === 0) {
    throw new BackwardError('CONFIG', "[backward] postgresStore: add pool.on('error', …) to the pg Pool first; without it Node ends the process when PostgreSQL restarts.")
  }
  const table = options.table ?? 'backward_sessions'
  const t = checkTable(table)
    .map((part) => `"${part}"`)
    .join('.')
  const now = options.now ?? Date.now
  const ts = (param: string) => `to_timestamp(${param}::double precision / 1000)`

  // An expired row with the same key is replaced (a new session may take over a dead key); a live one is not.
  const sqlCreate = `INSERT INTO ${t} ("key", "data", "expires_at") VALUES ($1, $2, ${ts('$3')}) ON CONFLICT ("key") DO UPDATE SET "data" = EXCLUDED."data", "expires_at" = EXCLUDED."expires_at" WHERE ${t}."expires_at" <= ${ts('$4')}`
  const sqlUpdate = `UPDATE ${t} SET "data" = $2, "expires_at" = ${ts('$3')} WHERE "key" = $1 AND "expires_at" > ${ts('$4')}`
  const sqlTouch = `UPDATE ${t} SET "expires_at" = ${ts('$2')} WHERE "key" = $1 AND "expires_at" > ${ts('$3')}`
  const sqlLoad = `SELECT "data", (extract(epoch from "expires_at") * 1000)::double precision AS "expires_at" FROM ${t} WHERE "key" = $1 AND "expires_at" > ${ts('$2')}`
  const sqlDelete = `DELETE FROM ${t} WHERE "key" = $1`
  // The outer expiry check is re-evaluated on the newest row version, so a row that `create` revived
  // between the SELECT and the DELETE survives. SKIP LOCKED lets two purges run side by side.
  const sqlClear = `DELETE FROM ${t} WHERE "key" IN (SELECT "key" FROM ${t} WHERE "expires_at" <= ${ts('$1')} LIMIT $2 FOR UPDATE SKIP LOCKED) AND "expires_at" <= ${ts('$1')}`

  function expiry(expiresAt: number): number {
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
      throw new BackwardError('CONFIG', '[backward] postgresStore: expiresAt must be a finite time in milliseconds since the epoch.')
    }
    return expiresAt
  }

  async function query(text: string, values?: unknown[]) {
    try {
      return await pool.query(text, values)
    } catch (cause) {
      throw wrap(cause)
    }
  }

  async function loadEntry(key: string) {
    assertStoreKey(key)
    const result = await query(sqlLoad, [key, now()])
    const row = result.rows[0] as { data: string; expires_at: number } | undefined
    if (row === undefined) return null
    const data = decodeData(row.data)
    return data === null ? null : { data, expiresAt: Number(row.expires_at) }
  }

  return {
    async migrate() {
      // No parameters: sent as a simple query, which may hold the two statements.
      await query(postgresSessionsSql(table))
    },
    loadEntry,
    async load(key) {
      return (await loadEntry(key))?.data ?? null
    },
    async create(key, data, expiresAt) {
      assertStoreKey(key)
      const result = await query(sqlCreate, [key, encodeData(data), expiry(expiresAt), now()])
      return result.rowCount === 1
    },
    async update(key, data, expiresAt) {
      assertStoreKey(key)
      const result = await query(sqlUpdate, [key, encodeData(data), expiry(expiresAt), now()])
      return result.rowCount === 1
    },
    async delete(key) {
      assertStoreKey(key)
      await query(sqlDelete, [key])
    },
    async touch(key, expiresAt) {
      assertStoreKey(key)
      const result = await query(sqlTouch, [key, expiry(expiresAt), now()])
      return result.rowCount === 1
    },
    async clearExpired(clear: PostgresClearOptions = {}) {
      const batchSize = clear.batchSize ?? 1000
      if (!Number.isInteger(batchSize) || batchSize < 1) {
        throw new BackwardError('CONFIG', '[backward] postgresStore: clearExpired batchSize must be a positive integer.')
      }
      const cutoff = now()
      let removed = 0
      // Stop only on a batch that deletes nothing. A short batch does not mean the table is clean:
      // SKIP LOCKED passes over rows another transaction holds (an app's FOR UPDATE, a second purge),
      // and those may be free, and still expired, by the next batch. Rows that stay locked make the
      // next batch delete 0, so this ends; the cutoff is fixed, so rows expiring meanwhile wait too.
      for (;;) {
        const count = (await query(sqlClear, [cutoff, batchSize])).rowCount ?? 0
        if (count === 0) return removed
        removed += count
      }
    },
  }
}
