// Entry of a target's child process: `tsx bench/server/child.ts "<target name>"`.
// Prints `READY <port>` once listening; SIGTERM (or the parent going away) closes it and cleans up.
import type { AddressInfo } from 'node:net'
import { TARGETS, type TargetName } from './target.ts'

const name = process.argv[2] as TargetName
const build = TARGETS[name]
if (build === undefined) {
  console.error(`[bench] unknown target "${name}"`)
  process.exit(2)
}
const { server, cleanup } = await build()
server.keepAliveTimeout = 60_000
const { port } = server.address() as AddressInfo
console.log(`READY ${port}`)

let stopping = false
async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  server.closeAllConnections()
  server.close()
  await cleanup().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// An orphaned server must not linger when the parent dies without signalling.
process.stdin.on('end', stop)
process.stdin.resume()
