// A small seeded PRNG for the browser fault trials and the soak: the same seed gives the same
// schedules or request mix, so a failure can be replayed (FAULT_SEED=<seed> FAULT_TRIAL=<n>, SOAK_SEED=<seed>).

/**
 * mulberry32: a 32-bit state PRNG, uniform in [0, 1). Plenty for test schedules; not for secrets.
 * @example
 * const next = mulberry32(42); next() // 0.6011037519201636
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** What the schedule generator draws from. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number
  pick<T>(items: readonly T[]): T
  chance(p: number): boolean
  bytes(n: number): Uint8Array
  /** `k` distinct items, in random order. */
  sample<T>(items: readonly T[], k: number): T[]
}

/**
 * A PRNG for one trial: independent of the other trials, so trial n can be run alone.
 * @example
 * const r = rng(trialSeed(20261122, 17)); r.int(1, 5)
 */
export function rng(seed: number): Rng {
  const next = mulberry32(seed)
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  return {
    next,
    int,
    pick: (items) => items[int(0, items.length - 1)]!,
    chance: (p) => next() < p,
    bytes: (n) => Uint8Array.from({ length: n }, () => int(0, 255)),
    sample(items, k) {
      const pool = [...items]
      for (let i = pool.length - 1; i > 0; i--) {
        const j = int(0, i)
        ;[pool[i], pool[j]] = [pool[j]!, pool[i]!]
      }
      return pool.slice(0, k)
    },
  }
}

/** Mixes a run's seed with a trial number (murmur3's finalizer). */
export function trialSeed(seed: number, trial: number): number {
  let h = (seed ^ Math.imul(trial + 1, 0x9e3779b1)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}
