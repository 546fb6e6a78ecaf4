/**
 * `npm pack` of this checkout, as published (the prepack script builds dist/), made in a staging copy
 * under the OS temp dir so that the repo's own dist/ is never rebuilt under a running test. The
 * tarball is cached by a hash of what goes into it, and test files that ask at the same time share one
 * build (a mkdir lock), so the two cores build once.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')
/** Shared by the consumer tests: tarballs, temp projects. */
export const WORK = join(tmpdir(), 'backward-consumer')

interface PackageJson {
  name: string
  version: string
  files: string[]
  bin?: Record<string, string>
  devDependencies: Record<string, string>
  peerDependencies: Record<string, string>
}

export const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson

/** What the staging copy needs: the published files, plus what the build reads. */
function inputs(): string[] {
  const tops = [...new Set(['package.json', 'tsconfig.json', 'tsconfig.build.json', ...pkg.files.filter((f) => f !== 'dist'), ...Object.values(pkg.bin ?? {})])]
  const walk = (path: string): string[] => (statSync(join(ROOT, path)).isDirectory() ? readdirSync(join(ROOT, path)).flatMap((name) => walk(join(path, name))) : [path])
  return tops.filter((path) => existsSync(join(ROOT, path))).flatMap(walk).sort()
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

/** The path of the packed tarball (built at most once per content). */
export async function packOnce(): Promise<string> {
  const files = inputs()
  const hash = createHash('sha256')
  for (const file of files) hash.update(file + '\0').update(readFileSync(join(ROOT, file)))
  const dir = join(WORK, 'pack-' + hash.digest('hex').slice(0, 16))
  const tarball = join(dir, `${pkg.name}-${pkg.version}.tgz`)
  const lock = dir + '.lock'
  mkdirSync(WORK, { recursive: true })
  for (const started = Date.now(); !existsSync(tarball); ) {
    try {
      mkdirSync(lock)
    } catch {
      // Another test file is packing; a lock older than two minutes is left from a killed run.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true })
      if (Date.now() - started > 180_000) throw new Error('[consumer] timed out waiting for another npm pack')
      await sleep(250)
      continue
    }
    try {
      if (existsSync(tarball)) break
      const stage = join(dir, 'stage')
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(stage, { recursive: true })
      for (const file of files) cpSync(join(ROOT, file), join(stage, file))
      symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir')
      execFileSync('npm', ['pack', '--pack-destination', dir, '--no-audit', '--no-fund'], { cwd: stage, stdio: 'pipe' })
      writeFileSync(join(dir, 'files.txt'), files.join('\n'))
      // Tarballs of older checkouts, left by earlier runs, go after a day.
      for (const name of readdirSync(WORK)) {
        const old = join(WORK, name)
        if (name.startsWith('pack-') && old !== dir && Date.now() - statSync(old).mtimeMs > 86_400_000) rmSync(old, { recursive: true, force: true })
      }
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
  }
  return tarball
}
