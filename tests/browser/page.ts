// The test page's script: one backward instance, its events in window.backwardLog, forms intercepted.
// Bundled on the fly by tests/browser/server.ts (esbuild, with code splitting like an app's bundler).
//
// Query flags (the fault trials, tests/browser/faults.spec.ts, set them; other tests use none):
// - `retry=<ms>`: the delay before an automatic retry (default 300);
// - `quota=<token>,…`: writes that fail once with QuotaExceededError (see quota-storage.ts);
// - `stay`: a login-required answer does not navigate to the login page (`onLoginRequired` does nothing);
// - `inpage=<user>`: an in-page login: `onLoginRequired` posts the login form with fetch and resolves true.
// When the test exposes `window.faultReport`, every logged entry is sent to it too: it survives navigation.
import { createBackward, idbStorage, type Backward, type CreateBackwardOptions } from '../../src/client/index.ts'
import { quotaStorage } from './quota-storage.ts'

type Entry = Record<string, unknown>
const flags = new URLSearchParams(location.search)
const retry = Number(flags.get('retry') ?? 300)
const full = new Set(flags.get('quota')?.split(',').filter(Boolean))
const report = (window as unknown as { faultReport?: (entry: Entry) => void }).faultReport
const log: Entry[] = []
const push = (entry: Entry) => {
  log.push(entry)
  report?.({ ...entry, page: location.href })
}
/** An in-page login (a modal would do this): the login form posted with fetch, which follows the redirects. */
async function logInHere(): Promise<boolean> {
  const body = new FormData()
  body.set('user', flags.get('inpage') || 'alice')
  return (await fetch('/login?next=%2Fapp', { method: 'POST', body })).ok
}
const bw = createBackward({
  retryDelay: () => retry,
  ...(full.size ? { storage: quotaStorage(idbStorage(), full) } : {}),
  ...(flags.has('stay') ? { onLoginRequired: () => {} } : {}),
  ...(flags.has('inpage') ? { onLoginRequired: logInHere } : {}),
})
/** Logs an instance's events, in short: name, action url and id, answer status, reason, error code. */
function logEvents(instance: Backward, push: (entry: Entry) => void): void {
  for (const name of ['queued', 'login-required', 'replayed', 'failed', 'expired', 'error'] as const) {
    instance.on(name, (event) => {
      const e = event as { action?: { url: string; id: string }; response?: Response; reason?: string; error?: { code?: string } }
      push({ name, url: e.action?.url, id: e.action?.id, status: e.response?.status, reason: e.reason, code: e.error?.code })
    })
  }
}
logEvents(bw, push)
/**
 * Another instance with a test's own options (functions cannot cross page.evaluate), sharing the
 * page's IndexedDB queue, its events in its own `log`. `onLoginRequired` defaults to doing nothing
 * (bw.fetch settles with the 401, the page stays): the test logs in and calls `replay()` itself.
 * Used by tests/browser/scenarios.spec.ts.
 */
function makeBackward(options: CreateBackwardOptions = {}): { bw: Backward; log: Entry[] } {
  const instance = createBackward({ onLoginRequired: () => {}, ...options })
  const entries: Entry[] = []
  logEvents(instance, (entry) => void entries.push(entry))
  return { bw: instance, log: entries }
}
document.addEventListener('backward:response', (event) => {
  const detail = (event as CustomEvent<{ response?: Response; error?: unknown }>).detail
  push({ name: 'form-response', status: detail.response?.status, error: detail.error ? String(detail.error) : undefined })
})
const stop = bw.interceptForms()
Object.assign(window, { bw, backwardLog: log, formsReady: stop.ready, stopForms: stop, backwardReport: push, makeBackward })
