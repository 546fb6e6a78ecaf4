// Cloudflare D1 (SQLite) through the Workers binding API only: no driver, no `node:*` import, so this
// module loads on workerd without nodejs_compat. The binding types are written here so an app needs no
// @cloudflare/workers-types; a real `D1Database` (or miniflare's) fits them.
import { BackwardError } from '../../shared/errors.ts'
import { assertStoreKey, decodeData, encodeData, type SessionData, type SessionStore } from '../store.ts'

/** The result of `D1PreparedStatement.run()`, as far as d1Store reads it. */
export interface D1RunResult {
  meta: { changes?: number }
}

/** The `D1PreparedStatement` methods d1Store calls. */
export interface D1StatementLike {
  bind(...values: unknown[]): D1StatementLike
  run(): Promise<D1RunResult>
  first<T = Record<string, unknown>>(): Promise<T | null>
}

/** The `D1Database` methods d1Store calls: a Worker's `env.DB` binding fits. */
export interface D1DatabaseLike {
  prepare(sql: string): D1StatementLike
  batch(statements: D1StatementLike[]): Promise<unknown[]>
}

/** Options for {@link d1Store}. */
export interface D1StoreOptions {
  /**
   * The D1 binding (`env.DB`). Pass the binding itself: without the Sessions API every query goes to
   * the primary, so a logout is seen at once. A `withSession('first-unconstrained')` session may read
   * from a lagging replica and load a session another request has just deleted.
   */
  db: D1DatabaseLike
  /**
   * Table name: lower-case letters, digits and `_`, starting with a letter or `_`, at most 64
   * characters, not `sqlite_…` (reserved by SQLite). Checked at start-up, then quoted.
   * @default 'backward_sessions'
   */
  table?: string
  /**
   * Clock, for tests. Expiry times come from the app's clock and are compared in SQL against this
   * clock's time, passed in as a parameter, so the two never disagree.
   * @default Date.now
   */
  now?: () => number
}

/** Options for a d1Store's `clearExpired`. */
export interface D1ClearOptions {
  /** Rows deleted per statement. D1 runs one statement at a time, so a huge DELETE would stall every other query. @default 1000 */
  batchSize?: number
}

/** A {@link d1Store}: a `SessionStore` plus `migrate()` and a batched `clearExpired()`. */
export interface D1Store extends SessionStore {
  /** Moves the expiry of a live row without rewriting its data. Resolves false when it is missing or expired. */
  touch(key: string, expiresAt: number): Promise<boolean>
  /** Creates the table and its expiry index if they do not exist (the SQL of {@link d1SessionsSql}), in one atomic batch. */
  migrate(): Promise<void>
  /** Deletes expired rows in batches and resolves with how many were removed. */
  clearExpired(options?: D1ClearOptions): Promise<number>
  /** Like `load`, with the record's expiry (ms since the epoch). `cachedStore` uses it to fill its cache. */
  loadEntry(key: string): Promise<{ data: SessionData; expiresAt: number } | null>
}

const IDENTIFIER = /^(?!sqlite_)[a-z_][a-z0-9_]{0,63}$/

function checkTable(table: unknown): string {
  if (typeof table !== 'string' || !IDENTIFIER.test(table)) {
    throw new BackwardError('CONFIG', '[backward] d1Store: table must be a plain name of lower-case letters, digits and _ (at most 64 characters, not sqlite_…).')
  }
  return table
}

// One statement per line: `db.exec()` and `wrangler d1 execute --command` split on newlines.
function statements(table: string): string[] {
  const name = checkTable(table)
  return [
    `CREATE TABLE IF NOT EXISTS "${name}" ("key" TEXT PRIMARY KEY NOT NULL, "data" TEXT NOT NULL, "expires_at" INTEGER NOT NULL);`,
    `CREATE INDEX IF NOT EXISTS "${name}_expires_at_idx" ON "${name}" ("expires_at");`,
  ]
}

/**
 * The SQL that d1Store's table needs, one statement per line. Expiry is stored as milliseconds since
 * the epoch; `data` is the session's JSON text.
 * @example
 * // migrations/0001_backward_sessions.sql, applied with `wrangler d1 migrations apply DB`
 * console.log(d1SessionsSql('backward_sessions'))
 */
export function d1SessionsSql(table = 'backward_sessions'): string {
  return statements(table).join('\n')
}

/** The SQL that creates the default table `backward_sessions`, for a wrangler migration file. */
export const D1_SESSIONS_SQL: string = d1SessionsSql()

function wrap(cause: unknown): BackwardError {
  // D1 reports SQLite's message in the error text ("D1_ERROR: no such table: x: SQLITE_ERROR"), on the
  // error itself or on its cause; there is no error code to match.
  const text = [cause, (cause as { cause?: unknown } | null)?.cause].map((e) => String((e as { message?: unknown } | null)?.message ?? '')).join(' ')
  if (/no such (table|column)/i.test(text)) {
    return new BackwardError('CONFIG', '[backward] d1Store: D1 has no session table (or an old one). Run store.migrate() once, or apply D1_SESSIONS_SQL as a wrangler migration.', { cause })
  }
  return new BackwardError('STORE_UNAVAILABLE', '[backward] d1Store: D1 did not answer. Check the binding and the database; sessions resume when it is back.', { cause })
}

/**
 * A session store on Cloudflare D1 (SQLite), through the Worker's D1 binding. One row per session;
 * `create` is an insert that never overwrites a live row, `update` changes only a live row (so a
 * concurrent logout is never undone), `load` ignores expired rows, and `clearExpired` deletes them in
 * batches. Every query is parameterised; the table name is checked at start-up and quoted.
 *
 * The store holds no connection, so making one per request from `c.env.DB` costs nothing.
 *
 * Why not Workers KV: KV is eventually consistent. A write is seen at other edge locations only after
 * up to about 60 seconds, so a logout or a rotated session id can be undone, or the old id still
 * accepted, there for that long. KV also has no insert-only write (two concurrent replays could both
 * claim the same key) and no atomic update-if-exists (a slow request could bring a deleted session
 * back). D1 (or a Durable Object) gives all three.
 * @example
 * import { d1Store } from 'backward/server/d1'
 * let sessions: MiddlewareHandler | undefined // built once per isolate, from the first request's env
 * app.use((c, next) => (sessions ??= session({ store: d1Store({ db: c.env.DB }), secret: c.env.BACKWARD_SECRET }))(c, next))
 * // once: await d1Store({ db: env.DB }).migrate(), or apply D1_SESSIONS_SQL with wrangler
 */
export function d1Store(options: D1StoreOptions): D1Store {
  const db = options?.db
  if (typeof db?.prepare !== 'function' || typeof db.batch !== 'function') {
    throw new BackwardError('CONFIG', '[backward] d1Store: pass { db } with a D1 binding (env.DB; add a [[d1_databases]] binding in wrangler.toml).')
  }
  const table = options.table ?? 'backward_sessions'
  const t = `"${checkTable(table)}"`
  const now = options.now ?? Date.now

  // An expired row with the same key is replaced (a new session may take over a dead key); a live one is not.
  const sqlCreate = `INSERT INTO ${t} ("key", "data", "expires_at") VALUES (?1, ?2, ?3) ON CONFLICT ("key") DO UPDATE SET "data" = excluded."data", "expires_at" = excluded."expires_at" WHERE ${t}."expires_at" <= ?4`
  const sqlUpdate = `UPDATE ${t} SET "data" = ?2, "expires_at" = ?3 WHERE "key" = ?1 AND "expires_at" > ?4`
  const sqlTouch = `UPDATE ${t} SET "expires_at" = ?2 WHERE "key" = ?1 AND "expires_at" > ?3`
  const sqlLoad = `SELECT "data", "expires_at" FROM ${t} WHERE "key" = ?1 AND "expires_at" > ?2`
  const sqlDelete = `DELETE FROM ${t} WHERE "key" = ?1`
  // SQLite is built without DELETE … LIMIT, hence the subquery on the expiry index.
  const sqlClear = `DELETE FROM ${t} WHERE "key" IN (SELECT "key" FROM ${t} WHERE "expires_at" <= ?1 LIMIT ?2)`

  function expiry(expiresAt: number): number {
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
      throw new BackwardError('CONFIG', '[backward] d1Store: expiresAt must be a finite time in milliseconds since the epoch.')
    }
    return expiresAt
  }

  async function run(sql: string, ...values: unknown[]): Promise<number> {
    try {
      const result = await db.prepare(sql).bind(...values).run()
      return Number(result?.meta?.changes ?? 0)
    } catch (cause) {
      throw wrap(cause)
    }
  }

  async function loadEntry(key: string) {
    assertStoreKey(key)
    let row: { data: string; expires_at: number } | null
    try {
      row = await db.prepare(sqlLoad).bind(key, now()).first<{ data: string; expires_at: number }>()
    } catch (cause) {
      throw wrap(cause)
    }
    if (row === null || row === undefined) return null
    const data = decodeData(String(row.data))
    return data === null ? null : { data, expiresAt: Number(row.expires_at) }
  }

  return {
    async migrate() {
      try {
        await db.batch(statements(table).map((sql) => db.prepare(sql)))
      } catch (cause) {
        throw wrap(cause)
      }
    },
    loadEntry,
    async load(key) {
      return (await loadEntry(key))?.data ?? null
    },
    async create(key, data, expiresAt) {
      assertStoreKey(key)
      return (await run(sqlCreate, key, encodeData(data), expiry(expiresAt), now())) === 1
    },
    async update(key, data, expiresAt) {
      assertStoreKey(key)
      return (await run(sqlUpdate, key, encodeData(data), expiry(expiresAt), now())) === 1
    },
    async delete(key) {
      assertStoreKey(key)
      await run(sqlDelete, key)
    },
    async touch(key, expiresAt) {
      assertStoreKey(key)
      return (await run(sqlTouch, key, expiry(expiresAt), now())) === 1
    },
    async clearExpired(clear: D1ClearOptions = {}) {
      const batchSize = clear.batchSize ?? 1000
      if (!Number.isInteger(batchSize) || batchSize < 1) {
        throw new BackwardError('CONFIG', '[backward] d1Store: clearExpired batchSize must be a positive integer.')
      }
      const cutoff = now()
      let removed = 0
      // Each DELETE sees the whole table (SQLite has no row locks to skip), so a short batch means no
      // expired row is left. The cutoff is fixed: rows that expire meanwhile wait for the next run.
      for (;;) {
        const count = await run(sqlClear, cutoff, batchSize)
        removed += count
        if (count < batchSize) return removed
      }
    },
  }
}
