import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono, type Context } from 'hono'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { toRequest } from '../../src/client/replay.ts'
import type { BackwardAction, StoredFormEntry } from '../../src/client/types.ts'
import { getUserId, idempotency, login, loginRequired, memoryStore, session } from '../../src/server/index.ts'
import type { IdempotencyOptions } from '../../src/server/index.ts'
import type { SessionStore } from '../../src/server/store.ts'
import type { SuspiciousEvent } from '../../src/server/suspicious.ts'
import { fileStore } from '../../src/server/stores/file.ts'
import { postgresStore } from '../../src/server/stores/postgres.ts'
import { redisStore } from '../../src/server/stores/redis.ts'
import { createJar, type Jar } from '../helpers/jar.ts'
import { postgresSchema } from '../helpers/pg.ts'
import { postgresService, REDIS_URL, redisService } from '../helpers/services.ts'

const ORIGIN = 'http://localhost'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** Tests that are not about scoping key records by a header the test controls. */
const byHeader = (c: Context) => c.req.header('X-User') ?? null
const post = (key: string, init: { headers?: Record<string, string>; body?: string } = {}) => ({ method: 'POST', ...init, headers: { 'X-User': 'ada', 'Idempotency-Key': key, ...init.headers } })

async function go(app: Hono, jar: Jar, path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await app.request(`${ORIGIN}${path}`, { ...init, headers: { ...(init.headers ?? {}), Cookie: jar.header() } })
  jar.store(res)
  return res
}

/** A store whose writes can be made to fail, and that counts what it is asked. */
function flakyStore(inner: SessionStore = memoryStore()) {
  const state = { failUpdates: 0, down: false, creates: 0 }
  const check = () => {
    if (state.down) throw new Error('store down')
  }
  const store: SessionStore = {
    load: async (k) => (check(), inner.load(k)),
    create: async (k, d, e) => (check(), state.creates++, inner.create(k, d, e)),
    update: async (k, d, e) => {
      check()
      if (state.failUpdates > 0) {
        state.failUpdates--
        throw new Error('blip')
      }
      return inner.update(k, d, e)
    },
    delete: async (k) => (check(), inner.delete(k)),
  }
  return { store, state, inner }
}

function app(options: Partial<IdempotencyOptions> = {}) {
  const runs: string[] = []
  const a = new Hono()
  a.onError((_error, c) => c.text('Internal Server Error', 500))
  a.use(idempotency({ store: memoryStore(), scope: byHeader, ...options }))
  a.post('/pay', async (c) => {
    runs.push(c.req.header('X-User') ?? '-')
    await sleep(Number(c.req.query('delay') ?? 0))
    return c.json({ run: runs.length, by: c.req.header('X-User') ?? null, body: await c.req.text() }, 201)
  })
  a.post('/status/:code', (c) => (runs.push(c.req.param('code')), c.text('answer', Number(c.req.param('code')) as 400)))
  a.post('/throws', () => {
    runs.push('throws')
    throw new Error('after the side effect')
  })
  return { app: a, runs }
}

describe('idempotency: who owns a key', () => {
  function sessionApp(idem: SessionStore = memoryStore()) {
    const runs: string[] = []
    const a = new Hono()
    a.use(session({ store: memoryStore() }))
    a.post('/login/:user', async (c) => (await login(c, c.req.param('user')), c.text('ok')))
    a.post('/cart', (c) => (c.var.session.set('cart', c.req.query('who')), c.text('ok')))
    a.use('/api/*', idempotency({ store: idem }))
    a.post('/api/checkout', (c) => {
      const who = getUserId(c) ?? c.var.session.get('cart') ?? c.req.header('X-Who') ?? null
      runs.push(String(who))
      return c.json({ receipt: `receipt of ${who}` }, 201)
    })
    return { app: a, runs }
  }

  it('an anonymous session owns its keys: a repeat replays, another anonymous session with the same key runs its own', async () => {
    const { app: a, runs } = sessionApp()
    const alice = createJar()
    const bob = createJar()
    await go(a, alice, '/cart?who=alice', { method: 'POST' })
    await go(a, bob, '/cart?who=bob', { method: 'POST' })
    const first = await go(a, alice, '/api/checkout', { method: 'POST', headers: { 'Idempotency-Key': 'guest-1' } })
    const bobs = await go(a, bob, '/api/checkout', { method: 'POST', headers: { 'Idempotency-Key': 'guest-1' } })
    const again = await go(a, alice, '/api/checkout', { method: 'POST', headers: { 'Idempotency-Key': 'guest-1' } })
    expect(await first.json()).toEqual({ receipt: 'receipt of alice' })
    expect(await bobs.json()).toEqual({ receipt: 'receipt of bob' })
    expect(bobs.headers.get('Idempotent-Replayed')).toBeNull()
    expect(again.headers.get('Idempotent-Replayed')).toBe('true')
    expect(await again.json()).toEqual({ receipt: 'receipt of alice' })
    expect(runs).toEqual(['alice', 'bob'])
  })

  it('a caller with no user and no session gets no idempotency: it runs, nothing is stored, no header', async () => {
    const idem = flakyStore()
    const { app: a, runs } = sessionApp(idem.store)
    const one = await a.request('/api/checkout', { method: 'POST', headers: { 'Idempotency-Key': 'k', 'X-Who': 'alice' } })
    const two = await a.request('/api/checkout', { method: 'POST', headers: { 'Idempotency-Key': 'k', 'X-Who': 'bob' } })
    expect(await two.json()).toEqual({ receipt: 'receipt of bob' })
    expect([one.headers.get('Idempotent-Replayed'), two.headers.get('Idempotent-Replayed')]).toEqual([null, null])
    expect(runs).toEqual(['alice', 'bob'])
    expect(idem.state.creates).toBe(0)
  })

  it('scope(c) keys records by the app\'s own identity (bearer tokens); null means no idempotency', async () => {
    const runs: string[] = []
    const a = new Hono()
    a.use(idempotency({ store: memoryStore(), scope: (c) => c.req.header('Authorization')?.replace(/^Bearer /, '') ?? null }))
    a.post('/pay', (c) => (runs.push(c.req.header('Authorization') ?? 'none'), c.json({ by: c.req.header('Authorization') ?? null }, 201)))
    const as = (token: string | null) => a.request('/pay', { method: 'POST', headers: { 'Idempotency-Key': 'k', ...(token ? { Authorization: `Bearer ${token}` } : {}) } })
    expect(await (await as('alice')).json()).toEqual({ by: 'Bearer alice' })
    expect(await (await as('bob')).json()).toEqual({ by: 'Bearer bob' })
    expect((await as('alice')).headers.get('Idempotent-Replayed')).toBe('true')
    await as(null)
    await as(null)
    expect(runs).toEqual(['Bearer alice', 'Bearer bob', 'none', 'none'])
  })

  it('a bad scope option throws at start-up', () => {
    expect(() => idempotency({ store: memoryStore(), scope: 'user' as never })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
  })

  describe('security', () => {
    it('mounted without session() (or before it) and no scope: a CONFIG error, the handler never runs, nothing is shared', async () => {
      for (const order of ['no session', 'before session'] as const) {
        const runs: string[] = []
        const errors: unknown[] = []
        const a = new Hono()
        a.onError((error, c) => (errors.push(error), c.text('error', 500)))
        a.use(idempotency({ store: memoryStore() }))
        if (order === 'before session') a.use(session({ store: memoryStore() }))
        a.post('/x', (c) => (runs.push(c.req.header('Authorization')!), c.json({ by: c.req.header('Authorization') }, 201)))
        await a.request('/x', { method: 'POST', headers: { 'Idempotency-Key': 'k', Authorization: 'Bearer alice' } })
        const bob = await a.request('/x', { method: 'POST', headers: { 'Idempotency-Key': 'k', Authorization: 'Bearer bob' } })
        expect(bob.status, order).toBe(500)
        expect(await bob.text()).not.toContain('alice')
        expect(runs, order).toEqual([])
        expect(errors[0], order).toMatchObject({ code: 'CONFIG', message: expect.stringMatching(/^\[backward\] .*session\(/) })
      }
    })

    it('a logged-in user and an anonymous session never share records, even with the same key', async () => {
      const { app: a, runs } = sessionApp()
      const ada = createJar()
      const guest = createJar()
      await go(a, ada, '/login/ada', { method: 'POST' })
      await go(a, guest, '/cart?who=guest', { method: 'POST' })
      await go(a, ada, '/api/checkout', { method: 'POST', headers: { 'Idempotency-Key': 'k' } })
      const res = await go(a, guest, '/api/checkout', { method: 'POST', headers: { 'Idempotency-Key': 'k' } })
      expect(await res.json()).toEqual({ receipt: 'receipt of guest' })
      expect(runs).toEqual(['ada', 'guest'])
    })
  })
})

describe('idempotency: bodies that are streams or too large', () => {
  it('a 50 MB stream is not pulled into memory: the response starts after one chunk, arrives whole, and a repeat does not run it', async () => {
    const runs: number[] = []
    let pulled = 0
    const CHUNK = 1 << 20
    const a = new Hono()
    a.use(idempotency({ store: memoryStore(), scope: byHeader }))
    a.post('/export', () => {
      runs.push(1)
      return new Response(new ReadableStream({ pull: (ctl) => (pulled += CHUNK) > 50 * CHUNK ? ctl.close() : ctl.enqueue(new Uint8Array(CHUNK)) }, { highWaterMark: 0 }), {
        status: 201,
        headers: { 'Content-Type': 'application/octet-stream', Location: '/exports/1' },
      })
    })
    const res = await a.request('/export', post('big'))
    expect(pulled).toBeLessThanOrEqual(3 * CHUNK)
    expect((await res.arrayBuffer()).byteLength).toBe(50 * CHUNK)
    const repeat = await a.request('/export', post('big'))
    expect(repeat.status).toBe(201)
    expect(repeat.headers.get('Idempotent-Replayed')).toBe('true')
    expect(repeat.headers.get('Location')).toBe('/exports/1')
    expect(await repeat.json()).toMatchObject({ type: 'urn:backward:response-not-kept', status: 201 })
    expect(runs).toEqual([1])
  })

  it('an SSE route answers at once (its stream never ends); a repeat gets the not-kept answer, never a second run', async () => {
    const runs: number[] = []
    const a = new Hono()
    a.use(idempotency({ store: memoryStore(), scope: byHeader }))
    a.post('/events', () => {
      runs.push(1)
      return new Response(new ReadableStream({ start: (ctl) => ctl.enqueue(new TextEncoder().encode('data: hi\n\n')) }), { headers: { 'Content-Type': 'text/event-stream' } })
    })
    const res = await Promise.race([a.request('/events', post('sse')), sleep(1000).then(() => null)])
    expect(res).not.toBeNull()
    const reader = res!.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: hi\n\n')
    await reader.cancel()
    const repeat = await a.request('/events', post('sse'))
    expect(repeat.status).toBe(200)
    expect(repeat.headers.get('Content-Type')).toBe('application/problem+json')
    expect(await repeat.json()).toMatchObject({ type: 'urn:backward:response-not-kept' })
    expect(runs).toEqual([1])
  })

  it('a body larger than maxBodyBytes with a known Content-Length is handed on untouched, and counts as run', async () => {
    const { app: a, runs } = app({ maxBodyBytes: 8 })
    const res = await a.request('/pay', post('k', { body: 'a body longer than eight bytes' }))
    expect(await res.json()).toMatchObject({ body: 'a body longer than eight bytes' })
    const repeat = await a.request('/pay', post('k', { body: 'a body longer than eight bytes' }))
    expect(repeat.status).toBe(201)
    expect(await repeat.json()).toMatchObject({ type: 'urn:backward:response-not-kept' })
    expect(runs).toEqual(['ada'])
  })
})

describe('idempotency: slow handlers and store failures never give a second run', () => {
  it('a handler slower than lockTtl keeps its key: the repeat during it gets 409, the repeat after it the stored answer', async () => {
    const { app: a, runs } = app({ lockTtl: 0.05 })
    const first = a.request('/pay?delay=200', post('slow'))
    await sleep(120)
    const during = await a.request('/pay?delay=200', post('slow'))
    await first
    const after = await a.request('/pay?delay=200', post('slow'))
    expect(during.status).toBe(409)
    expect(after.status).toBe(201)
    expect(after.headers.get('Idempotent-Replayed')).toBe('true')
    expect(runs).toEqual(['ada'])
  })

  it('a running record that vanished (evicted, expired) is recreated with the answer; a conflict is reported', async () => {
    const inner = memoryStore()
    let taken = false
    // The running record is gone by the time the answer is saved: update finds nothing.
    const store: SessionStore = { ...inner, update: async (k) => (await inner.delete(k), false), create: async (k, d, e) => (taken && d.state === 'done' ? false : inner.create(k, d, e)) }
    const errors: unknown[] = []
    const { app: a, runs } = app({ store, onStoreError: (e) => errors.push(e) })
    await a.request('/pay', post('gone'))
    const repeat = await a.request('/pay', post('gone'))
    expect(repeat.headers.get('Idempotent-Replayed')).toBe('true')
    expect(runs).toEqual(['ada'])
    expect(errors).toEqual([])
    // Now the update fails and so does the create (another run holds the key): reported, not silent.
    taken = true
    await a.request('/pay', post('other'))
    expect(errors).toEqual([expect.objectContaining({ code: 'STORE_CONFLICT' })])
  })

  it('a write of the answer that fails twice is retried: the repeat gets the stored answer', async () => {
    const flaky = flakyStore()
    const { app: a, runs } = app({ store: flaky.store, onStoreError: () => {} })
    flaky.state.failUpdates = 2
    expect((await a.request('/pay', post('blip'))).status).toBe(201)
    const repeat = await a.request('/pay', post('blip'))
    expect(repeat.status).toBe(201)
    expect(repeat.headers.get('Idempotent-Replayed')).toBe('true')
    expect(runs).toEqual(['ada'])
  })

  it('both stores down when the answer is saved: 503 to the client, then 409 to every retry (even after lockTtl), never a second run', async () => {
    const sessions = flakyStore()
    const idem = flakyStore()
    const runs: unknown[] = []
    const a = new Hono()
    a.use(session({ store: sessions.store, onStoreError: () => {} }))
    a.post('/login', async (c) => (await login(c, 'ada'), c.text('ok')))
    a.use('/api/*', idempotency({ store: idem.store, lockTtl: 0.05, onStoreError: () => {} }))
    a.post('/api/pay', (c) => {
      runs.push(getUserId(c))
      c.var.session.set('paid', true)
      sessions.state.down = true // the outage starts while the handler runs
      idem.state.down = true
      return c.json({ paid: true }, 201)
    })
    const jar = createJar()
    await go(a, jar, '/login', { method: 'POST' })
    const first = await go(a, jar, '/api/pay', { method: 'POST', headers: { 'Idempotency-Key': 'k' } })
    expect(first.status).toBe(503) // session() could not save: the SDK retries
    sessions.state.down = false
    idem.state.down = false
    await sleep(100)
    for (let i = 0; i < 3; i++) {
      const retry = await go(a, jar, '/api/pay', { method: 'POST', headers: { 'Idempotency-Key': 'k' } })
      expect(retry.status).toBe(409)
    }
    expect(runs).toEqual(['ada'])
  })
})

describe('idempotency: which answers are kept', () => {
  it('408, 409, 425, 429, 502, 503 and 504 free the key (the SDK retries them): the retry runs', async () => {
    const { app: a, runs } = app()
    for (const code of [408, 409, 425, 429, 502, 503, 504]) {
      await a.request(`/status/${code}`, post(`k${code}`))
      const retry = await a.request(`/status/${code}`, post(`k${code}`))
      expect(retry.headers.get('Idempotent-Replayed'), String(code)).toBeNull()
    }
    expect(runs).toEqual(['408', '408', '409', '409', '425', '425', '429', '429', '502', '502', '503', '503', '504', '504'])
  })

  it('a final 4xx is kept; a thrown error (500, perhaps after a side effect) is kept too, never run again', async () => {
    const { app: a, runs } = app()
    for (const path of ['/status/400', '/status/422', '/throws']) {
      const first = await a.request(path, post(path))
      const repeat = await a.request(path, post(path))
      expect(repeat.status, path).toBe(first.status)
      expect(repeat.headers.get('Idempotent-Replayed'), path).toBe('true')
    }
    expect(runs).toEqual(['400', '422', 'throws'])
  })

  it('a repeat while the first runs gets 409 problem+json urn:backward:request-in-progress with Retry-After: 1', async () => {
    const { app: a, runs } = app()
    const first = a.request('/pay?delay=60', post('busy'))
    await sleep(10)
    const repeat = await a.request('/pay?delay=60', post('busy'))
    await first
    expect(repeat.status).toBe(409)
    expect(repeat.headers.get('Content-Type')).toBe('application/problem+json')
    expect(repeat.headers.get('Retry-After')).toBe('1')
    expect(await repeat.json()).toMatchObject({ type: 'urn:backward:request-in-progress', status: 409 })
    expect(runs).toEqual(['ada'])
  })

  describe('security', () => {
    it('the same key with another body or query gets 422 urn:backward:idempotency-key-reused, never the first answer', async () => {
      const { app: a, runs } = app()
      await a.request('/pay', post('k', { body: 'pay alice 10' }))
      const body = await a.request('/pay', post('k', { body: 'pay mallory 1000' }))
      const query = await a.request('/pay?to=mallory', post('k', { body: 'pay alice 10' }))
      const same = await a.request('/pay', post('k', { body: 'pay alice 10' }))
      for (const res of [body, query]) {
        expect(res.status).toBe(422)
        expect(res.headers.get('Content-Type')).toBe('application/problem+json')
        expect(await res.json()).toMatchObject({ type: 'urn:backward:idempotency-key-reused' })
      }
      expect(same.headers.get('Idempotent-Replayed')).toBe('true')
      expect(await same.json()).toMatchObject({ body: 'pay alice 10' })
      expect(runs).toEqual(['ada'])
    })

    it('a reused key with another body is refused while the first still runs, too', async () => {
      const { app: a, runs } = app()
      const first = a.request('/pay?delay=60', post('k', { body: 'one' }))
      await sleep(10)
      const other = await a.request('/pay?delay=60', post('k', { body: 'two' }))
      await first
      expect(other.status).toBe(422)
      expect(runs).toEqual(['ada'])
    })

    it('the handler can still read (or stream) the body after the fingerprint is taken', async () => {
      const a = new Hono()
      a.use(idempotency({ store: memoryStore(), scope: byHeader }))
      a.post('/raw', async (c) => c.text(String((await new Response(c.req.raw.body).arrayBuffer()).byteLength)))
      const big = 'x'.repeat(3 << 20) // longer than the fingerprinted first MiB
      expect(await (await a.request('/raw', post('r', { body: big }))).text()).toBe(String(big.length))
    })
  })
})

describe('idempotency: every session store carries the records', async () => {
  const [redis, postgres] = await Promise.all([redisService(), postgresService()])
  const dir = mkdtempSync(join(tmpdir(), 'bw-idem-'))
  const io = redis.ok ? new Redis(REDIS_URL) : undefined
  const sandbox = postgresSchema(2)
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true })
    await io?.quit()
  })
  const stores: [string, boolean, () => Promise<SessionStore>][] = [
    ['memoryStore', true, async () => memoryStore()],
    ['fileStore', true, async () => fileStore({ dir })],
    ['redisStore', redis.ok, async () => redisStore({ client: io!, prefix: `bwtest:${randomBytes(6).toString('hex')}:` })],
    ['postgresStore', postgres.ok, async () => {
      const store = postgresStore({ pool: sandbox.pool, table: `${sandbox.schema}.idem` })
      await store.migrate()
      return store
    }],
  ]
  for (const [name, ok, make] of stores) {
    it.skipIf(!ok)(`${name}: a logged-in user's repeat replays the bytes, a concurrent one gets 409, another body 422; one run`, async () => {
      const runs: number[] = []
      const bytes = randomBytes(300_000)
      const a = new Hono()
      a.use(session({ store: memoryStore() }))
      a.post('/login', async (c) => (await login(c, 'ada'), c.text('ok')))
      a.use('/api/*', idempotency({ store: await make() }))
      a.post('/api/upload', async (c) => {
        runs.push(1)
        await sleep(80)
        return new Response(bytes, { status: 201, headers: { 'Content-Type': 'application/octet-stream', ETag: '"v1"' } })
      })
      const jar = createJar()
      await go(a, jar, '/login', { method: 'POST' })
      const key = randomBytes(8).toString('hex')
      const send = (body: string) => go(a, jar, '/api/upload', { method: 'POST', headers: { 'Idempotency-Key': key }, body })
      const first = send('file-1')
      await sleep(30)
      const during = await send('file-1')
      expect(Buffer.from(await (await first).arrayBuffer()).equals(bytes)).toBe(true)
      const repeat = await send('file-1')
      const other = await send('file-2')
      expect(during.status).toBe(409)
      expect(repeat.status).toBe(201)
      expect(repeat.headers.get('ETag')).toBe('"v1"')
      expect(Buffer.from(await repeat.arrayBuffer()).equals(bytes)).toBe(true)
      expect(other.status).toBe(422)
      expect(runs).toEqual([1])
    })
  }
})

describe('idempotency: form bodies are fingerprinted by their entries', () => {
  const file = (bytes: Uint8Array, name = 'a.bin', type = 'application/octet-stream') => ({ bytes: bytes.buffer as ArrayBuffer, name, type, lastModified: 0 })
  const action = (body: StoredFormEntry[], id = 'act-1'): BackwardAction => ({
    version: 1, id, method: 'POST', url: `${ORIGIN}/upload`, headers: [['X-User', 'ada']], body, credentials: 'same-origin', mode: 'cors',
    createdAt: 0, expiresAt: Number.MAX_SAFE_INTEGER, returnTo: `${ORIGIN}/`, user: null, attempts: 0,
  })
  function uploadApp() {
    const runs: number[] = []
    const a = new Hono()
    a.use(idempotency({ store: memoryStore(), scope: byHeader }))
    a.post('/upload', async (c) => {
      runs.push(1)
      // The handler still reads the form after the fingerprint.
      const entries = [...(await c.req.formData())].map(([name, value]) => [name, typeof value === 'string' ? value : `${value.name}:${value.size}`])
      return c.json({ run: runs.length, entries }, 201)
    })
    return { app: a, runs }
  }

  it('the SDK rebuilds a FormData replay (a new boundary each send): the second send gets the first answer, not 422', async () => {
    const { app: a, runs } = uploadApp()
    const saved = action([['title', 'holiday'], ['photo', file(new Uint8Array([1, 2, 3]), 'p.jpg', 'image/jpeg')]])
    const first = await a.request(toRequest(saved))
    const again = await a.request(toRequest(saved))
    expect(first.status).toBe(201)
    expect(again.status).toBe(201)
    expect(again.headers.get('Idempotent-Replayed')).toBe('true')
    expect(await again.json()).toEqual({ run: 1, entries: [['title', 'holiday'], ['photo', 'p.jpg:3']] })
    expect(runs).toEqual([1])
  })

  it('a form over the fingerprinted MiB, with or without Content-Length, gets the first answer too', async () => {
    const { app: a, runs } = uploadApp()
    const big = randomBytes(1_500_000)
    const form = () => {
      const data = new FormData()
      data.append('photo', new File([big], 'big.bin'))
      return data
    }
    const chunked = () => a.request(new Request(`${ORIGIN}/upload`, { ...post('big-1'), body: form() }))
    const sized = async () => {
      const serialized = new Response(form())
      const bytes = await serialized.arrayBuffer()
      const headers = { 'Content-Type': serialized.headers.get('content-type')!, 'Content-Length': String(bytes.byteLength) }
      return a.request(`${ORIGIN}/upload`, { method: 'POST', headers: { ...post('big-2').headers, ...headers }, body: bytes })
    }
    for (const send of [chunked, sized]) {
      expect((await send()).status).toBe(201)
      const again = await send()
      expect(again.status).toBe(201)
      expect(again.headers.get('Idempotent-Replayed')).toBe('true')
    }
    expect(runs).toEqual([1, 1])
  })

  it('urlencoded bodies are the same bytes each send, also when an earlier middleware parsed them with c.req.formData()', async () => {
    const runs: number[] = []
    const a = new Hono()
    a.use('/parsed', async (c, next) => (await c.req.formData(), next()))
    a.use(idempotency({ store: memoryStore(), scope: byHeader }))
    a.post('/:where', async (c) => (runs.push(1), c.json(await c.req.parseBody(), 201)))
    for (const where of ['/plain', '/parsed']) {
      const send = () => a.request(where, { ...post(`u${where}`), body: new URLSearchParams([['to', 'alice bob'], ['note', 'é&=']]) })
      expect((await send()).status, where).toBe(201)
      const again = await send()
      expect(again.headers.get('Idempotent-Replayed'), where).toBe('true')
      expect(await again.json()).toEqual({ to: 'alice bob', note: 'é&=' })
    }
    expect(runs).toEqual([1, 1])
  })

  describe('security', () => {
    it('the same key with other entries (a value, a file\'s bytes, name or type, their order) gets 422, never the first answer', async () => {
      const { app: a, runs } = uploadApp()
      const photo = file(new Uint8Array([1, 2, 3]), 'p.jpg', 'image/jpeg')
      await a.request(toRequest(action([['to', 'alice'], ['photo', photo]])))
      const others: StoredFormEntry[][] = [
        [['to', 'mallory'], ['photo', photo]],
        [['to', 'alice'], ['photo', file(new Uint8Array([1, 2, 4]), 'p.jpg', 'image/jpeg')]],
        [['to', 'alice'], ['photo', file(new Uint8Array([1, 2, 3]), 'q.jpg', 'image/jpeg')]],
        [['to', 'alice'], ['photo', file(new Uint8Array([1, 2, 3]), 'p.jpg', 'image/png')]],
        [['photo', photo], ['to', 'alice']],
        [['to', 'alice'], ['photo', 'p.jpg']], // a string where the file was
        [['to', 'alice']],
      ]
      for (const body of others) {
        const res = await a.request(toRequest(action(body)))
        expect(res.status, JSON.stringify(body)).toBe(422)
        expect(await res.json()).toMatchObject({ type: 'urn:backward:idempotency-key-reused' })
      }
      expect(runs).toEqual([1])
    })
  })
})

describe('idempotency: streamed answers pass through as they arrive', () => {
  /** A memory store whose answer writes take `ms`: a stream that ended before its record was written would show. */
  function slowStore(ms: number): SessionStore {
    const inner = memoryStore()
    return { ...inner, update: async (k, d, e) => (await sleep(ms), inner.update(k, d, e)) }
  }
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `{"i":${i}}\n`).join('')

  it('an NDJSON stream starts at once, chunk by chunk; a repeat right after reading it all gets the stored body', async () => {
    const runs: number[] = []
    let sent = 0
    const a = new Hono()
    a.use(idempotency({ store: slowStore(80), scope: byHeader }))
    a.post('/feed', () => {
      runs.push(1)
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          for (let i = 0; i < 3; i++) {
            if (i > 0) await sleep(150)
            controller.enqueue(new TextEncoder().encode(`{"i":${i}}\n`))
            sent++
          }
          controller.close()
        },
      })
      return new Response(body, { headers: { 'Content-Type': 'application/x-ndjson' } })
    })
    const started = Date.now()
    const res = await a.request('/feed', post('nd'))
    expect(Date.now() - started).toBeLessThan(120) // before the second chunk exists
    const reader = res.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('{"i":0}\n')
    expect(sent).toBe(1)
    let rest = ''
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value)
    expect(rest).toBe('{"i":1}\n{"i":2}\n')
    const repeat = await a.request('/feed', post('nd'))
    expect(repeat.status).toBe(200)
    expect(repeat.headers.get('Idempotent-Replayed')).toBe('true')
    expect(repeat.headers.get('Content-Type')).toBe('application/x-ndjson')
    expect(await repeat.text()).toBe(lines(3))
    expect(runs).toEqual([1])
  })

  it('a stream that never ends starts at once; a repeat during it gets 409; the client\'s cancel stores "not kept" and stops the handler\'s stream', async () => {
    const runs: number[] = []
    let stopped = false
    const a = new Hono()
    a.use(idempotency({ store: memoryStore(), scope: byHeader }))
    a.post('/ticks', () => {
      runs.push(1)
      const body = new ReadableStream<Uint8Array>({
        pull: async (controller) => (await sleep(50), controller.enqueue(new TextEncoder().encode('tick\n'))),
        cancel: () => void (stopped = true),
      })
      return new Response(body, { headers: { 'Content-Type': 'application/x-ndjson' } })
    })
    const res = await Promise.race([a.request('/ticks', post('t')), sleep(1000).then(() => null)])
    expect(res).not.toBeNull()
    const reader = res!.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('tick\n')
    const during = await a.request('/ticks', post('t'))
    expect(during.status).toBe(409)
    await reader.cancel()
    expect(stopped).toBe(true)
    const after = await a.request('/ticks', post('t'))
    expect(after.status).toBe(200)
    expect(after.headers.get('Idempotent-Replayed')).toBe('true')
    expect(await after.json()).toMatchObject({ type: 'urn:backward:response-not-kept' })
    expect(runs).toEqual([1])
  })

  it('a stream over maxBodyBytes arrives whole; its copy stops at the limit and a repeat gets "not kept"', async () => {
    const runs: number[] = []
    const a = new Hono()
    a.use(idempotency({ store: memoryStore(), scope: byHeader, maxBodyBytes: 16 }))
    a.post('/grow', () => {
      runs.push(1)
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          for (let i = 0; i < 3; i++) controller.enqueue(new TextEncoder().encode(`{"i":${i}}\n`)), await sleep(20)
          controller.close()
        },
      })
      return new Response(body, { status: 201, headers: { 'Content-Type': 'application/x-ndjson' } })
    })
    expect(await (await a.request('/grow', post('g'))).text()).toBe(lines(3))
    const repeat = await a.request('/grow', post('g'))
    expect(repeat.status).toBe(201)
    expect(await repeat.json()).toMatchObject({ type: 'urn:backward:response-not-kept' })
    expect(runs).toEqual([1])
  })

  it('a record that cannot be written at the stream\'s end is reported; the stream the client has still ends cleanly, and the key stays taken', async () => {
    const flaky = flakyStore()
    const errors: unknown[] = []
    const runs: number[] = []
    const a = new Hono()
    a.use(idempotency({ store: flaky.store, scope: byHeader, onStoreError: (error) => errors.push(error) }))
    a.post('/feed', () => {
      runs.push(1)
      flaky.state.failUpdates = 3 // every attempt to save this answer fails
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode('one\n'))
          await sleep(30)
          controller.enqueue(new TextEncoder().encode('two\n'))
          controller.close()
        },
      })
      return new Response(body, { headers: { 'Content-Type': 'application/x-ndjson' } })
    })
    expect(await (await a.request('/feed', post('w'))).text()).toBe('one\ntwo\n')
    expect(errors).toEqual([expect.objectContaining({ message: 'blip' })])
    expect((await a.request('/feed', post('w'))).status).toBe(409)
    expect(runs).toEqual([1])
  })

  it('a stream that fails part-way hands the client the same failure and is recorded "not kept"', async () => {
    const runs: number[] = []
    const a = new Hono()
    a.use(idempotency({ store: memoryStore(), scope: byHeader }))
    a.post('/broken', () => {
      runs.push(1)
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode('partial'))
          await sleep(20)
          controller.error(new Error('disk gone'))
        },
      })
      return new Response(body, { status: 201, headers: { 'Content-Type': 'application/octet-stream' } })
    })
    const res = await a.request('/broken', post('b'))
    await expect(res.text()).rejects.toThrow('disk gone')
    const repeat = await a.request('/broken', post('b'))
    expect(repeat.status).toBe(201)
    expect(await repeat.json()).toMatchObject({ type: 'urn:backward:response-not-kept' })
    expect(runs).toEqual([1])
  })
})

describe('idempotency: mounted after a middleware that reads the body', () => {
  it('the body read off c.req.raw: a CONFIG error that says to mount idempotency() earlier; the handler never runs', async () => {
    const runs: number[] = []
    const errors: unknown[] = []
    const a = new Hono()
    a.onError((error, c) => (errors.push(error), c.text('error', 500)))
    a.use(async (c, next) => (await c.req.raw.text(), next()))
    a.use(idempotency({ store: memoryStore(), scope: byHeader }))
    a.post('/pay', (c) => (runs.push(1), c.text('paid', 201)))
    const res = await a.request('/pay', post('k', { body: 'pay alice 10' }))
    expect(res.status).toBe(500)
    expect(errors).toEqual([expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/^\[backward\] idempotency\(\) must run before any middleware that reads the request body/) })])
    expect((errors[0] as Error).message).not.toContain('alice')
    expect(runs).toEqual([])
  })

  it('the body read through c.req.json() (which Hono keeps) is fine: the handler reads it, a repeat gets the first answer', async () => {
    const runs: unknown[] = []
    const a = new Hono()
    a.use(async (c, next) => (await c.req.json(), next()))
    a.use(idempotency({ store: memoryStore(), scope: byHeader }))
    a.post('/pay', async (c) => (runs.push(await c.req.json()), c.json({ ok: true }, 201)))
    const send = () => a.request('/pay', post('j', { headers: { 'Content-Type': 'application/json' }, body: '{"to":"alice"}' }))
    expect((await send()).status).toBe(201)
    expect((await send()).headers.get('Idempotent-Replayed')).toBe('true')
    expect(runs).toEqual([{ to: 'alice' }])
  })
})

describe('idempotency: nobody else can break a key (issue 13, items 3 and 9)', () => {
  const SECRET = 'a test secret that is long enough to key the tags 0123456789'
  /** Keyed records by X-User, with session() in front only for its onSuspicious hook. */
  function sharedApp(options: Partial<IdempotencyOptions> & { store?: SessionStore } = {}) {
    const runs: string[] = []
    const events: SuspiciousEvent[] = []
    const a = new Hono()
    a.use(session({ store: memoryStore(), secret: SECRET, onSuspicious: (event) => void events.push(event) }))
    a.use(idempotency({ store: memoryStore(), scope: byHeader, ...options }))
    a.on(['POST', 'PUT'], ['/pay', '/refund'], async (c) => {
      runs.push(`${c.req.header('X-User')} ${c.req.method} ${c.req.path}`)
      return c.json({ run: runs.length, by: c.req.header('X-User'), body: await c.req.text() }, 201)
    })
    return { app: a, runs, events }
  }
  const as = (user: string, key: string, body = '') => ({ method: 'POST', headers: { 'X-User': user, 'Idempotency-Key': key }, body })

  it('maxKeysPerScope must be a positive integer, checked at start-up', () => {
    for (const maxKeysPerScope of [0, -1, 1.5, Number.NaN]) {
      expect(() => idempotency({ store: memoryStore(), maxKeysPerScope })).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/maxKeysPerScope/) }))
    }
  })

  describe('security', () => {
    it('the same key with another method, path, query or body gets 422 and a reused-idempotency-key report, never a run', async () => {
      const { app: a, runs, events } = sharedApp()
      const first = await a.request('/pay?to=alice', as('ada', 'k', 'pay alice 10'))
      expect(first.status).toBe(201)
      const variations: [string, string, RequestInit][] = [
        ['method', '/pay?to=alice', { ...as('ada', 'k', 'pay alice 10'), method: 'PUT' }],
        ['path', '/refund?to=alice', as('ada', 'k', 'pay alice 10')],
        ['query', '/pay?to=mallory', as('ada', 'k', 'pay alice 10')],
        ['body', '/pay?to=alice', as('ada', 'k', 'pay mallory 1000')],
      ]
      for (const [what, path, init] of variations) {
        const res = await a.request(path, init)
        expect(res.status, what).toBe(422)
        expect(res.headers.get('Content-Type'), what).toBe('application/problem+json')
        expect(await res.json(), what).toMatchObject({ type: 'urn:backward:idempotency-key-reused', status: 422 })
      }
      expect(events.map((e) => [e.kind, e.path])).toEqual([
        ['reused-idempotency-key', '/pay'],
        ['reused-idempotency-key', '/refund'],
        ['reused-idempotency-key', '/pay'],
        ['reused-idempotency-key', '/pay'],
      ])
      expect(JSON.stringify(events)).not.toMatch(/mallory|alice/) // no query, no body in a report
      const same = await a.request('/pay?to=alice', as('ada', 'k', 'pay alice 10'))
      expect(same.headers.get('Idempotent-Replayed')).toBe('true')
      expect(runs).toEqual(['ada POST /pay'])
    })

    it('Mallory with 2,000 keys cannot evict or block Alice: past her share she gets 429 with Retry-After; Alice\'s replay gets the first answer, one run', async () => {
      // The share: maxKeysPerScope (1,000), and at most a tenth of a store that states its capacity.
      for (const [store, share] of [[memoryStore(), 1_000], [memoryStore({ maxEntries: 1_000 }), 100]] as const) {
        const { app: a, runs, events } = sharedApp({ store })
        const paid = await a.request('/pay', as('alice', 'alice-pays', 'pay bob 10'))
        expect(paid.status).toBe(201)
        // Sent at once: the count is taken before any write is awaited, so a burst cannot slip past it.
        const flood = await Promise.all(Array.from({ length: 2_000 }, (_, i) => a.request('/pay', as('mallory', `m-${i}`, 'x'))))
        const statuses = flood.map((res) => res.status)
        expect(statuses.filter((s) => s === 201)).toHaveLength(share)
        expect(statuses.filter((s) => s === 429)).toHaveLength(2_000 - share)
        const refused = flood.find((res) => res.status === 429)!
        expect(refused.headers.get('Content-Type')).toBe('application/problem+json')
        expect(Number(refused.headers.get('Retry-After'))).toBeGreaterThan(86_000) // her oldest key's expiry, a day away
        expect(await refused.json()).toMatchObject({ type: 'urn:backward:too-many-idempotency-keys', status: 429 })
        expect(events.some((e) => e.kind === 'store-full')).toBe(true)
        // Her own repeats are still answered (at her cap), never run again.
        const hers = await a.request('/pay', as('mallory', 'm-0', 'x'))
        expect(hers.headers.get('Idempotent-Replayed')).toBe('true')
        // Alice: her record survived, and she can still take new keys.
        const replay = await a.request('/pay', as('alice', 'alice-pays', 'pay bob 10'))
        expect(replay.status).toBe(201)
        expect(replay.headers.get('Idempotent-Replayed')).toBe('true')
        expect(await replay.json()).toMatchObject({ run: 1, by: 'alice' })
        expect((await a.request('/pay', as('alice', 'alice-2', 'pay carol 5'))).status).toBe(201)
        expect(runs.filter((r) => r.startsWith('alice'))).toEqual(['alice POST /pay', 'alice POST /pay'])
        expect(runs.filter((r) => r.startsWith('mallory'))).toHaveLength(share)
      }
    })

    it('a freed key (the handler answered 503, or the login wall) frees its place in the owner\'s share', async () => {
      const a = new Hono()
      let status = 503
      a.use(idempotency({ store: memoryStore(), scope: byHeader, maxKeysPerScope: 2 }))
      a.post('/x', (c) => c.text('x', status as 201))
      for (let i = 0; i < 5; i++) expect((await a.request('/x', as('ada', `busy-${i}`))).status).toBe(503)
      status = 201
      expect((await a.request('/x', as('ada', 'a'))).status).toBe(201)
      expect((await a.request('/x', as('ada', 'b'))).status).toBe(201)
      expect((await a.request('/x', as('ada', 'c'))).status).toBe(429)
    })

    it('records are never evicted to make room: a full store refuses new keys with 503 and Retry-After (store-full); every old key still replays', async () => {
      const store = memoryStore({ maxEntries: 50 })
      const { app: a, runs, events } = sharedApp({ store })
      // Fifty users, one key each: the store is full of records that must live out their ttl.
      for (let i = 0; i < 50; i++) expect((await a.request('/pay', as(`user-${i}`, 'k', `pay ${i}`))).status).toBe(201)
      const late = await a.request('/pay', as('user-50', 'k', 'pay 50'))
      expect(late.status).toBe(503)
      expect(late.headers.get('Retry-After')).toBe('60')
      expect(await late.json()).toMatchObject({ type: 'urn:backward:idempotency-store-full', status: 503 })
      expect(events.filter((e) => e.kind === 'store-full')).toHaveLength(1)
      for (let i = 0; i < 50; i++) {
        const replay = await a.request('/pay', as(`user-${i}`, 'k', `pay ${i}`))
        expect(replay.headers.get('Idempotent-Replayed'), `user-${i}`).toBe('true')
      }
      expect(runs).toHaveLength(50)
      expect(store.size).toBe(50)
    })

    it('an answer too large for a full store is kept as its status ("not kept"), never left running or run again', async () => {
      const store = memoryStore({ maxBytes: 20_000 })
      const a = new Hono()
      const runs: number[] = []
      a.use(idempotency({ store, scope: byHeader }))
      a.post('/big', (c) => (runs.push(1), c.text('b'.repeat(30_000), 201)))
      expect((await a.request('/big', as('ada', 'k'))).status).toBe(201)
      const repeat = await a.request('/big', as('ada', 'k'))
      expect(repeat.status).toBe(201)
      expect(await repeat.json()).toMatchObject({ type: 'urn:backward:response-not-kept' })
      expect(runs).toEqual([1])
    })

    it('the login wall\'s 401 is never kept: 2,000 anonymous keyed posts leave 0 records, and the replay after login runs', async () => {
      const idem = memoryStore()
      const runs: string[] = []
      const a = new Hono()
      a.use(session({ store: memoryStore(), secret: SECRET }))
      a.post('/cart', (c) => (c.var.session.set('cart', 1), c.text('ok')))
      a.post('/login', async (c) => (await login(c, 'ada'), c.text('ok')))
      a.use('/api/*', idempotency({ store: idem })) // before loginRequired(), as the README mounts it
      a.post('/api/pay', loginRequired(), (c) => (runs.push(String(getUserId(c))), c.json({ paid: true }, 201)))
      const jar = createJar()
      await go(a, jar, '/cart', { method: 'POST' }) // an anonymous session: it owns keys
      const fetchPost = (key: string) => go(a, jar, '/api/pay', { method: 'POST', headers: { 'Idempotency-Key': key, 'Sec-Fetch-Mode': 'cors', 'Content-Type': 'application/json' }, body: '{"amount":10}' })
      for (let i = 0; i < 2_000; i++) {
        const res = await fetchPost(`anon-${i}`)
        if (i === 0) expect(await res.json()).toMatchObject({ type: 'urn:backward:login-required' })
        expect(res.status).toBe(401)
      }
      expect([idem.size, idem.bytes]).toEqual([0, 0])
      await go(a, jar, '/login', { method: 'POST' })
      const replay = await fetchPost('anon-0')
      expect(replay.status).toBe(201)
      expect(replay.headers.get('Idempotent-Replayed')).toBeNull()
      expect((await fetchPost('anon-0')).headers.get('Idempotent-Replayed')).toBe('true')
      expect(runs).toEqual(['ada'])
    })

    it('a handler\'s own 401 that is not the login wall is kept like any final answer', async () => {
      const { app: a, runs } = app()
      const first = await a.request('/status/401', post('k401'))
      const repeat = await a.request('/status/401', post('k401'))
      expect([first.status, repeat.status]).toEqual([401, 401])
      expect(repeat.headers.get('Idempotent-Replayed')).toBe('true')
      expect(runs).toEqual(['401'])
    })
  })
})
