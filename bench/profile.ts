// Where a target's time goes: `tsx bench/profile.ts "backward memory" write [seconds]` runs the
// target's child process under `node --cpu-prof`, loads it with autocannon, and prints the
// functions with the most self time, then the same grouped by source file. The raw profile stays in
// bench/.profiles/ (open it in Chrome DevTools, Performance panel).
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { CONNECTIONS } from './config.ts'
import { BUILT_CHILD, WORKLOADS, compileChild, type Workload } from './server/throughput.ts'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const [target = 'backward memory', workload = 'write', seconds = '5'] = process.argv.slice(2)
if (!(workload in WORKLOADS)) throw new Error(`workload must be one of ${Object.keys(WORKLOADS).join(', ')}`)
const w = WORKLOADS[workload as Workload]
const dir = fileURLToPath(new URL('./.profiles/', import.meta.url))
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })

// Plain JavaScript, as in the benchmark (see compileChild in server/throughput.ts).
await compileChild()
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, BUILT_CHILD, target], {
  stdio: ['pipe', 'pipe', 'inherit'],
})
const port = await new Promise<number>((resolve, reject) => {
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    const match = /READY (\d+)/.exec(out)
    if (match) resolve(Number(match[1]))
  })
  child.on('exit', (code) => reject(new Error(`target exited with ${code}`)))
})
const base = `http://127.0.0.1:${port}`
const setCookie = (await fetch(`${base}/write`)).headers.getSetCookie().map((line) => line.split(';')[0]!)
const cookie = [...new Map(setCookie.map((pair) => [pair.slice(0, pair.indexOf('=')), pair])).values()].join('; ')
const result = await autocannon({
  url: base + w.path,
  connections: CONNECTIONS,
  duration: Number(seconds),
  ...(w.cookie ? { headers: { cookie } } : {}),
})
console.log(`${target}, ${workload}: ${Math.round(result.requests.average)} req/s, p99 ${result.latency.p99} ms, ${result.non2xx} non-2xx`)
await new Promise((resolve) => {
  child.once('exit', resolve)
  child.kill('SIGTERM')
})

const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))
if (file === undefined) throw new Error('no profile written')
const profile = JSON.parse(readFileSync(dir + file, 'utf8')) as Profile
const self = new Map<number, number>()
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const total = [...self.values()].reduce((a, b) => a + b, 0)
const byFunction = new Map<string, number>()
const byFile = new Map<string, number>()
const root = fileURLToPath(new URL('..', import.meta.url))
for (const node of profile.nodes) {
  const time = self.get(node.id) ?? 0
  if (time === 0) continue
  const { functionName, url, lineNumber } = node.callFrame
  const where = url.replace('file://', '').replace(root, '') || '(native)'
  const name = `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + time)
  const group = where.startsWith('node_modules/') ? where.split('/').slice(0, where.startsWith('node_modules/@') ? 3 : 2).join('/') : where
  byFile.set(group, (byFile.get(group) ?? 0) + time)
}
const show = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title}`)
  for (const [name, time] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${((time / total) * 100).toFixed(1).padStart(5)} %  ${name}`)
}
show('self time by function', byFunction, 30)
show('self time by file or package', byFile, 20)
console.log(`\nprofile: ${dir}${file}`)
