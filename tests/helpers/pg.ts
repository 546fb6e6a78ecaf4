/**
 * A schema of its own on the shared PostgreSQL, for a suite: files never see each other's rows.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll } from 'vitest'
import pg from 'pg'
import { POSTGRES_URL } from './services.ts'

/**
 * Call inside a describe: a pool on the shared PostgreSQL (opened in beforeAll) and a fresh schema,
 * created before the suite's tests and dropped, with the pool closed, after them.
 * @example
 * const sandbox = postgresSchema(4)
 * it('…', async () => { await sandbox.pool.query(`CREATE TABLE ${sandbox.schema}.t1 (k text)`) })
 */
export function postgresSchema(max: number): { readonly schema: string; readonly pool: pg.Pool } {
  const schema = `bwtest_${randomBytes(5).toString('hex')}`
  let pool: pg.Pool | undefined
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: POSTGRES_URL, max })
    pool.on('error', () => {})
    await pool.query(`CREATE SCHEMA ${schema}`)
  })
  afterAll(async () => {
    await pool?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await pool?.end()
  })
  return {
    schema,
    get pool() {
      if (pool === undefined) throw new Error('postgresSchema: the pool opens in beforeAll; use it inside a test or hook')
      return pool
    },
  }
}
