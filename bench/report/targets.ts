// The budgets of issue 7. A missed target is reported (RESULTS.md, "target" column), never thrown.
import type { ThroughputResult, Workload } from '../server/throughput.ts'
import type { TargetName } from '../server/target.ts'

/** Read+write req/s as a share of bare Hono. */
export const READ_WRITE_TARGETS: { name: TargetName; min: number }[] = [
  { name: 'backward memory', min: 0.85 },
  { name: 'backward cookie', min: 0.6 },
  { name: 'backward redis', min: 0.5 },
]

/** Each backward store against the peers that keep sessions the same way. */
export const PEER_GROUPS: { kind: string; ours: TargetName; peers: TargetName[] }[] = [
  { kind: 'in-process memory', ours: 'backward memory', peers: ['hono-sessions memory', 'express-session memory'] },
  { kind: 'stateless cookie', ours: 'backward cookie', peers: ['hono-sessions cookie', 'hono + iron-session'] },
  { kind: 'Redis', ours: 'backward redis', peers: ['express-session connect-redis'] },
]

export const FETCH_RATIO_MAX = 1.05
export const GZIP_BUDGET = 3 * 1024

export interface Verdict {
  label: string
  measured: string
  goal: string
  /** null: a reference figure with no target. */
  met: boolean | null
}

export function serverVerdicts(t: ThroughputResult): Verdict[] {
  const out: Verdict[] = []
  for (const { name, min } of READ_WRITE_TARGETS) {
    const ratio = t.cells[name]!.write.ratio
    out.push({ label: `${name}, read+write`, measured: pct(ratio), goal: `≥ ${pct(min)} of bare Hono`, met: ratio >= min })
  }
  // The part of each gap that is Hono's and Node's, not backward's (see sameHeaders in server/target.ts).
  const floor = t.cells['hono + same headers']?.write
  if (floor !== undefined) {
    for (const { name } of READ_WRITE_TARGETS) {
      const cell = t.cells[name]!.write
      out.push({
        label: `${name}, read+write, against Hono + the same headers`,
        measured: `${pct(cell.rps / floor.rps)} (${fmt(cell.rps)} vs ${fmt(floor.rps)} req/s; the headers alone are ${pct(floor.ratio)} of bare Hono)`,
        goal: 'reference (no target)',
        met: null,
      })
    }
  }
  for (const { ours, peers } of PEER_GROUPS) {
    for (const workload of ['anonymous', 'read', 'write'] as Workload[]) {
      const best = peers.map((peer) => ({ peer, rps: t.cells[peer]![workload].rps })).sort((a, b) => b.rps - a.rps)[0]!
      const rps = t.cells[ours]![workload].rps
      out.push({
        label: `${ours} vs ${best.peer}, ${workload}`,
        measured: `${(rps / best.rps).toFixed(2)}× (${fmt(rps)} vs ${fmt(best.rps)} req/s)`,
        goal: 'faster than every peer of its kind',
        met: rps > best.rps,
      })
    }
  }
  return out
}

export const pct = (ratio: number) => `${(ratio * 100).toFixed(0)} %`
export const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1))
