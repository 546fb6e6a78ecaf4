// The chart, written by hand: no chart dependency. Top: req/s of every target as a ratio to bare
// Hono, per workload. Bottom: the scale curves (operations per second, and clearExpired time).
import type { ThroughputResult, Workload } from '../server/throughput.ts'
import type { ScaleResult } from '../scale/scale.ts'
import { READ_WRITE_TARGETS } from './targets.ts'

const W = 980
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'
const WORKLOAD_COLORS: Record<Workload, string> = { anonymous: '#9ecae1', read: '#4292c6', write: '#08306b' }
const LINE_COLORS = ['#1b9e77', '#66c2a5', '#d95f02', '#fc8d62', '#7570b3', '#b3b0e0']

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const text = (x: number, y: number, body: string, attrs = '') => `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(body)}</text>`

function bars(t: ThroughputResult, top: number): { svg: string; height: number } {
  const names = t.targets.filter((name) => name !== 'hono (bare)')
  const workloads: Workload[] = ['anonymous', 'read', 'write']
  const bar = 9
  const rowGap = 10
  const rowH = workloads.length * bar + rowGap
  const left = 230
  const plotW = W - left - 90
  const max = 1
  const x = (ratio: number) => left + (Math.min(ratio, 1.1) / max) * plotW
  const parts: string[] = []
  parts.push(text(20, top + 18, `Server throughput: req/s as a share of bare Hono (median of ${t.rounds} rounds × ${t.duration} s, ${t.connections} connections)`, 'font-size="15" font-weight="600"'))
  const y0 = top + 46
  const plotH = names.length * rowH
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${x(tick)}" y1="${y0 - 6}" x2="${x(tick)}" y2="${y0 + plotH}" stroke="#ddd"/>`)
    parts.push(text(x(tick), y0 - 10, `${tick * 100}%`, 'font-size="11" text-anchor="middle" fill="#555"'))
  }
  names.forEach((name, row) => {
    const y = y0 + row * rowH
    const peer = !name.startsWith('backward')
    parts.push(text(left - 8, y + (workloads.length * bar) / 2 + 4, name, `font-size="12" text-anchor="end" fill="${peer ? '#666' : '#000'}"${peer ? '' : ' font-weight="600"'}`))
    workloads.forEach((workload, i) => {
      const ratio = t.cells[name]![workload].ratio
      const by = y + i * bar
      parts.push(`<rect x="${left}" y="${by}" width="${(x(ratio) - left).toFixed(1)}" height="${bar - 1}" fill="${WORKLOAD_COLORS[workload]}"/>`)
      parts.push(text(x(ratio) + 4, by + bar - 1.5, `${(ratio * 100).toFixed(0)}%`, 'font-size="9" fill="#333"'))
    })
    const goal = READ_WRITE_TARGETS.find((target) => target.name === name)
    if (goal !== undefined) {
      const gy = y + 2 * bar
      parts.push(`<line x1="${x(goal.min)}" y1="${gy - 3}" x2="${x(goal.min)}" y2="${gy + bar + 2}" stroke="#d62728" stroke-width="2"/>`)
    }
  })
  const ly = y0 + plotH + 16
  workloads.forEach((workload, i) => {
    const lx = left + i * 190
    parts.push(`<rect x="${lx}" y="${ly}" width="12" height="10" fill="${WORKLOAD_COLORS[workload]}"/>`)
    parts.push(text(lx + 16, ly + 9, { anonymous: 'anonymous (no cookie)', read: 'read-only session', write: 'read+write session' }[workload], 'font-size="11"'))
  })
  parts.push(`<line x1="${left + 3 * 190}" y1="${ly - 1}" x2="${left + 3 * 190}" y2="${ly + 11}" stroke="#d62728" stroke-width="2"/>`)
  parts.push(text(left + 3 * 190 + 6, ly + 9, 'read+write target (issue 7)', 'font-size="11"'))
  return { svg: parts.join('\n'), height: ly + 24 - top }
}

interface Series {
  label: string
  points: [number, number][]
}

function linePlot(left: number, top: number, width: number, height: number, title: string, yLabel: string, series: Series[]): string {
  const xs = [1e4, 1e5, 1e6]
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0)
  const lo = Math.floor(Math.log10(Math.min(...ys)))
  const hi = Math.ceil(Math.log10(Math.max(...ys)))
  const px = (n: number) => left + ((Math.log10(n) - 4) / 2) * width
  const py = (v: number) => top + height - ((Math.log10(v) - lo) / Math.max(1, hi - lo)) * height
  const parts: string[] = [text(left, top - 14, title, 'font-size="13" font-weight="600"')]
  for (let e = lo; e <= hi; e++) {
    parts.push(`<line x1="${left}" y1="${py(10 ** e)}" x2="${left + width}" y2="${py(10 ** e)}" stroke="#e5e5e5"/>`)
    const label = e >= 6 ? `${10 ** (e - 6)}M` : e >= 3 ? `${10 ** (e - 3)}k` : String(10 ** e)
    parts.push(text(left - 6, py(10 ** e) + 4, label, 'font-size="10" text-anchor="end" fill="#555"'))
  }
  for (const n of xs) {
    parts.push(`<line x1="${px(n)}" y1="${top}" x2="${px(n)}" y2="${top + height}" stroke="#eee"/>`)
    parts.push(text(px(n), top + height + 14, n >= 1e6 ? '1M' : `${n / 1000}k`, 'font-size="10" text-anchor="middle" fill="#555"'))
  }
  parts.push(text(left + width / 2, top + height + 28, 'sessions in the store (log scale)', 'font-size="10" text-anchor="middle" fill="#555"'))
  parts.push(text(left - 40, top + height / 2, yLabel, `font-size="10" text-anchor="middle" fill="#555" transform="rotate(-90 ${left - 40} ${top + height / 2})"`))
  series.forEach((s, i) => {
    const color = LINE_COLORS[i % LINE_COLORS.length]!
    const d = s.points.map(([n, v], j) => `${j === 0 ? 'M' : 'L'}${px(n).toFixed(1)},${py(v).toFixed(1)}`).join(' ')
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${i % 2 === 1 ? ' stroke-dasharray="5 3"' : ''}/>`)
    for (const [n, v] of s.points) parts.push(`<circle cx="${px(n).toFixed(1)}" cy="${py(v).toFixed(1)}" r="3" fill="${color}"/>`)
    const ly = top + 8 + i * 14
    parts.push(`<line x1="${left + width + 12}" y1="${ly}" x2="${left + width + 30}" y2="${ly}" stroke="${color}" stroke-width="2"${i % 2 === 1 ? ' stroke-dasharray="5 3"' : ''}/>`)
    parts.push(text(left + width + 34, ly + 4, s.label, 'font-size="10"'))
  })
  return parts.join('\n')
}

export function renderSvg(t: ThroughputResult | null, s: ScaleResult | null): string {
  const parts: string[] = []
  let y = 10
  if (t !== null) {
    const b = bars(t, y)
    parts.push(b.svg)
    y += b.height + 20
  }
  if (s !== null) {
    parts.push(text(20, y + 18, `Store cost as sessions grow (${s.concurrency} calls in flight; memoryStore: 1)`, 'font-size="15" font-weight="600"'))
    const top = y + 60
    const ops: Series[] = [
      { label: 'PostgreSQL load', points: s.postgres.map((l) => [l.n, l.loadPerSec]) },
      { label: 'PostgreSQL update', points: s.postgres.map((l) => [l.n, l.updatePerSec]) },
      { label: 'Redis load', points: s.redis.map((l) => [l.n, l.loadPerSec]) },
      { label: 'Redis update', points: s.redis.map((l) => [l.n, l.updatePerSec]) },
      { label: 'memory load', points: s.memory.map((l) => [l.n, l.loadPerSec]) },
      { label: 'memory update', points: s.memory.map((l) => [l.n, l.updatePerSec]) },
    ]
    parts.push(linePlot(80, top, 280, 200, 'load / update per second', 'operations per second', ops))
    const clear: Series[] = [
      { label: 'PostgreSQL, all expired', points: s.postgres.map((l) => [l.n, l.clearAllMs]) },
      { label: 'PostgreSQL, none expired', points: s.postgres.map((l) => [l.n, Math.max(0.1, l.clearNoneMs)]) },
      { label: 'memory, all expired', points: s.memory.map((l) => [l.n, Math.max(0.1, l.clearMs)]) },
    ]
    parts.push(linePlot(590, top, 210, 200, 'clearExpired() time', 'milliseconds', clear))
    y = top + 240
  }
  const height = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" ${FONT}>\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`
}
