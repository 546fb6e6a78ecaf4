import { Hono } from 'hono'
import { serve } from '@hono/node-server'
import { chromium } from 'playwright'
import { CHROMIUM_ARGS } from './client/browser.ts'
const app = new Hono()
app.get('/', (c) => c.html('<!doctype html><title>x</title>'))
app.get('/ok', (c) => c.json({ ok: true }))
const server = await new Promise<any>((r) => { const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => r(s)) })
const port = server.address().port
let t = performance.now(); for (let i = 0; i < 500; i++) await (await fetch(`http://127.0.0.1:${port}/ok`)).text(); console.log('node', (performance.now() - t) / 500)
const b = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium', args: CHROMIUM_ARGS })
const p = await b.newPage(); await p.goto(`http://127.0.0.1:${port}/`)
console.log(await p.evaluate(async () => { const out = []; for (let k = 0; k < 3; k++) { const t = performance.now(); for (let i = 0; i < 300; i++) await (await fetch('/ok')).text(); out.push((performance.now() - t) / 300) } return out }))
await b.close(); server.close()
