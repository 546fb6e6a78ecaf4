/**
 * `backward/server` is portable (DESIGN.md, issue 14): the whole barrel, not tree-shaken, imports no
 * Node built-in, statically or at load, so it bundles for the browser and neutral platforms and loads
 * on workerd without `nodejs_compat` and on edge-runtime. Only the Node-only store entries import
 * `node:*`. (The runtimes themselves are exercised in tests/runtimes.)
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { build, type BuildOptions, type Metafile } from 'esbuild'
import { describe, expect, it } from 'vitest'

type Entry = { source: string }
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, Entry | string> }
const entries = Object.entries(pkg.exports).flatMap(([key, value]) => (typeof value === 'string' ? [] : [[key, value.source] as const]))

/** The entries that may import `node:*`: their stores need files, sockets or a Node driver. */
const NODE_ONLY = ['./server/file', './server/redis', './server/postgres']
/** An import statement, dynamic import or require of a `node:` module, in bundled output. */
const NODE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["']node:/

async function bundle(entry: string, options: BuildOptions) {
  const result = await build({ entryPoints: [entry], bundle: true, write: false, metafile: true, format: 'esm', logLevel: 'silent', ...options })
  const metafile = result.metafile!
  const output = Object.values(metafile.outputs)[0]!
  return { text: result.outputFiles![0]!.text, metafile, imports: output.imports, errors: result.errors, warnings: result.warnings }
}

/** The `node:*` modules an entry's own code imports (packages left external). */
async function nodeImports(source: string): Promise<string[]> {
  const { imports } = await bundle(source, { platform: 'node', packages: 'external' })
  return [...new Set(imports.map((i) => i.path).filter((path) => path.startsWith('node:')))].sort()
}

const inputs = (metafile: Metafile) => Object.keys(metafile.inputs)

describe('backward/server is portable', () => {
  it('bundles for --platform=browser with hono bundled in: nothing unresolved, no node:* import, no external left', async () => {
    const { text, imports, errors, warnings, metafile } = await bundle('src/server/index.ts', { platform: 'browser' })
    expect(errors).toEqual([])
    expect(warnings).toEqual([])
    expect(imports).toEqual([])
    expect(inputs(metafile).filter((i) => i.startsWith('node:'))).toEqual([])
    expect(inputs(metafile)).not.toContain('src/server/stores/file.ts')
    expect(text).not.toMatch(NODE_IMPORT)
  })

  it('bundles for --platform=neutral with hono external: the only imports left are hono', async () => {
    const { text, imports, errors, warnings } = await bundle('src/server/index.ts', { platform: 'neutral', external: ['hono', 'hono/*'] })
    expect(errors).toEqual([])
    expect(warnings).toEqual([])
    expect(imports.length).toBeGreaterThan(0)
    for (const i of imports) {
      expect(i.path, i.path).toMatch(/^hono(\/[\w-]+)?$/)
      expect(i.external, i.path).toBe(true)
    }
    expect(text).not.toMatch(NODE_IMPORT)
  })

  it('the one mention of node: in the bundle is the lazy lookup of node:crypto (process.getBuiltinModule), which WebCrypto backs up', async () => {
    const { text } = await bundle('src/server/index.ts', { platform: 'neutral', external: ['hono', 'hono/*'] })
    const mentions = [...text.matchAll(/.{0,40}["']node:[^"']*["'].{0,2}/g)].map((m) => m[0].trim())
    expect(mentions).toHaveLength(1)
    expect(mentions[0]).toMatch(/\?\.\("node:crypto"\)/)
  })

  it('importing backward/server looks up no Node built-in at load: node:crypto is fetched on first use', () => {
    const probe = `
      const seen = []
      const real = process.getBuiltinModule
      process.getBuiltinModule = (id) => (seen.push(id), real(id))
      const server = await import('backward/server')
      const atLoad = [...seen]
      await server.hashKey('x')
      process.stdout.write(JSON.stringify({ atLoad, afterUse: seen }))
    `
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--conditions=source', '--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 15_000 })
    expect(JSON.parse(out)).toEqual({ atLoad: [], afterUse: ['node:crypto'] })
  })

  describe('security', () => {
    it('a node:* import in an entry fails the neutral bundle (so the tests above can fail)', async () => {
      await expect(bundle('src/server/stores/file.ts', { platform: 'neutral' })).rejects.toThrow(/Could not resolve "node:fs"/)
    })

    it('only the Node-only store entries (file, redis, postgres) import node:*, and fileStore does', async () => {
      const importing: string[] = []
      for (const [key, source] of entries) if ((await nodeImports(source)).length > 0) importing.push(key)
      expect(importing).toContain('./server/file')
      for (const key of importing) expect(NODE_ONLY, `${key} imports node:*`).toContain(key)
    })

    it.each(entries.filter(([key]) => !NODE_ONLY.includes(key)))('%s bundles for --platform=neutral with its packages external and no node:* import', async (_key, source) => {
      const { text, imports, errors } = await bundle(source, { platform: 'neutral', packages: 'external' })
      expect(errors).toEqual([])
      expect(imports.filter((i) => i.path.startsWith('node:'))).toEqual([])
      expect(text).not.toMatch(NODE_IMPORT)
    })
  })
})
