/**
 * The packed tarball, as npm publishes it: attw (types resolve in every mode; ESM only, so the one
 * accepted problem is cjs-resolves-to-esm) and publint are clean; declaration maps point at sources
 * that ship; the README's links are absolute and their files ship; a browser-only install gets no hono.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, WORK, packOnce, pkg } from './pack.ts'
import { run } from './project.ts'

const exec = promisify(execFile)
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name)

let tarball: string
let unpacked: string
beforeAll(async () => {
  tarball = await packOnce()
  unpacked = mkdtempSync(join(WORK, 'unpacked-'))
  await run('tar', ['xzf', tarball, '-C', unpacked], { cwd: unpacked })
  unpacked = join(unpacked, 'package')
}, 120_000)
afterAll(() => {
  if (unpacked !== undefined) rmSync(dirname(unpacked), { recursive: true, force: true })
})

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? filesUnder(join(dir, name)) : [join(dir, name)]))
}

describe('the packed tarball', () => {
  it('attw: types resolve for node10, node16 and bundlers; only cjs-resolves-to-esm (ESM only)', async () => {
    // JSON goes to a file: a pipe may be cut when attw exits, and attw exits 1 on any problem.
    const out = join(dirname(unpacked), 'attw.json')
    await exec('sh', ['-c', `"$0" "$1" --format json > "$2" || true`, bin('attw'), tarball, out], { cwd: ROOT })
    const report = JSON.parse(readFileSync(out, 'utf8')) as { analysis: { problems: { kind: string; entrypoint: string; resolutionKind: string }[] } }
    const problems = report.analysis.problems.filter((problem) => problem.kind !== 'CJSResolvesToESM')
    expect(problems).toEqual([])
    expect(report.analysis.problems.every((problem) => problem.resolutionKind === 'node16-cjs')).toBe(true)
  }, 60_000)

  it('publint: no error, warning or suggestion', async () => {
    const { stdout } = await exec(bin('publint'), ['run', tarball, '--strict', '--level', 'suggestion'], { cwd: ROOT })
    expect(stdout).toContain('All good!')
  }, 60_000)

  it('ships LICENSE, CHANGELOG.md, README.md and ./package.json as an export', () => {
    for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md']) expect(existsSync(join(unpacked, file)), file).toBe(true)
    expect(readFileSync(join(unpacked, 'LICENSE'), 'utf8')).toMatch(/^MIT License/)
    expect(pkg.peerDependencies.hono).toMatch(/^\^4\.\d+\.0$/)
  })

  it('declaration maps point at sources inside the tarball', () => {
    const maps = filesUnder(join(unpacked, 'dist')).filter((file) => file.endsWith('.d.ts.map'))
    const declarations = filesUnder(join(unpacked, 'dist')).filter((file) => file.endsWith('.d.ts'))
    expect(maps.length).toBe(declarations.length)
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] }
      for (const source of sources) {
        const path = resolve(dirname(map), source)
        expect(relative(unpacked, path).startsWith('src/'), `${relative(unpacked, map)} → ${source}`).toBe(true)
        expect(existsSync(path), `${relative(unpacked, map)} → ${source}`).toBe(true)
      }
    }
  })

  it("the README's links work on the npm page: absolute, and the unpkg ones name files that ship", () => {
    const readme = readFileSync(join(unpacked, 'README.md'), 'utf8').replace(/^```[\s\S]*?^```/gm, '')
    const targets = [...readme.matchAll(/\]\(([^)\s]+)[^)]*\)/g)].map((match) => match[1]!)
    expect(targets.length).toBeGreaterThan(0)
    expect(targets.filter((target) => !/^(https?:|mailto:|#)/.test(target)), 'relative links break on npmjs.com').toEqual([])
    for (const target of targets) {
      const path = /^https:\/\/unpkg\.com\/backward(?:@[^/]+)?\/(.+)$/.exec(target)?.[1]
      if (path !== undefined) expect(existsSync(join(unpacked, path.split('#')[0]!)), target).toBe(true)
    }
  })

  it('a browser-only install gets idb-keyval and no hono (an optional peer)', async () => {
    const dir = join(WORK, 'browser-only')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'browser-only', private: true, type: 'module', dependencies: { backward: 'file:' + tarball } }))
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, timeout: 120_000 })
    expect(existsSync(join(dir, 'node_modules/idb-keyval/package.json'))).toBe(true)
    expect(existsSync(join(dir, 'node_modules/hono'))).toBe(false)
    expect(readdirSync(join(dir, 'node_modules')).filter((name) => !name.startsWith('.')).sort()).toEqual(['backward', 'idb-keyval'])
  }, 120_000)
})
