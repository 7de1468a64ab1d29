#!/usr/bin/env node
// `vitest run` with a watchdog, as every package's `test` script. Vitest prints a line as each test
// file finishes and bounds every test and hook by a timeout, so a run that prints nothing for
// PARLEY_TEST_STALL_SECONDS (default 300; the slowest file takes about 70 s) is hung outside any
// test (CI saw it twice, rarely and not reproducibly: a worker idle, nothing more printed). Then the
// watchdog prints the run's processes and each Node process's JavaScript stack (a diagnostic report),
// kills the run and starts it once more, saying so. The exit code is the last run's.
//
// The run gets a process group of its own: whatever it leaves behind (a peer process a test spawned)
// is killed when it ends, instead of holding the output pipe open for whoever waits on it (turbo).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const stallSeconds = Number(process.env.PARLEY_TEST_STALL_SECONDS)
const stallMs = (Number.isFinite(stallSeconds) && stallSeconds > 0 ? stallSeconds : 300) * 1000
const args = ['run', ...process.argv.slice(2)]
const vitest = join(process.cwd(), 'node_modules', '.bin', 'vitest')
const reports = mkdtempSync(join(tmpdir(), 'parley-vitest-'))
const reportOptions = `--report-on-signal --report-signal=SIGUSR2 --report-directory=${reports}`

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal)
  } catch {
    // The group is empty: nothing left behind.
  }
}

/** The run in progress: killed with us if we are interrupted (it has a process group of its own). */
let current
for (const [signal, number] of [
  ['SIGINT', 2],
  ['SIGTERM', 15],
  ['SIGHUP', 1],
]) {
  process.on(signal, () => {
    if (current) killGroup(current.pid, 'SIGKILL')
    rmSync(reports, { recursive: true, force: true })
    process.exit(128 + number)
  })
}

/** One vitest run; resolves with its exit code, or 'stalled'. */
function runOnce() {
  for (const file of readdirSync(reports)) rmSync(join(reports, file), { force: true })
  return new Promise((resolve) => {
    const child = spawn(vitest, args, {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${reportOptions}`.trim() },
    })
    current = child
    let last = Date.now()
    child.stdout.on('data', (chunk) => {
      last = Date.now()
      process.stdout.write(chunk)
    })
    child.stderr.on('data', (chunk) => {
      last = Date.now()
      process.stderr.write(chunk)
    })
    const watch = setInterval(() => {
      if (Date.now() - last < stallMs) return
      clearInterval(watch)
      diagnose(child.pid)
      child.removeAllListeners('exit')
      killGroup(child.pid, 'SIGKILL')
      resolve('stalled')
    }, 1000)
    // On 'exit' the pipes may still hold vitest's last lines, and a process left behind may hold
    // them open: kill what is left (closing its ends), then wait for 'close', at most 2 s.
    child.on('exit', (code, signal) => {
      clearInterval(watch)
      killGroup(child.pid, 'SIGKILL')
      const result = code ?? (signal ? 1 : 0)
      const timer = setTimeout(() => resolve(result), 2000)
      child.on('close', () => {
        clearTimeout(timer)
        resolve(result)
      })
    })
  })
}

function diagnose(pgid) {
  console.error(`\n[vitest-run] nothing printed for ${stallMs / 1000} s: the run is hung. Its processes:`)
  const ps = spawnSync('ps', ['-o', 'pid,ppid,stat,etime,pcpu,args', '-g', String(pgid)], {
    encoding: 'utf8',
  })
  console.error(ps.stdout)
  let asked = 0
  for (const line of ps.stdout.split('\n').slice(1)) {
    const pid = Number(line.trim().split(/\s+/)[0])
    if (pid > 0 && /node|vitest/.test(line)) {
      try {
        process.kill(pid, 'SIGUSR2')
        asked++
      } catch {}
    }
  }
  // The reports are written within moments of the signal.
  for (let i = 0; i < 10 && readdirSync(reports).length < asked; i++) spawnSync('sleep', ['0.5'])
  for (const file of readdirSync(reports)) {
    try {
      const report = JSON.parse(readFileSync(join(reports, file), 'utf8'))
      const counts = {}
      for (const h of report.libuv ?? []) if (h.is_active) counts[h.type] = (counts[h.type] ?? 0) + 1
      const handles = Object.entries(counts).map(([type, n]) => `${type} × ${n}`)
      console.error(
        `[vitest-run] process ${report.header?.processId} (${report.header?.commandLine?.join(' ')}):`,
      )
      console.error(`  JavaScript stack: ${report.javascriptStack?.message ?? ''}`)
      for (const frame of (report.javascriptStack?.stack ?? []).slice(0, 12)) console.error(`    ${frame}`)
      console.error(`  active handles: ${handles.join(', ') || 'none'}`)
    } catch {
      // A report half written: skip it.
    }
  }
}

// Run by hand (`pnpm --filter cli test`, not through turbo, which builds every dependency first): the
// workspace packages the tests import are built first, as `start` does, or a fresh clone would fail
// to resolve them. Quietly; the output only if the build fails.
// biome-ignore lint/suspicious/noUndeclaredEnvVars: turbo sets it in every task it runs; it changes no result
if (process.env.TURBO_HASH === undefined) {
  const root = join(import.meta.dirname, '..')
  const { name } = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8'))
  const built = spawnSync(
    'pnpm',
    ['exec', 'turbo', 'run', 'build', `--filter=${name}...`, '--only', '--output-logs=errors-only'],
    { cwd: root, encoding: 'utf8', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', NO_COLOR: '1' } },
  )
  if (built.status !== 0) {
    process.stderr.write(
      `${built.stdout ?? ''}${built.stderr ?? ''}\nthe build before the tests failed; see above\n`,
    )
    process.exit(1)
  }
}

let code = await runOnce()
if (code === 'stalled') {
  console.error('[vitest-run] running the whole package again, once (the hung run counts for nothing)')
  code = await runOnce()
  if (code === 'stalled') {
    console.error('[vitest-run] hung again: failing')
    code = 1
  }
}
rmSync(reports, { recursive: true, force: true })
process.exit(code)
