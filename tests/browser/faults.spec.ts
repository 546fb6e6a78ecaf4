// Issue 8, the client half: "the client keeps every action, and runs each one once". Seeded,
// randomized fault trials in real Chromium against the real test server (tests/browser/server.ts):
// each trial makes 1–5 actions logged out, logs in, replays them under a random mix of faults
// (network drops, 500/503, a tab closed or reloaded mid-replay, two tabs racing, offline, quota
// exceeded, no IndexedDB), removes the faults, replays again, and counts actions made against
// actions the server's handler ran. Required: 0 lost and 0 duplicated.
//
// FAULT_SEED=<n> picks the schedules (default below), FAULT_TRIALS=<n> how many (default 100),
// FAULT_TRIAL=<n> runs that one trial alone, FAULT_LANES=<n> runs n trials side by side. Totals go to test-results/faults.json.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { runTrial, replayHint, type TrialResult } from './fault-trial.ts'
import { schedule, type Schedule } from './fault-schedule.ts'
import { expect, test } from './fixtures.ts'

const SEED = Number(process.env.FAULT_SEED ?? 20261122)
const ONLY = process.env.FAULT_TRIAL === undefined ? undefined : Number(process.env.FAULT_TRIAL)
const TRIALS = ONLY === undefined ? Number(process.env.FAULT_TRIALS ?? 100) : 1
const LANES = Number(process.env.FAULT_LANES ?? 2)
const BATCH = 10
const DIR = 'test-results/faults'
const batches = Math.ceil(TRIALS / BATCH)

/** The schedule without its bytes: what a failure prints. */
function printable(s: Schedule) {
  return {
    ...s,
    actions: s.actions.map((a) => ({
      tag: a.tag,
      method: a.method,
      body: a.body.kind,
      bytes: 'base64' in a.body ? Buffer.from(a.body.base64, 'base64').length : undefined,
      file: a.body.kind == 'multipart' && a.body.file ? Buffer.from(a.body.file.base64, 'base64').length : undefined,
    })),
  }
}

const bad = (r: TrialResult) => r.lost > 0 || r.duplicated > 0 || r.corrupted > 0 || r.avoidableDoubleSends > 0 || r.problems.length > 0

test.describe('fault trials: every action kept, each run once', () => {
  for (let b = 0; b < batches; b++) {
    const trials = ONLY === undefined ? Array.from({ length: Math.min(BATCH, TRIALS - b * BATCH) }, (_, i) => b * BATCH + i) : [ONLY]
    test(`trials ${trials[0]}–${trials.at(-1)} (seed ${SEED})`, async ({ browser, request, server }) => {
      test.setTimeout(20_000 * trials.length)
      if (b == 0) rmSync(DIR, { recursive: true, force: true })
      mkdirSync(DIR, { recursive: true })
      await request.post(`${server}/test/reset`)
      const results: TrialResult[] = []
      try {
        // FAULT_LANES trials at a time (default 2), each in its own context: a trial mostly waits on the network and timers.
        const queue = [...trials]
        const lane = async () => {
          for (let trial = queue.shift(); trial !== undefined; trial = queue.shift()) results.push(await runTrial(browser, request, server, schedule(SEED, trial)))
        }
        await Promise.all(Array.from({ length: LANES }, lane))
        results.sort((x, y) => x.trial - y.trial)
      } finally {
        writeFileSync(`${DIR}/batch-${b}.json`, JSON.stringify({ seed: SEED, trials: TRIALS, results }))
      }
      const failed = results.filter(bad).map((r) => {
        const s = schedule(SEED, r.trial)
        const { seed, trial, labels, made, refused, executed, lost, duplicated, corrupted, avoidableDoubleSends, problems } = r
        return `trial ${trial}: ${JSON.stringify({ seed, labels, made, refused, executed, lost, duplicated, corrupted, avoidableDoubleSends, problems })}\n  schedule: ${JSON.stringify(printable(s))}\n  replay: ${replayHint(s)}`
      })
      expect(failed, `seed ${SEED}: ${failed.length} trial(s) failed\n${failed.join('\n')}`).toEqual([])
    })
  }

  test(`totals (seed ${SEED})`, async () => {
    const files = readdirSync(DIR).filter((f) => f.startsWith('batch-'))
    const runs = files.map((f) => JSON.parse(readFileSync(`${DIR}/${f}`, 'utf8')) as { seed: number; trials: number; results: TrialResult[] })
    const results = runs.filter((r) => r.seed == SEED && r.trials == TRIALS).flatMap((r) => r.results).sort((x, y) => x.trial - y.trial)
    const sum = (pick: (r: TrialResult) => number, rs = results) => rs.reduce((n, r) => n + pick(r), 0)
    const byFault: Record<string, Record<string, number>> = {}
    for (const r of results)
      for (const label of r.labels) {
        const row = (byFault[label] ??= { trials: 0, fired: 0, actions: 0, executed: 0, refused: 0, lost: 0, duplicated: 0, doubleSends: 0 })
        row.trials!++
        row.fired! += r.fired[label] ?? (label == 'no fault (control)' ? 1 : 0)
        row.actions! += r.made
        row.executed! += r.executed
        row.refused! += r.refused
        row.lost! += r.lost
        row.duplicated! += r.duplicated
        row.doubleSends! += r.doubleSends
      }
    const totals = {
      seed: SEED,
      trials: results.length,
      actionsMade: sum((r) => r.made),
      refusedAndReported: sum((r) => r.refused),
      executed: sum((r) => r.executed),
      lost: sum((r) => r.lost),
      duplicated: sum((r) => r.duplicated),
      corrupted: sum((r) => r.corrupted),
      replaySends: sum((r) => r.sends),
      resends: sum((r) => r.resends),
      clientDoubleSends: sum((r) => r.doubleSends),
      avoidableClientDoubleSends: sum((r) => r.avoidableDoubleSends),
      nudgedRecoveries: sum((r) => r.nudged),
      sessionCookieLostInRecovery: sum((r) => r.sessionLost ?? 0),
      trialsWithProblems: results.filter((r) => r.problems.length).length,
      msPerTrial: Math.round(sum((r) => r.ms) / Math.max(1, results.length)),
      byFault,
      failedTrials: results.filter(bad).map((r) => ({ trial: r.trial, problems: r.problems, lost: r.lost, duplicated: r.duplicated })),
    }
    writeFileSync('test-results/faults.json', JSON.stringify(totals, null, 2) + '\n')
    const pad = (v: unknown, n: number) => String(v).padStart(n)
    console.log(
      [
        `fault trials, seed ${SEED}: ${totals.trials} trials, ${totals.actionsMade} actions made, ${totals.executed} executed, ` +
          `${totals.refusedAndReported} refused and reported, ${totals.lost} lost, ${totals.duplicated} duplicated, ${totals.corrupted} corrupted`,
        `replay requests sent ${totals.replaySends} (re-sends ${totals.resends}); reached the server after it had run the action ${totals.clientDoubleSends} (avoidable ${totals.avoidableClientDoubleSends})`,
        `${'fault'.padEnd(30)}${pad('trials', 7)}${pad('fired', 7)}${pad('actions', 8)}${pad('executed', 9)}${pad('refused', 8)}${pad('lost', 5)}${pad('dup', 5)}${pad('2x sent', 8)}`,
        ...Object.entries(byFault)
          .sort()
          .map(([name, row]) => `${name.padEnd(30)}${pad(row.trials, 7)}${pad(row.fired, 7)}${pad(row.actions, 8)}${pad(row.executed, 9)}${pad(row.refused, 8)}${pad(row.lost, 5)}${pad(row.duplicated, 5)}${pad(row.doubleSends, 8)}`),
      ].join('\n'),
    )
    expect(results.length, 'run the whole file: every batch writes its results').toBe(TRIALS)
    if (ONLY === undefined && process.env.FAULT_TRIALS === undefined) expect(totals.trials).toBeGreaterThanOrEqual(100)
    expect({ lost: totals.lost, duplicated: totals.duplicated, corrupted: totals.corrupted }).toEqual({ lost: 0, duplicated: 0, corrupted: 0 })
    expect(totals.avoidableClientDoubleSends).toBe(0)
    expect(totals.failedTrials).toEqual([])
  })
})
