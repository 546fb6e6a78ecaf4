import { mkdirSync } from 'node:fs'
import { link, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { BackwardError } from '../../shared/errors.ts'
import { assertStoreKey, decodeData, encodeData, type SessionData, type SessionStore } from '../store.ts'

/** Options for {@link fileStore}. */
export interface FileStoreOptions {
  /** Directory for session files. Created (mode 0700) at start-up if missing. */
  dir: string
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

const FORMAT_VERSION = 1
const RECORD_FILE = /^[0-9a-f]{64}\.json$/
const TEMP_PREFIX = '.tmp-'
/** A temp file older than this was left by a crashed write; `clearExpired` removes it. */
const STALE_TEMP_MS = 60 * 60 * 1000

interface FileRecord {
  v: number
  expiresAt: number
  data: SessionData
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ENOENT'
}

function unavailable(cause: unknown): BackwardError {
  return new BackwardError('STORE_UNAVAILABLE', '[backward] fileStore: the session directory could not be read or written. Check its permissions and free space.', { cause })
}

/**
 * The embedded default store: one JSON file per session, no server to run. Persistent across restarts.
 * Writes are atomic (a temp file, then a rename), and file names are store keys (64 hex characters),
 * so no input can reach a path outside `dir`. Writes to one key are queued within the process, so a
 * logout is never undone by a concurrent update; give each process its own `dir` (or use Redis or
 * PostgreSQL for several processes or machines).
 * @example
 * app.use(session({ store: fileStore({ dir: '.sessions' }) }))
 */
export function fileStore(options: FileStoreOptions): SessionStore {
  if (typeof options?.dir !== 'string' || options.dir.length === 0) {
    throw new BackwardError('CONFIG', '[backward] fileStore: pass { dir } with the directory for session files.')
  }
  const dir = resolve(options.dir)
  const now = options.now ?? Date.now
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (cause) {
    throw new BackwardError('CONFIG', `[backward] fileStore: cannot create the session directory ${dir}.`, { cause })
  }

  const pathOf = (key: string) => join(dir, `${key}.json`)

  async function read(key: string): Promise<FileRecord | null> {
    let text: string
    try {
      text = await readFile(pathOf(key), 'utf8')
    } catch (error) {
      if (isMissing(error)) return null
      throw unavailable(error)
    }
    const parsed = decodeData(text) as Partial<FileRecord> | null
    if (parsed?.v !== FORMAT_VERSION || typeof parsed.expiresAt !== 'number') return null
    const data = parsed.data
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return null
    return parsed as FileRecord
  }

  async function readLive(key: string): Promise<FileRecord | null> {
    const record = await read(key)
    return record !== null && record.expiresAt > now() ? record : null
  }

  /** Writes a complete temp file next to the target and returns its path. */
  async function writeTemp(data: SessionData, expiresAt: number): Promise<string> {
    const record: FileRecord = { v: FORMAT_VERSION, expiresAt, data }
    const temp = join(dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}`)
    try {
      await writeFile(temp, encodeData(record as unknown as SessionData), { mode: 0o600, flag: 'wx' })
    } catch (error) {
      await unlink(temp).catch(() => {})
      if (error instanceof BackwardError) throw error
      throw unavailable(error)
    }
    return temp
  }

  async function replace(temp: string, key: string): Promise<void> {
    try {
      await rename(temp, pathOf(key))
    } catch (error) {
      await unlink(temp).catch(() => {})
      throw unavailable(error)
    }
  }

  /**
   * Writes to one key run one at a time in this process. update and touch check that the record is
   * live and then rename a new file over it; without this, a delete (a logout) landing between the
   * check and the rename would be undone by the rename. Only one promise per busy key is kept.
   * Another process sharing `dir` is not covered: see the README's note on fileStore.
   */
  const queues = new Map<string, Promise<void>>()
  function exclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
    const run = (queues.get(key) ?? Promise.resolve()).then(work)
    const tail = run.then(
      () => {},
      () => {},
    )
    queues.set(key, tail)
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key)
    })
    return run
  }

  /** Insert-only: link() fails with EEXIST when the name is taken, so a live record is never overwritten. */
  async function insert(key: string, data: SessionData, expiresAt: number): Promise<boolean> {
    const temp = await writeTemp(data, expiresAt)
    try {
      await link(temp, pathOf(key))
      await unlink(temp).catch(() => {})
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        await unlink(temp).catch(() => {})
        throw unavailable(error)
      }
    }
    // The name is taken. An expired record may be replaced; a live one never is.
    if ((await readLive(key)) !== null) {
      await unlink(temp).catch(() => {})
      return false
    }
    await replace(temp, key)
    return true
  }

  async function remove(key: string): Promise<boolean> {
    try {
      await unlink(pathOf(key))
      return true
    } catch (error) {
      if (!isMissing(error)) throw unavailable(error)
      return false
    }
  }

  return {
    async load(key) {
      assertStoreKey(key)
      return (await readLive(key))?.data ?? null
    },

    async create(key, data, expiresAt) {
      assertStoreKey(key)
      return exclusive(key, () => insert(key, data, expiresAt))
    },

    async update(key, data, expiresAt) {
      assertStoreKey(key)
      // Same guarantee as Django's file backend: an update never recreates a deleted or expired record.
      // The check and the rename run in the key's queue, so a delete in this process cannot land between.
      return exclusive(key, async () => {
        if ((await readLive(key)) === null) return false
        await replace(await writeTemp(data, expiresAt), key)
        return true
      })
    },

    async delete(key) {
      assertStoreKey(key)
      await exclusive(key, () => remove(key))
    },

    async touch(key, expiresAt) {
      assertStoreKey(key)
      return exclusive(key, async () => {
        const record = await readLive(key)
        if (record === null) return false
        await replace(await writeTemp(record.data, expiresAt), key)
        return true
      })
    },

    async clearExpired() {
      let names: string[]
      try {
        names = await readdir(dir)
      } catch (error) {
        throw unavailable(error)
      }
      const t = now()
      let removed = 0
      for (const name of names) {
        if (name.startsWith(TEMP_PREFIX)) {
          const info = await stat(join(dir, name)).catch(() => null)
          if (info !== null && t - info.mtimeMs > STALE_TEMP_MS) await unlink(join(dir, name)).catch(() => {})
          continue
        }
        if (!RECORD_FILE.test(name)) continue
        const key = name.slice(0, 64)
        // Read again in the key's queue, so a record that a create has just replaced is not removed.
        const gone = await exclusive(key, async () => {
          const record = await read(key).catch(() => null)
          // A corrupt file is as good as expired: it can never load.
          return record === null || record.expiresAt <= t ? remove(key) : false
        })
        if (gone) removed++
      }
      return removed
    },
  }
}
