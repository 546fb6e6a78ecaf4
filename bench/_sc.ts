import { runScale } from './scale/scale.ts'
const r = await runScale(console.log)
console.log(JSON.stringify(r))
