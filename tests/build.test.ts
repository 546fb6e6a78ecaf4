/**
 * The published shape: `npm run build` emits JavaScript and declarations to dist/, and plain Node 20
 * (no TypeScript loader) imports every server and shared entry by package name through the exports map.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

describe('build', () => {
  it('emits dist/ that plain Node imports through the exports map', () => {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'pipe' })
    for (const file of ['dist/client/index.js', 'dist/client/index.d.ts', 'dist/server/index.js', 'dist/server/index.d.ts', 'dist/shared/index.d.ts', 'dist/server/stores/file.js', 'dist/server/stores/redis.js', 'dist/server/stores/postgres.js']) {
      expect(existsSync(file), file).toBe(true)
    }
    const script = `
      const server = await import('backward/server'); const shared = await import('backward/shared');
      const file = await import('backward/server/file'); await import('backward/server/redis'); await import('backward/server/postgres');
      console.log(JSON.stringify({ session: typeof server.session, fileStore: typeof file.fileStore, inBarrel: 'fileStore' in server, safe: shared.isSafeRedirect('//evil.example') }))`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual({ session: 'function', fileStore: 'function', inBarrel: false, safe: false })
  }, 60_000)
})
