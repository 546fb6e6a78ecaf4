/**
 * fileStore's claim on its directory: the `.backward-sessions` marker, adoption of a directory from
 * before the marker, and a clearExpired that deletes nothing but parsable, expired session records.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SESSION_DIR_MARKER, fileStore } from '../../src/server/stores/file.ts'
import { freshKey } from './store-contract.ts'

const made: string[] = []
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bw-filestore-'))
  made.push(d)
  return d
}

/** A record as fileStore writes it. */
const record = (expiresAt: number, data: Record<string, unknown> = { user: 'u1' }) => JSON.stringify({ v: 1, expiresAt, data })
const past = () => Date.now() - 60_000
const future = () => Date.now() + 60_000
const anHourAgo = () => (Date.now() - 2 * 60 * 60 * 1000) / 1000

/** Everything in `d` with its content, to show that a refused or careful sweep touched nothing. */
function snapshot(d: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(d)
      .sort()
      .map((name) => {
        const path = join(d, name)
        const info = lstatSync(path)
        return [name, info.isSymbolicLink() ? `-> ${readlinkSync(path)}` : info.isDirectory() ? '<dir>' : readFileSync(path, 'utf8')]
      }),
  )
}

/** The files a user keeps in a directory mistaken for the session one. */
async function userFiles(d: string): Promise<void> {
  writeFileSync(join(d, 'notes.txt'), 'my notes')
  writeFileSync(join(d, 'package.json'), JSON.stringify({ name: 'app', expiresAt: 0 }))
  writeFileSync(join(d, `${await freshKey()}.json`), 'garbage, not JSON')
  writeFileSync(join(d, `${await freshKey()}.json`), JSON.stringify({ v: 1, expiresAt: 0, data: {}, owner: 'not backward' }))
  writeFileSync(join(d, '.tmp-backup'), 'a user file that only starts like a temp file')
  utimesSync(join(d, '.tmp-backup'), anHourAgo(), anHourAgo())
}

describe('fileStore directory marker', () => {
  it('marks the directory it creates, with a version line', () => {
    const d = join(tempDir(), 'sessions')
    fileStore({ dir: d })
    expect(readdirSync(d)).toEqual([SESSION_DIR_MARKER])
    expect(readFileSync(join(d, SESSION_DIR_MARKER), 'utf8').split('\n')[0]).toBe('backward-sessions 1')
  })

  it('marks an empty existing directory, and a second start keeps the marker as it is', () => {
    const d = tempDir()
    fileStore({ dir: d })
    const marker = readFileSync(join(d, SESSION_DIR_MARKER), 'utf8')
    fileStore({ dir: d })
    expect(snapshot(d)).toEqual({ [SESSION_DIR_MARKER]: marker })
  })

  it('adopts a store directory from before the marker when every file in it is a session record', async () => {
    const d = tempDir()
    const [dead, live] = [await freshKey(), await freshKey()]
    writeFileSync(join(d, `${dead}.json`), record(past()))
    writeFileSync(join(d, `${live}.json`), record(future(), { user: 'u2' }))
    writeFileSync(join(d, '.tmp-0123456789abcdef01234567'), '{"v":1,"exp') // a write cut short by a crash
    const store = fileStore({ dir: d })
    expect(existsSync(join(d, SESSION_DIR_MARKER))).toBe(true)
    expect(await store.load(live)).toEqual({ user: 'u2' })
    expect(await store.clearExpired!()).toBe(1)
    expect(existsSync(join(d, `${dead}.json`))).toBe(false)
  })

  it('refuses at start-up an unmarked directory that holds anything else, and writes nothing into it', async () => {
    const d = tempDir()
    await userFiles(d)
    const before = snapshot(d)
    expect(() => fileStore({ dir: d })).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/^\[backward\] fileStore: .*no \.backward-sessions marker.*not a session record.*new or empty directory/) }))
    expect(snapshot(d)).toEqual(before)
  })

  it('refuses a pre-marker directory with one corrupt session-named file, and deletes nothing', async () => {
    const d = tempDir()
    writeFileSync(join(d, `${await freshKey()}.json`), record(past()))
    writeFileSync(join(d, `${await freshKey()}.json`), '')
    const before = snapshot(d)
    expect(() => fileStore({ dir: d })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
    expect(snapshot(d)).toEqual(before)
  })

  it('refuses a marker of another version', () => {
    const d = tempDir()
    writeFileSync(join(d, SESSION_DIR_MARKER), 'backward-sessions 2\n')
    expect(() => fileStore({ dir: d })).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/backward-sessions 1/) }))
  })

  it('clearExpired refuses, deleting nothing, once the marker is gone', async () => {
    const d = tempDir()
    const store = fileStore({ dir: d })
    const key = await freshKey()
    await store.create(key, { user: 'u1' }, Date.now() + 5)
    await new Promise((r) => setTimeout(r, 20))
    unlinkSync(join(d, SESSION_DIR_MARKER))
    await expect(store.clearExpired!()).rejects.toMatchObject({ code: 'CONFIG', message: expect.stringMatching(/no \.backward-sessions marker, so clearExpired deletes nothing/) })
    expect(existsSync(join(d, `${key}.json`))).toBe(true)
  })

  describe('security', () => {
    it('clearExpired in a marked directory deletes only parsable, expired session records and stale temp files', async () => {
      const d = tempDir()
      const store = fileStore({ dir: d })
      await userFiles(d)
      const dead = await freshKey()
      await store.create(dead, { user: 'u1' }, Date.now() + 5)
      const staleTemp = join(d, '.tmp-0123456789abcdef01234567')
      writeFileSync(staleTemp, '{"v":1,"exp')
      utimesSync(staleTemp, anHourAgo(), anHourAgo())
      // Session-shaped names whose content is not a record of this format.
      const notRecords = [JSON.stringify({ v: 2, expiresAt: 0, data: {} }), JSON.stringify({ v: 1, expiresAt: 0 }), JSON.stringify({ v: 1, expiresAt: 0, data: [] }), '[1,2]', 'null']
      for (const text of notRecords) writeFileSync(join(d, `${await freshKey()}.json`), text)
      mkdirSync(join(d, `${await freshKey()}.json`)) // a directory with a record's name
      await new Promise((r) => setTimeout(r, 20))
      const kept = snapshot(d)
      expect(await store.clearExpired!()).toBe(1)
      delete kept[`${dead}.json`]
      delete kept['.tmp-0123456789abcdef01234567']
      expect(snapshot(d)).toEqual(kept)
    })

    it('never follows or removes a symlink, even one named like an expired session', async () => {
      const outside = tempDir()
      const d = tempDir()
      const store = fileStore({ dir: d })
      const key = await freshKey()
      const target = join(outside, 'victim.json')
      writeFileSync(target, record(past()))
      symlinkSync(target, join(d, `${key}.json`))
      expect(await store.clearExpired!()).toBe(0)
      expect(existsSync(target)).toBe(true)
      expect(lstatSync(join(d, `${key}.json`)).isSymbolicLink()).toBe(true)
      // Nor is a live record behind a symlink loaded: a planted link cannot become a session.
      writeFileSync(target, record(future()))
      expect(await store.load(key)).toBeNull()
    })

    it.skipIf(process.platform === 'win32')('a FIFO named like a session hangs neither clearExpired nor load, and is left alone', async () => {
      const d = tempDir()
      const store = fileStore({ dir: d })
      const key = await freshKey()
      execFileSync('mkfifo', [join(d, `${key}.json`)])
      expect(await store.clearExpired!()).toBe(0)
      expect(await store.load(key)).toBeNull()
      expect(lstatSync(join(d, `${key}.json`)).isFIFO()).toBe(true)
    })

    it('refuses a marker that is a symlink', () => {
      const other = tempDir()
      fileStore({ dir: other })
      const d = tempDir()
      symlinkSync(join(other, SESSION_DIR_MARKER), join(d, SESSION_DIR_MARKER))
      expect(() => fileStore({ dir: d })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
    })

    it('an unmarked directory with a symlink in it is not adopted', async () => {
      const outside = tempDir()
      writeFileSync(join(outside, 'x.json'), record(past()))
      const d = tempDir()
      symlinkSync(join(outside, 'x.json'), join(d, `${await freshKey()}.json`))
      expect(() => fileStore({ dir: d })).toThrow(expect.objectContaining({ code: 'CONFIG' }))
      expect(existsSync(join(d, SESSION_DIR_MARKER))).toBe(false)
    })
  })
})
