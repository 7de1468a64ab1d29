/** Turns the rounds' outcomes into the Markdown of docs/BENCHMARKS.md. */
import { BULK_PAYLOAD } from './plan.js'
import type { JobOutcome } from './runner.js'
import type { ScenarioName, ScenarioParams } from './scenarios.js'
import { type Spread, spread } from './stats.js'
import { SYSTEM_LABELS, type SystemName } from './systems/index.js'

/** Outcomes of every round, by system and scenario. */
export type Results = Map<SystemName, Map<ScenarioName, JobOutcome[]>>

interface Column {
  title: string
  scenario: ScenarioName
  metric: string
  format: (n: number) => string
  /** true when a larger number is better. */
  higher: boolean
}

const si = (n: number): string => {
  if (!Number.isFinite(n)) return '–'
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)} k`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`
  return n.toFixed(0)
}
const fixed = (digits: number) => (n: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–')
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–')

export const COLUMNS: Column[] = [
  { title: '(a) 64 B msg/s', scenario: 'oneway', metric: 'msgsPerSec', format: si, higher: true },
  { title: '(b) bulk MB/s', scenario: 'bulk', metric: 'mbPerSec', format: int, higher: true },
  { title: '(c) ping-pong p50 µs', scenario: 'pingpong', metric: 'p50Us', format: int, higher: false },
  { title: '(c) p99 µs', scenario: 'pingpong', metric: 'p99Us', format: int, higher: false },
  { title: '(d) setup median ms', scenario: 'setup', metric: 'medianMs', format: fixed(2), higher: false },
  { title: '(d) setup p99 ms', scenario: 'setup', metric: 'p99Ms', format: fixed(2), higher: false },
  { title: '(e) RSS KiB/conn', scenario: 'memory', metric: 'rssKiB', format: fixed(1), higher: false },
  { title: '(e) heap KiB/conn', scenario: 'memory', metric: 'heapKiB', format: fixed(1), higher: false },
]

/** The median and range of one metric over the rounds that succeeded, or undefined if none did. */
export function metric(
  results: Results,
  system: SystemName,
  scenario: ScenarioName,
  name: string,
): Spread | undefined {
  const values = (results.get(system)?.get(scenario) ?? [])
    .filter((o): o is Extract<JobOutcome, { ok: true }> => o.ok)
    .map((o) => o.values[name])
    .filter((v): v is number => v !== undefined && Number.isFinite(v))
  return values.length === 0 ? undefined : spread(values)
}

function failures(results: Results, system: SystemName, scenario: ScenarioName): string[] {
  return (results.get(system)?.get(scenario) ?? [])
    .filter((o): o is Extract<JobOutcome, { ok: false }> => !o.ok)
    .map((o) => o.reason)
}

const cellText = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ').slice(0, 160)

function cell(results: Results, system: SystemName, column: Column, notes: string[]): string {
  const s = metric(results, system, column.scenario, column.metric)
  const failed = failures(results, system, column.scenario)
  if (!s) return failed.length > 0 ? `failed: ${cellText(failed[0]!)}` : '–'
  const range = s.min === s.max ? '' : ` (${column.format(s.min)}–${column.format(s.max)})`
  if (failed.length === 0) return `${column.format(s.median)}${range}`
  const note = `${SYSTEM_LABELS[system]}, ${column.scenario}: ${failed.length} round(s) failed: ${cellText(failed[0]!)}`
  if (!notes.includes(note)) notes.push(note)
  return `${column.format(s.median)}${range} ⚠${notes.indexOf(note) + 1}`
}

/** The results table alone (also printed to the terminal). */
export function renderTable(
  results: Results,
  systems: readonly SystemName[],
): { table: string; notes: string[] } {
  const notes: string[] = []
  const lines = [
    `| System | ${COLUMNS.map((c) => c.title).join(' | ')} |`,
    `| --- | ${COLUMNS.map(() => '---:').join(' | ')} |`,
  ]
  for (const system of systems) {
    lines.push(
      `| ${SYSTEM_LABELS[system]} | ${COLUMNS.map((c) => cell(results, system, c, notes)).join(' | ')} |`,
    )
  }
  return { table: lines.join('\n'), notes }
}

const ratio = (a: Spread | undefined, b: Spread | undefined): number | undefined =>
  a && b && b.median !== 0 ? a.median / b.median : undefined

const times = (r: number | undefined): string =>
  r === undefined ? 'n/a' : r >= 10 ? `${r.toFixed(0)}×` : r >= 0.1 ? `${r.toFixed(2)}×` : `${r.toFixed(3)}×`

const RATIO_COLUMNS = COLUMNS.filter((c) =>
  ['msgsPerSec', 'mbPerSec', 'p50Us', 'medianMs', 'rssKiB'].includes(c.metric),
)

/** Parley ÷ the others, per headline metric. */
export function renderRatios(results: Results): string {
  const pairs: Array<[string, SystemName, SystemName]> = [
    ['Parley ÷ raw', 'parley', 'raw'],
    ['Parley ÷ js-libp2p', 'parley', 'libp2p'],
    ['Parley ÷ TLS 1.3', 'parley', 'tls'],
    ['Parley ÷ secret-stream', 'parley', 'secret-stream'],
    ['Parley ÷ Parley plaintext (cost of Noise)', 'parley', 'parley-plaintext'],
  ]
  const lines = [
    `| Ratio (medians) | ${RATIO_COLUMNS.map((c) => c.title).join(' | ')} |`,
    `| --- | ${RATIO_COLUMNS.map(() => '---:').join(' | ')} |`,
  ]
  for (const [label, a, b] of pairs) {
    const cells = RATIO_COLUMNS.map((c) =>
      times(ratio(metric(results, a, c.scenario, c.metric), metric(results, b, c.scenario, c.metric))),
    )
    lines.push(`| ${label} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

interface Target {
  what: string
  scenario: ScenarioName
  metric: string
  /** The bound Parley's median must meet: from another system's median, or absolute. */
  bound: (results: Results) => number | undefined
  higher: boolean
  unit: (n: number) => string
}

const m = (system: SystemName, scenario: ScenarioName, name: string) => (results: Results) =>
  metric(results, system, scenario, name)?.median

const TARGETS: Target[] = [
  {
    what: '64 B msgs ≥ 30 % of raw',
    scenario: 'oneway',
    metric: 'msgsPerSec',
    bound: (r) => (m('raw', 'oneway', 'msgsPerSec')(r) ?? Number.NaN) * 0.3,
    higher: true,
    unit: (n) => `${si(n)} msg/s`,
  },
  {
    what: '64 B msgs ≥ 50× js-libp2p',
    scenario: 'oneway',
    metric: 'msgsPerSec',
    bound: (r) => (m('libp2p', 'oneway', 'msgsPerSec')(r) ?? Number.NaN) * 50,
    higher: true,
    unit: (n) => `${si(n)} msg/s`,
  },
  {
    what: 'bulk ≥ 80 % of TLS 1.3',
    scenario: 'bulk',
    metric: 'mbPerSec',
    bound: (r) => (m('tls', 'bulk', 'mbPerSec')(r) ?? Number.NaN) * 0.8,
    higher: true,
    unit: (n) => `${int(n)} MB/s`,
  },
  {
    what: 'ping-pong p50 ≤ 1.5× raw',
    scenario: 'pingpong',
    metric: 'p50Us',
    bound: (r) => (m('raw', 'pingpong', 'p50Us')(r) ?? Number.NaN) * 1.5,
    higher: false,
    unit: (n) => `${int(n)} µs`,
  },
  {
    what: 'setup median ≤ TLS 1.3',
    scenario: 'setup',
    metric: 'medianMs',
    bound: m('tls', 'setup', 'medianMs'),
    higher: false,
    unit: (n) => `${n.toFixed(2)} ms`,
  },
  {
    what: 'setup median ≤ 1/5 of js-libp2p',
    scenario: 'setup',
    metric: 'medianMs',
    bound: (r) => (m('libp2p', 'setup', 'medianMs')(r) ?? Number.NaN) / 5,
    higher: false,
    unit: (n) => `${n.toFixed(2)} ms`,
  },
  {
    what: 'idle connection ≤ 25 KiB RSS',
    scenario: 'memory',
    metric: 'rssKiB',
    bound: () => 25,
    higher: false,
    unit: (n) => `${n.toFixed(1)} KiB`,
  },
  {
    what: 'idle connection ≤ 1/2 of js-libp2p RSS',
    scenario: 'memory',
    metric: 'rssKiB',
    bound: (r) => (m('libp2p', 'memory', 'rssKiB')(r) ?? Number.NaN) / 2,
    higher: false,
    unit: (n) => `${n.toFixed(1)} KiB`,
  },
]

/** Each target of the issue: the bound, Parley's median, met or missed and by what factor. */
export function renderTargets(results: Results): { table: string; missed: string[] } {
  const missed: string[] = []
  const lines = ['| Target | Bound | Parley | Verdict |', '| --- | ---: | ---: | --- |']
  for (const t of TARGETS) {
    const bound = t.bound(results)
    const got = metric(results, 'parley', t.scenario, t.metric)?.median
    let verdict: string
    if (bound === undefined || !Number.isFinite(bound) || got === undefined) {
      verdict = 'not measured (a system failed)'
    } else {
      const ok = t.higher ? got >= bound : got <= bound
      const factor = t.higher ? bound / got : got / bound
      verdict = ok ? 'met' : `**missed**, ${factor.toFixed(factor >= 10 ? 0 : 1)}× short`
      if (!ok)
        missed.push(
          `${t.what}: needs ${t.unit(bound)}, Parley has ${t.unit(got)} (${factor.toFixed(1)}× short)`,
        )
    }
    lines.push(
      `| ${t.what} | ${bound !== undefined && Number.isFinite(bound) ? t.unit(bound) : '–'} | ${got !== undefined ? t.unit(got) : '–'} | ${verdict} |`,
    )
  }
  return { table: lines.join('\n'), missed }
}

export interface Environment {
  date: string
  node: string
  cpu: string
  os: string
  /** 1-minute load averages at the start and the end of the run: other work on the machine skews numbers. */
  load: string
  versions: Record<string, string>
}

export interface ReportInput {
  quick: boolean
  rounds: number
  seconds: number
  plan: Record<ScenarioName, ScenarioParams>
  systems: readonly SystemName[]
  results: Results
  env: Environment
  /** Markdown of the profile section, when profiles were taken. */
  profile?: string
  /** bench/ANALYSIS.md: the hand-written diagnosis, appended as it is. */
  analysis?: string
}

export function renderReport(input: ReportInput): string {
  const { plan, env } = input
  const { table, notes } = renderTable(input.results, input.systems)
  const targets = renderTargets(input.results)
  const versions = Object.entries(env.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ')
  const count = (n: number) => n.toLocaleString('en-US')
  const out = [
    '# Benchmarks',
    '',
    `Generated by \`pnpm bench${input.quick ? ' --quick' : ''}\` (bench/, the @parley/bench package) — do not edit by hand; rerun it.`,
    '',
    `- Date: ${env.date}; ${input.quick ? 'quick' : 'full'} run, ${input.rounds} rounds, ${Math.round(input.seconds)} s in all`,
    `- Node ${env.node}; ${env.cpu}; ${env.os}; load average ${env.load}`,
    `- Packages: ${versions}`,
    '',
    '## Results',
    '',
    `Median of ${input.rounds} rounds, (min–max) when they differ. Sender and receiver are two separate Node processes on 127.0.0.1 (TCP, port 0). Rounds run one after another over all systems; in each round every system gets a fresh pair of processes for (a)–(d) and another for (e).`,
    '',
    table,
    '',
    ...notes.map((n, i) => `⚠${i + 1} ${n}  `),
    ...(notes.length > 0 ? [''] : []),
    '### Ratios',
    '',
    renderRatios(input.results),
    '',
    'Above 1× is more for throughput, slower or bigger for latency, setup and memory.',
    '',
    '### Targets (issue 6)',
    '',
    targets.table,
    '',
    '## Scenarios',
    '',
    `- **(a) one-way 64-byte messages**: ${count(plan.oneway.count)} messages; msg/s at the receiver, from message ${count(plan.oneway.warmup ?? 0)} (the first 10 % are a JIT warm-up) to the last. Parley keeps up to 2,000 unacknowledged \`send()\`s (and 8 MiB) in flight, since \`send\` resolves on the acknowledgement.`,
    `- **(b) bulk**: ${count(plan.bulk.count)} messages of ${count(BULK_PAYLOAD)} bytes of ASCII text (≈ ${Math.round((plan.bulk.count * BULK_PAYLOAD) / 1024 / 1024)} MiB; 64 KiB-ish, inside Parley's 65,535-byte text limit); MB/s (10⁶ bytes of payload) at the receiver, 10 % warm-up as in (a).`,
    `- **(c) ping-pong**: ${count(plan.pingpong.count)} round trips of a 64-byte message and its echo, after ${count(plan.pingpong.warmup ?? 0)} warm-up ones; p50/p99 of each round trip. For Parley the echo is a \`send()\` back (each side also ACKs what it gets).`,
    `- **(d) connection setup**: ${count(plan.setup.count)} fresh connections one after another, each dial + handshake + first round trip, closed before the next. Parley: each connection gets a fresh client peer (identity and Noise static key made before the clock starts), since a peer keeps one connection per remote peer.`,
    `- **(e) memory**: ${count(plan.memory.count)} connections opened and authenticated (first round trip done), then idle; the server's RSS and V8 heap growth over its post-listen baseline, divided by the connections, after forced GCs (\`--expose-gc\`). Its workers, every system alike, run with \`--max-semi-space-size=1\`: otherwise V8's young generation grows to 8 MiB semi-spaces while the connections open, a one-off per process that would add ≈ 12 KiB to every connection's share.`,
    '',
    '## Systems',
    '',
    '- **Parley**: `createPeer` + `tcpTransport()` + `noiseUpgrader({ identity })`, `send()` resolving on the ACK, the `message` event. The inbound rate limit (`rateLimit: false`) and the inbound connection cap (`maxInbound`) are lifted: they guard against abusive peers and would otherwise cut the bench off at 5,000 msg/s and 256 connections.',
    '- **Parley plaintext**: the same with `plaintextUpgrader()`: the cost of the secure channel, bench only.',
    "- **raw**: node:net with the bench's 4-byte length-prefix framer (bench/src/framing.ts): small frames of one tick coalesced into one write, large frames as header + payload in one corked write, zero-copy reads. The practical ceiling.",
    '- **TLS 1.3**: node:tls, the same framer, a self-signed ECDSA P-256 certificate made at bench start (node:crypto), verified by the client as its trust anchor.',
    '- **js-libp2p**: TCP + Noise + Yamux, one protocol stream per connection, 4-byte length-prefixed frames, one `stream.send()` per message as an application writes (no bench-side coalescing); `abortConnectionOnPingFailure: false`, connection limits lifted; `Promise.withResolvers` polyfilled in its own worker processes only (Node 20). Dials are sequential: js-libp2p joins concurrent dials to one address into one connection.',
    '- **@hyperswarm/secret-stream**: over node:net; one `write()` per message (it frames and encrypts each message itself).',
    '',
    'Every loop is bounded by its count and a time cap; a system that fails or hits the cap shows `failed: reason` instead of a number.',
  ]
  if (targets.missed.length > 0) {
    out.push('', '## Where Parley misses', '', ...targets.missed.map((t) => `- ${t}`))
  }
  if (input.profile) out.push('', input.profile)
  if (input.analysis) out.push('', input.analysis.trim())
  return `${out.join('\n')}\n`
}
