import { closeSync, constants, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync, writeFileSync, type Dirent } from 'node:fs'
import { link, lstat, open, readdir, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { BackwardError } from '../../shared/errors.ts'
import { assertStoreKey, decodeData, encodeData, type SessionData, type SessionStore } from '../store.ts'

/** Options for {@link fileStore}. */
export interface FileStoreOptions {
  /**
   * Directory for session files, used by nothing else. Created (mode 0700) and marked with a
   * `.backward-sessions` file at start-up if missing.
   */
  dir: string
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/**
 * The file that makes a directory fileStore's. `clearExpired` (and `backward clear-expired file:<dir>`)
 * deletes nothing in a directory without it, so a mistyped path never costs anyone their files.
 * @example
 * existsSync(join(dir, SESSION_DIR_MARKER)) // true once fileStore({ dir }) has run
 */
export const SESSION_DIR_MARKER = '.backward-sessions'
/** The marker's first line; a later layout of the directory gets a new number. */
const MARKER_HEAD = 'backward-sessions 1'
const MARKER_TEXT = `${MARKER_HEAD}\nThis directory holds the sessions of backward's fileStore. clear-expired deletes expired session files only where this file is.\n`

const FORMAT_VERSION = 1
const RECORD_FILE = /^[0-9a-f]{64}\.json$/
const TEMP_PREFIX = '.tmp-'
const TEMP_FILE = /^\.tmp-[0-9a-f]{24}$/
/** A temp file older than this was left by a crashed write; `clearExpired` removes it. */
const STALE_TEMP_MS = 60 * 60 * 1000
/**
 * Opens a path itself, never what a symlink there points to (ELOOP instead), and without waiting on a
 * FIFO planted under a record's name (then fstat says it is no file). Windows has neither flag.
 */
const READ_NOFOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0)

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

/** A session record exactly as `writeTemp` writes it, or null: only such a file is ever deleted as expired. */
function parseRecord(text: string): FileRecord | null {
  const parsed = decodeData(text)
  if (parsed === null || Object.keys(parsed).length !== 3 || parsed.v !== FORMAT_VERSION) return null
  const { expiresAt, data } = parsed
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) return null
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null
  return parsed as unknown as FileRecord
}

/** Reads a regular file without following a symlink; null for anything else or a failed read. */
function readRegularSync(path: string): string | null {
  let fd: number
  try {
    fd = openSync(path, READ_NOFOLLOW)
  } catch {
    return null
  }
  try {
    return fstatSync(fd).isFile() ? readFileSync(fd, 'utf8') : null
  } catch {
    return null
  } finally {
    closeSync(fd)
  }
}

/** A file fileStore may have written: a parsable record under its key's name, or one of its temp files. */
function isStoreFileSync(dir: string, entry: Dirent): boolean {
  if (!entry.isFile()) return false
  if (TEMP_FILE.test(entry.name)) return true
  if (!RECORD_FILE.test(entry.name)) return false
  const text = readRegularSync(join(dir, entry.name))
  return text !== null && parseRecord(text) !== null
}

/** Whether `dir` carries the marker. Throws CONFIG on a marker that is a symlink, a directory or another version's. */
function isMarked(dir: string): boolean {
  const path = join(dir, SESSION_DIR_MARKER)
  try {
    lstatSync(path)
  } catch (error) {
    if (isMissing(error)) return false
    throw unavailable(error)
  }
  const text = readRegularSync(path)
  if (text === null || text.split('\n', 1)[0] !== MARKER_HEAD) {
    throw new BackwardError('CONFIG', `[backward] fileStore: ${path} is not a marker this version of backward wrote (expected a regular file that starts with "${MARKER_HEAD}"). Check that { dir } is the right directory.`)
  }
  return true
}

/**
 * Makes sure `dir` is fileStore's, at start-up. A marked directory is. An unmarked one (new, or from
 * a version before the marker) is adopted, and marked, only when every entry in it is a file
 * fileStore could have written; a directory that holds anything else was named by mistake.
 */
function claimDir(dir: string): void {
  if (isMarked(dir)) return
  let entries: Dirent[]
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch (cause) {
    throw new BackwardError('CONFIG', `[backward] fileStore: cannot read the session directory ${dir}. Check its permissions.`, { cause })
  }
  const foreign = entries.find((entry) => !isStoreFileSync(dir, entry))
  if (foreign !== undefined) {
    throw new BackwardError(
      'CONFIG',
      `[backward] fileStore: ${dir} has no ${SESSION_DIR_MARKER} marker and holds ${JSON.stringify(foreign.name)}, which is not a session record, so it is not a session directory. Point { dir } at a new or empty directory that holds nothing else.`,
    )
  }
  // Written whole under a temp name, then linked: a process starting alongside never reads half a
  // marker, and link() never replaces one another process has just written.
  const temp = join(dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}`)
  try {
    writeFileSync(temp, MARKER_TEXT, { mode: 0o600, flag: 'wx' })
    try {
      linkSync(temp, join(dir, SESSION_DIR_MARKER))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
  } catch (cause) {
    throw new BackwardError('CONFIG', `[backward] fileStore: cannot write the ${SESSION_DIR_MARKER} marker in ${dir}. Check its permissions.`, { cause })
  } finally {
    try {
      unlinkSync(temp)
    } catch {}
  }
  if (!isMarked(dir)) throw new BackwardError('CONFIG', `[backward] fileStore: the ${SESSION_DIR_MARKER} marker in ${dir} vanished while it was written.`)
}

/**
 * The embedded default store: one JSON file per session, no server to run. Persistent across restarts.
 * Writes are atomic (a temp file, then a rename), and file names are store keys (64 hex characters),
 * so no input can reach a path outside `dir`. Writes to one key are queued within the process, so a
 * logout is never undone by a concurrent update; give each process its own `dir` (or use Redis or
 * PostgreSQL for several processes or machines). The directory is marked with a `.backward-sessions`
 * file, and `clearExpired` deletes only parsable, expired session records in a marked directory.
 * Node, Bun and Deno only (it reads and writes files), so it has its own entry, `backward/server/file`.
 * @example
 * import { fileStore } from 'backward/server/file'
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
  claimDir(dir)

  const pathOf = (key: string) => join(dir, `${key}.json`)

  /** The key's record, or null when it is missing, corrupt or not a regular file (a symlink is never followed). */
  async function read(key: string): Promise<FileRecord | null> {
    let handle: FileHandle
    try {
      handle = await open(pathOf(key), READ_NOFOLLOW)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException | null)?.code
      // ELOOP (EMLINK on FreeBSD): the name is a symlink, which nothing fileStore writes.
      if (code === 'ENOENT' || code === 'ELOOP' || code === 'EMLINK') return null
      throw unavailable(error)
    }
    try {
      return (await handle.stat()).isFile() ? parseRecord(await handle.readFile('utf8')) : null
    } catch (error) {
      throw unavailable(error)
    } finally {
      await handle.close().catch(() => {})
    }
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
      // Checked on every sweep, not only at start-up: the directory may have been swapped since.
      if (!isMarked(dir)) {
        throw new BackwardError(
          'CONFIG',
          `[backward] fileStore: ${dir} has no ${SESSION_DIR_MARKER} marker, so clearExpired deletes nothing there. Check the path; fileStore({ dir }) marks its directory when it starts.`,
        )
      }
      let names: string[]
      try {
        names = await readdir(dir)
      } catch (error) {
        throw unavailable(error)
      }
      const t = now()
      let removed = 0
      for (const name of names) {
        // Only names fileStore writes, and only regular files: a symlink is neither followed nor removed.
        if (TEMP_FILE.test(name)) {
          const info = await lstat(join(dir, name)).catch(() => null)
          if (info?.isFile() === true && t - info.mtimeMs > STALE_TEMP_MS) await unlink(join(dir, name)).catch(() => {})
          continue
        }
        if (!RECORD_FILE.test(name)) continue
        const key = name.slice(0, 64)
        // Read again in the key's queue, so a record that a create has just replaced is not removed.
        const gone = await exclusive(key, async () => {
          const record = await read(key).catch(() => null)
          // A file that is not a record (corrupt, foreign, a newer format) is not ours to delete: it is left alone.
          return record !== null && record.expiresAt <= t ? remove(key) : false
        })
        if (gone) removed++
      }
      return removed
    },
  }
}
