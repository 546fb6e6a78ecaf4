// Node, Bun and Deno: run the contract and print one JSON line (the runner reads the last line).
import { runContract } from '../contract.ts'

declare const Bun: unknown
declare const Deno: unknown

const runtime = typeof Bun !== 'undefined' ? 'bun' : typeof Deno !== 'undefined' ? 'deno' : 'node'
console.log(JSON.stringify(await runContract(runtime)))
