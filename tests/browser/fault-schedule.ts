// One fault trial's plan, drawn from a seeded PRNG: the actions made while logged out, and the faults
// their replay meets. Printed on failure, so that FAULT_SEED and FAULT_TRIAL replay it exactly.
import { rng, trialSeed } from '../helpers/prng.ts'

/** A request body, as Node makes it and the page rebuilds it. Bytes travel as base64. */
export type BodySpec =
  | { kind: 'none' }
  | { kind: 'text' | 'json'; text: string }
  | { kind: 'bytes'; base64: string }
  | { kind: 'urlencoded'; fields: [string, string][] }
  | { kind: 'multipart'; fields: [string, string][]; file?: { field: string; name: string; type: string; base64: string } }

export interface ActionSpec {
  /** Unique in the trial: the last segment of the action's path, `/api/fault/<tag>`. */
  tag: string
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  body: BodySpec
}

/**
 * What happens to the n-th replay request the browser sends (requests with an Idempotency-Key, in
 * the order the context's route sees them), besides the server's own failures:
 * - `abort`: the network drops it before it reaches the server;
 * - `lose`: it reaches the server (the handler runs), and the network drops the answer;
 * - `hold`: held in the route while the page that sent it is closed or reloaded (`disruption`);
 * - `offline`: the context goes offline while it is on its way.
 */
export type NetFault = 'abort' | 'lose'

export type Disruption =
  | { kind: 'none' }
  | { kind: 'close' | 'reload'; at: number; afterServer: boolean }
  | { kind: 'offline'; at: number; more: number }

export interface Schedule {
  seed: number
  trial: number
  actions: ActionSpec[]
  /** `navigate`: the SDK goes to the login page (the default); `stay`: it stays on the page. */
  capture: 'navigate' | 'stay'
  /** IndexedDB made unavailable for the whole context: `open` throws, or `indexedDB` is missing. */
  noIdb: null | 'open-throws' | 'missing'
  /** One-shot QuotaExceededError on writes: action tags (at capture), `user`, `retry` (see quota-storage.ts). */
  quota: string[]
  /** How the faulted replay starts: a page load with the login signal, `bw.replay()`, or two tabs loading at once. */
  trigger: 'load' | 'replay' | 'two-tabs'
  /** By index of the replay request, as the browser sends them (0-based). */
  net: Record<number, NetFault>
  /** Statuses the server answers to the next replay requests that reach it, before the handler. */
  server: (500 | 503)[]
  disruption: Disruption
  /** After the faults are gone: `bw.replay()` on a live page, or a new login and a page load. */
  recovery: 'replay' | 'relogin'
}

/** Failures one action may meet in a trial: below maxAttempts (5), the retry budget before a drop. */
export const FAILURE_BUDGET = 4

const words = ['follow', 'like', 'save', 'draft', 'hello', 'wörld', '🙂', 'a&b=c', 'x'.repeat(40), '', ' ']
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')

/**
 * Draws trial `trial` of the run seeded with `seed`.
 * @example
 * schedule(20261122, 0).actions.length // 1 to 5
 */
export function schedule(seed: number, trial: number): Schedule {
  const r = rng(trialSeed(seed, trial))
  const text = () => Array.from({ length: r.int(1, 4) }, () => r.pick(words)).join(' ')
  const fields = (): [string, string][] => Array.from({ length: r.int(1, 3) }, (_, i) => [`f${i}`, text()])
  const body = (): BodySpec => {
    switch (r.pick(['none', 'text', 'json', 'bytes', 'urlencoded', 'multipart', 'file', 'file'] as const)) {
      case 'none':
        return { kind: 'none' }
      case 'text':
        return { kind: 'text', text: text() }
      case 'json':
        return { kind: 'json', text: JSON.stringify({ n: r.int(0, 1e6), s: text() }) }
      case 'bytes':
        return { kind: 'bytes', base64: b64(r.bytes(r.int(1, 4096))) }
      case 'urlencoded':
        return { kind: 'urlencoded', fields: fields() }
      case 'multipart':
        return { kind: 'multipart', fields: fields() }
      case 'file':
        return {
          kind: 'multipart',
          fields: fields(),
          file: { field: 'upload', name: r.pick(['a.png', 'report.pdf', 'notes.txt', 'ø.bin']), type: r.pick(['image/png', 'application/pdf', 'text/plain', '']), base64: b64(r.bytes(r.int(0, 48_000))) },
        }
    }
  }
  const actions: ActionSpec[] = Array.from({ length: r.int(1, 5) }, (_, i) => {
    const b = body()
    return { tag: `t${trial}-${i}`, method: b.kind == 'none' ? r.pick(['POST', 'DELETE'] as const) : r.pick(['POST', 'POST', 'PUT', 'PATCH'] as const), body: b }
  })

  const noIdb = r.chance(0.12) ? r.pick(['open-throws', 'missing'] as const) : null
  // Without IndexedDB the queue lives in the page's memory: the trial must stay on one page.
  const capture = noIdb ? 'stay' : r.pick(['navigate', 'stay'] as const)
  const trigger = noIdb ? 'replay' : r.pick(['load', 'replay', 'two-tabs'] as const)
  const quota: string[] = []
  if (!noIdb && r.chance(0.2)) quota.push(...r.sample(actions.map((a) => a.tag), r.int(1, Math.min(2, actions.length))))
  const queued = actions.length - quota.length
  const replayQuota = !noIdb && queued > 0 && r.chance(0.15) ? r.pick(['user', 'retry'] as const) : null

  let disruption: Disruption = { kind: 'none' }
  const kinds = noIdb ? (['none', 'offline'] as const) : (['none', 'none', 'close', 'reload', 'offline'] as const)
  const kind = queued > 0 && replayQuota != 'user' ? r.pick(kinds) : 'none'
  // A 'retry' quota stops the replay at its first failure; nothing after it would be reached.
  if (kind == 'offline') disruption = { kind, at: r.int(0, queued - 1), more: r.int(0, 2) }
  else if ((kind == 'close' || kind == 'reload') && replayQuota != 'retry') disruption = { kind, at: r.int(0, queued - 1), afterServer: r.chance(0.5) }

  // Failures of the network and of the server, within the budget (an offline trial spends its own).
  const net: Record<number, NetFault> = {}
  const server: (500 | 503)[] = []
  if (disruption.kind != 'offline') {
    const failures = r.int(replayQuota == 'retry' ? 1 : 0, FAILURE_BUDGET)
    const netCount = r.int(0, failures)
    const atHold = disruption.kind == 'none' ? -1 : disruption.at
    // Replay requests 0 … queued + failures - 1 are sure to be sent when no fault stops the replay.
    const slots = Array.from({ length: queued + failures }, (_, i) => i).filter((i) => i != atHold)
    for (const i of r.sample(slots, netCount)) net[i] = r.pick(['abort', 'lose'] as const)
    for (let i = netCount; i < failures; i++) server.push(r.pick([500, 503] as const))
  }
  if (replayQuota) quota.push(replayQuota)
  return {
    seed,
    trial,
    actions,
    capture,
    noIdb,
    quota,
    trigger,
    net,
    server,
    disruption,
    recovery: noIdb ? 'replay' : r.pick(['replay', 'relogin'] as const),
  }
}

/** The faults a trial mixes, for the per-fault table. */
export function faultLabels(s: Schedule): string[] {
  const labels: string[] = []
  if (Object.values(s.net).includes('abort')) labels.push('network drops the request')
  if (Object.values(s.net).includes('lose')) labels.push('network drops the answer')
  if (s.server.includes(500)) labels.push('server 500')
  if (s.server.includes(503)) labels.push('server 503')
  if (s.disruption.kind == 'close') labels.push('tab closed mid-replay')
  if (s.disruption.kind == 'reload') labels.push('reload mid-replay')
  if (s.disruption.kind == 'offline') labels.push('offline mid-replay')
  if (s.trigger == 'two-tabs') labels.push('two tabs race')
  if (s.quota.some((q) => q != 'user' && q != 'retry')) labels.push('quota exceeded on save')
  if (s.quota.some((q) => q == 'user' || q == 'retry')) labels.push('quota exceeded during replay')
  if (s.noIdb) labels.push('IndexedDB unavailable')
  if (!labels.length) labels.push('no fault (control)')
  return labels
}
