/**
 * Reads a V8 `.cpuprofile` (the bench's, or node --cpu-prof's) and tells where the time went: self time by function
 * and by area (Parley's packages, Node internals, GC, ...), and the time of each layer of the data path.
 * Also a CLI: `node dist/profile.js FILE.cpuprofile [top] [messages-or-round-trips [unit]]`.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
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

/**
 * Layers of Parley's data path, each a function that every frame passes through, in the order a frame
 * meets them. A layer's time is inclusive: it holds every layer called from it (the next rows of its
 * group), so the difference to the next row is the layer's own.
 */
export const LAYERS = [
  {
    group: 'receive',
    name: 'socket read (node:net)',
    fn: 'onStreamRead',
    file: 'node:internal/stream_base_commons',
  },
  {
    group: 'receive',
    name: 'secure channel: records opened',
    fn: 'consume',
    file: '/secure/channel-records.js',
  },
  { group: 'receive', name: 'link reader: frames, limits', fn: 'onData', file: '/link-reader.js' },
  { group: 'receive', name: 'session: frame to its service', fn: 'dispatch', file: '/session.js' },
  { group: 'receive', name: 'chat service: TEXT, ACKs', fn: 'onFrame', file: '/services/chat.js' },
  { group: 'receive', name: '`message` event and its handler', fn: 'onMessage', file: '/peer.js' },
  { group: 'send', name: '`send()`, to the frame writer', fn: 'send', file: '/peer.js' },
  { group: 'write', name: 'frame writer: batch to the link', fn: '#flushBatch', file: '/frame-writer.js' },
  { group: 'write', name: 'secure channel: records sealed', fn: 'send', file: '/secure/channel-records.js' },
  { group: 'write', name: 'TCP transport: socket write', fn: 'send', file: '/transports/tcp.js' },
  { group: 'write', name: '`write` system call', fn: 'writeBuffer', file: '' },
] as const

export interface LayerLine {
  name: string
  group: string
  /** Inclusive time: the layer and everything it called. */
  ms: number
  /** The layer's inclusive time less the next layer's of its group (its own work), ms. */
  ownMs: number
}

export interface ProfileSummary {
  totalMs: number
  busyMs: number
  layers: LayerLine[]
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
  const layerUs = layerTimes(profile, self)
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
  const layers = LAYERS.map((layer, i) => {
    const next = LAYERS[i + 1]
    const inner = next?.group === layer.group ? layerUs[i + 1]! : 0
    return {
      name: layer.name,
      group: layer.group,
      ms: layerUs[i]! / 1000,
      ownMs: (layerUs[i]! - inner) / 1000,
    }
  })
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    layers,
    functions: top(functions, busy, n),
    areas: top(areas, busy, 8),
  }
}

/** Inclusive µs of each of {@link LAYERS}: every sample counted once for each layer on its stack. */
function layerTimes(profile: CpuProfile, self: Map<number, number>): number[] {
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  /** Bit i set: layer i is on the node's stack (the node included). */
  const masks = new Map<number, number>()
  const maskOf = (id: number): number => {
    const known = masks.get(id)
    if (known !== undefined) return known
    const frame = byId.get(id)!.callFrame
    const up = parent.get(id)
    let mask = up === undefined ? 0 : maskOf(up)
    LAYERS.forEach((layer, i) => {
      if (frame.functionName === layer.fn && frame.url.endsWith(layer.file)) mask |= 1 << i
    })
    masks.set(id, mask)
    return mask
  }
  const times = LAYERS.map(() => 0)
  for (const [id, us] of self) {
    const mask = maskOf(id)
    for (let i = 0; i < LAYERS.length; i++) if (mask & (1 << i)) times[i]! += us
  }
  return times
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`

/** What the profiled run handled: the layers' times are divided by `count` and shown per `unit`. */
export interface ProfileUnits {
  count: number
  /** Singular: `message`, `round trip`. */
  unit: string
}

/**
 * Markdown for one profile: busy time, areas, the hottest functions by self time, and with `units`,
 * the time per message or round trip of each layer of the data path.
 */
export function renderProfile(title: string, s: ProfileSummary, units?: ProfileUnits): string {
  const lines = [
    `**${title}**: busy ${Math.round(s.busyMs)} ms of ${Math.round(s.totalMs)} ms profiled.`,
    '',
    `By area: ${s.areas.map((a) => `${a.name} ${pct(a.share)}`).join(', ')}.`,
    '',
    '| Self time | Function (file:line) |',
    '| ---: | --- |',
    ...s.functions.map((f) => `| ${pct(f.share)} | \`${f.name.replaceAll('|', '\\|')}\` |`),
  ]
  if (units !== undefined && units.count > 0) {
    const per = (ms: number) => ((ms * 1000) / units.count).toFixed(2)
    lines.push(
      '',
      `Per ${units.unit} (${units.count.toLocaleString('en-US')} in the profile, warm-up included), by layer: µs with everything it calls, and its own.`,
      '',
      `| Layer | µs per ${units.unit} | own µs | share of busy |`,
      '| --- | ---: | ---: | ---: |',
      ...s.layers.map(
        (l) =>
          `| ${l.group}: ${l.name} | ${per(l.ms)} | ${per(l.ownMs)} | ${s.busyMs > 0 ? pct(l.ms / s.busyMs) : '–'} |`,
      ),
    )
  }
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, lines, count, unit] = process.argv.slice(2)
  if (!file) {
    console.error('usage: node dist/profile.js FILE.cpuprofile [top] [messages-or-round-trips [unit]]')
    process.exit(2)
  }
  const units = count === undefined ? undefined : { count: Number(count), unit: unit ?? 'message' }
  console.log(renderProfile(file, summarizeProfile(file, Number(lines ?? 25)), units))
}
