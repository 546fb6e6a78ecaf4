#!/usr/bin/env node
// The `backward` command (see src/server/cli.ts). A published package runs the built dist/; a
// checkout without a build runs the TypeScript source through tsx, a devDependency.
import { existsSync } from 'node:fs'

const built = new URL('../dist/server/cli.js', import.meta.url)
let cli
if (existsSync(built)) {
  cli = await import(built.href)
} else {
  let tsx
  try {
    tsx = await import('tsx/esm/api')
  } catch {
    process.stderr.write('[backward] dist/ is missing and tsx is not installed: run `npm run build` or `npm install`.\n')
    process.exit(1)
  }
  cli = await tsx.tsImport('../src/server/cli.ts', import.meta.url)
}
const code = await cli.runCli(process.argv.slice(2))
// Exit now: a client library may keep a timer alive for seconds after a failed connect (ioredis does).
process.exit(code)
