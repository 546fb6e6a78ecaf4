// Measures what the browser SDK costs: the client entry bundled with idb-keyval, minified, as raw,
// gzip and brotli bytes, next to idb-keyval alone and workbox-background-sync.
//
// The SDK splits its code the way an app's bundler will: what every page load needs (the entry and
// the chunks it imports statically) and what loads on demand (`import()`): the login hand-off with
// its open-redirect guard, the replay after login, and form support. The budget applies to the
// first; the others are listed, and the total of everything is printed too.
//
// `node scripts/size.mjs` prints a table; `--json` prints the rows for tests and CI.
import { build } from 'esbuild'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

const sizes = (name, code) => ({
  name,
  raw: code.length,
  gzip: gzipSync(code, { level: 9 }).length,
  brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
})

/** Bundles `contents` (an ES module that re-exports what to measure) and returns its rows. */
async function measure(name, contents) {
  const result = await build({
    stdin: { contents, resolveDir: root, sourcefile: 'entry.js', loader: 'js' },
    bundle: true,
    splitting: true,
    outdir: 'out',
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source'],
    metafile: true,
    write: false,
    logLevel: 'silent',
  })
  const outputs = result.metafile.outputs
  const file = (path) => result.outputFiles.find((f) => f.path === `${root}${path}`).contents
  const entry = Object.keys(outputs).find((path) => outputs[path].entryPoint)
  // The entry and everything it imports statically: what a page load downloads.
  const initial = new Set()
  for (const queue = [entry]; queue.length; ) {
    const path = queue.pop()
    if (initial.has(path)) continue
    initial.add(path)
    for (const dep of outputs[path].imports) if (dep.kind === 'import-statement') queue.push(dep.path)
  }
  const lazy = Object.keys(outputs).filter((path) => !initial.has(path))
  const concat = (paths) => Buffer.concat(paths.map(file))
  const rows = [sizes(name, concat([...initial]))]
  if (lazy.length) {
    for (const path of lazy) {
      // Name a lazy chunk by the source modules in it.
      const inputs = Object.keys(outputs[path].inputs).map((input) => input.split('/').pop().replace(/\.ts$/, ''))
      rows.push(sizes(`  + on demand: ${inputs.join(', ')}`, file(path)))
    }
    rows.push(sizes(`  = all of ${name}`, concat(Object.keys(outputs))))
  }
  return rows
}

export async function measureAll() {
  return [
    // Every export of the entry, so nothing is shaken away that an app could import.
    ...(await measure('backward (client entry)', "export * from './src/client/index.ts'")),
    ...(await measure('idb-keyval', "export * from 'idb-keyval'")),
    ...(await measure('workbox-background-sync', "export * from 'workbox-background-sync'")),
  ]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await measureAll()
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows))
  else {
    const width = Math.max(...rows.map((r) => r.name.length)) + 2
    console.log('bundle'.padEnd(width) + 'raw'.padStart(8) + 'gzip'.padStart(8) + 'brotli'.padStart(8))
    for (const r of rows) console.log(r.name.padEnd(width) + [r.raw, r.gzip, r.brotli].map((n) => String(n).padStart(8)).join(''))
  }
}
