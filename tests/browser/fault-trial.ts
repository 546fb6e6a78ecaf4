// Runs one fault trial in a fresh browser context against tests/browser/server.ts, and counts: actions
// made against actions executed by the server's handler (after its idempotency layer), and replay
// requests sent by the browser and received by the server (before that layer).
import type { APIRequestContext, Browser, BrowserContext, Page, Route } from '@playwright/test'
import { createHash } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { faultLabels, type ActionSpec, type BodySpec, type Schedule } from './fault-schedule.ts'
import type { ServerState } from './fixtures.ts'

type Bw = { bw: import('../../src/client/index.ts').Backward; backwardReport: (entry: Record<string, unknown>) => void }
type Report = { name: string; url?: string; id?: string; status?: number; code?: string; reason?: string; tag?: string; error?: string; at: number; page: string }
type Requests = { path: string; key: string | null; status: number; replayed: boolean; at?: number }[]

export interface TrialResult {
  seed: number
  trial: number
  labels: string[]
  made: number
  /** Refused at capture and reported: an `error` event (QUOTA_EXCEEDED) and a rejected `bw.fetch`. */
  refused: number
  /** Actions the handler ran at least once. */
  executed: number
  /** Made, not refused-and-reported, and never run by the handler. */
  lost: number
  /** Handler runs beyond the first, for one action. */
  duplicated: number
  /** Run with a body other than the one sent. */
  corrupted: number
  /** Replay requests the browser sent (the context's route saw them). */
  sends: number
  /** Sends beyond each action's first: retries after a failure, or a repeat. */
  resends: number
  /** Replay requests that reached the server after its handler had run that action (answered as a repeat, or 409). */
  doubleSends: number
  /** Of those, sent after the page had already seen the action's answer (its `replayed` event): the client's own fault. */
  avoidableDoubleSends: number
  /** Faults that actually happened, by kind. */
  fired: Record<string, number>
  /** Recovery needed an extra `bw.replay()` after a page load with the login signal. */
  nudged: number
  /** Recovery found the session cookie gone (see the recovery loop) and logged in again. */
  sessionLost: number
  /** Anything else wrong: an unreported refusal, a missing fallback event, a harness error. */
  problems: string[]
  ms: number
  /** What happened, for a trial that failed. */
  trace?: unknown
}

const PAGE_TIMEOUT = 8_000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const noop = () => {}
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')
const tagOf = (url: string) => new URL(url).pathname.split('/').pop()!
const path = (a: ActionSpec) => `/api/fault/${a.tag}`

/** What the test server's handler records for this body (see tests/browser/server.ts). */
function expectedRun(body: BodySpec): Record<string, unknown> {
  const utf8 = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'))
  switch (body.kind) {
    case 'none':
      return { sha256: sha256(new Uint8Array()) }
    case 'text':
    case 'json':
      return { sha256: sha256(utf8(body.text)) }
    case 'bytes':
      return { sha256: sha256(Buffer.from(body.base64, 'base64')) }
    case 'urlencoded':
    case 'multipart': {
      const fields: Record<string, unknown> = Object.fromEntries(body.fields)
      if (body.kind == 'multipart' && body.file) {
        const bytes = Buffer.from(body.file.base64, 'base64')
        fields[body.file.field] = { name: body.file.name, type: body.file.type || 'application/octet-stream', size: bytes.length, sha256: sha256(bytes) }
      }
      return { fields }
    }
  }
}

/** Makes the actions in the page, all at once (one hand-off); each result is reported, not awaited. */
function makeActions(page: Page, actions: ActionSpec[]) {
  return page.evaluate((specs) => {
    const { bw, backwardReport } = window as unknown as Bw
    const bytes = (base64: string) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
    for (const { tag, method, body } of specs) {
      const init: RequestInit = { method }
      if (body.kind == 'text') init.body = body.text
      if (body.kind == 'json') Object.assign(init, { body: body.text, headers: { 'Content-Type': 'application/json' } })
      if (body.kind == 'bytes') init.body = bytes(body.base64)
      if (body.kind == 'urlencoded') init.body = new URLSearchParams(body.fields)
      if (body.kind == 'multipart') {
        const form = new FormData()
        for (const [name, value] of body.fields) form.append(name, value)
        if (body.file) form.append(body.file.field, new File([bytes(body.file.base64)], body.file.name, { type: body.file.type }))
        init.body = form
      }
      bw.fetch(`/api/fault/${tag}`, init).then(
        (response) => backwardReport({ name: 'result', tag, status: response.status }),
        (error: { code?: string }) => backwardReport({ name: 'result', tag, error: error?.code ?? String(error) }),
      )
    }
  }, actions)
}

/** Waits until `ready()`, checking every 20 ms; throws `what` after `ms`. */
async function until(ready: () => boolean | Promise<boolean>, what: string, ms = PAGE_TIMEOUT): Promise<void> {
  const end = Date.now() + ms
  while (!(await ready())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await sleep(20)
  }
}

const pendingCount = (page: Page) => page.evaluate(async () => (await (window as unknown as Bw).bw.pending()).length)
const replayIn = (page: Page) => page.evaluate(() => (window as unknown as Bw).bw.replay().then(() => 'ok', (e: { code?: string }) => e?.code ?? String(e)))

// Module scripts run before the load event, so `bw` is there once goto resolves. Checked with
// evaluate, not waitForFunction: its result handle can outlive a page these trials close on purpose.
const hasBw = (page: Page) => page.evaluate(() => 'bw' in window)

async function open(page: Page, url: string): Promise<void> {
  await page.goto(url)
  await until(() => hasBw(page), `bw on ${url}`)
}

/** Logs in as alice through the context's cookie jar: the session cookie and the login signal. */
async function logIn(context: BrowserContext): Promise<void> {
  const response = await context.request.post('/login', { form: { user: 'alice' }, maxRedirects: 0 })
  if (response.status() != 303) throw new Error(`login answered ${response.status()}`)
}

/**
 * Runs one trial in its own context (cookies, IndexedDB, Web Locks, routes and offline state are all
 * per context), so trials can run side by side against one server. Never throws: a harness failure is a problem in the result, with the schedule.
 * @example
 * const result = await runTrial(browser, control, server, schedule(seed, 3))
 */
export async function runTrial(browser: Browser, control: APIRequestContext, server: string, s: Schedule): Promise<TrialResult> {
  const started = Date.now()
  const mark = (what: string) => process.env.FAULT_DEBUG && console.log(`trial ${s.trial} +${Date.now() - started} ms ${what}`)
  const reports: Report[] = []
  const sent: { tag: string; key: string; at: number }[] = []
  const fired: Record<string, number> = {}
  const fire = (name: string) => void (fired[name] = (fired[name] ?? 0) + 1)
  const problems: string[] = []
  let nudged = 0
  let sessionLost = 0
  const refused = new Set<string>()
  // Every action of this trial has a path under this prefix: trials may run side by side.
  const prefix = `/api/fault/t${s.trial}-`
  const context = await browser.newContext({ baseURL: server })
  const busy = new Set<Promise<unknown>>()
  try {
    await context.exposeBinding('faultReport', (_source, entry: Report) => void reports.push({ ...entry, at: Date.now() }))
    if (s.noIdb == 'open-throws')
      await context.addInitScript(() => {
        IDBFactory.prototype.open = () => {
          throw new DOMException('IndexedDB is disabled here.', 'InvalidStateError')
        }
      })
    if (s.noIdb == 'missing') await context.addInitScript(() => Object.defineProperty(window, 'indexedDB', { value: undefined, configurable: true }))

    // Every replay request passes through here: counted, and given its fault.
    let faults = true
    let index = 0
    let held: (value: { route: Route; page: Page }) => void = noop
    const reached = new Promise<{ route: Route; page: Page }>((resolve) => (held = resolve))

    // Logged out: make the actions. Each one is saved (queued) or refused and reported.
    const retry = s.disruption.kind == 'offline' ? 60_000 : 20
    const flags = (quota: string[]) =>
      '/app?' + new URLSearchParams({ retry: String(retry), ...(quota.length ? { quota: quota.join(',') } : {}), ...(s.capture == 'stay' ? { stay: '' } : {}) })
    const captureTags = s.quota.filter((q) => q != 'user' && q != 'retry')
    const replayQuota = s.quota.filter((q) => q == 'user' || q == 'retry')
    // On a `stay` capture the replay may happen on the same page: it carries the replay's flags too.
    const captureUrl = flags(s.capture == 'stay' ? s.quota : captureTags)
    const replayUrl = flags(replayQuota)
    mark('context ready')
    let page = await context.newPage()
    await open(page, captureUrl)
    mark('page open')
    await makeActions(page, s.actions)
    const settled = (tag: string) => reports.some((r) => (r.name == 'queued' && r.url && tagOf(r.url) == tag) || (r.name == 'result' && r.tag == tag && r.error))
    await until(() => s.actions.every((a) => settled(a.tag)), 'every action saved or refused')
    const queued = new Set(reports.filter((r) => r.name == 'queued').map((r) => tagOf(r.url!)))
    if (s.capture == 'navigate' && queued.size) await page.waitForURL(/\/login\?next=/, { waitUntil: 'commit' })
    if (s.capture == 'stay') await until(() => s.actions.every((a) => reports.some((r) => r.name == 'result' && r.tag == a.tag)), 'every bw.fetch settled')
    if (s.noIdb && !reports.some((r) => r.name == 'error' && r.code == 'STORAGE_UNAVAILABLE')) problems.push('no STORAGE_UNAVAILABLE event without IndexedDB')
    if (s.noIdb) fire('IndexedDB unavailable')
    for (const a of s.actions) {
      if (queued.has(a.tag)) continue
      const event = reports.some((r) => r.name == 'error' && r.code == 'QUOTA_EXCEEDED' && r.url && tagOf(r.url) == a.tag)
      const rejected = reports.some((r) => r.name == 'result' && r.tag == a.tag && r.error == 'QUOTA_EXCEEDED')
      if (event && rejected) refused.add(a.tag)
      else problems.push(`${a.tag} neither saved nor reported (event ${event}, rejected ${rejected})`)
    }
    if (refused.size) fire('quota exceeded on save')

    // Log in, and replay under the faults.
    mark('captured')
    // Installed after the capture: routing slows every request of the context, page loads included.
    await context.route(/\/api\/fault\//, (route) => {
      const key = route.request().headers()['idempotency-key']
      if (key === undefined) return route.continue()
      const i = index++
      sent.push({ tag: tagOf(route.request().url()), key, at: Date.now() })
      if (!faults) return route.continue()
      const d = s.disruption
      const task = (async () => {
        if (d.kind != 'none' && d.at == i) {
          if (d.kind == 'offline') {
            await context.setOffline(true)
            fire('offline mid-replay')
            held({ route, page: route.request().frame().page() })
            return route.continue().catch(noop)
          }
          if (d.afterServer) await route.fetch().catch(noop)
          fire(d.kind == 'close' ? 'tab closed mid-replay' : 'reload mid-replay')
          return held({ route, page: route.request().frame().page() })
        }
        const fault = s.net[i]
        if (fault == 'lose') {
          await route.fetch().catch(noop)
          fire('network drops the answer')
          return route.abort('internetdisconnected').catch(noop)
        }
        if (fault == 'abort') {
          fire('network drops the request')
          return route.abort('internetdisconnected').catch(noop)
        }
        return route.continue().catch(noop)
      })()
      busy.add(task)
      return task.finally(() => busy.delete(task))
    })
    if (s.server.length) await control.post(`${server}/test/fail`, { data: { prefix, statuses: s.server } })
    const pages = [page]
    const quiet = { since: Date.now() }
    const trigger = (async () => {
      if (s.trigger == 'replay') {
        if (!page.url().includes(captureUrl)) await open(page, replayUrl)
        await logIn(context)
        quiet.since = Date.now()
        await replayIn(page)
      } else if (s.trigger == 'load') {
        await logIn(context)
        quiet.since = Date.now()
        await open(page, replayUrl)
      } else {
        await logIn(context)
        pages.push(await context.newPage())
        quiet.since = Date.now()
        await Promise.all(pages.map((p) => open(p, replayUrl)))
        fire('two tabs race')
        // And both ask at once too: Web Locks let one through at a time.
        await Promise.all(pages.map(replayIn))
      }
    })()
    // The trigger's page may be closed or reloaded under it: that is the fault, not a failure.
    const triggered = trigger.then(noop, (error: Error) => (pages.every((p) => !p.isClosed()) && s.disruption.kind == 'none' ? error : undefined))

    const d = s.disruption
    if (d.kind != 'none') {
      const { route, page: victim } = await Promise.race([
        reached,
        sleep(PAGE_TIMEOUT).then(() => {
          throw new Error(`timed out: disruption at replay request ${d.at} never came`)
        }),
      ])
      if (d.kind == 'close') {
        await victim.close()
        await route.abort().catch(noop)
      } else if (d.kind == 'reload') {
        await victim.reload().catch(noop)
        await route.abort().catch(noop)
        await until(() => hasBw(victim).catch(() => false), 'bw after the reload')
      } else if (d.kind == 'offline') {
        await until(async () => !busy.size, 'offline request done')
        for (let k = 0; k < d.more; k++) await replayIn(victim).catch(noop)
        await context.setOffline(false)
      }
    }
    mark('disruption handled')
    const triggerError = await triggered
    if (triggerError) throw triggerError
    quiet.since = Date.now()
    if (s.quota.includes('user') || s.quota.includes('retry')) {
      if (reports.some((r) => r.name == 'error' && r.code == 'QUOTA_EXCEEDED' && !refused.has(r.url ? tagOf(r.url) : ''))) fire('quota exceeded during replay')
    }
    mark('triggered')
    // Let the faulted replay run its course: automatic retries every 20 ms, so 200 ms of quiet means it stopped.
    await until(() => !busy.size && Date.now() - Math.max(quiet.since, sent.at(-1)?.at ?? 0) > 200, 'replay under faults to settle')

    mark('settled')
    // Recovery: the faults are gone; replay again by hand or by a new login and a page load.
    faults = false
    await control.post(`${server}/test/fail`, { data: { prefix, statuses: [] } })
    await context.setOffline(false)
    const live = pages.find((p) => !p.isClosed()) ?? (await context.newPage())
    if (s.recovery == 'relogin') {
      await logIn(context)
      await open(live, '/app')
      const end = Date.now() + 3000
      while ((await pendingCount(live)) && Date.now() < end) await sleep(25)
    } else if (!live.url().includes('/app')) await open(live, '/app')
    for (let round = 0; (await pendingCount(live)) > 0; round++) {
      if (round == 10) throw new Error(`queue not empty after ${round} replays: ${await pendingCount(live)} left`)
      // A replay request already at the server when this recovery logged in again can come back with
      // the retired session's answer: a 401, and a Set-Cookie that deletes the session cookie (session()
      // clears the cookie of a request whose session is gone, as Django does). The actions stay queued, as they should after a
      // 401; a real user would log in again, and so does this test. Counted: `sessionLost`.
      if (!(await context.cookies()).some((c) => c.name == 'sessionid')) {
        sessionLost++
        await logIn(context)
      }
      if (s.recovery == 'relogin') nudged++
      await replayIn(live)
    }
    mark('recovered')
    await until(() => !busy.size, 'routes done')
  } catch (error) {
    problems.push(`harness: ${(error as Error).message.split('\n')[0]}`)
  } finally {
    await context.close().catch(noop)
  }

  mark('closed')
  // The count.
  const state = (await (await control.get(`${server}/test/state`)).json()) as ServerState & { requests: Requests }
  if (process.env.FAULT_DEBUG) console.log(JSON.stringify({ sent, requests: state.requests, reports: reports.map(({ name, url, tag, status, code, error, reason }) => ({ name, tag: tag ?? (url && tagOf(url)), status, code, error, reason })) }, null, 1))
  state.requests = state.requests.filter((r) => r.path.startsWith(prefix))
  for (const r of state.requests) if (r.key && (r.status == 500 || r.status == 503)) fire(r.status == 500 ? 'server 500' : 'server 503')
  const result: TrialResult = {
    seed: s.seed,
    trial: s.trial,
    labels: faultLabels(s),
    made: s.actions.length,
    refused: 0,
    executed: 0,
    lost: 0,
    duplicated: 0,
    corrupted: 0,
    sends: sent.length,
    resends: 0,
    doubleSends: 0,
    avoidableDoubleSends: 0,
    fired,
    nudged,
    sessionLost,
    problems,
    ms: 0,
  }
  for (const a of s.actions) {
    const runs = state.runs.filter((run) => run.path == path(a))
    const mine = sent.filter((x) => x.tag == a.tag)
    if (refused.has(a.tag)) {
      result.refused++
      if (runs.length) problems.push(`${a.tag} was refused, yet ran ${runs.length}×`)
      continue
    }
    if (runs.length) result.executed++
    else result.lost++
    result.duplicated += Math.max(0, runs.length - 1)
    const want = expectedRun(a.body)
    for (const run of runs) if (!Object.entries(want).every(([k, v]) => isDeepStrictEqual((run as Record<string, unknown>)[k], v))) result.corrupted++
    result.resends += Math.max(0, mine.length - 1)
    const repeats = state.requests.filter((r) => r.path == path(a) && r.key && (r.replayed || r.status == 409))
    result.doubleSends += repeats.length
    // Sent after this action's answer reached a page (its `replayed` event): the client knew, and sent again.
    const answered = reports.filter((r) => r.name == 'replayed' && r.url && tagOf(r.url) == a.tag).map((r) => r.at)
    if (answered.length) result.avoidableDoubleSends += mine.filter((x) => x.at > Math.min(...answered)).length
    const dropped = reports.find((r) => (r.name == 'failed' || r.name == 'expired') && r.url && tagOf(r.url) == a.tag)
    if (dropped) problems.push(`${a.tag} dropped: ${dropped.name} ${dropped.reason ?? ''}`)
  }
  result.ms = Date.now() - started
  if (result.lost || result.duplicated || result.corrupted || result.avoidableDoubleSends || problems.length)
    result.trace = {
      sent: sent.map(({ tag, at }) => ({ tag, at })),
      requests: state.requests,
      reports: reports.map(({ name, url, tag, status, code, error, reason, at }) => ({ name, tag: tag ?? (url && tagOf(url)), status, code, error, reason, at })),
    }
  return result
}

/** One line that replays a trial. */
export function replayHint(s: Schedule): string {
  return `FAULT_SEED=${s.seed} FAULT_TRIAL=${s.trial} npx playwright test --project browser tests/browser/faults.spec.ts`
}
