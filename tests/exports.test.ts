/**
 * Every entry point in package.json's exports map loads through the package name, exposes what
 * DESIGN.md promises, and keeps the dependency direction: client → shared ← server.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, { types: string; source: string; default: string }> }

const expected: Record<string, string[]> = {
  backward: ['createBackward'],
  'backward/client': ['createBackward'],
  'backward/server': ['session', 'memoryStore', 'fileStore', 'cookieStore', 'cachedStore', 'login', 'logout', 'getUserId', 'loginRequired', 'backwardRoutes', 'idempotency'],
  'backward/server/redis': ['redisStore'],
  'backward/server/postgres': ['postgresStore'],
  'backward/shared': ['isSafeRedirect', 'LOGIN_REQUIRED_TYPE', 'PROBLEM_CONTENT_TYPE', 'IDEMPOTENCY_HEADER', 'LOGIN_SIGNAL_COOKIE', 'BackwardError', 'isBackwardError', 'parseLoginRequired'],
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : path.endsWith('.ts') ? [path] : []
  })
}

describe('package exports', () => {
  it('the exports map has every entry point of DESIGN.md, each with types', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './client', './server', './server/postgres', './server/redis', './shared'])
    for (const entry of Object.values(pkg.exports)) {
      expect(entry.types).toMatch(/\.d\.ts$/)
      expect(entry.source).toMatch(/^\.\/src\/.*\.ts$/)
      expect(() => statSync(entry.source)).not.toThrow()
    }
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
    const dom = /(?<![.\w'"`])(window|document|localStorage|sessionStorage|indexedDB|navigator|location|HTMLElement|HTMLFormElement)\b(?!\s*:)/
    for (const file of filesUnder('src/server')) {
      const code = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '')
        .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "''")
      expect(code, file).not.toMatch(dom)
    }
  })

  it('nothing runs at import time: importing every entry starts no timer and touches no global', async () => {
    const before = Object.keys(globalThis).sort()
    for (const specifier of Object.keys(expected)) await import(/* @vite-ignore */ specifier)
    expect(Object.keys(globalThis).sort()).toEqual(before)
  })
})
