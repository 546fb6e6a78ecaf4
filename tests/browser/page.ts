// The test page's script: one backward instance, its events in window.backwardLog, forms intercepted.
// Bundled on the fly by tests/browser/server.ts (esbuild, with code splitting like an app's bundler).
import { createBackward } from '../../src/client/index.ts'

const log: Record<string, unknown>[] = []
const bw = createBackward({ retryDelay: () => 300 })
for (const name of ['queued', 'login-required', 'replayed', 'failed', 'expired', 'error'] as const) {
  bw.on(name, (event) => {
    const e = event as { action?: { url: string; id: string }; response?: Response; reason?: string; error?: { code?: string } }
    log.push({ name, url: e.action?.url, id: e.action?.id, status: e.response?.status, reason: e.reason, code: e.error?.code })
  })
}
document.addEventListener('backward:response', (event) => {
  const detail = (event as CustomEvent<{ response?: Response; error?: unknown }>).detail
  log.push({ name: 'form-response', status: detail.response?.status, error: detail.error ? String(detail.error) : undefined })
})
const stop = bw.interceptForms()
Object.assign(window, { bw, backwardLog: log, formsReady: stop.ready, stopForms: stop })
