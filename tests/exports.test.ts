/**
 * Every entry point in package.json's exports map loads through the package name, exposes what
 * DESIGN.md promises, and keeps the dependency direction: client → shared ← server.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import vitestConfig from '../vitest.config.ts'

type Entry = { types: string; source: string; default: string }
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, Entry | string>; typesVersions: Record<string, Record<string, string[]>>; scripts: Record<string, string> }
// The code entries; './package.json' is a plain string target, for tools that read the manifest.
const entries = Object.entries(pkg.exports).filter((pair): pair is [string, Entry] => typeof pair[1] !== 'string')

const expected: Record<string, string[]> = {
  backward: ['createBackward'],
  'backward/client': ['createBackward'],
  'backward/server': ['session', 'memoryStore', 'cookieStore', 'cachedStore', 'login', 'logout', 'getUserId', 'requireUser', 'userTag', 'loginRequired', 'backwardRoutes', 'idempotency', 'warnSuspicious', 'BackwardError', 'isBackwardError'],
  'backward/server/file': ['fileStore'],
  'backward/server/redis': ['redisStore'],
  'backward/server/postgres': ['postgresStore'],
  'backward/server/d1': ['d1Store', 'd1SessionsSql', 'D1_SESSIONS_SQL'],
  'backward/shared': ['isSafeRedirect', 'REQUEST_IN_PROGRESS_TYPE', 'REPLAY_OUTCOME', 'REPLAY_OUTCOME_PARAM', 'LOGIN_REQUIRED_TYPE', 'PROBLEM_CONTENT_TYPE', 'IDEMPOTENCY_HEADER', 'LOGIN_SIGNAL_COOKIE', 'BackwardError', 'isBackwardError', 'parseLoginRequired'],
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : path.endsWith('.ts') ? [path] : []
  })
}

describe('package exports', () => {
  it('the exports map has every entry point of DESIGN.md, each with types', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './client', './package.json', './server', './server/d1', './server/file', './server/postgres', './server/redis', './shared'])
    expect(pkg.exports['./package.json']).toBe('./package.json')
    for (const [, entry] of entries) {
      expect(entry.types).toMatch(/\.d\.ts$/)
      expect(entry.source).toMatch(/^\.\/src\/.*\.ts$/)
      expect(() => statSync(entry.source)).not.toThrow()
    }
  })

  it('typesVersions gives node10 type resolution the same declarations as the exports map', () => {
    const paths = pkg.typesVersions['*']!
    for (const [key, entry] of entries) {
      if (key === '.') continue
      expect(paths[key.slice(2)], key).toEqual([entry.types])
    }
    expect(Object.keys(paths).length).toBe(entries.length - 1)
  })

  it.each(Object.entries(expected))('%s loads by package name and exports its public names, all functions or constants', async (specifier, names) => {
    const mod = (await import(/* @vite-ignore */ specifier)) as Record<string, unknown>
    for (const name of names) expect(mod[name], `${specifier} → ${name}`).toBeDefined()
    for (const [name, value] of Object.entries(mod)) expect(['function', 'string', 'object'], name).toContain(typeof value)
    expect(mod.default).toBeUndefined() // named exports only
  })

  it('barrels only re-export', () => {
    for (const barrel of ['src/client/index.ts', 'src/server/index.ts', 'src/shared/index.ts']) {
      const code = readFileSync(barrel, 'utf8').replace(/\/\/.*$/gm, '')
      const rest = code.replace(/export (type )?(\{[^}]*\}|\*) from '[^']+'\n?/g, '').trim()
      expect(rest, barrel).toBe('')
    }
  })
})

describe('boundaries', () => {
  it('the client bundle pulls in no hono and no node:* module', async () => {
    const result = await build({ entryPoints: ['src/client/index.ts'], bundle: true, write: false, metafile: true, platform: 'browser', format: 'esm', logLevel: 'silent' })
    const inputs = Object.keys(result.metafile.inputs)
    expect(inputs.some((i) => i.includes('node_modules/hono'))).toBe(false)
    expect(inputs.some((i) => i.startsWith('node:'))).toBe(false)
    expect(inputs.some((i) => i.startsWith('src/server'))).toBe(false)
  })

  it('client and shared sources import no node:* and no hono', () => {
    for (const file of [...filesUnder('src/client'), ...filesUnder('src/shared')]) {
      const code = readFileSync(file, 'utf8')
      expect(code, file).not.toMatch(/from ['"](node:|hono)/)
      expect(code, file).not.toMatch(/from ['"]\.\.\/server/)
    }
  })

  it('shared imports nothing from client or server', () => {
    for (const file of filesUnder('src/shared')) expect(readFileSync(file, 'utf8'), file).not.toMatch(/from ['"]\.\.\/(client|server)/)
  })

  it('the server touches no DOM global', () => {
    const globals = ['window', 'document', 'localStorage', 'sessionStorage', 'indexedDB', 'navigator', 'location', 'HTMLElement', 'HTMLFormElement']
    for (const file of filesUnder('src/server')) {
      const code = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '')
        .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "''")
      // A name the file declares itself (`const location = headers.get('location')`) is not the global.
      const declared = new Set([...code.matchAll(/\b(?:const|let|var|function|class)\s+([A-Za-z_$][\w$]*)/g)].map((m) => m[1]))
      const names = globals.filter((name) => !declared.has(name))
      const dom = new RegExp(`(?<![.\\w'"\`])(${names.join('|')})\\b(?!\\s*:)`)
      expect(code, file).not.toMatch(dom)
    }
  })

  describe('nothing runs at import time', () => {
    it('importing every entry, in a fresh process, starts no timer or handle, calls no fetch, reads no browser global and adds no global', () => {
      const report = probeImports(Object.keys(expected))
      expect(report.imported).toBe(Object.keys(expected).length)
      expect(report).toMatchObject({ timers: [], fetches: 0, touched: [], addedGlobals: [], newResources: [], listeners: [] })
    })

    it('the probe itself sees a module that does run at import (so the test above can fail)', () => {
      const dir = mkdtempSync(join(tmpdir(), 'bw-probe-'))
      const file = join(dir, 'eager.mjs')
      writeFileSync(file, "setTimeout(() => {}, 60_000); globalThis.eagerLeak = 1; void typeof indexedDB; void fetch; process.on('exit', () => {})\n")
      try {
        const report = probeImports([pathToFileURL(file).href])
        expect(report.timers).toEqual(['setTimeout'])
        expect(report.touched).toEqual(['indexedDB'])
        expect(report.addedGlobals).toEqual(['eagerLeak'])
        expect(report.newResources).toContain('Timeout')
        expect(report.listeners).toEqual(['exit'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })
})

interface ImportReport {
  imported: number
  timers: string[]
  fetches: number
  touched: string[]
  addedGlobals: string[]
  newResources: string[]
  listeners: string[]
}

/**
 * Imports the specifiers in a new Node process (source files through tsx), so no module is already
 * cached, and reports what the imports did: timers set, fetch calls, browser globals read, globals
 * added, libuv handles left open and process listeners added.
 */
function probeImports(specifiers: string[]): ImportReport {
  const probe = `
    const g = globalThis
    const report = { imported: 0, timers: [], fetches: 0, touched: [], addedGlobals: [], newResources: [], listeners: [] }
    const events = ['exit', 'beforeExit', 'uncaughtException', 'unhandledRejection', 'SIGINT', 'SIGTERM', 'warning']
    // Compared by identity: Node itself removes an 'exit' listener of its own once the entry has run.
    const listenersBefore = events.map((e) => new Set(process.listeners(e)))
    for (const name of ['setTimeout', 'setInterval', 'setImmediate']) {
      const real = g[name]
      g[name] = (...args) => (report.timers.push(name), real(...args))
    }
    const realFetch = g.fetch
    g.fetch = (...args) => (report.fetches++, realFetch(...args))
    for (const name of ['indexedDB', 'window', 'document', 'localStorage', 'sessionStorage', 'navigator', 'location', 'BroadcastChannel']) {
      const had = Object.getOwnPropertyDescriptor(g, name)
      Object.defineProperty(g, name, { configurable: true, get() { report.touched.push(name); return had && ('value' in had ? had.value : had.get.call(g)) } })
    }
    const globalsBefore = new Set(Object.getOwnPropertyNames(g))
    const resourcesBefore = process.getActiveResourcesInfo()
    ;(async () => {
      for (const specifier of JSON.parse(process.env.BW_SPECIFIERS)) {
        await import(specifier)
        report.imported++
      }
      report.addedGlobals = Object.getOwnPropertyNames(g).filter((n) => !globalsBefore.has(n))
      const left = [...resourcesBefore]
      for (const type of process.getActiveResourcesInfo()) {
        const i = left.indexOf(type)
        if (i === -1) report.newResources.push(type)
        else left.splice(i, 1)
      }
      report.listeners = events.filter((e, i) => process.listeners(e).some((l) => !listenersBefore[i].has(l)))
      process.stdout.write(JSON.stringify(report))
      process.exit(0)
    })().catch((error) => { console.error(error); process.exit(1) })
  `
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--conditions=source', '-e', probe], {
    env: { ...process.env, BW_SPECIFIERS: JSON.stringify(specifiers) },
    encoding: 'utf8',
    timeout: 15_000,
  })
  return JSON.parse(out) as ImportReport
}

describe('scripts', () => {
  it('npm run test:unit only names Vitest projects that vitest.config.ts defines', () => {
    const script = pkg.scripts['test:unit']!
    expect(script).toMatch(/^vitest run\b/)
    const projects = [...script.matchAll(/--project[= ](\S+)/g)].map((m) => m[1])
    const defined = ((vitestConfig as { test?: { projects?: { test?: { name?: string } }[] } }).test?.projects ?? []).map((p) => p.test?.name)
    for (const project of projects) expect(defined, `--project ${project}`).toContain(project)
  })
})
