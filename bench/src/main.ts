/**
 * `pnpm bench [--quick]`: every scenario for every system, three rounds, one table.
 *
 * Options: `--quick` (the issue's smaller counts), `--rounds N` (default 3), `--systems a,b`,
 * `--scenarios a,b`, `--no-profile` (skip the profiled Parley run), `--no-fairness` (skip chat round
 * trips during a saturating transfer and the eager-sender comparison), `--file-sizes 256,1024` (MiB of
 * the file-transfer row; `--quick` makes it 64,256), `--no-files` (skip it), `--out FILE` (default
 * docs/BENCHMARKS.md; `--out -` writes nothing).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir, type } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
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
  renderRatios,
  renderReport,
  renderTable,
  renderTargets,
} from './report.js'
import { type JobOutcome, JobRunner, runJob } from './runner.js'
import { SCENARIOS, type ScenarioName } from './scenarios.js'
import { isSystemName, SYSTEMS, type SystemName } from './systems/index.js'
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
    load: `${loadAtStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end (${cpu.length} CPUs)`,
    versions,
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
      return `p50 ${Math.round(v.p50Us ?? 0)} µs, p99 ${Math.round(v.p99Us ?? 0)} µs`
    case 'setup':
      return `median ${(v.medianMs ?? 0).toFixed(2)} ms, p99 ${(v.p99Ms ?? 0).toFixed(2)} ms`
    case 'memory':
      return `${(v.rssKiB ?? 0).toFixed(1)} KiB RSS, ${(v.heapKiB ?? 0).toFixed(1)} KiB heap per connection`
  }
}

/** One profiled Parley run per scenario given: where the sender's and receiver's time goes. */
async function profileParley(plan: ReturnType<typeof planFor>, options: SystemOptions): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-prof-'))
  const sections = [
    '## What the profile shows',
    '',
    `One extra Parley (Noise) run of (a) with 100,000 messages and (b) with 1,000, not counted in the table, under \`node --cpu-prof\`; self time as a share of each process's busy time. The profiles are in \`${dir}\` (open them in Chrome DevTools), and \`node bench/dist/profile.js FILE\` prints more lines.`,
  ]
  for (const scenario of ['oneway', 'bulk'] as const) {
    // Counts enough for a stable profile, small enough to keep --quick quick.
    const count = scenario === 'oneway' ? 100_000 : 1_000
    const params = { ...plan[scenario], count, warmup: count / 10 }
    const outcome = await runJob({ system: 'parley', scenario, params, options }, { cpuProfDir: dir })
    if (!outcome.ok) {
      sections.push('', `(${scenario}: the profiled run failed: ${outcome.reason})`)
      continue
    }
    for (const [role, label] of [
      ['client', 'sender'],
      ['server', 'receiver'],
    ] as const) {
      const file = join(dir, `${role}-parley-${scenario}.cpuprofile`)
      try {
        sections.push(
          '',
          renderProfile(`(${scenario === 'oneway' ? 'a' : 'b'}) ${label}`, summarizeProfile(file, 12)),
        )
      } catch (err) {
        sections.push('', `(${scenario} ${label}: no profile: ${(err as Error).message})`)
      }
    }
  }
  return sections.join('\n')
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
    },
  })
  const quick = values.quick === true
  const rounds = Number(values.rounds)
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('--rounds must be 1…20')
  const systems = listOption<SystemName>(values.systems, SYSTEMS, 'system').filter(isSystemName)
  const scenarios = listOption<ScenarioName>(values.scenarios, SCENARIOS, 'scenario')
  const plan = planFor(quick)
  const fileSizes = parseSizes(values['file-sizes'] ?? (quick ? FILE_SIZES.quick : FILE_SIZES.full).join(','))
  const options: SystemOptions = { tls: selfSignedCertificate() }
  const started = performance.now()
  const loadAtStart = loadavg()[0]!
  const log = (line: string) => process.stderr.write(`${line}\n`)
  warnIfStale(log)
  log(
    `Parley bench, ${quick ? 'quick' : 'full'}: ${rounds} rounds × ${scenarios.length} scenarios × ${systems.length} systems`,
  )

  const results: Results = new Map(
    systems.map((s) => [s, new Map(scenarios.map((c) => [c, [] as JobOutcome[]]))]),
  )
  // Round by round, so a change in the machine's load spreads over every system. Within a round a
  // system's scenarios a–d share one pair of worker processes; (e) gets fresh ones, so its RSS
  // baseline is not inflated by what the other scenarios allocated.
  for (let round = 1; round <= rounds; round++) {
    for (const system of systems) {
      const runner = new JobRunner(system)
      for (const scenario of scenarios) {
        const t = performance.now()
        if (scenario === 'memory') await runner.close()
        const outcome =
          scenario === 'memory'
            ? await runJob({ system, scenario, params: plan[scenario], options })
            : await runner.run(scenario, plan[scenario], options)
        results.get(system)!.get(scenario)!.push(outcome)
        const took = ((performance.now() - t) / 1000).toFixed(1)
        log(
          `[round ${round}/${rounds}] ${system.padEnd(16)} ${scenario.padEnd(8)} ${describe(outcome, scenario)} (${took} s)`,
        )
      }
      await runner.close()
    }
  }

  let profile: string | undefined
  if (!values['no-profile'] && systems.includes('parley')) {
    log('profiling Parley (a) and (b) under --cpu-prof …')
    profile = await profileParley(plan, options)
  }
  let fairness: string | undefined
  if (!values['no-fairness'] && systems.includes('parley')) {
    log('fair sharing: chat round trips during a saturating transfer on the same link …')
    fairness = renderFairness(await runFairness(quick))
    log('eager senders: all sends at once against a window of 2,000 …')
    fairness += `\n${renderEager(await runEager(quick))}`
  }
  let files: string | undefined
  if (!values['no-files']) {
    log(`file transfer: ${fileSizes.map((n) => `${n} MiB`).join(', ')} over loopback …`)
    files = renderFiles(await runFiles(fileSizes, log), {
      parley: metric(results, 'parley', 'bulk', 'mbPerSec')?.median,
      tls: metric(results, 'tls', 'bulk', 'mbPerSec')?.median,
    })
  }
  const extra = [fairness, files].filter((x) => x !== undefined).join('\n')
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
      ...(extra ? [extra] : []),
      `${quick ? 'quick' : 'full'} run: ${Math.round(seconds)} s`,
      '',
    ].join('\n'),
  )
  if (values.out !== '-') {
    const out = resolve(values.out ?? '')
    // The hand-written diagnosis goes with the numbers it explains.
    let analysis: string | undefined
    try {
      analysis = readFileSync(join(ROOT, 'ANALYSIS.md'), 'utf8')
    } catch {
      analysis = undefined
    }
    const report = renderReport({
      quick,
      rounds,
      seconds,
      plan,
      systems,
      results,
      env: environment(loadAtStart),
      ...(profile ? { profile } : {}),
      ...(analysis ? { analysis } : {}),
    })
    writeFileSync(out, extra ? `${report.trimEnd()}\n\n${extra}` : report)
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
