/**
 * Ratios and the targets, taken per round: in each round every system runs a scenario back
 * to back, so Parley ÷ raw of one round compares numbers measured seconds apart, under the same
 * load. The verdict is the median of those per-round ratios, with their range, never a ratio of
 * medians (which can pair a fast round of one system with a slow round of the other).
 */
import type { JobOutcome } from './runner.js'
import type { ScenarioName } from './scenarios.js'
import { type Spread, spread } from './stats.js'
import type { SystemName } from './systems/index.js'

/** Outcomes of every round, by system and scenario; index i is round i + 1 (failed rounds included). */
export type Results = Map<SystemName, Map<ScenarioName, JobOutcome[]>>

export function metricOf(outcome: JobOutcome | undefined, metric: string): number | undefined {
  if (!outcome?.ok) return undefined
  const v = outcome.values[metric]
  return v !== undefined && Number.isFinite(v) ? v : undefined
}

/** a ÷ b of one metric in every round where both have it. */
export function perRoundRatios(
  results: Results,
  a: SystemName,
  b: SystemName,
  scenario: ScenarioName,
  metric: string,
): number[] {
  const as = results.get(a)?.get(scenario) ?? []
  const bs = results.get(b)?.get(scenario) ?? []
  const out: number[] = []
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = metricOf(as[i], metric)
    const y = metricOf(bs[i], metric)
    if (x !== undefined && y !== undefined && y !== 0) out.push(x / y)
  }
  return out
}

export const times = (r: number): string =>
  !Number.isFinite(r)
    ? 'n/a'
    : r >= 10
      ? `${r.toFixed(0)}×`
      : r >= 0.1
        ? `${r.toFixed(2)}×`
        : `${r.toFixed(3)}×`

export function spreadText(s: Spread | undefined, format: (n: number) => string = times): string {
  if (!s) return 'n/a'
  return s.min === s.max ? format(s.median) : `${format(s.median)} (${format(s.min)}–${format(s.max)})`
}

const RATIO_METRICS: Array<{ title: string; scenario: ScenarioName; metric: string }> = [
  { title: '(a) 64 B msg/s', scenario: 'oneway', metric: 'msgsPerSec' },
  { title: '(a) sender CPU/msg', scenario: 'oneway', metric: 'senderCpuUs' },
  { title: '(b) bulk MB/s', scenario: 'bulk', metric: 'mbPerSec' },
  { title: '(c) ping-pong p50', scenario: 'pingpong', metric: 'p50Us' },
  { title: '(c) CPU/round trip', scenario: 'pingpong', metric: 'cpuUsPerRoundTrip' },
  { title: '(c′) cold ping-pong p50', scenario: 'pingcold', metric: 'p50Us' },
  { title: '(c′) cold CPU/round trip', scenario: 'pingcold', metric: 'cpuUsPerRoundTrip' },
  { title: '(d) setup median', scenario: 'setup', metric: 'medianMs' },
  { title: '(e) RSS/conn', scenario: 'memory', metric: 'rssKiB' },
]

/** Parley ÷ the others, per headline metric: median of the per-round ratios (range). */
export function renderRatios(results: Results): string {
  const pairs: Array<[string, SystemName, SystemName]> = [
    ['Parley ÷ raw', 'parley', 'raw'],
    ['Parley ÷ js-libp2p', 'parley', 'libp2p'],
    ['Parley ÷ TLS 1.3', 'parley', 'tls'],
    ['Parley ÷ raw, one write per message', 'parley', 'raw-naive'],
    ['Parley ÷ TLS 1.3, one write per message', 'parley', 'tls-naive'],
    ["Parley, cipher: 'AESGCM' ÷ TLS 1.3", 'parley-aesgcm', 'tls'],
    ["Parley, cipher: 'AESGCM' ÷ Parley", 'parley-aesgcm', 'parley'],
    ['Parley ÷ secret-stream', 'parley', 'secret-stream'],
    ['Parley ÷ Parley plaintext (cost of Noise)', 'parley', 'parley-plaintext'],
  ]
  const lines = [
    `| Ratio per round: median (range) | ${RATIO_METRICS.map((c) => c.title).join(' | ')} |`,
    `| --- | ${RATIO_METRICS.map(() => '---:').join(' | ')} |`,
  ]
  for (const [label, a, b] of pairs) {
    if (!results.has(a) || !results.has(b)) continue
    const cells = RATIO_METRICS.map((c) => {
      const r = perRoundRatios(results, a, b, c.scenario, c.metric)
      return r.length === 0 ? 'n/a' : spreadText(spread(r))
    })
    lines.push(`| ${label} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

interface Target {
  what: string
  /** The Parley system judged. @default 'parley' (the defaults) */
  system?: SystemName
  scenario: ScenarioName
  metric: string
  /** Parley's metric against this system's, same round; absent: against an absolute bound. */
  reference?: SystemName
  /** The bound: a factor of the reference's number, or the absolute value. */
  bound: number
  /** true: Parley's number must be at least the bound; false: at most. */
  higher: boolean
  unit?: (n: number) => string
}

export const TARGETS: Target[] = [
  {
    what: '64 B msgs ≥ 30 % of raw',
    scenario: 'oneway',
    metric: 'msgsPerSec',
    reference: 'raw',
    bound: 0.3,
    higher: true,
  },
  {
    what: '64 B msgs ≥ 50× js-libp2p',
    scenario: 'oneway',
    metric: 'msgsPerSec',
    reference: 'libp2p',
    bound: 50,
    higher: true,
  },
  {
    what: 'bulk ≥ 80 % of TLS 1.3',
    scenario: 'bulk',
    metric: 'mbPerSec',
    reference: 'tls',
    bound: 0.8,
    higher: true,
  },
  {
    what: "bulk ≥ 80 % of TLS 1.3, with cipher: 'AESGCM'",
    system: 'parley-aesgcm',
    scenario: 'bulk',
    metric: 'mbPerSec',
    reference: 'tls',
    bound: 0.8,
    higher: true,
  },
  {
    what: 'ping-pong p50 ≤ 1.5× raw',
    scenario: 'pingpong',
    metric: 'p50Us',
    reference: 'raw',
    bound: 1.5,
    higher: false,
  },
  {
    what: 'cold ping-pong p50 ≤ 1.5× raw (first 2,000 round trips)',
    scenario: 'pingcold',
    metric: 'p50Us',
    reference: 'raw',
    bound: 1.5,
    higher: false,
  },
  {
    what: 'setup median ≤ TLS 1.3',
    scenario: 'setup',
    metric: 'medianMs',
    reference: 'tls',
    bound: 1,
    higher: false,
  },
  {
    what: 'setup median ≤ 1/5 of js-libp2p',
    scenario: 'setup',
    metric: 'medianMs',
    reference: 'libp2p',
    bound: 0.2,
    higher: false,
  },
  {
    what: 'idle connection ≤ 25 KiB RSS',
    scenario: 'memory',
    metric: 'rssKiB',
    bound: 25,
    higher: false,
    unit: (n) => `${n.toFixed(1)} KiB`,
  },
  {
    what: 'idle connection ≤ 1/2 of js-libp2p RSS',
    scenario: 'memory',
    metric: 'rssKiB',
    reference: 'libp2p',
    bound: 0.5,
    higher: false,
  },
]

export interface Verdict {
  what: string
  /** Per round: Parley ÷ reference, or Parley's own number for an absolute bound. */
  rounds: number[]
  /** The bound as text: `≥ 0.30×`, `≤ 25.0 KiB`. */
  bound: string
  got: string
  met: boolean | undefined
  /** How far from the bound the median is (≥ 1), when missed. */
  short: number | undefined
  /** Rounds that met the bound, of those measured. */
  roundsMet: number
}

export function verdicts(results: Results): Verdict[] {
  return TARGETS.map((t) => {
    const system = t.system ?? 'parley'
    const rounds = t.reference
      ? perRoundRatios(results, system, t.reference, t.scenario, t.metric)
      : (results.get(system)?.get(t.scenario) ?? [])
          .map((o) => metricOf(o, t.metric))
          .filter((v): v is number => v !== undefined)
    const format = t.unit ?? times
    const bound = `${t.higher ? '≥' : '≤'} ${format(t.bound)}`
    if (rounds.length === 0) {
      const ran = results.has(system) && (t.reference === undefined || results.has(t.reference))
      return {
        what: t.what,
        rounds,
        bound,
        got: ran ? 'not measured' : 'not run',
        met: undefined,
        short: undefined,
        roundsMet: 0,
      }
    }
    const s = spread(rounds)
    const ok = (v: number) => (t.higher ? v >= t.bound : v <= t.bound)
    const met = ok(s.median)
    return {
      what: t.what,
      rounds,
      bound,
      got: spreadText(s, format),
      met,
      short: met ? undefined : t.higher ? t.bound / s.median : s.median / t.bound,
      roundsMet: rounds.filter(ok).length,
    }
  })
}

export function verdictText(v: Verdict): string {
  if (v.met === undefined) return v.got === 'not run' ? 'not run' : 'not measured (a system failed)'
  const rounds = `${v.roundsMet} of ${v.rounds.length} rounds`
  if (v.met) return `met (${rounds})`
  const f = v.short ?? 1
  return `**missed**, ${f.toFixed(f >= 10 ? 0 : 2)}× short (${rounds} met)`
}

/** Each target: the bound, Parley's per-round ratio (median, range), met or missed. */
export function renderTargets(results: Results): { table: string; missed: string[] } {
  const missed: string[] = []
  const lines = [
    '| Target | Bound | Parley ÷ reference per round: median (range) | Verdict |',
    '| --- | ---: | ---: | --- |',
  ]
  for (const v of verdicts(results)) {
    lines.push(`| ${v.what} | ${v.bound} | ${v.got} | ${verdictText(v)} |`)
    if (v.met === false) missed.push(`${v.what}: ${v.got} per round, ${(v.short ?? 1).toFixed(2)}× short`)
  }
  return { table: lines.join('\n'), missed }
}
