// Store cost as the number of sessions grows: load/update per second and clearExpired on
// PostgreSQL (table bench_sessions, dropped afterwards), Redis (prefix bench:backward:scale:,
// deleted afterwards) and memoryStore (its own process, for honest heap figures).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { postgresStore } from '../../src/server/stores/postgres.ts'
import { redisStore } from '../../src/server/stores/redis.ts'
import { BENCH, FULL, PG_CONFIG, REDIS_URL } from '../config.ts'
import { benchData, benchKey, measureOps } from './common.ts'

export interface PgLevel {
  n: number
  insertMs: number
  loadPerSec: number
  updatePerSec: number
  /** clearExpired with all `n` sessions live: the routine cron run that finds nothing to do. */
  clearNoneMs: number
  /** clearExpired with all `n` sessions expired: removes every row, 1,000 per statement. */
  clearAllMs: number
  removed: number
}
export interface RedisLevel {
  n: number
  insertMs: number
  loadPerSec: number
  updatePerSec: number
}
export interface MemoryLevel {
  n: number
  heapBytes: number
  bytesPer100k: number
  createPerSec: number
  loadPerSec: number
  updatePerSec: number
  clearMs: number
  removed: number
}
export interface ScaleResult {
  opsMs: number
  concurrency: number
  postgres: PgLevel[]
  redis: RedisLevel[]
  /** Native TTL: how long Redis took to drop 10,000 keys whose 1 s TTL ran out (DBSIZE back to where it was). */
  redisExpiry: { keys: number; ttlMs: number; goneAfterMs: number | null }
  memory: MemoryLevel[]
  seconds: number
}

const SESSION_JSON = (i: string) => `'{"_auth_user_id":"' || ${i} || '","csrf":"Qm9vdHN0cmFwLXRva2VuLWZvci1iZW5jaG1hcmtzLTAx","count":1}'`

async function scalePostgres(levels: number[], opsMs: number, concurrency: number, log: (line: string) => void): Promise<PgLevel[]> {
  const { default: pg } = await import('pg')
  const pool = new pg.Pool({ ...PG_CONFIG, max: concurrency })
  pool.on('error', () => {})
  const table = BENCH.pgScaleTable
  const store = postgresStore({ pool, table })
  // The same table seen two hours later: every session has expired.
  const later = postgresStore({ pool, table, now: () => Date.now() + 7_200_000 })
  const out: PgLevel[] = []
  try {
    await pool.query(`DROP TABLE IF EXISTS ${table}`)
    await store.migrate()
    for (const n of levels) {
      await pool.query(`TRUNCATE ${table}`)
      const t0 = performance.now()
      // Keys are sha256('bench:<i>') in hex, exactly as benchKey(i) computes them in Node.
      await pool.query(
        `INSERT INTO ${table} ("key", "data", "expires_at")
         SELECT encode(sha256(('bench:' || i)::bytea), 'hex'), ${SESSION_JSON('i')}, now() + interval '1 hour'
         FROM generate_series(1, $1::int) AS i`,
        [n],
      )
      await pool.query(`VACUUM ANALYZE ${table}`)
      const insertMs = performance.now() - t0
      const ops = await measureOps(store, n, opsMs, concurrency)
      let c0 = performance.now()
      const none = await store.clearExpired()
      const clearNoneMs = performance.now() - c0
      if (none !== 0) throw new Error('[bench] clearExpired removed live sessions')
      c0 = performance.now()
      const removed = await later.clearExpired()
      const clearAllMs = performance.now() - c0
      out.push({ n, insertMs, ...ops, clearNoneMs, clearAllMs, removed })
      log(`  postgres ${n}: load ${ops.loadPerSec.toFixed(0)}/s, update ${ops.updatePerSec.toFixed(0)}/s, clearExpired ${clearAllMs.toFixed(0)} ms for ${removed}`)
    }
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {})
    await pool.end()
  }
  return out
}

async function scaleRedis(levels: number[], opsMs: number, concurrency: number, log: (line: string) => void): Promise<{ levels: RedisLevel[]; expiry: ScaleResult['redisExpiry'] }> {
  const { Redis } = await import('ioredis')
  const client = new Redis(REDIS_URL)
  const prefix = BENCH.redisScalePrefix
  const store = redisStore({ client, prefix })
  const out: RedisLevel[] = []
  let inserted = 0
  const CHUNK = 5000
  async function eachChunk(from: number, to: number, add: (pipeline: ReturnType<typeof client.pipeline>, i: number) => void): Promise<void> {
    for (let start = from; start <= to; start += CHUNK) {
      const pipeline = client.pipeline()
      for (let i = start; i <= Math.min(to, start + CHUNK - 1); i++) add(pipeline, i)
      await pipeline.exec()
    }
  }
  let expiry: ScaleResult['redisExpiry'] = { keys: 10_000, ttlMs: 1000, goneAfterMs: null }
  try {
    for (const n of levels) {
      // Levels grow by adding sessions to the ones already there.
      const t0 = performance.now()
      await eachChunk(inserted + 1, n, (p, i) => p.set(prefix + benchKey(i), JSON.stringify(benchData(i)), 'PX', 3_600_000))
      const insertMs = performance.now() - t0
      inserted = n
      const ops = await measureOps(store, n, opsMs, concurrency)
      out.push({ n, insertMs, ...ops })
      log(`  redis ${n}: load ${ops.loadPerSec.toFixed(0)}/s, update ${ops.updatePerSec.toFixed(0)}/s`)
    }
    expiry = await measureExpiry(expiry.keys, expiry.ttlMs)
    log(`  redis expiry of ${expiry.keys} keys (TTL ${expiry.ttlMs} ms): ${expiry.goneAfterMs === null ? 'not measured (no empty logical database)' : `gone after ${expiry.goneAfterMs.toFixed(0)} ms`}`)
  } finally {
    await eachChunk(1, inserted, (p, i) => p.unlink(prefix + benchKey(i))).catch(() => {})
    client.disconnect()
  }
  return { levels: out, expiry }
}

/**
 * Expiry is Redis's own: 10,000 keys with a short TTL in a logical database that is empty (so its
 * DBSIZE counts only ours), then the time until its active expiry has removed them all.
 */
async function measureExpiry(keys: number, ttlMs: number): Promise<ScaleResult['redisExpiry']> {
  const { Redis } = await import('ioredis')
  const probe = new Redis(REDIS_URL)
  const info = await probe.info('keyspace')
  probe.disconnect()
  const used = new Set([...info.matchAll(/^db(\d+):/gm)].map((m) => Number(m[1])))
  const db = [15, 14, 13, 12, 11, 10].find((n) => !used.has(n))
  if (db === undefined) return { keys, ttlMs, goneAfterMs: null }
  const client = new Redis(`${REDIS_URL}/${db}`)
  try {
    const prefix = `${BENCH.redisScalePrefix}ttl:`
    for (let start = 1; start <= keys; start += 5000) {
      const pipeline = client.pipeline()
      for (let i = start; i < start + 5000 && i <= keys; i++) pipeline.set(prefix + benchKey(i), '{}', 'PX', ttlMs)
      await pipeline.exec()
    }
    const t0 = performance.now()
    while (performance.now() - t0 < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      if ((await client.dbsize()) === 0) return { keys, ttlMs, goneAfterMs: performance.now() - t0 }
    }
    return { keys, ttlMs, goneAfterMs: null }
  } finally {
    const pipeline = client.pipeline()
    for (let i = 1; i <= keys; i++) pipeline.unlink(`${BENCH.redisScalePrefix}ttl:${benchKey(i)}`)
    await pipeline.exec().catch(() => {})
    client.disconnect()
  }
}

function scaleMemory(levels: number[], opsMs: number): Promise<MemoryLevel[]> {
  const child = fileURLToPath(new URL('./memory-child.ts', import.meta.url))
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', child, ...levels.map(String)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_OPS_MS: String(opsMs) },
    })
    let out = ''
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as MemoryLevel[]) : reject(new Error(`[bench] memory scale exited with ${code}`))))
  })
}

export async function runScale(log: (line: string) => void): Promise<ScaleResult> {
  const began = performance.now()
  const opsMs = Number(process.env.BENCH_OPS_MS ?? 1000)
  const concurrency = 10
  const memory = await scaleMemory([10_000, 100_000, 1_000_000], opsMs)
  for (const m of memory) log(`  memory ${m.n}: ${(m.bytesPer100k / 1e6).toFixed(1)} MB per 100k, load ${m.loadPerSec.toFixed(0)}/s`)
  const postgres = await scalePostgres([10_000, 100_000, 1_000_000], opsMs, concurrency, log)
  const redis = await scaleRedis(FULL ? [10_000, 100_000, 1_000_000] : [10_000, 100_000], opsMs, concurrency, log)
  return { opsMs, concurrency, postgres, redis: redis.levels, redisExpiry: redis.expiry, memory, seconds: (performance.now() - began) / 1000 }
}
