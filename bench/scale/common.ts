import { createHash } from 'node:crypto'
import type { SessionStore } from '../../src/server/store.ts'

/** The store key of bench session `i`: what hashKey() would give, computed the same way in SQL. */
export function benchKey(i: number): string {
  return createHash('sha256').update(`bench:${i}`).digest('hex')
}

/** A typical small session: a user id, a CSRF token, a counter (about 100 bytes of JSON). */
export function benchData(i: number): Record<string, unknown> {
  return { _auth_user_id: String(i), csrf: 'Qm9vdHN0cmFwLXRva2VuLWZvci1iZW5jaG1hcmtzLTAx', count: 1 }
}

export interface OpsResult {
  loadPerSec: number
  updatePerSec: number
}

/**
 * `load` and then `update` per second on random existing sessions among `n`, with `concurrency`
 * calls in flight (what a busy app server has), each for `ms` milliseconds.
 */
export async function measureOps(store: SessionStore, n: number, ms: number, concurrency: number): Promise<OpsResult> {
  const sample = Array.from({ length: 4096 }, () => Math.floor(Math.random() * n) + 1)
  const keys = sample.map(benchKey)
  const expiresAt = Date.now() + 3_600_000
  async function phase(op: (key: string, i: number) => Promise<unknown>, duration = ms): Promise<number> {
    let done = 0
    let failed = 0
    const end = performance.now() + duration
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        for (let j = worker; performance.now() < end; j += concurrency) {
          if (!(await op(keys[j % keys.length]!, sample[j % sample.length]!))) failed++
          done++
        }
      }),
    )
    if (failed > 0) throw new Error(`[bench] ${failed} of ${done} store calls found no session`)
    return done / ((performance.now() - t0) / 1000)
  }
  // A short unmeasured pass first: pool connections, JIT and caches warm up.
  await phase((key) => store.load(key), Math.min(250, ms))
  const loadPerSec = await phase((key) => store.load(key))
  const updatePerSec = await phase((key, i) => store.update(key, { ...benchData(i), count: 2 }, expiresAt))
  return { loadPerSec, updatePerSec }
}
