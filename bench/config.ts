// Where the benchmarks put their data. Only these prefixes and tables are ever written or removed.
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const PG_CONFIG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' }

export const BENCH = {
  redisServerPrefix: 'bench:backward:srv:',
  connectRedisPrefix: 'bench:backward:connect-redis:',
  redisScalePrefix: 'bench:backward:scale:',
  pgServerTable: 'bench_srv_sessions',
  pgScaleTable: 'bench_sessions',
} as const

/** `BENCH_FULL=1` adds the 1M level on Redis (PostgreSQL and memoryStore always go to 1M). */
export const FULL = process.env.BENCH_FULL === '1'
/** Seconds per autocannon run. */
export const DURATION = Number(process.env.BENCH_DURATION ?? 3)
/** Rounds over every target and workload; the median is reported. */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
/** Concurrent connections autocannon keeps open. */
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
