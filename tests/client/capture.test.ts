import { describe, expect, it, vi } from 'vitest'
import { createBackward, idbStorage, isBackwardError } from '../../src/client/index.ts'
import type { BackwardStorage, StoredFile } from '../../src/client/index.ts'
import { ORIGIN, USER_A, USER_B, api, bytesOf, loginRequiredResponse, names, page, textOf, useApi } from './helpers.ts'
import { cookieJar, fakeLocation } from './fakes.ts'
import { IDEMPOTENCY_HEADER, PAGE_HEADER } from '../../src/shared/protocol.ts'

useApi()

describe('capture', () => {
  it('passes a 2xx through untouched and saves nothing', async () => {
    api.loggedIn = true
    const { bw, events, location } = await page()
    const res = await bw.fetch('/api/follow/42', { method: 'POST', body: '{}' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true, url: `${ORIGIN}/api/follow/42` })
    expect(await bw.pending()).toEqual([])
    expect(events).toEqual([])
    expect(location.assign).not.toHaveBeenCalled()
  })

  it('saves a POST that got the login-required problem, with every record field', async () => {
    const { bw, events } = await page({ now: () => 1_000_000, randomId: () => 'id-1', ttl: 60 })
    const res = await bw.fetch('/api/follow/42?x=1', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ follow: true }),
    })
    expect(res.status).toBe(401)
    const [action] = await bw.pending()
    expect(action).toMatchObject({
      version: 1,
      id: 'id-1',
      method: 'POST',
      url: `${ORIGIN}/api/follow/42?x=1`,
      credentials: 'same-origin',
      createdAt: 1_000_000,
      expiresAt: 1_060_000,
      returnTo: `${ORIGIN}/people?page=2#top`,
      user: null,
      attempts: 0,
    })
    expect(new Map(action!.headers)).toEqual(new Map([['accept', 'application/json'], ['content-type', 'application/json']]))
    expect(action!.body).toBeInstanceOf(ArrayBuffer)
    expect(JSON.parse(textOf(action!.body as ArrayBuffer))).toEqual({ follow: true })
    expect(names(events)).toEqual(['queued', 'login-required'])
  })

  it('makes UUID v4 ids by default', async () => {
    const { bw } = await page()
    await bw.fetch('/api/a', { method: 'DELETE' })
    expect((await bw.pending())[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('makes ids where crypto.randomUUID is missing (plain http at a host other than localhost: an insecure context)', async () => {
    const real = globalThis.crypto
    const getRandomValues = vi.fn((array: Uint8Array<ArrayBuffer>) => real.getRandomValues(array))
    vi.stubGlobal('crypto', { getRandomValues })
    try {
      expect(globalThis.crypto.randomUUID).toBeUndefined()
      const { bw, events } = await page({ onLoginRequired: () => {} })
      for (let i = 0; i < 50; i++) await bw.fetch('/api/a', { method: 'POST' })
      const ids = (await bw.pending()).map((a) => a.id)
      expect(names(events).filter((n) => n == 'error')).toEqual([])
      expect(new Set(ids).size).toBe(50)
      for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      expect(getRandomValues).toHaveBeenCalled()
    } finally {
      vi.unstubAllGlobals()
    }
  })

  it('does not save safe methods (GET) by default, and hands nothing off', async () => {
    const { bw, location, events } = await page()
    const res = await bw.fetch('/api/people')
    expect(res.status).toBe(401)
    expect(await bw.pending()).toEqual([])
    expect(events).toEqual([])
    expect(location.assign).not.toHaveBeenCalled()
  })

  it('does not save a request sent without cookies (credentials omit): a login cannot change its answer', async () => {
    const { bw, location, events } = await page({ shouldQueue: () => true })
    const res = await bw.fetch('/api/omit', { method: 'POST', body: 'o', credentials: 'omit' })
    expect(res.status).toBe(401)
    await bw.fetch('/api/kept', { method: 'POST', body: 'k' })
    expect((await bw.pending()).map((a) => a.url)).toEqual([`${ORIGIN}/api/kept`])
    expect(names(events)).toEqual(['queued', 'login-required'])
    expect(location.assign).toHaveBeenCalledOnce()
  })

  it('lets shouldQueue choose', async () => {
    const { bw } = await page({ shouldQueue: (r) => r.url.endsWith('/keep') })
    await bw.fetch('/api/drop', { method: 'POST' })
    await bw.fetch('/api/keep', { method: 'GET' })
    expect((await bw.pending()).map((a) => a.url)).toEqual([`${ORIGIN}/api/keep`])
  })

  it('ignores a 401 that is not backward\'s problem unless isLoginRequired says so', async () => {
    const plain = await page({ fetch: async () => new Response('no', { status: 401 }) })
    expect((await plain.bw.fetch('/api/x', { method: 'POST' })).status).toBe(401)
    expect(await plain.bw.pending()).toEqual([])

    const custom = await page({
      fetch: async () => new Response('<html>login</html>', { status: 403 }),
      isLoginRequired: (res) => res.status == 403,
      loginUrl: '/signin',
    })
    await custom.bw.fetch('/api/x', { method: 'POST' })
    expect(await custom.bw.pending()).toHaveLength(1)
    expect(custom.location.assign).toHaveBeenCalledWith('https://app.test/signin?next=%2Fpeople%3Fpage%3D2%23top')
  })

  it('saves actions in the order they were made, even when answers come back reversed', async () => {
    api.delays = [40, 30, 20, 10, 0]
    const { bw } = await page({ now: () => 5 })
    await Promise.all([1, 2, 3, 4, 5].map((n) => bw.fetch(`/api/item/${n}`, { method: 'POST', body: String(n) })))
    const queue = await bw.pending()
    expect(queue.map((a) => a.url.split('/').pop())).toEqual(['1', '2', '3', '4', '5'])
    // Same millisecond: createdAt is bumped to stay unique, so the order survives storage.
    expect(new Set(queue.map((a) => a.createdAt)).size).toBe(5)
  })

  it('remembers the user known at capture time', async () => {
    const { bw, storage } = await page()
    await storage.set('user', USER_A)
    await bw.fetch('/api/x', { method: 'POST' })
    expect((await bw.pending())[0]!.user).toBe(USER_A)
  })
})

describe('body kinds', () => {
  const cases: [string, () => BodyInit, string | null, string][] = [
    ['JSON text', () => JSON.stringify({ a: 1, é: 'ü' }), 'text/plain;charset=UTF-8', '{"a":1,"é":"ü"}'],
    ['URLSearchParams', () => new URLSearchParams({ q: 'a b', n: '1' }), 'application/x-www-form-urlencoded;charset=UTF-8', 'q=a+b&n=1'],
    ['Blob', () => new Blob(['blob body'], { type: 'text/x-custom' }), 'text/x-custom', 'blob body'],
    ['ArrayBuffer', () => bytesOf('raw bytes').buffer as ArrayBuffer, null, 'raw bytes'],
    ['Uint8Array', () => bytesOf('typed'), null, 'typed'],
  ]
  for (const [kind, body, type, text] of cases) {
    it(`stores ${kind} as an ArrayBuffer with its content type, and replays the same bytes`, async () => {
      const { bw } = await page()
      await bw.fetch('/api/echo', { method: 'PUT', body: body() })
      const [action] = await bw.pending()
      expect(action!.body).toBeInstanceOf(ArrayBuffer)
      expect(textOf(action!.body as ArrayBuffer)).toBe(text)
      expect(new Map(action!.headers).get('content-type') ?? null).toBe(type)

      api.loggedIn = true
      await bw.replay()
      const replayed = api.received.at(-1)!
      expect(replayed.method).toBe('PUT')
      expect(textOf(replayed.bytes)).toBe(text)
      expect(replayed.headers.get('content-type')).toBe(type)
      expect(await bw.pending()).toEqual([])
    })
  }

  it('stores FormData with two files as entries (bytes, name, type) and replays them', async () => {
    const { bw } = await page()
    const data = new FormData()
    data.append('title', 'holiday')
    data.append('photo', new File([new Uint8Array([0, 1, 2, 255])], 'a.png', { type: 'image/png', lastModified: 7 }))
    data.append('photo', new File(['second'], 'b.txt', { type: 'text/plain' }))
    await bw.fetch('/api/upload', { method: 'POST', body: data })

    const [action] = await bw.pending()
    expect(Array.isArray(action!.body)).toBe(true)
    const entries = action!.body as [string, string | StoredFile][]
    expect(entries.map(([name]) => name)).toEqual(['title', 'photo', 'photo'])
    expect(entries[0]![1]).toBe('holiday')
    const first = entries[1]![1] as StoredFile
    expect(first).toMatchObject({ name: 'a.png', type: 'image/png', lastModified: 7 })
    expect(first.bytes).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(first.bytes)]).toEqual([0, 1, 2, 255])
    // The multipart boundary belongs to one encoding: Content-Type is rewritten on replay.
    expect(action!.headers.find(([name]) => name == 'content-type')).toBeUndefined()

    api.loggedIn = true
    await bw.replay()
    const form = await api.received.at(-1)!.request.formData()
    expect(form.get('title')).toBe('holiday')
    const [a, b] = form.getAll('photo') as File[]
    expect([a!.name, a!.type, [...new Uint8Array(await a!.arrayBuffer())]]).toEqual(['a.png', 'image/png', [0, 1, 2, 255]])
    expect([b!.name, b!.type, await b!.text()]).toEqual(['b.txt', 'text/plain', 'second'])
  })

  it('keeps a Request input replayable (its body is read once, by fetch)', async () => {
    const { bw } = await page()
    await bw.fetch(new Request(`${ORIGIN}/api/req`, { method: 'PATCH', body: 'patch body', headers: { 'content-type': 'text/plain' } }))
    const [action] = await bw.pending()
    expect([action!.method, textOf(action!.body as ArrayBuffer)]).toEqual(['PATCH', 'patch body'])
  })

  it('keeps a stream body replayable (cloned before sending, since a stream reads once)', async () => {
    const { bw } = await page()
    const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('streamed')), c.close()) })
    await bw.fetch('/api/stream', { method: 'POST', body, duplex: 'half' } as RequestInit)
    const [action] = await bw.pending()
    expect(textOf(action!.body as ArrayBuffer)).toBe('streamed')
  })

  it('a value body is sent as given and rebuilt from init on a 401', async () => {
    const { bw } = await page()
    await bw.fetch('/api/x', { method: 'POST', body: JSON.stringify({ a: 1 }), headers: { 'content-type': 'application/json' } })
    const [action] = await bw.pending()
    expect([textOf(action!.body as ArrayBuffer), action!.headers]).toEqual(['{"a":1}', [['content-type', 'application/json']]])
  })

  it('stores a bodyless unsafe request with a null body', async () => {
    const { bw } = await page()
    await bw.fetch('/api/x', { method: 'DELETE' })
    expect((await bw.pending())[0]!.body).toBeNull()
  })
})

describe('body snapshot', () => {
  // What the caller does with its body once bw.fetch has returned never changes what is saved.
  it('saves the bytes of a Uint8Array as they were when bw.fetch was called, and sends the same', async () => {
    const { bw } = await page()
    const bytes = bytesOf('original')
    const sent = bw.fetch('/api/x', { method: 'POST', body: bytes })
    bytes.fill(0x21)
    await sent
    expect(textOf(api.received[0]!.bytes)).toBe('original')
    expect(textOf((await bw.pending())[0]!.body as ArrayBuffer)).toBe('original')
  })

  it('saves an ArrayBuffer the caller transferred away right after the call', async () => {
    const { bw, events } = await page()
    const buffer = bytesOf('moved').buffer as ArrayBuffer
    const sent = bw.fetch('/api/x', { method: 'POST', body: buffer })
    structuredClone(buffer, { transfer: [buffer] })
    expect(buffer.byteLength).toBe(0) // detached
    expect((await sent).status).toBe(401)
    expect(textOf((await bw.pending())[0]!.body as ArrayBuffer)).toBe('moved')
    expect(names(events)).toEqual(['queued', 'login-required'])
  })

  it('saves URLSearchParams as they were when bw.fetch was called', async () => {
    const { bw } = await page()
    const params = new URLSearchParams({ q: 'before' })
    const sent = bw.fetch('/api/x', { method: 'POST', body: params })
    params.set('q', 'after')
    await sent
    const [action] = await bw.pending()
    expect(textOf(action!.body as ArrayBuffer)).toBe('q=before')
    expect(new Map(action!.headers).get('content-type')).toMatch(/^application\/x-www-form-urlencoded/)
  })

  it('saves FormData entries as they were when bw.fetch was called', async () => {
    const { bw } = await page()
    const data = new FormData()
    data.set('title', 'before')
    const sent = bw.fetch('/api/x', { method: 'POST', body: data })
    data.set('title', 'after')
    data.append('extra', 'x')
    await sent
    expect((await bw.pending())[0]!.body).toEqual([['title', 'before']])
  })
})

describe('headers', () => {
  it('keeps only the allow-list, plus the headers option', async () => {
    const { bw } = await page({ headers: ['X-Requested-With'] })
    await bw.fetch('/api/x', {
      method: 'POST',
      headers: {
        Accept: 'application/json',
        'Accept-Language': 'fr',
        'Content-Language': 'fr',
        'Content-Type': 'application/json',
        'X-Requested-With': 'fetch',
        'X-Trace': 'abc',
      },
      body: '{}',
    })
    expect((await bw.pending())[0]!.headers.map(([name]) => name).sort()).toEqual([
      'accept',
      'accept-language',
      'content-language',
      'content-type',
      'x-requested-with',
    ])
  })
})

describe('page header (Backward-Page)', () => {
  it('a same-origin request that may be saved carries the page\'s path and query (no fragment): the server\'s `next`', async () => {
    const { bw } = await page({ onLoginRequired: () => {}, location: fakeLocation(`${ORIGIN}/reset?token=abc&x=%20y#frag`) })
    await bw.fetch('/api/a', { method: 'POST', body: 'a' })
    expect(api.received[0]!.headers.get(PAGE_HEADER)).toBe('/reset?token=abc&x=%20y')
  })

  it('rides on a Request input, without changing the caller\'s headers', async () => {
    const { bw } = await page({ onLoginRequired: () => {} })
    const headers = new Headers({ 'Content-Type': 'text/plain' })
    const input = new Request(`${ORIGIN}/api/a`, { method: 'POST', headers, body: 'a' })
    await bw.fetch(input)
    expect(api.received[0]!.headers.get(PAGE_HEADER)).toBe('/people?page=2')
    expect([...headers.keys()]).toEqual(['content-type'])
    expect(input.headers.has(PAGE_HEADER)).toBe(false)
  })

  it('is never saved with the action, even when allow-listed, and a replay does not carry it', async () => {
    const { bw, storage } = await page({ onLoginRequired: () => {}, headers: [PAGE_HEADER] })
    await bw.fetch(new Request(`${ORIGIN}/api/request`, { method: 'POST', body: 'r' }))
    await bw.fetch('/api/init', { method: 'POST', body: 'i', headers: { [PAGE_HEADER]: '/spoofed' } })
    const actions = await bw.pending()
    expect(actions.map((a) => a.headers.map(([name]) => name))).toEqual([['content-type'], ['content-type']])
    const raw = JSON.stringify(await storage.values()).toLowerCase()
    expect(raw).not.toContain(PAGE_HEADER.toLowerCase())
    expect(raw).not.toContain('/spoofed')
    api.loggedIn = true
    await bw.replay()
    const replays = api.received.filter((r) => r.headers.has(IDEMPOTENCY_HEADER))
    expect(replays).toHaveLength(2)
    for (const r of replays) expect(r.headers.has(PAGE_HEADER)).toBe(false)
  })

  it('is not added to what is never saved: a GET, a credentials-omit request, a cross-origin request', async () => {
    const seen: Request[] = []
    const { bw } = await page({ fetch: async (request) => (seen.push(request), new Response('ok')) })
    await bw.fetch('/api/people')
    await bw.fetch('/api/omit', { method: 'POST', credentials: 'omit' })
    await bw.fetch('https://evil.test/api/x', { method: 'POST' })
    await bw.fetch('https://sub.app.test/api/x', { method: 'POST' })
    expect(seen).toHaveLength(4)
    for (const request of seen) expect(request.headers.has(PAGE_HEADER), request.url).toBe(false)
  })
})

describe('size refusal', () => {
  it('refuses a body over maxBodyBytes: error event, rejected promise, nothing saved, no hand-off', async () => {
    const { bw, events, location } = await page({ maxBodyBytes: 10 })
    const err = await bw.fetch('/api/x', { method: 'POST', body: '12345678901' }).catch((e: unknown) => e)
    expect(isBackwardError(err, 'BODY_TOO_LARGE')).toBe(true)
    expect(names(events)).toEqual(['error'])
    expect(await bw.pending()).toEqual([])
    expect(location.assign).not.toHaveBeenCalled()
  })

  it('accepts a body of exactly maxBodyBytes', async () => {
    const { bw } = await page({ maxBodyBytes: 10 })
    await bw.fetch('/api/x', { method: 'POST', body: '1234567890' })
    expect(await bw.pending()).toHaveLength(1)
  })

  it('counts FormData names, strings (as UTF-8) and files, and saves none of it when over', async () => {
    const { bw, events } = await page({ maxBodyBytes: 100 })
    const data = new FormData()
    data.append('note', 'é'.repeat(30)) // 60 bytes in UTF-8
    data.append('f', new File(['x'.repeat(40)], 'f.txt'))
    const err = await bw.fetch('/api/x', { method: 'POST', body: data }).catch((e: unknown) => e)
    expect(isBackwardError(err, 'BODY_TOO_LARGE')).toBe(true)
    expect(names(events)).toEqual(['error'])
    expect(await bw.pending()).toEqual([])
  })

  it('stops reading a never-ending stream once it passes maxBodyBytes, and refuses it', async () => {
    let pulled = 0
    const endless = new ReadableStream<Uint8Array>({
      // Yields to timers between chunks, so that without the cap this test times out rather than hangs.
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 0))
        pulled++
        controller.enqueue(new Uint8Array(64))
      },
    })
    // A server that answers 401 without reading the upload (the login wall runs first).
    const { bw, events, location } = await page({ maxBodyBytes: 1000, fetch: async () => loginRequiredResponse() })
    const err = await bw.fetch('/api/x', { method: 'POST', body: endless, duplex: 'half' } as RequestInit).catch((e: unknown) => e)
    expect(isBackwardError(err, 'BODY_TOO_LARGE')).toBe(true)
    expect(names(events)).toEqual(['error'])
    expect(await bw.pending()).toEqual([])
    expect(location.assign).not.toHaveBeenCalled()
    // Read up to the cap, not on and on: 16 chunks make 1024 bytes > 1000 (the tee may pull a few more).
    expect(pulled).toBeLessThan(40)
  }, 5000)

  it('maxBodyBytes 0 saves bodyless requests only', async () => {
    const { bw } = await page({ maxBodyBytes: 0 })
    await bw.fetch('/api/x', { method: 'DELETE' })
    await bw.fetch('/api/x', { method: 'POST', body: 'x' }).catch(() => {})
    expect(await bw.pending()).toHaveLength(1)
  })
})

describe('storage failures', () => {
  const quotaStorage = (): BackwardStorage => {
    const map = new Map<string, unknown>()
    return {
      get: async (key) => map.get(key),
      set: async () => {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
      },
      del: async (key) => void map.delete(key),
      values: async () => [...map.values()],
      clear: async () => map.clear(),
    }
  }

  it('reports a full disk: error event with the action, rejected promise, no hand-off', async () => {
    const { bw, events, location } = await page({ storage: quotaStorage() })
    const err = await bw.fetch('/api/x', { method: 'POST', body: 'x' }).catch((e: unknown) => e)
    expect(isBackwardError(err, 'QUOTA_EXCEEDED')).toBe(true)
    expect((err as Error).cause).toBeInstanceOf(DOMException)
    expect(events).toHaveLength(1)
    const [name, event] = events[0]!
    expect(name).toBe('error')
    expect(isBackwardError((event as { error: unknown }).error, 'QUOTA_EXCEEDED')).toBe(true)
    expect((event as { action?: { url: string } }).action?.url).toBe(`${ORIGIN}/api/x`)
    expect(location.assign).not.toHaveBeenCalled()
  })

  /** IndexedDB (fake-indexeddb) whose next `fails` writes of an action fail with QuotaExceededError. */
  const fullFor = (fails: number): BackwardStorage => {
    const inner = idbStorage()
    return {
      ...inner,
      async set(key, value) {
        if ((value as { url?: string })?.url?.endsWith('/api/new') && fails-- > 0)
          throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
        return inner.set(key, value)
      },
    }
  }
  const expiredAction = { version: 1, id: 'old', url: `${ORIGIN}/api/old`, createdAt: 1, expiresAt: 2, attempts: 0 }

  it('a full disk first drops expired actions and saves once more: no error when that frees enough', async () => {
    const storage = fullFor(1)
    await storage.clear()
    await storage.set('old', expiredAction)
    await storage.set('user', USER_A)
    const { bw, events } = await page({ storage, onLoginRequired: () => {} })
    expect((await bw.fetch('/api/new', { method: 'POST', body: 'x' })).status).toBe(401)
    expect((await bw.pending()).map((a) => a.url)).toEqual([`${ORIGIN}/api/new`])
    expect(names(events)).toEqual(['expired', 'queued', 'login-required'])
    expect((events[0]![1] as { action: { id: string } }).action.id).toBe('old')
    // The remembered user is not an action: it stays.
    expect(await storage.get('user')).toBe(USER_A)
  })

  it('a disk still full after freeing space: QUOTA_EXCEEDED once, rejected promise, expired ones gone', async () => {
    const storage = fullFor(2)
    await storage.clear()
    await storage.set('old', expiredAction)
    const { bw, events, location } = await page({ storage })
    const err = await bw.fetch('/api/new', { method: 'POST', body: 'x' }).catch((e: unknown) => e)
    expect(isBackwardError(err, 'QUOTA_EXCEEDED')).toBe(true)
    expect(names(events)).toEqual(['expired', 'error'])
    expect(await storage.get('old')).toBeUndefined()
    expect(await bw.pending()).toEqual([])
    expect(location.assign).not.toHaveBeenCalled()
  })

  it('moves to memory, once, when the storage is broken (not full)', async () => {
    const broken: BackwardStorage = {
      get: async () => {
        throw new DOMException('A mutation operation was attempted on a database that did not allow mutations.', 'InvalidStateError')
      },
      set: async () => {
        throw new DOMException('x', 'InvalidStateError')
      },
      del: async () => {},
      values: async () => [],
      clear: async () => {},
    }
    const { bw, events } = await page({ storage: broken })
    await bw.fetch('/api/a', { method: 'POST' })
    await bw.fetch('/api/b', { method: 'POST' })
    expect((await bw.pending()).map((a) => a.url)).toEqual([`${ORIGIN}/api/a`, `${ORIGIN}/api/b`])
    const codes = events.filter(([name]) => name == 'error').map(([, e]) => (e as { error: { code: string } }).error.code)
    // One fallback, and each default hand-off (a navigation) says that it loses the in-memory queue.
    expect(codes).toEqual(['STORAGE_UNAVAILABLE', 'NOT_PERSISTED', 'NOT_PERSISTED'])
  })
})

describe('options', () => {
  it.each([
    ['ttl 0', { ttl: 0 }],
    ['ttl NaN', { ttl: Number.NaN }],
    ['ttl Infinity', { ttl: Number.POSITIVE_INFINITY }],
    ['maxAttempts 0', { maxAttempts: 0 }],
    ['maxBodyBytes -1', { maxBodyBytes: -1 }],
    ['maxBodyBytes Infinity', { maxBodyBytes: Number.POSITIVE_INFINITY }],
    ['isLoginRequired without loginUrl', { isLoginRequired: () => true }],
  ])('throws CONFIG at start-up for %s', async (_, options) => {
    const err = await page(options).catch((e: unknown) => e)
    expect(isBackwardError(err, 'CONFIG')).toBe(true)
    expect((err as Error).message).toMatch(/^\[backward\] /)
  })

  it('never mutates the caller\'s options', async () => {
    const options = Object.freeze({ ttl: 5, headers: Object.freeze(['X-A']) as string[] })
    await page(options)
    expect(options).toEqual({ ttl: 5, headers: ['X-A'] })
  })
})

describe('security', () => {
  /** A fetch whose 401 waits for `release()`: the request is out while the test logs out. */
  const held = () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let started!: () => void
    const sent = new Promise<void>((resolve) => (started = resolve))
    const fetch = async () => (started(), await gate, loginRequiredResponse())
    return { fetch, sent, release }
  }

  it('a 401 that arrives after clear() (a logout) is not saved: CLEARED error, rejected promise, no hand-off', async () => {
    const { fetch, sent, release } = held()
    const { bw, events, storage, location } = await page({ fetch })
    await storage.set('user', USER_A)
    const out = bw.fetch('/api/x', { method: 'POST', body: 'x' }).catch((e: unknown) => e)
    await sent
    await bw.clear()
    release()
    const err = await out
    expect((err as { code?: string }).code).toBe('CLEARED')
    expect((err as Error).message).toMatch(/^\[backward\] /)
    expect(names(events)).toEqual(['error'])
    expect((events[0]![1] as { action?: { url: string } }).action?.url).toBe(`${ORIGIN}/api/x`)
    expect(await bw.pending()).toEqual([])
    expect(await storage.get('user')).toBeUndefined()
    expect(location.assign).not.toHaveBeenCalled()
  })

  it('a logout in another tab while the request is out: not saved, so it can never become the next user\'s', async () => {
    const { fetch, sent, release } = held()
    const { bw, storage, events } = await page({ fetch, onLoginRequired: () => {} })
    await storage.set('user', USER_A)
    const out = bw.fetch('/api/x', { method: 'POST' }).catch((e: unknown) => e)
    await sent
    // Another tab (its own instance on the same database) logs out, then B logs in there.
    const other = createBackward({ location: fakeLocation(), document: cookieJar(), storage, fetch: async () => new Response('ok') })
    await new Promise((resolve) => setTimeout(resolve, 2)) // the logout comes after the request started
    await other.clear()
    await storage.set('user', USER_B)
    release()
    expect(((await out) as { code?: string }).code).toBe('CLEARED')
    expect(names(events)).toEqual(['error'])
    expect(await bw.pending()).toEqual([])
  })

  it('a logout in another tab that runs while this tab is writing its action still wins (the check comes after the write)', async () => {
    // This tab's write of the action is held until the other tab's clear() has finished entirely:
    // a check made before the write would have seen no logout, and the action would outlive it.
    const inner = idbStorage()
    await inner.clear()
    let releaseWrite!: () => void
    const writeGate = new Promise<void>((resolve) => (releaseWrite = resolve))
    let writing!: () => void
    const writeStarted = new Promise<void>((resolve) => (writing = resolve))
    const storage: BackwardStorage = {
      ...inner,
      set: async (key, value) => {
        if ((value as { version?: number })?.version === 1) {
          writing()
          await writeGate
        }
        return inner.set(key, value)
      },
    }
    await inner.set('user', USER_A)
    const { bw, events } = await page({ storage, fetch: async () => loginRequiredResponse(), onLoginRequired: () => {} })
    await new Promise((resolve) => setTimeout(resolve, 2))
    const out = bw.fetch('/api/x', { method: 'POST', body: 'x' }).catch((e: unknown) => e)
    await writeStarted
    const other = createBackward({ location: fakeLocation(), document: cookieJar(), storage: inner, fetch: async () => new Response('ok') })
    await other.clear()
    releaseWrite()
    expect(((await out) as { code?: string }).code).toBe('CLEARED')
    expect(names(events)).toEqual(['error'])
    expect(await bw.pending()).toEqual([])
  })

  it('a logout stamp from a clock that later went back does not refuse every save', async () => {
    let t = 1_000_000
    const { bw, storage } = await page({ now: () => t, fetch: async () => loginRequiredResponse(), onLoginRequired: () => {} })
    await storage.set('cleared', t + 3_600_000) // written an hour "ahead", before the clock was set back
    await bw.fetch('/api/x', { method: 'POST' })
    expect((await bw.pending()).map((a) => a.url)).toEqual([`${ORIGIN}/api/x`])
  })

  it('a request made after a logout in another tab is saved as usual', async () => {
    const { bw, storage } = await page({ fetch: async () => loginRequiredResponse(), onLoginRequired: () => {} })
    const other = createBackward({ location: fakeLocation(), document: cookieJar(), storage, fetch: async () => new Response('ok') })
    await other.clear()
    await new Promise((resolve) => setTimeout(resolve, 2))
    await bw.fetch('/api/x', { method: 'POST' })
    expect((await bw.pending()).map((a) => a.url)).toEqual([`${ORIGIN}/api/x`])
  })
})
