/** Starts the demo: `npm run demo`. The file store by default; REDIS_URL or DATABASE_URL switch stores. */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { serve } from '@hono/node-server'
import type { SessionStore } from 'backward/server'
import { fileStore } from 'backward/server/file'
import { createDemoApp } from './app.ts'

const here = dirname(fileURLToPath(import.meta.url))
const port = Number(process.env.PORT ?? 3000)
const dataDir = process.env.DEMO_DATA_DIR ?? join(here, '..', '.sessions')
const staticDir = join(here, 'dist')

async function stores(): Promise<{ store: SessionStore; idempotencyStore: SessionStore; label: string }> {
  if (process.env.REDIS_URL) {
    const { Redis } = await import('ioredis')
    const { redisStore } = await import('backward/server/redis')
    // Fail fast in an outage (a clear 503) instead of queueing commands while reconnecting.
    const client = new Redis(process.env.REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    client.on('error', (error) => console.error('[demo] Redis error:', error.message))
    await client.connect()
    return { store: redisStore({ client, prefix: 'demo:session:' }), idempotencyStore: redisStore({ client, prefix: 'demo:idem:' }), label: 'Redis' }
  }
  if (process.env.DATABASE_URL) {
    const { default: pg } = await import('pg')
    const { postgresStore } = await import('backward/server/postgres')
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
    pool.on('error', (error) => console.error('[demo] PostgreSQL pool error:', error.message))
    const store = postgresStore({ pool, table: 'demo_sessions' })
    const idempotencyStore = postgresStore({ pool, table: 'demo_idempotency' })
    await store.migrate()
    await idempotencyStore.migrate()
    return { store, idempotencyStore, label: 'PostgreSQL' }
  }
  return { store: fileStore({ dir: join(dataDir, 'sessions') }), idempotencyStore: fileStore({ dir: join(dataDir, 'idempotency') }), label: `file store (${dataDir})` }
}

if (!existsSync(join(staticDir, 'index.html'))) {
  console.error('[demo] demo/dist is missing: run "npm run demo", which builds it first.')
  process.exit(1)
}
const { store, idempotencyStore, label } = await stores()
const { app } = createDemoApp({ store, idempotencyStore, staticDir })
serve({ fetch: app.fetch, port, hostname: process.env.HOST ?? '127.0.0.1' }, (info) => {
  console.log(`[demo] backward demo on http://localhost:${info.port} (sessions: ${label})`)
})
