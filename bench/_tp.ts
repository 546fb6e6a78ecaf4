import { runThroughput } from './server/throughput.ts'
const r = await runThroughput(console.log)
for (const t of r.targets) console.log(t.padEnd(32), Object.entries(r.cells[t]!).map(([w, c]) => `${w}:${c.rps.toFixed(0)} ${(c.ratio*100).toFixed(0)}% p99=${c.p99} bad=${c.bad}`).join(' | '))
console.log(r.seconds)
