import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { runCli } from '../../src/server/cli.ts'
import { fileStore } from '../../src/server/stores/file.ts'
import { postgresStore } from '../../src/server/stores/postgres.ts'
import { postgresSchema } from '../helpers/pg.ts'
import { POSTGRES_URL, REDIS_URL, postgresService, redisService, titled } from '../helpers/services.ts'
import { freshKey } from './store-contract.ts'

const BIN = join(import.meta.dirname, '../../bin/backward.mjs')
const later = () => Date.now() + 60_000

/** Runs the real `backward` command in a child process. */
function backward(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

/** runCli in-process, capturing its output. */
async function run(...args: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runCli(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) })
  return { code, stdout: out.join('\n'), stderr: err.join('\n') }
}

describe('backward clear-expired file:<dir>', () => {
  let dir = ''
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bw-cli-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('prints the count of removed sessions', async () => {
    const store = fileStore({ dir })
    for (let i = 0; i < 3; i++) await store.create(await freshKey(), { dead: i }, Date.now() + 10)
    const live = await freshKey()
    await store.create(live, { live: true }, later())
    await new Promise((r) => setTimeout(r, 30))
    const result = await backward('clear-expired', `file:${dir}`)
    expect(result).toMatchObject({ code: 0, stdout: 'Removed 3 expired sessions.\n', stderr: '' })
    expect(await store.load(live)).toEqual({ live: true })
    expect((await run('clear-expired', pathToFileURL(dir).href)).stdout).toBe('Removed 0 expired sessions.')
  })

  it('refuses a directory that does not exist instead of creating it', async () => {
    const result = await run('clear-expired', `file:${join(dir, 'missing')}`)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/^\[backward\] .*existing session directory/)
  })

  describe('security: a wrongly named directory', () => {
    const scratch: string[] = []
    afterAll(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })))
    const fresh = () => (scratch.push(mkdtempSync(join(tmpdir(), 'bw-cli-'))), scratch.at(-1)!)
    const contents = (d: string) => Object.fromEntries(readdirSync(d).sort().map((name) => [name, readFileSync(join(d, name), 'utf8')]))
    const anHourAgo = (Date.now() - 2 * 60 * 60 * 1000) / 1000
    /** A user's own files, three of which the old sweep deleted: a 64-hex name with garbage, and a stale `.tmp-` file. */
    async function userFiles(d: string) {
      writeFileSync(join(d, 'notes.txt'), 'my notes')
      writeFileSync(join(d, 'config.json'), JSON.stringify({ v: 1, expiresAt: 0, data: {}, mine: true }))
      writeFileSync(join(d, `${await freshKey()}.json`), 'garbage that is not JSON')
      writeFileSync(join(d, `${await freshKey()}.json`), JSON.stringify({ v: 1, expiresAt: 0, data: {}, mine: true }))
      writeFileSync(join(d, '.tmp-old-draft'), 'a draft')
      utimesSync(join(d, '.tmp-old-draft'), anHourAgo, anHourAgo)
    }

    it('refuses an unmarked directory with files that are not sessions (exit 2), and deletes and writes nothing', async () => {
      const d = fresh()
      await userFiles(d)
      const before = contents(d)
      const result = await backward('clear-expired', `file:${d}`)
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/^\[backward\] fileStore: .*no \.backward-sessions marker.*not a session record/)
      expect(contents(d)).toEqual(before)
    })

    it('refuses an empty unmarked directory without marking it', async () => {
      const d = fresh()
      const result = await run('clear-expired', `file:${d}`)
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/^\[backward\] .*is empty and has no \.backward-sessions marker.*Check the path/)
      expect(readdirSync(d)).toEqual([])
    })

    it('in a marked session directory, removes only the expired session records', async () => {
      const d = fresh()
      const store = fileStore({ dir: d })
      await userFiles(d)
      const dead = await freshKey()
      await store.create(dead, { dead: true }, Date.now() + 5)
      await new Promise((r) => setTimeout(r, 20))
      const before = contents(d)
      expect(await backward('clear-expired', `file:${d}`)).toMatchObject({ code: 0, stdout: 'Removed 1 expired sessions.\n' })
      delete before[`${dead}.json`]
      expect(contents(d)).toEqual(before)
    })

    it('adopts a session directory from before the marker when it holds only session records', async () => {
      const d = fresh()
      const [dead, live] = [await freshKey(), await freshKey()]
      writeFileSync(join(d, `${dead}.json`), JSON.stringify({ v: 1, expiresAt: Date.now() - 1000, data: {} }))
      writeFileSync(join(d, `${live}.json`), JSON.stringify({ v: 1, expiresAt: later(), data: { live: true } }))
      expect(await run('clear-expired', `file:${d}`)).toMatchObject({ code: 0, stdout: 'Removed 1 expired sessions.' })
      expect(existsSync(join(d, '.backward-sessions'))).toBe(true)
      expect(await fileStore({ dir: d }).load(live)).toEqual({ live: true })
    })
  })
})

describe('backward usage errors', () => {
  it.each([
    [['clear-expired', 'mysql://localhost/db'], /Unsupported store URL scheme "mysql:"/],
    [['clear-expired', 'not a url'], /could not be parsed/],
    [['clear-expired'], /exactly one store URL/],
    [['clear-expired', 'file:x', 'extra'], /exactly one store URL/],
    [['drop-everything'], /Unknown command/],
  ])('%j exits 2 with a clear message', async (args, message) => {
    const result = await run(...args)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(message)
    expect(result.stderr).toMatch(/^\[backward\]/)
  })

  it('prints usage on --help', async () => {
    expect(await run('--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('Usage: backward clear-expired <url>') })
  })

  it('exits 1 on an unreachable server, without printing the password', async () => {
    const redis = await backward('clear-expired', 'redis://:hunter2@127.0.0.1:1')
    expect(redis.code).toBe(1)
    expect(redis.stderr).toBe('[backward] Could not reach Redis. (ECONNREFUSED)\n')
    const postgres = await run('clear-expired', 'postgres://postgres:hunter2@127.0.0.1:1/test')
    expect(postgres.code).toBe(1)
    expect(postgres.stderr).toMatch(/^\[backward\] postgresStore: PostgreSQL did not answer.*\(ECONNREFUSED\)$/)
    expect(redis.stderr + postgres.stderr).not.toContain('hunter2')
  })

  it('rejects a hostile table name in the URL', async () => {
    const result = await run('clear-expired', 'postgres://postgres@127.0.0.1:1/test?table=x;DROP%20TABLE%20y')
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/table must be/)
  })
})

describe('backward clear-expired redis:// with only node-redis v4 installed', () => {
  // No vi.resetModules(): the CLI imports its clients dynamically, and each such import consults the
  // mocks; a reset would give later tests a second copy of errors.ts (and of BackwardError).
  afterEach(() => {
    vi.doUnmock('ioredis')
    vi.doUnmock('redis')
  })

  it('exits 2 with the upgrade message, and never opens a connection it would leave open', async () => {
    const client = { connect: vi.fn(async () => {}), quit: vi.fn(async () => {}), on: vi.fn(), listenerCount: () => 1, get: vi.fn(), set: vi.fn(), pExpire: vi.fn(), del: vi.fn() }
    vi.doMock('ioredis', () => {
      throw new Error('Cannot find package ioredis')
    })
    // createClient() of redis@4: the command methods of v5, but no withTypeMapping.
    vi.doMock('redis', () => ({ createClient: () => client }))
    const err: string[] = []
    const code = await runCli(['clear-expired', 'redis://127.0.0.1:6379'], { stdout: () => {}, stderr: (l) => err.push(l) })
    expect(code).toBe(2)
    expect(err.join('\n')).toMatch(/^\[backward\] redisStore: this node-redis client looks like v4.*node-redis 5 or later/)
    // A connected client that is never closed keeps the cron job's process alive.
    expect(client.connect.mock.calls.length).toBe(client.quit.mock.calls.length)
    expect(client.connect).not.toHaveBeenCalled()
  })
})

const redis = await redisService()
describe.skipIf(!redis.ok)(titled('backward clear-expired redis://', redis), () => {
  it('prints 0: Redis expires sessions itself', async () => {
    const result = await backward('clear-expired', REDIS_URL)
    expect(result).toMatchObject({ code: 0, stdout: 'Removed 0 expired sessions. (Redis expires sessions by itself.)\n', stderr: '' })
  })
})

const postgres = await postgresService()
describe.skipIf(!postgres.ok)(titled('backward clear-expired postgres://', postgres), () => {
  const sandbox = postgresSchema(2)
  const { schema } = sandbox

  it('prints the count of removed sessions, for postgres:// and postgresql://', async () => {
    const store = postgresStore({ pool: sandbox.pool, table: `${schema}.sessions` })
    await store.migrate()
    await sandbox.pool.query(`INSERT INTO ${schema}.sessions SELECT encode(sha256(('x' || g)::bytea), 'hex'), '{}', now() - interval '1 day' FROM generate_series(1, 2500) AS g`)
    const live = await freshKey()
    await store.create(live, { live: true }, later())
    const url = new URL(POSTGRES_URL)
    url.searchParams.set('table', `${schema}.sessions`)
    const result = await backward('clear-expired', url.href)
    expect(result).toMatchObject({ code: 0, stdout: 'Removed 2500 expired sessions.\n', stderr: '' })
    expect(await store.load(live)).toEqual({ live: true })
    url.protocol = 'postgresql:'
    expect((await run('clear-expired', url.href)).stdout).toBe('Removed 0 expired sessions.')
  })

  it('says to migrate when the table is missing', async () => {
    const url = new URL(POSTGRES_URL)
    url.searchParams.set('table', `${schema}.never_created`)
    const result = await run('clear-expired', url.href)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/SQLSTATE 42P01.*migrate\(\)/)
  })
})
