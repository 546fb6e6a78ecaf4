import 'fake-indexeddb/auto'
import { describe, expect, it, vi } from 'vitest'

describe('backward (client entry)', () => {
  it('exports exactly the public API, and does nothing at import', async () => {
    const open = vi.spyOn(indexedDB, 'open')
    const client = await import('../../src/client/index.ts')
    expect(Object.keys(client).sort()).toEqual(['BackwardError', 'createBackward', 'idbStorage', 'isBackwardError', 'memoryStorage'])
    expect(open).not.toHaveBeenCalled()
  })

  it('createBackward without a login signal sends nothing, and opens the database only after it returns (to purge expired actions)', async () => {
    const { createBackward } = await import('../../src/client/index.ts')
    const open = vi.spyOn(indexedDB, 'open')
    const fetch = vi.fn()
    const bw = createBackward({ fetch, location: Object.assign(new URL('https://app.test/'), { assign: vi.fn() }), document: { cookie: 'other=1' } })
    expect(open).not.toHaveBeenCalled()
    await new Promise((resolve) => setTimeout(resolve, 10))
    // Expired actions keep their bodies (a card number) until deleted: every creation purges them.
    expect(open).toHaveBeenCalledOnce()
    expect(fetch).not.toHaveBeenCalled()
    expect(Object.keys(bw).sort()).toEqual(['clear', 'fetch', 'interceptForms', 'on', 'pending', 'ready', 'replay', 'submit'])
  })

  it('the package exports point "." and "./client" at this entry', async () => {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as unknown as {
      exports: Record<string, { source: string }>
    }
    expect(pkg.exports['.']!.source).toBe('./src/client/index.ts')
    expect(pkg.exports['./client']!.source).toBe('./src/client/index.ts')
  })

  it('the client never imports hono or node:*', async () => {
    const { readdir, readFile } = await import('node:fs/promises')
    const dir = new URL('../../src/client/', import.meta.url)
    for (const file of await readdir(dir)) {
      const source = await readFile(new URL(file, dir), 'utf8')
      expect(source, file).not.toMatch(/from '(hono|node:)/)
      expect(source, file).not.toMatch(/\.\.\/server\//)
    }
  })
})
