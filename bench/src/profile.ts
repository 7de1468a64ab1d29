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
 * Layers of Parley's data path, in the order a message meets them on its way in, then out: each is a
 * function a frame or a message goes through (not every frame meets every one: the `message` event
 * sees TEXTs only, and a frame of 8 KiB or more skips the writer's batch). Layers nest however the
 * code calls them: an echo's `send()` runs inside the `message` event, and a read's acknowledgement is
 * written from inside the link reader. GC, which V8 puts outside every stack, is in none.
 */
export const LAYERS: readonly Layer[] = [
  {
    group: 'receive',
    name: 'socket read (node:net)',
    fns: ['onStreamRead'],
    file: 'node:internal/stream_base_commons',
  },
  {
    group: 'receive',
    name: 'secure channel: records opened',
    fns: ['consume'],
    file: '/secure/channel-records.js',
  },
  { group: 'receive', name: 'link reader: frames, limits', fns: ['onData'], file: '/link-reader.js' },
  { group: 'receive', name: 'session: frame to its service', fns: ['dispatch'], file: '/session.js' },
  { group: 'receive', name: 'chat service: TEXT, ACKs', fns: ['onFrame'], file: '/services/chat.js' },
  { group: 'receive', name: '`message` event and its handler', fns: ['onMessage'], file: '/peer.js' },
  { group: 'send', name: '`send()`, to the frame writer', fns: ['send'], file: '/peer.js' },
  {
    group: 'write',
    name: 'frame writer: batch to the link',
    fns: ['#flushBatch'],
    file: '/frame-writer.js',
  },
  {
    group: 'write',
    name: 'secure channel: records sealed',
    fns: ['send'],
    file: '/secure/channel-records.js',
  },
  { group: 'write', name: 'TCP transport: socket write', fns: ['send'], file: '/transports/tcp.js' },
  // Node's native socket writes (one buffer, or several gathered), where the thread blocks in the kernel.
  { group: 'write', name: 'socket write system call', fns: ['writeBuffer', 'writev'], file: '' },
]

/** One of {@link LAYERS}: a frame whose function is one of `fns` in a file ending with `file`. */
export interface Layer {
  group: 'receive' | 'send' | 'write'
  name: string
  fns: readonly string[]
  file: string
}

export interface LayerLine {
  name: string
  group: string
  /** Inclusive time: the layer and everything it called. */
  ms: number
  /** Its own: samples for which it is the innermost layer on the stack, ms. */
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
  const { startTime, endTime } = profile
  const last = (startTime ?? 0) + timeDeltas.reduce((sum, dt) => sum + dt, 0)
  const tail = startTime !== undefined && endTime !== undefined && endTime > last ? endTime - last : 0
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
  const layers = LAYERS.map((layer, i) => ({
    name: layer.name,
    group: layer.group,
    ms: layerUs.inclusive[i]! / 1000,
    ownMs: layerUs.own[i]! / 1000,
  }))
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    layers,
    functions: top(functions, busy, n),
    areas: top(areas, busy, 8),
  }
}

/**
 * µs of each of {@link LAYERS}: inclusive (every sample counted once for each layer on its stack,
 * recursion included) and own (every sample counted for the innermost layer on its stack only, so own
 * times never overlap and add up to the time spent in any layer).
 */
function layerTimes(profile: CpuProfile, self: Map<number, number>): { inclusive: number[]; own: number[] } {
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  /** Per node: bit i set when layer i is on its stack (the node included), and the innermost one. */
  const known = new Map<number, { mask: number; innermost: number }>()
  const stackOf = (id: number): { mask: number; innermost: number } => {
    const cached = known.get(id)
    if (cached !== undefined) return cached
    const frame = byId.get(id)!.callFrame
    const up = parent.get(id)
    const outer = up === undefined ? { mask: 0, innermost: -1 } : stackOf(up)
    const here = LAYERS.findIndex((l) => l.fns.includes(frame.functionName) && frame.url.endsWith(l.file))
    const stack = here < 0 ? outer : { mask: outer.mask | (1 << here), innermost: here }
    known.set(id, stack)
    return stack
  }
  const inclusive = LAYERS.map(() => 0)
  const own = LAYERS.map(() => 0)
  for (const [id, us] of self) {
    const { mask, innermost } = stackOf(id)
    for (let i = 0; i < LAYERS.length; i++) if (mask & (1 << i)) inclusive[i]! += us
    if (innermost >= 0) own[innermost]! += us
  }
  return { inclusive, own }
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
      `Per ${units.unit} (${units.count.toLocaleString('en-US')} in the profile, warm-up included), by layer: µs with everything it calls (a row may hold rows of any group: an echo's \`send()\` runs inside the \`message\` event, a read's acknowledgement is written from inside the link reader), and its own, the samples in which it is the innermost layer (own times do not overlap). GC is in no layer.`,
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
