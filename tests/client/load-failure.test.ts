// The capture code is a chunk loaded on the first 401. After a deploy the old chunk can be gone: the
// action cannot be saved then, and the page must hear it (an error event, a rejected bw.fetch).
import { describe, expect, it, vi } from 'vitest'
import { names, loginRequiredResponse, page } from './helpers.ts'

vi.mock('../../src/client/capture.ts', () => {
  throw new Error('chunk gone')
})

describe('capture chunk fails to load', () => {
  it('is reported as LOAD_FAILED (error event, rejected bw.fetch), with no hand-off', async () => {
    const { bw, events, location } = await page({ fetch: async () => loginRequiredResponse() })
    const error = await bw.fetch('/api/x', { method: 'POST', body: 'x' }).catch((e: unknown) => e)
    expect((error as { code?: string }).code).toBe('LOAD_FAILED')
    expect((error as Error).message).toMatch(/^\[backward\] /)
    expect(names(events)).toEqual(['error'])
    expect(await bw.pending()).toEqual([])
    expect(location.assign).not.toHaveBeenCalled()
  })

  it('a 2xx never needs the chunk', async () => {
    const { bw, events } = await page({ fetch: async () => new Response('ok') })
    expect((await bw.fetch('/api/x', { method: 'POST', body: 'x' })).status).toBe(200)
    expect(events).toEqual([])
  })
})
