/**
 * Reads a V8 `.cpuprofile` (the bench's, or node --cpu-prof's) and tells where the time went: self time by function
 * and by area (Parley's packages, Node internals, GC, ...). Also a CLI:
 * `node dist/profile.js FILE.cpuprofile [top]`.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

export interface CpuProfile {
  nodes: ProfileNode[]
  /** µs, on the same clock as the samples. */
  startTime?: number
  endTime?: number
  samples: number[]
  /** µs before each sample: the first from `startTime`, then from the sample before. */
  timeDeltas: number[]
}

export interface ProfileLine {
  name: string
  ms: number
  /** Share of the busy (non-idle) time, 0…1. */
  share: number
}

export interface ProfileSummary {
  totalMs: number
  busyMs: number
  functions: ProfileLine[]
  areas: ProfileLine[]
}

/** A readable location: the package and file, without the pnpm store path. */
function where(url: string): string {
  if (url === '') return ''
  let path = url.replace(/^file:\/\//, '')
  const store = path.lastIndexOf('/node_modules/')
  if (store >= 0) return path.slice(store + '/node_modules/'.length)
  path = path.replace(/^.*\/(packages|apps|bench)\//, '')
  return path
}

function areaOf(name: string, url: string): string {
  if (name === '(garbage collector)') return 'GC'
  if (name === '(program)' || name === '(idle)') return name
  if (url === '') return 'native / builtins'
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`
  if (url.includes('/packages/core/')) return '@parley/core'
  if (url.includes('/packages/protocol/')) return '@parley/protocol'
  if (url.includes('/bench/')) return 'bench harness'
  const store = url.lastIndexOf('/node_modules/')
  if (store >= 0) {
    const rest = url.slice(store + '/node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  return 'other'
}

function top(map: Map<string, number>, busy: number, n: number): ProfileLine[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, share: busy > 0 ? us / busy : 0 }))
}

export function summarizeProfile(path: string, n = 12): ProfileSummary {
  return summarize(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile, n)
}

/** Where the time of `profile` went; see {@link summarizeProfile}. */
export function summarize(profile: CpuProfile, n = 12): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<number, number>()
  const { samples, timeDeltas } = profile
  // A sample stands for the time until the next one, as DevTools counts it. The first delta runs from
  // the profile's start to the first sample, which is the profiler starting: nobody's time (it was
  // tens of milliseconds, all charged to whatever the first sample caught).
  const last = (profile.startTime ?? 0) + timeDeltas.reduce((sum, dt) => sum + dt, 0)
  const tail = profile.endTime !== undefined && profile.endTime > last ? profile.endTime - last : 0
  let total = 0
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < samples.length ? (timeDeltas[i + 1] ?? 0) : tail
    total += dt
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + dt)
  }
  const functions = new Map<string, number>()
  const areas = new Map<string, number>()
  let idle = 0
  for (const [id, us] of self) {
    const frame = byId.get(id)?.callFrame
    if (!frame) continue
    if (frame.functionName === '(idle)') {
      idle += us
      continue
    }
    const loc = where(frame.url)
    const name = `${frame.functionName || '(anonymous)'}${loc ? ` ${loc}:${frame.lineNumber + 1}` : ''}`
    functions.set(name, (functions.get(name) ?? 0) + us)
    const area = areaOf(frame.functionName, frame.url)
    areas.set(area, (areas.get(area) ?? 0) + us)
  }
  const busy = total - idle
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    functions: top(functions, busy, n),
    areas: top(areas, busy, 8),
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`

/** Markdown for one profile: busy time, areas, then the hottest functions by self time. */
export function renderProfile(title: string, s: ProfileSummary): string {
  const lines = [
    `**${title}**: busy ${Math.round(s.busyMs)} ms of ${Math.round(s.totalMs)} ms profiled.`,
    '',
    `By area: ${s.areas.map((a) => `${a.name} ${pct(a.share)}`).join(', ')}.`,
    '',
    '| Self time | Function (file:line) |',
    '| ---: | --- |',
    ...s.functions.map((f) => `| ${pct(f.share)} | \`${f.name.replaceAll('|', '\\|')}\` |`),
  ]
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, count] = process.argv.slice(2)
  if (!file) {
    console.error('usage: node dist/profile.js FILE.cpuprofile [top]')
    process.exit(2)
  }
  console.log(renderProfile(file, summarizeProfile(file, Number(count ?? 25))))
}
