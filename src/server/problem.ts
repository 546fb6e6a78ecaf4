import type { Context } from 'hono'
import { PROBLEM_CONTENT_TYPE, STORE_UNAVAILABLE_TYPE } from '../shared/protocol.ts'

/** An RFC 9457 problem response. `extra` members are added to the body. */
export function problem(status: number, type: string, title: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ type, title, status, ...extra }), {
    status,
    headers: { 'Content-Type': PROBLEM_CONTENT_TYPE, 'Cache-Control': 'no-store', ...headers },
  })
}

/** The 503 every store outage turns into: clear, retryable, and never a crash. */
export function storeUnavailable(c: Context, error: unknown, onError: (error: unknown) => void): Response {
  onError(error)
  c.res = problem(503, STORE_UNAVAILABLE_TYPE, 'Session store unavailable', { detail: 'The session store did not answer. Try again shortly.' }, { 'Retry-After': '1' })
  return c.res
}

/**
 * The default store-error log: the error's name and code only. A driver error's message or detail can
 * carry session data or a connection string, so neither is printed.
 */
export function logStoreError(where: string): (error: unknown) => void {
  return (error) => {
    const cause = (error as { cause?: unknown })?.cause ?? error
    const name = (cause as { name?: unknown })?.name
    const code = (cause as { code?: unknown })?.code
    console.error(`[backward] ${where}: the store failed (${typeof name === 'string' ? name : 'Error'}${typeof code === 'string' || typeof code === 'number' ? ` ${code}` : ''}). Requests get 503 until it recovers.`)
  }
}
