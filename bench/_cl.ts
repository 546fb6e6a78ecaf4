import { runClient } from './client/browser.ts'
const r = await runClient(console.log, { requests: 1000, pairs: 4, saveTimes: 5, replayActions: 100, replayRuns: 3 })
console.log(JSON.stringify(r, null, 1))
