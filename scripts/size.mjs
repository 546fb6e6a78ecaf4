// Measures what the browser SDK costs every user: the client entry bundled with idb-keyval,
// minified, as raw, gzip and brotli bytes, next to idb-keyval alone and workbox-background-sync.
// `node scripts/size.mjs` prints a table; `--json` prints the figures for tests and CI.
import { build } from 'esbuild'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

const bytes = (code) => ({
  raw: code.length,
  gzip: gzipSync(code, { level: 9 }).length,
  brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
})

/**
 * Bundles `contents` (an ES module importing what to measure) with code splitting, as an app's
 * bundler would. The entry chunk is what every page load pays; lazy chunks (the open-redirect guard,
 * loaded on the first login hand-off) are listed on their own.
 */
async function measure(name, contents) {
  const result = await build({
    stdin: { contents, resolveDir: root, sourcefile: 'entry.mjs', loader: 'js' },
    bundle: true,
    splitting: true,
    outdir: 'out',
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  })
  return result.outputFiles.map((file, i) => ({ name: i ? `  ${name}: lazy chunk` : name, ...bytes(file.contents) }))
}

export async function sizes() {
  return [
    // Every export of the entry, so nothing is shaken away that an app could import.
    ...(await measure('backward (client entry)', "export * from './src/client/index.ts'")),
    ...(await measure('idb-keyval', "export * from 'idb-keyval'")),
    ...(await measure('workbox-background-sync', "export * from 'workbox-background-sync'")),
  ]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await sizes()
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows))
  else {
    console.log('bundle'.padEnd(40) + 'raw'.padStart(8) + 'gzip'.padStart(8) + 'brotli'.padStart(8))
    for (const r of rows) console.log(r.name.padEnd(40) + String(r.raw).padStart(8) + String(r.gzip).padStart(8) + String(r.brotli).padStart(8))
  }
}
