// The README's "Runtimes" samples (tests/runtimes/samples/*.ts, shown there verbatim), each served on its own
// runtime on a free port: an anonymous fetch gets the 401 problem, a navigation the 303 to the login page, a
// wrong password 401, a login the 303 to backward's landing with a proof, and the protected page then answers.
// `--conditions=source` makes `backward/server` resolve to src/ (a user's install resolves to dist/).
import { spawn, type ChildProcess } from 'node:child_process'
import { get } from 'node:http'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../helpers/private-stores.ts'
import { ROOT } from './runners.ts'

const SECRET = 'x'.repeat(32)
const bin = (name: string) => {
  const path = join(ROOT, 'node_modules', '.bin', name)
  if (!existsSync(path)) throw new Error(`[runtimes] ${name} is not installed: ${path} is missing. \`npm ci\` installs the devDependency "${name}".`)
  return path
}


const commands: Record<string, (port: number) => [string, string[]]> = {
  node: () => [bin('tsx'), ['--conditions=source', 'tests/runtimes/samples/node.ts']],
  bun: () => [bin('bun'), ['run', '--conditions=source', 'tests/runtimes/samples/bun.ts']],
  deno: (port) => [bin('deno'), ['serve', '--port', String(port), '--allow-env=BACKWARD_SECRET', '--conditions=source', '--quiet', 'tests/runtimes/samples/deno.ts']],
}

let child: ChildProcess | undefined
afterEach(() => {
  // The sample runs in its own process group (tsx starts node under it): stop the group we started.
  if (child?.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL')
  child = undefined
})

async function start(runtime: string): Promise<{ base: string; output: () => string }> {
  const port = await freePort()
  const [cmd, args] = commands[runtime]!(port)
  let output = ''
  child = spawn(cmd, args, { cwd: ROOT, detached: true, env: { ...process.env, PORT: String(port), BACKWARD_SECRET: SECRET, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const started = child
  const base = `http://127.0.0.1:${port}`
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
    if (started.exitCode !== null) break
    try {
      await fetch(`${base}/`)
      return { base, output: () => output }
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  throw new Error(`[runtimes] the ${runtime} sample did not start (${started.exitCode === null ? 'no answer in 20 s' : `exit ${started.exitCode}`}):\n${output.slice(-2000)}`)
}

/** A top-level navigation, as a browser sends it (Node's fetch always says Sec-Fetch-Mode: cors). */
function navigate(url: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { Accept: 'text/html', 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document' } }, (res) => {
      res.resume()
      resolve({ status: res.statusCode!, location: res.headers.location })
    }).on('error', reject)
  })
}

describe("the README's Runtimes samples, served on their runtime", () => {
  it.each(['node', 'bun', 'deno'])('%s', async (runtime) => {
    const { base } = await start(runtime)
    const anonymous = await fetch(`${base}/me`, { headers: { Accept: 'application/json' } })
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('Content-Type')).toBe('application/problem+json')
    expect(await anonymous.json()).toMatchObject({ type: 'urn:backward:login-required', loginUrl: '/login?next=%2Fme' })
    expect(await navigate(`${base}/me`)).toEqual({ status: 303, location: '/login?next=%2Fme' })

    const form = (password: string) => ({ method: 'POST', redirect: 'manual' as const, headers: { Origin: base, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `username=ada&password=${password}` })
    expect((await fetch(`${base}/login`, form('wrong'))).status).toBe(401)
    expect((await fetch(`${base}/login`, { ...form('demo'), headers: { ...form('demo').headers, Origin: 'https://evil.example' } })).status).toBe(403) // csrf()
    const login = await fetch(`${base}/login`, form('demo'))
    expect(login.status).toBe(303)
    expect(login.headers.get('Location')).toMatch(/^\/backward\/login\/redirect\?backward_proof=[\w-]{43}$/)
    const cookie = login.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')
    expect(cookie).toMatch(/(^|; )sessionid=/)

    const me = await fetch(`${base}/me`, { headers: { Cookie: cookie, Accept: 'application/json' } })
    expect(me.status).toBe(200)
    expect(await me.text()).toBe('Hello, ada')
    const user = await (await fetch(`${base}/backward/user`, { headers: { Cookie: cookie } })).json()
    expect(user.user).toMatch(/^[\w-]{20,}$/)
  }, 40_000)
})

describe("the README's Runtimes samples", () => {
  it('are shown verbatim in README.md', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8')
    for (const name of ['node', 'bun', 'deno']) {
      const text = readFileSync(join(process.cwd(), 'tests/runtimes/samples', `${name}.ts`), 'utf8').trimEnd()
      expect(readme.includes('```ts\n' + text + '\n```'), `${name}.ts`).toBe(true)
    }
  })
})
