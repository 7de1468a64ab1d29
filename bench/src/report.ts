/** Turns the rounds' outcomes into the Markdown of docs/BENCHMARKS.md. */
import { BULK_PAYLOAD } from './plan.js'
import { type Results, renderRatios, renderTargets, verdicts, verdictText } from './ratios.js'
import type { JobOutcome } from './runner.js'
import type { ScenarioName, ScenarioParams } from './scenarios.js'
import { type Spread, spread } from './stats.js'
import { SYSTEM_LABELS, type SystemName } from './systems/index.js'

export { type Results, renderRatios, renderTargets } from './ratios.js'

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
  {
    title: '(a) sender CPU µs/msg',
    scenario: 'oneway',
    metric: 'senderCpuUs',
    format: fixed(2),
    higher: false,
  },
  {
    title: '(a) receiver CPU µs/msg',
    scenario: 'oneway',
    metric: 'receiverCpuUs',
    format: fixed(2),
    higher: false,
  },
  { title: '(b) bulk MB/s', scenario: 'bulk', metric: 'mbPerSec', format: int, higher: true },
  { title: '(c) ping-pong p50 µs', scenario: 'pingpong', metric: 'p50Us', format: int, higher: false },
  { title: '(c) p99 µs', scenario: 'pingpong', metric: 'p99Us', format: int, higher: false },
  {
    title: '(c) CPU µs/round trip',
    scenario: 'pingpong',
    metric: 'cpuUsPerRoundTrip',
    format: fixed(1),
    higher: false,
  },
  { title: '(c′) cold p50 µs', scenario: 'pingcold', metric: 'p50Us', format: int, higher: false },
  { title: '(c′) cold p99 µs', scenario: 'pingcold', metric: 'p99Us', format: int, higher: false },
  {
    title: '(c′) cold CPU µs/round trip',
    scenario: 'pingcold',
    metric: 'cpuUsPerRoundTrip',
    format: fixed(1),
    higher: false,
  },
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
  if (!s && failed.length === 0) return '–'
  // The reason goes in a note under the table, once per system and scenario, not in every column.
  const note = `${SYSTEM_LABELS[system]}, ${column.scenario}: ${failed.length} round(s) failed: ${cellText(failed[0] ?? '')}`
  if (failed.length > 0 && !notes.includes(note)) notes.push(note)
  const mark = failed.length > 0 ? ` ⚠${notes.indexOf(note) + 1}` : ''
  if (!s) return `failed${mark}`
  const range = s.min === s.max ? '' : ` (${column.format(s.min)}–${column.format(s.max)})`
  return `${column.format(s.median)}${range}${mark}`
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

export interface Environment {
  date: string
  node: string
  cpu: string
  os: string
  /** 1-minute load averages at the start and the end of the run: other work on the machine skews numbers. */
  load: string
  versions: Record<string, string>
  /** How js-libp2p ran: on this Node, natively or with the Promise.withResolvers polyfill. */
  libp2p: string
  /** Extra V8 flags every worker ran with (PARLEY_BENCH_WORKER_V8_FLAGS), when any. */
  workerFlags?: string
}

/** One `pnpm bench` run, on one Node version. */
export interface Run {
  rounds: number
  seconds: number
  results: Results
  env: Environment
  /** Markdown of the profile section, when profiles were taken. */
  profile?: string
  /** Markdown of the fair-sharing, eager-sender and file-transfer sections, when run. */
  fairness?: string
}

export interface ReportInput {
  quick: boolean
  plan: Record<ScenarioName, ScenarioParams>
  systems: readonly SystemName[]
  /** One run per Node version (`pnpm bench:all`: Node 20, then Node 24). */
  runs: Run[]
  /** bench/ANALYSIS.md: the hand-written diagnosis, appended as it is. */
  analysis?: string
}

const major = (node: string) => node.replace(/^v(\d+).*$/, 'Node $1')

/** With several Node versions: every target's verdict side by side, one column per version. */
function renderTargetsByNode(runs: readonly Run[]): string {
  const all = runs.map((r) => verdicts(r.results))
  const lines = [
    `| Target | Bound | ${runs.map((r) => major(r.env.node)).join(' | ')} |`,
    `| --- | ---: | ${runs.map(() => '---').join(' | ')} |`,
  ]
  all[0]!.forEach((v, i) => {
    const cells = all.map((vs) =>
      vs[i]!.met === undefined ? verdictText(vs[i]!) : `${vs[i]!.got}: ${verdictText(vs[i]!)}`,
    )
    lines.push(`| ${v.what} | ${v.bound} | ${cells.join(' | ')} |`)
  })
  return lines.join('\n')
}

function renderRun(input: ReportInput, run: Run, level: string): string[] {
  const { env } = run
  const { table, notes } = renderTable(run.results, input.systems)
  const targets = renderTargets(run.results)
  const versions = Object.entries(env.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ')
  const out = [
    `- Date: ${env.date}; ${input.quick ? 'quick' : 'full'} run, ${run.rounds} rounds, ${Math.round(run.seconds)} s in all`,
    `- Node ${env.node}; ${env.cpu}; ${env.os}; load average ${env.load}`,
    `- Packages: ${versions}`,
    `- js-libp2p: ${env.libp2p}`,
    ...(env.workerFlags
      ? [
          `- **Every worker ran with the V8 flags \`${env.workerFlags}\`**: an experiment, not Node's defaults`,
        ]
      : []),
    '',
    `${level} Results`,
    '',
    `Median of ${run.rounds} rounds, (min–max) when they differ. Sender and receiver are two separate Node processes on 127.0.0.1 (TCP, port 0). In each round every scenario runs for every system back to back, the systems' order reversed every other round; each system keeps one pair of processes for (a)–(d) of a round, (c′) and (e) get fresh ones.`,
    '',
    table,
    '',
    ...notes.map((n, i) => `⚠${i + 1} ${n}  `),
    ...(notes.length > 0 ? [''] : []),
    `${level}# Ratios`,
    '',
    renderRatios(run.results),
    '',
    "Each round's ratio is taken between numbers measured back to back; the cell is their median and range. Above 1× is more for throughput, slower, costlier or bigger for latency, CPU, setup and memory.",
    '',
    `${level}# Targets (issues 6 and 18)`,
    '',
    targets.table,
    '',
  ]
  if (targets.missed.length > 0) {
    out.push(`${level}# Where Parley misses`, '', ...targets.missed.map((t) => `- ${t}`), '')
  }
  // The profile and fairness sections are written as top-level sections; one level down under a Node heading.
  const nest = (md: string) => (level === '##' ? md : md.replace(/^(#+) /gm, '#$1 '))
  if (run.profile) out.push(nest(run.profile), '')
  if (run.fairness) out.push(`${level} Fair sharing and eager senders`, '', nest(run.fairness.trim()), '')
  return out
}

export function renderReport(input: ReportInput): string {
  const { plan, runs } = input
  const count = (n: number) => n.toLocaleString('en-US')
  const command = runs.length > 1 ? 'pnpm bench:all' : 'pnpm bench'
  const out = [
    '# Benchmarks',
    '',
    `Generated by \`${command}${input.quick ? ' --quick' : ''}\` (bench/, the @parley/bench package) — do not edit by hand; rerun it. \`pnpm bench\` runs on the Node that runs it; \`pnpm bench:all\` runs it on Node 20 and on Node 24 and reports both.`,
    '',
  ]
  if (runs.length > 1) {
    out.push('## Targets by Node version', '', renderTargetsByNode(runs), '')
    for (const run of runs) out.push(`## ${major(run.env.node)}`, '', ...renderRun(input, run, '###'))
  } else {
    out.push(...renderRun(input, runs[0]!, '##'))
  }
  out.push(
    '## Scenarios',
    '',
    `- **(a) one-way 64-byte messages**: ${count(plan.oneway.count)} messages; msg/s at the receiver, from message ${count(plan.oneway.warmup ?? 0)} (the first 10 % are a JIT warm-up) to the last. CPU per message is \`process.cpuUsage()\` (user + system) over the same messages, on each side. Parley keeps up to 2,000 unacknowledged \`send()\`s (and 8 MiB) in flight, since \`send\` resolves on the acknowledgement.`,
    `- **(b) bulk**: ${count(plan.bulk.count)} messages of ${count(BULK_PAYLOAD)} bytes of ASCII text (≈ ${Math.round((plan.bulk.count * BULK_PAYLOAD) / 1024 / 1024)} MiB; 64 KiB-ish, inside Parley's 65,535-byte text limit); MB/s (10⁶ bytes of payload) at the receiver, 10 % warm-up as in (a).`,
    `- **(c) ping-pong**: ${count(plan.pingpong.count)} round trips of a 64-byte message and its echo, after ${count(plan.pingpong.warmup ?? 0)} warm-up ones, on processes warmed by (a) and (b); p50/p99 of each round trip. For Parley the echo is a \`send()\` back (each side also ACKs what it gets). CPU per round trip is the pinging process's \`process.cpuUsage()\` (user + system) over the measured round trips; the echoing side does the same work.`,
    `- **(c′) cold ping-pong**: as (c), but a connection's first round trips in fresh processes, as a chat starts: ${count(plan.pingcold.count)} measured after ${count(plan.pingcold.warmup ?? 0)} warm-up ones.`,
    `- **(d) connection setup**: ${count(plan.setup.count)} fresh connections one after another, each dial + handshake + first round trip, closed before the next. Parley: each connection gets a fresh client peer (identity and Noise static key made before the clock starts), since a peer keeps one connection per remote peer.`,
    `- **(e) memory**: ${count(plan.memory.count)} connections opened and authenticated (first round trip done), then idle; the server's RSS and V8 heap growth over its post-listen baseline, divided by the connections, after forced GCs (\`--expose-gc\`). Its workers, every system alike, run with \`--max-semi-space-size=1\`: otherwise V8's young generation grows to 8 MiB semi-spaces while the connections open, a one-off per process that would add ≈ 12 KiB to every connection's share.`,
    '',
    '## Systems',
    '',
    '- **Parley**: `createPeer` + `tcpTransport()` + `noiseUpgrader({ identity })`, `send()` resolving on the ACK, the `message` event. The inbound rate limit (`rateLimit: false`) and the inbound connection cap (`maxInbound`) are lifted: they guard against abusive peers, and would otherwise hold the bench to 4,000 msg/s (a sender keeps to 80 % of the rate budget it assumes the remote gives it) and 256 connections.',
    "- **Parley, cipher: 'AESGCM'**: the same with `noiseUpgrader({ identity, cipher: 'AESGCM' })`: AES-256-GCM (`Noise_XX_25519_AESGCM_SHA256`) on this CPU's AES instructions (the row is left out on a CPU without them, where the option falls back to ChaCha20-Poly1305). Run in (a), (b), where a faster cipher would show, and (c), to show what it costs small records.",
    '- **Parley plaintext**: the same with `plaintextUpgrader()`: the cost of the secure channel, bench only.',
    "- **raw**: node:net with the bench's 4-byte length-prefix framer (bench/src/framing.ts): small frames of one tick coalesced into one write, as Node's documentation recommends for many small writes (`writable.cork()`), large frames as header + payload in one corked write, zero-copy reads. The practical ceiling, and the reference of the targets.",
    '- **TLS 1.3**: node:tls, the same framer, a self-signed ECDSA P-256 certificate made at bench start (node:crypto), verified by the client as its trust anchor.',
    '- **raw and TLS 1.3, one write per message**: the same sockets written the naive way, one `socket.write()` of header + payload per message (TLS: one record each, which node:tls hands to the socket together while an earlier write is under way), run in (a) only: in (b) a frame goes out alone either way, and in (c) a tick holds one frame. They show what the framer is worth; no target uses them.',
    '- **js-libp2p**: TCP + Noise + Yamux, one protocol stream per connection, 4-byte length-prefixed frames, one `stream.send()` per message, waiting for `drain` when it returns false, as its stream interface documents; it has no batching call of its own, so there is no separate naive row (no bench-side coalescing either: that is the raw and TLS framer, not part of js-libp2p). `abortConnectionOnPingFailure: false`, connection limits lifted. It runs on the same Node as the other systems; on Node 20 its worker processes (only they) get a `Promise.withResolvers` polyfill, which it needs and Node 20 lacks, and its p-retry (reconnections only) is 7.1.1 instead of 8, which asks for Node 22. Dials are sequential: js-libp2p joins concurrent dials to one address into one connection.',
    '- **@hyperswarm/secret-stream**: over node:net; one `write()` per message, as its README uses it (it frames and encrypts each message itself, and documents no batching), so its one row is both the recommended and the naive use.',
    '',
    'Every loop is bounded by its count and a time cap; a system that fails or hits the cap shows `failed: reason` instead of a number.',
  )
  if (input.analysis) out.push('', input.analysis.trim())
  return `${out.join('\n')}\n`
}
