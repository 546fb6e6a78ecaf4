// memoryStore at scale, in its own process so that `--expose-gc` gives honest heap deltas:
// `node --expose-gc --import tsx bench/scale/memory-child.ts 10000 100000` prints one JSON line.
import { memoryStore } from '../../src/server/index.ts'
import { benchData, benchKey, measureOps } from './common.ts'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('[bench] run with --expose-gc')
const levels = process.argv.slice(2).map(Number)
const opsMs = Number(process.env.BENCH_OPS_MS ?? 1000)

function heap(): number {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

const out = []
for (const n of levels) {
  const keys = Array.from({ length: n }, (_, i) => benchKey(i + 1))
  // The store's clock is ours, so clearExpired can be timed with every record expired.
  let clock = Date.now()
  const before = heap()
  const store = memoryStore({ maxEntries: n + 1, now: () => clock })
  const expiresAt = clock + 3_600_000
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await store.create(keys[i]!, benchData(i + 1), expiresAt)
  const createPerSec = n / ((performance.now() - t0) / 1000)
  keys.length = 0
  const after = heap()
  const ops = await measureOps(store, n, opsMs, 1)
  clock += 7_200_000
  const c0 = performance.now()
  const removed = await store.clearExpired!()
  const clearMs = performance.now() - c0
  out.push({ n, heapBytes: after - before, bytesPer100k: ((after - before) / n) * 100_000, createPerSec, ...ops, clearMs, removed })
}
console.log(JSON.stringify(out))
