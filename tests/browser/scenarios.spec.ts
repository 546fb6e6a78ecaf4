// The browser SDK's scenarios that tests/client/* cover with fake-indexeddb and msw, here in real
// Chromium with real IndexedDB against the real Hono server (tests/browser/server.ts): what a saved
// action keeps and drops, every body kind byte for byte, the size cap, expiry, beforeReplay, final
// and transient answers at replay, and a replay refused to another user. Each test makes its own
// instance (window.makeBackward, tests/browser/page.ts), logs in within the page and replays itself.
import { createHash, randomBytes } from 'node:crypto'
import type { Page } from '@playwright/test'
import { expect, openApp, test } from './fixtures.ts'

type Made = { bw: import('../../src/client/index.ts').Backward; log: Record<string, unknown>[] }
/** The test page's globals this file uses. `t` is the test's instance. */
type Win = { makeBackward: (options?: import('../../src/client/index.ts').CreateBackwardOptions) => Made; t: Made } & Record<string, unknown>

const sha = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex')

/** Logs in within the page, as the login form would: login(), backward's redirect, the login signal cookie. */
async function logIn(page: Page, user: string): Promise<void> {
  await page.evaluate(async (name) => {
    const body = new FormData()
    body.set('user', name)
    if (!(await fetch('/login?next=%2Fapp', { method: 'POST', body })).ok) throw new Error('login failed')
  }, user)
  expect(await page.evaluate(() => document.cookie)).toContain('backward_login=')
}

/**
 * Every record in IndexedDB (database `backward`, store `actions`), by key, read with the raw API;
 * ArrayBuffers as `{ bytes: number[] }`. Null when the database does not exist: opening it here must
 * not create it (idb-keyval makes its store only when it creates the database).
 */
function rawStore(page: Page) {
  return page.evaluate(
    () =>
      new Promise<Record<string, unknown> | null>((resolve, reject) => {
        const open = indexedDB.open('backward')
        open.onupgradeneeded = () => open.transaction!.abort()
        open.onerror = () => resolve(null)
        open.onsuccess = () => {
          const db = open.result
          const tx = db.transaction('actions')
          const keys = tx.objectStore('actions').getAllKeys()
          const values = tx.objectStore('actions').getAll()
          tx.onerror = () => reject(tx.error)
          tx.oncomplete = () => {
            db.close()
            const plain = (value: unknown) =>
              JSON.parse(JSON.stringify(value, (_, v) => (v instanceof ArrayBuffer ? { bytes: [...new Uint8Array(v)] } : v)))
            resolve(Object.fromEntries(keys.result.map((key, i) => [String(key), plain(values.result[i])])))
          }
        }
      }),
  )
}

/** The saved actions among the raw records (the store also keeps the user tag and the last clear's time). */
async function rawActions(page: Page): Promise<Record<string, any>[]> {
  return Object.values((await rawStore(page)) ?? {}).filter((v): v is Record<string, any> => typeof (v as { method?: unknown } | null)?.method == 'string')
}

const names = (log: Record<string, unknown>[]) => log.map((e) => e.name)

test.describe('security', () => {
  test('credentials and CSRF tokens never reach IndexedDB, even when allow-listed; the replay carries the allowed headers only', async ({ page, state }) => {
    await openApp(page)
    const denied = {
      Authorization: 'Bearer SECRET-AUTH-1',
      'X-CSRF-Token': 'SECRET-CSRF-2',
      'X-XSRF-TOKEN': 'SECRET-XSRF-3',
      'Proxy-Authorization': 'Basic SECRET-PROXY-4',
      Cookie: 'sid=SECRET-COOKIE-5',
      'Idempotency-Key': 'SECRET-KEY-6',
      // Not allow-listed: dropped for that alone.
      'X-Session-Cookie': 'SECRET-SESSION-7',
    }
    const statuses = await page.evaluate(async (headers) => {
      const w = window as unknown as Win
      // Every denied name listed too: the deny list wins over the allow list.
      w.t = w.makeBackward({ headers: ['X-Trace', ...Object.keys(headers).filter((n) => n != 'X-Session-Cookie')] })
      const init = { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json', 'X-Trace': 'trace-42' }, body: '{"a":1}' }
      // Both capture paths: init (rebuilt on the 401) and a Request (cloned before sending).
      return [(await w.t.bw.fetch('/api/headers/init', init)).status, (await w.t.bw.fetch(new Request('/api/headers/request', init))).status]
    }, denied)
    expect(statuses).toEqual([401, 401])

    const saved = (await rawActions(page)).sort((a, b) => a.createdAt - b.createdAt)
    expect(saved.map((a) => a.headers)).toEqual(
      Array(2).fill([
        ['content-type', 'application/json'],
        ['x-trace', 'trace-42'],
      ]),
    )
    // Not in the headers, nor anywhere else in the records.
    const records = JSON.stringify(saved).toLowerCase()
    for (const [name, value] of Object.entries(denied)) {
      expect(records).not.toContain(name.toLowerCase())
      expect(records).not.toContain(value.toLowerCase())
    }
    expect(records).not.toContain('secret')

    await logIn(page, 'alice')
    await page.evaluate(() => (window as unknown as Win).t.bw.replay())
    const { runs } = await state()
    expect(runs.map((r) => r.path)).toEqual(['/api/headers/init', '/api/headers/request'])
    runs.forEach((run, i) => {
      expect(run.headers).toMatchObject({ 'content-type': 'application/json', 'x-trace': 'trace-42', 'idempotency-key': saved[i]!.id })
      for (const name of ['authorization', 'x-csrf-token', 'x-xsrf-token', 'proxy-authorization', 'x-session-cookie']) expect(run.headers).not.toHaveProperty(name)
      // The browser sends the new session's cookie, never one from the original request.
      expect(JSON.stringify(run.headers)).not.toContain('SECRET')
      expect(run).toMatchObject({ user: 'alice', raw: sha('{"a":1}') })
    })
    expect(await rawActions(page)).toEqual([])
  })

  test("an action made while alice's tag is remembered is not replayed to bob (user-mismatch) and never reaches the server", async ({ page, state }) => {
    await openApp(page)
    await page.evaluate(() => {
      const w = window as unknown as Win
      w.t = w.makeBackward()
    })
    // Alice logs in: the replay remembers her tag. Then her session ends without a clear() (it expired).
    await logIn(page, 'alice')
    await page.evaluate(() => (window as unknown as Win).t.bw.replay())
    const aliceTag = (await rawStore(page))!.user
    expect(aliceTag).toMatch(/^[A-Za-z0-9_-]{22}$/)
    await page.evaluate(() => fetch('/logout', { method: 'POST' }))

    const status = await page.evaluate(async () => (await (window as unknown as Win).t.bw.fetch('/api/transfer', { method: 'POST', body: 'all my money' })).status)
    expect(status).toBe(401)
    const saved = await rawActions(page)
    expect(saved.map((a) => a.user)).toEqual([aliceTag])

    await logIn(page, 'bob')
    await page.evaluate(() => (window as unknown as Win).t.bw.replay())
    const raw = (await rawStore(page))!
    expect(raw.user).not.toBe(aliceTag)
    expect(await rawActions(page)).toEqual([])
    const log = await page.evaluate(() => (window as unknown as Win).t.log)
    expect(log.filter((e) => e.name != 'queued' && e.name != 'login-required')).toEqual([
      expect.objectContaining({ name: 'failed', reason: 'user-mismatch', id: saved[0]!.id }),
    ])
    const { runs, arrivals, requests } = await state()
    expect(runs).toEqual([])
    expect(arrivals).toEqual([])
    // Only the original request, turned away at the login wall.
    expect(requests).toEqual([{ path: '/api/transfer', key: null, status: 401, replayed: false }])
  })
})

test('every body kind round-trips byte-identical through IndexedDB and the replay', async ({ page, state }) => {
  const json = JSON.stringify({ title: 'Grüße 🎉', n: [1, 2] })
  const text = 'line one\r\nline two: ü ✓\u0000end'
  const params: [string, string][] = [
    ['a', '1'],
    ['b', 'x y&z=é+'],
  ]
  const encoded = new URLSearchParams(params).toString()
  const fileA = randomBytes(3000)
  const fileB = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256))
  const blob = randomBytes(1500)
  const buffer = randomBytes(1024)
  const viewed = randomBytes(1024)
  const view = viewed.subarray(16, 16 + 512)
  await openApp(page)

  const statuses = await page.evaluate(
    async ({ json, text, params, fileA, fileB, blob, buffer, viewed }) => {
      const w = window as unknown as Win
      w.t = w.makeBackward()
      const { bw } = w.t
      const post = async (kind: string, init: RequestInit) => (await bw.fetch(`/api/body/${kind}`, { method: 'POST', ...init })).status
      const form = new FormData()
      form.append('caption', 'holiday ✓')
      form.append('a', new File([new Uint8Array(fileA)], 'photo 1.png', { type: 'image/png', lastModified: 1700000000000 }))
      form.append('b', new File([new Uint8Array(fileB)], 'data.bin', { type: 'application/octet-stream', lastModified: 1700000001000 }))
      const u8 = new Uint8Array(new Uint8Array(viewed).buffer, 16, 512)
      const out = [
        await post('json', { body: json, headers: { 'Content-Type': 'application/json' } }),
        await post('text', { body: text }),
        await post('params', { body: new URLSearchParams(params) }),
        await post('form', { body: form }),
        await post('blob', { body: new Blob([new Uint8Array(blob)], { type: 'application/x-custom' }) }),
        await post('buffer', { body: new Uint8Array(buffer).buffer }),
      ]
      // A view into a larger buffer, changed by the caller as soon as bw.fetch returns: what is saved
      // is the view's bytes at the moment of the call.
      const pending = post('u8', { body: u8 })
      u8.fill(0)
      out.push(await pending)
      return out
    },
    { json, text, params, fileA: [...fileA], fileB: [...fileB], blob: [...blob], buffer: [...buffer], viewed: [...viewed] },
  )
  expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 401])

  // In IndexedDB, oldest first: the exact bytes, the form's entries with their files' bytes, names, types.
  const saved = (await rawActions(page)).sort((a, b) => a.createdAt - b.createdAt)
  const bytes = (b: Uint8Array | string) => ({ bytes: [...Buffer.from(b)] })
  expect(saved.map((a) => [new URL(a.url).pathname, a.headers, a.body])).toEqual([
    ['/api/body/json', [['content-type', 'application/json']], bytes(json)],
    ['/api/body/text', [['content-type', 'text/plain;charset=UTF-8']], bytes(text)],
    ['/api/body/params', [['content-type', 'application/x-www-form-urlencoded;charset=UTF-8']], bytes(encoded)],
    // Content-Type dropped: the replay's FormData gets a fresh boundary.
    [
      '/api/body/form',
      [],
      [
        ['caption', 'holiday ✓'],
        ['a', { bytes: bytes(fileA), name: 'photo 1.png', type: 'image/png', lastModified: 1700000000000 }],
        ['b', { bytes: bytes(fileB), name: 'data.bin', type: 'application/octet-stream', lastModified: 1700000001000 }],
      ],
    ],
    ['/api/body/blob', [['content-type', 'application/x-custom']], bytes(blob)],
    ['/api/body/buffer', [], bytes(buffer)],
    ['/api/body/u8', [], bytes(view)],
  ])

  await logIn(page, 'alice')
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())
  const { runs } = await state()
  const by = Object.fromEntries(runs.map((r) => [r.path.split('/').pop()!, r]))
  expect(runs.map((r) => r.path)).toEqual(saved.map((a) => new URL(a.url).pathname))
  expect(runs.every((r, i) => r.key == saved[i]!.id && r.user == 'alice')).toBe(true)
  expect(by.json).toMatchObject({ raw: sha(json), contentType: 'application/json' })
  expect(by.text).toMatchObject({ raw: sha(text), contentType: 'text/plain;charset=UTF-8' })
  expect(by.params).toMatchObject({ raw: sha(encoded), fields: Object.fromEntries(params) })
  expect(by.form!.contentType).toMatch(/^multipart\/form-data; boundary=/)
  expect(by.form!.fields).toEqual({
    caption: 'holiday ✓',
    a: { name: 'photo 1.png', type: 'image/png', size: fileA.length, sha256: sha(fileA) },
    b: { name: 'data.bin', type: 'application/octet-stream', size: fileB.length, sha256: sha(fileB) },
  })
  expect(by.blob).toMatchObject({ raw: sha(blob), contentType: 'application/x-custom' })
  expect(by.buffer).toMatchObject({ raw: sha(buffer) })
  expect(by.u8).toMatchObject({ raw: sha(view) })
  expect(await rawActions(page)).toEqual([])
})

test('a body over maxBodyBytes (counted in bytes, not characters) is refused: BODY_TOO_LARGE, bw.fetch rejects, nothing in IndexedDB', async ({ page, state }) => {
  await openApp(page)
  const outcomes = await page.evaluate(async () => {
    const w = window as unknown as Win
    w.t = w.makeBackward({ maxBodyBytes: 1000 })
    const { bw } = w.t
    const settle = (init: RequestInit) =>
      bw.fetch('/api/big', { method: 'POST', ...init }).then(
        (res) => ({ status: res.status }),
        (error: { code?: string; message?: string }) => ({ code: error.code, message: error.message }),
      )
    const form = new FormData()
    form.append('f', new File([new Uint8Array(1000)], 'f.bin'))
    return [
      await settle({ body: new Uint8Array(1001) }),
      // 501 characters, 1001 bytes of UTF-8.
      await settle({ body: 'é'.repeat(500) + 'a' }),
      // 1000 bytes of file plus the entry's name.
      await settle({ body: form }),
    ]
  })
  expect(outcomes).toEqual(Array(3).fill({ code: 'BODY_TOO_LARGE', message: expect.stringMatching(/^\[backward\] /) }))
  expect(await page.evaluate(() => (window as unknown as Win).t.log)).toEqual(Array(3).fill(expect.objectContaining({ name: 'error', code: 'BODY_TOO_LARGE' })))
  expect(await rawActions(page)).toEqual([])
  // They did reach the server (the 401 is what triggers the capture); none ran.
  const { requests, runs } = await state()
  expect(requests.map((r) => r.status)).toEqual([401, 401, 401])
  expect(runs).toEqual([])

  // At the limit exactly it is saved.
  const status = await page.evaluate(async () => (await (window as unknown as Win).t.bw.fetch('/api/big', { method: 'POST', body: new Uint8Array(1000) })).status)
  expect(status).toBe(401)
  expect((await rawActions(page)).map((a) => a.body.bytes.length)).toEqual([1000])
})

test('an action past its ttl is dropped at replay with an expired event and never reaches the server', async ({ page, state }) => {
  await openApp(page)
  await page.evaluate(async () => {
    const w = window as unknown as Win
    w.t = w.makeBackward()
    await w.makeBackward({ ttl: 1 }).bw.fetch('/api/expire/old', { method: 'POST', body: 'old' })
  })
  const [old] = await rawActions(page)
  expect(old!.expiresAt - old!.createdAt).toBe(1000)
  await page.waitForTimeout(1100)
  await page.evaluate(() => (window as unknown as Win).t.bw.fetch('/api/expire/fresh', { method: 'POST', body: 'fresh' }))
  await logIn(page, 'alice')
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())

  const log = await page.evaluate(() => (window as unknown as Win).t.log)
  expect(log.filter((e) => e.name == 'expired' || e.name == 'replayed')).toEqual([
    expect.objectContaining({ name: 'expired', id: old!.id }),
    expect.objectContaining({ name: 'replayed', status: 200, url: expect.stringMatching(/\/api\/expire\/fresh$/) }),
  ])
  const { runs, arrivals } = await state()
  expect(runs.map((r) => r.path)).toEqual(['/api/expire/fresh'])
  expect(arrivals.map((a) => a.path)).toEqual(['/api/expire/fresh'])
  expect(await rawActions(page)).toEqual([])
})

test('beforeReplay: false vetoes (failed, vetoed, not sent); returned headers refresh the CSRF token the capture dropped', async ({ page, state }) => {
  await openApp(page)
  await page.evaluate(async () => {
    const w = window as unknown as Win
    const seen: string[] = []
    w.hookSeen = seen
    w.t = w.makeBackward({
      beforeReplay: (action) => (seen.push(new URL(action.url).pathname), action.url.endsWith('/veto') ? false : { 'X-CSRF-Token': 'fresh-csrf' }),
    })
    for (const path of ['/api/hook/veto', '/api/hook/refresh'])
      await w.t.bw.fetch(path, { method: 'POST', body: path, headers: { 'X-CSRF-Token': 'stale-csrf' } })
  })
  const saved = (await rawActions(page)).sort((a, b) => a.createdAt - b.createdAt)
  expect(JSON.stringify(saved)).not.toContain('csrf')
  await logIn(page, 'alice')
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())

  expect(await page.evaluate(() => (window as unknown as Win).hookSeen)).toEqual(['/api/hook/veto', '/api/hook/refresh'])
  const log = await page.evaluate(() => (window as unknown as Win).t.log)
  expect(log.filter((e) => e.name == 'failed' || e.name == 'replayed')).toEqual([
    expect.objectContaining({ name: 'failed', reason: 'vetoed', id: saved[0]!.id }),
    expect.objectContaining({ name: 'replayed', status: 200, id: saved[1]!.id }),
  ])
  const { runs, arrivals } = await state()
  expect(arrivals.map((a) => a.path)).toEqual(['/api/hook/refresh'])
  expect(runs).toHaveLength(1)
  expect(runs[0]!.headers).toMatchObject({ 'x-csrf-token': 'fresh-csrf', 'idempotency-key': saved[1]!.id })
  expect(await rawActions(page)).toEqual([])
})

test("a final 4xx at replay (the route's 422) removes the action and is reported with replayed; the queue goes on", async ({ page, state }) => {
  await openApp(page)
  await page.evaluate(async () => {
    const w = window as unknown as Win
    w.t = w.makeBackward()
    const bodies: Promise<unknown>[] = []
    w.replayedBodies = bodies
    w.t.bw.on('replayed', ({ response }) => void bodies.push(response.json()))
    await w.t.bw.fetch('/api/invalid?status=422', { method: 'POST', body: 'bad' })
    await w.t.bw.fetch('/api/after', { method: 'POST', body: 'good' })
  })
  const saved = (await rawActions(page)).sort((a, b) => a.createdAt - b.createdAt)
  await logIn(page, 'alice')
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())

  const log = await page.evaluate(() => (window as unknown as Win).t.log)
  expect(log.filter((e) => e.name != 'queued' && e.name != 'login-required')).toEqual([
    expect.objectContaining({ name: 'replayed', status: 422, id: saved[0]!.id }),
    expect.objectContaining({ name: 'replayed', status: 200, id: saved[1]!.id }),
  ])
  // The event carries the route's own answer.
  expect(await page.evaluate(() => Promise.all((window as unknown as Win).replayedBodies as Promise<unknown>[]))).toEqual([
    { ok: false, status: 422, run: 1 },
    { ok: true, run: 2 },
  ])
  expect((await state()).runs.map((r) => [r.path, r.key])).toEqual([
    ['/api/invalid?status=422', saved[0]!.id],
    ['/api/after', saved[1]!.id],
  ])
  expect(await rawActions(page)).toEqual([])
})

test('a 409 request-in-progress at replay keeps the action queued; the next replay gets the first run’s answer, run once', async ({ page, state }) => {
  await openApp(page)
  await page.evaluate(async () => {
    const w = window as unknown as Win
    // No automatic retry during the test: the second replay is the test's.
    w.t = w.makeBackward({ retryDelay: () => 60_000 })
    await w.t.bw.fetch('/api/slow?delay=1500', { method: 'POST', body: 'slow' })
  })
  const [action] = await rawActions(page)
  await logIn(page, 'alice')
  // The same request under the action's key (another tab's replay, say) is running on the server...
  await page.evaluate((id) => {
    ;(window as unknown as Win).first = fetch('/api/slow?delay=1500', { method: 'POST', body: 'slow', headers: { 'Idempotency-Key': id } }).then((r) => r.status)
  }, action!.id)
  await expect.poll(async () => (await state()).runs.length).toBe(1)
  // ...so this replay gets the idempotency layer's 409.
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())
  const problem = (await state()).requests.filter((r) => r.key == action!.id)
  // The first is still running (no status yet); the replay was answered 409 at once.
  expect(problem.map((r) => r.status)).toEqual([0, 409])
  const kept = await rawActions(page)
  expect(kept.map((a) => [a.id, a.attempts])).toEqual([[action!.id, 1]])
  expect(names(await page.evaluate(() => (window as unknown as Win).t.log))).toEqual(['queued', 'login-required'])

  expect(await page.evaluate(() => (window as unknown as Win).first)).toBe(200)
  await page.evaluate(() => (window as unknown as Win).t.bw.replay())
  const log = await page.evaluate(() => (window as unknown as Win).t.log)
  expect(log.slice(2)).toEqual([expect.objectContaining({ name: 'replayed', status: 200, id: action!.id })])
  const { runs, requests } = await state()
  expect(runs).toHaveLength(1)
  expect(requests.filter((r) => r.key == action!.id).map((r) => [r.status, r.replayed])).toEqual([
    [200, false],
    [409, false],
    [200, true],
  ])
  expect(await rawActions(page)).toEqual([])
})
