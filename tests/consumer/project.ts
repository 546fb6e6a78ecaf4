/**
 * A fresh app outside the repo, as a new user makes it: `npm install` of the packed tarball with a
 * given hono, the README's blocks written as its files, and create-vite's strict tsconfig settings.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, WORK, pkg } from './pack.ts'
import { readmeFiles } from './readme.ts'

/** Runs a command; resolves with its output, rejects with it (and the exit code) on failure. */
export function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 120_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new Error(`${command} ${args.join(' ')} (in ${options.cwd}) exited with ${code ?? signal}:\n${output}`))
    })
  })
}

const dev = (name: string) => {
  const version = pkg.devDependencies[name]
  if (version === undefined) throw new Error(`[consumer] ${name} is not a devDependency of backward`)
  return version
}

// create-vite 9 (template-vanilla-ts and tsconfig.node.json), with strict spelled out (TypeScript 6
// defaults to it) and moduleResolution bundler for the server files, as the README's tsx run resolves.
const createVite = {
  target: 'es2023',
  module: 'esnext',
  skipLibCheck: true,
  moduleResolution: 'bundler',
  allowImportingTsExtensions: true,
  verbatimModuleSyntax: true,
  moduleDetection: 'force',
  noEmit: true,
  strict: true,
  noUnusedLocals: true,
  noUnusedParameters: true,
  erasableSyntaxOnly: true,
  noFallthroughCasesInSwitch: true,
}

/** The README's files, and the names of the TypeScript ones that run in the browser and on the server. */
export function readme(): { files: Map<string, string>; client: string[]; server: string[] } {
  const files = readmeFiles(readFileSync(join(ROOT, 'README.md'), 'utf8'))
  const ts = [...files.keys()].filter((name) => name.endsWith('.ts'))
  // client.ts and whatever index.html loads run in the browser; the rest is Node.
  const html = files.get('index.html') ?? ''
  const client = ts.filter((name) => name === 'client.ts' || html.includes(`src="/${name}"`))
  return { files, client, server: ts.filter((name) => !client.includes(name)) }
}

/**
 * Installs an app that depends on the tarball and hono `hono` into WORK/app-hono-<hono> (kept between
 * runs, so a rerun only swaps the tarball), and writes the README's files into it.
 */
export async function consumerProject(tarball: string, hono: string): Promise<string> {
  const dir = join(WORK, `app-hono-${hono}`)
  mkdirSync(dir, { recursive: true })
  const manifest = {
    name: 'backward-consumer',
    private: true,
    type: 'module',
    dependencies: {
      backward: 'file:' + tarball,
      hono,
      '@hono/node-server': dev('@hono/node-server'),
      pg: dev('pg'),
      ioredis: dev('ioredis'),
    },
    devDependencies: {
      vite: dev('vite'),
      tsx: dev('tsx'),
      typescript: dev('typescript'),
      '@types/node': dev('@types/node'),
      '@types/pg': dev('@types/pg'),
    },
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, timeout: 180_000 })

  for (const stale of ['dist', '.sessions', '.idempotency', 'src']) rmSync(join(dir, stale), { recursive: true, force: true })
  const { files, client, server } = readme()
  for (const [name, text] of files) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  const tsconfig = (lib: string[], types: string[], include: string[]) => JSON.stringify({ compilerOptions: { ...createVite, lib, types }, include }, null, 2)
  writeFileSync(join(dir, 'tsconfig.client.json'), tsconfig(['ES2023', 'DOM'], ['vite/client'], client))
  writeFileSync(join(dir, 'tsconfig.server.json'), tsconfig(['ES2023'], ['node'], server))
  return dir
}

/** Strict tsc over the README's browser files, then its server files; rejects with the errors. */
export async function typeCheck(dir: string): Promise<void> {
  const tsc = join(dir, 'node_modules/typescript/bin/tsc')
  await Promise.all(['tsconfig.client.json', 'tsconfig.server.json'].map((config) => run(process.execPath, [tsc, '-p', config, '--pretty', 'false'], { cwd: dir })))
}
