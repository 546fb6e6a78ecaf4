// edge-runtime (Vercel's Edge): a classic script with a fetch listener that answers the contract's JSON report.
import { runContract } from '../contract.ts'

interface FetchEventLike {
  respondWith(response: Promise<Response>): void
}
declare function addEventListener(type: 'fetch', listener: (event: FetchEventLike) => void): void

addEventListener('fetch', (event) => {
  event.respondWith(runContract('edge-runtime').then((report) => new Response(JSON.stringify(report), { headers: { 'Content-Type': 'application/json' } })))
})
