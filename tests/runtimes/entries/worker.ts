// workerd (through miniflare, no nodejs_compat): a module worker whose fetch answers the contract's JSON report.
import { runContract, type ContractStore } from '../contract.ts'

/** A module worker that runs the contract with the stores `storesFor(env)` adds. */
export function contractWorker<Env>(storesFor: (env: Env) => Record<string, ContractStore>) {
  return {
    async fetch(_request: Request, env: Env): Promise<Response> {
      return new Response(JSON.stringify(await runContract('workerd', storesFor(env))), { headers: { 'Content-Type': 'application/json' } })
    },
  }
}

export default contractWorker(() => ({}))
