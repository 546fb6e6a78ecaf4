/**
 * The two crypto paths give the same results. Node, Bun and Deno use `node:crypto` (synchronous);
 * workerd without `nodejs_compat` and edge-runtime have only WebCrypto. Store keys (hashKey), user tags
 * (HMAC), idempotency fingerprints and sealed cookies must not change with the runtime, or a fleet
 * that mixes runtimes (or moves from one to another) would lose every session.
 */
import { execFileSync } from 'node:child_process'
import * as node from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { Hono } from 'hono'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { hashKey } from '../../src/server/ids.ts'
import { hmac } from '../../src/server/hmac.ts'
import { nodeCrypto, setCryptoPath } from '../../src/server/node-crypto.ts'
import { idempotency } from '../../src/server/idempotency.ts'
import { login, userTag } from '../../src/server/auth.ts'
import { session, type BackwardEnv } from '../../src/server/session.ts'
import { cookieStore } from '../../src/server/stores/cookie.ts'
import { memoryStore } from '../../src/server/stores/memory.ts'
import { describeSessionContract } from './session-contract.ts'
import { createJar } from '../helpers/jar.ts'

const SECRET = 'a-test-secret-that-is-at-least-32-characters-long'
const IDS = ['q3v0aR8-_yZ1xN4mB7cD2eF5gH6iJ9kL0oP3sT6uW8', '', 'ünï ✓ 🍪', 'x'.repeat(10_000)]
const NAMESPACES = ['session', 'replay', 'login-proof', 'idempotency']
const TAGS: [string, string, number][] = [
  [SECRET, 'backward-user:42', 22],
  [SECRET, 'backward-user:"ada"', 22],
  ['another-secret-of-32-characters-or-more', 'ünï ✓', 43],
  [SECRET, '', 10],
]

/** Runs `fn` with node:crypto hidden, then restores the runtime's own choice. */
async function onWebCrypto<T>(fn: () => Promise<T>): Promise<T> {
  setCryptoPath('web')
  try {
    return await fn()
  } finally {
    setCryptoPath('auto')
  }
}

const digests = () => Promise.all(NAMESPACES.flatMap((ns) => IDS.map((id) => hashKey(id, ns))))
const tags = () => Promise.all(TAGS.map(([secret, input, length]) => hmac(secret, input, length)))

describe('crypto paths: node:crypto and WebCrypto agree', () => {
  afterEach(() => setCryptoPath('auto'))

  it('setCryptoPath hides node:crypto and gives it back', () => {
    expect(nodeCrypto()).toBeDefined()
    setCryptoPath('web')
    expect(nodeCrypto()).toBeUndefined()
    setCryptoPath('auto')
    expect(nodeCrypto()).toBeDefined()
  })

  it('hashKey: the same digest on both paths, and it is SHA-256 of namespace:id in hex', async () => {
    const onNode = await digests()
    const onWeb = await onWebCrypto(digests)
    expect(onWeb).toEqual(onNode)
    const reference = NAMESPACES.flatMap((ns) => IDS.map((id) => node.createHash('sha256').update(`${ns}:${id}`).digest('hex')))
    expect(onNode).toEqual(reference)
  })

  it('hmac: the same tag on both paths, and it is HMAC-SHA-256 in base64url, cut to length', async () => {
    const onNode = await tags()
    const onWeb = await onWebCrypto(tags)
    expect(onWeb).toEqual(onNode)
    expect(onNode).toEqual(TAGS.map(([secret, input, length]) => node.createHmac('sha256', secret).update(input).digest('base64url').slice(0, length)))
  })

  it('userTag: the tag the browser sees does not change with the path', async () => {
    const app = new Hono<BackwardEnv>()
    app.use(session({ store: memoryStore(), secret: SECRET }))
    app.get('/tag', async (c) => c.text(await userTag(c, 42)))
    const onNode = await (await app.request('/tag')).text()
    const onWeb = await onWebCrypto(async () => (await app.request('/tag')).text())
    expect(onWeb).toBe(onNode)
    expect(onNode).toHaveLength(22)
  })

  it.each([
    ['node', 'web'],
    ['web', 'node'],
  ] as const)('cookieStore: a cookie sealed on the %s path opens on the %s path', async (from, to) => {
    const make = () => cookieStore({ secrets: [SECRET] })
    const sealer = from === 'web' ? await onWebCrypto(async () => make()) : make()
    const opener = to === 'web' ? await onWebCrypto(async () => make()) : make()
    const data = { user: 'ünï ✓', n: 42, nested: { a: [1, 2] } }
    const sealed = await sealer.seal(data, Date.now() + 60_000)
    expect(await opener.unseal(sealed)).toEqual(data)
  })

  it('a session logged in on one path is the same session on the other (cookieStore and memoryStore)', async () => {
    for (const makeStore of [() => cookieStore({ secrets: [SECRET] }), memoryStore]) {
      const store = makeStore()
      const app = new Hono<BackwardEnv>()
      app.use(session({ store, secret: SECRET }))
      app.post('/login', async (c) => c.text(await login(c, 7)))
      app.get('/me', (c) => c.json({ user: c.var.session.get('_auth_user_id') ?? null }))
      const jar = createJar()
      const go = async (path: string, init: RequestInit = {}) => {
        const res = await app.request(`http://localhost${path}`, { ...init, headers: { Cookie: jar.header() } })
        jar.store(res)
        return res
      }
      await go('/login', { method: 'POST' })
      expect(await (await onWebCrypto(() => go('/me'))).json()).toEqual({ user: 7 })
      expect(await (await go('/me')).json()).toEqual({ user: 7 })
    }
  })

  it('idempotency: a request fingerprinted on one path is the same request on the other (urlencoded and multipart)', async () => {
    let runs = 0
    const app = new Hono()
    app.use(idempotency({ store: memoryStore(), scope: () => 'ada' }))
    app.post('/pay', async (c) => c.json({ run: ++runs }))
    const form = () => {
      const body = new FormData()
      body.append('amount', '10')
      body.append('receipt', new File([new Uint8Array([1, 2, 3])], 'r.bin', { type: 'application/octet-stream' }))
      return body
    }
    const post = async (key: string, body: BodyInit) => app.request('http://localhost/pay', { method: 'POST', headers: { 'Idempotency-Key': key, ...(typeof body === 'string' ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) }, body })
    expect(await (await post('k1', 'amount=10')).json()).toEqual({ run: 1 })
    expect(await (await onWebCrypto(() => post('k1', 'amount=10'))).json()).toEqual({ run: 1 })
    expect((await onWebCrypto(() => post('k1', 'amount=11'))).status).toBe(422)
    expect(await (await onWebCrypto(() => post('k2', form()))).json()).toEqual({ run: 2 })
    expect(await (await post('k2', form())).json()).toEqual({ run: 2 })
    expect(runs).toBe(2)
  })
})

describe('the session engine with node:crypto hidden', () => {
  beforeAll(() => setCryptoPath('web'))
  afterAll(() => setCryptoPath('auto'))
  it('runs on WebCrypto', () => expect(nodeCrypto()).toBeUndefined())
  describeSessionContract('memoryStore on WebCrypto', () => memoryStore())
  describeSessionContract('cookieStore on WebCrypto', () => cookieStore({ secrets: [SECRET] }), { revocable: false })
})

describe('a runtime without process.getBuiltinModule (workerd, edge-runtime)', () => {
  it('falls back to WebCrypto by itself, with the same digests, tags and cookies as Node', async () => {
    const src = (file: string) => pathToFileURL(`src/server/${file}`).href
    const sealedHere = await cookieStore({ secrets: [SECRET] }).seal({ from: 'node' }, Date.now() + 60_000)
    const child = `
      delete process.getBuiltinModule
      const { hashKey } = await import(${JSON.stringify(src('ids.ts'))})
      const { hmac } = await import(${JSON.stringify(src('hmac.ts'))})
      const { nodeCrypto } = await import(${JSON.stringify(src('node-crypto.ts'))})
      const { cookieStore } = await import(${JSON.stringify(src('stores/cookie.ts'))})
      const input = JSON.parse(process.env.BW_INPUT)
      const store = cookieStore({ secrets: [input.secret] })
      const digests = await Promise.all(input.namespaces.flatMap((ns) => input.ids.map((id) => hashKey(id, ns))))
      const tags = await Promise.all(input.tags.map(([secret, text, length]) => hmac(secret, text, length)))
      const opened = await store.unseal(input.sealed)
      const sealed = await store.seal({ from: 'web' }, Date.now() + 60_000)
      process.stdout.write(JSON.stringify({ node: nodeCrypto() !== undefined, digests, tags, opened, sealed }))
    `
    const input = { secret: SECRET, ids: IDS, namespaces: NAMESPACES, tags: TAGS, sealed: sealedHere }
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { env: { ...process.env, BW_INPUT: JSON.stringify(input) }, encoding: 'utf8', timeout: 15_000 })
    const report = JSON.parse(out) as { node: boolean; digests: string[]; tags: string[]; opened: unknown; sealed: string }
    expect(report.node).toBe(false)
    expect(report.digests).toEqual(await digests())
    expect(report.tags).toEqual(await tags())
    expect(report.opened).toEqual({ from: 'node' })
    expect(await cookieStore({ secrets: [SECRET] }).unseal(report.sealed)).toEqual({ from: 'web' })
  })
})
