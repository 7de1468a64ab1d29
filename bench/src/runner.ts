/**
 * Runs jobs (one system, one scenario, one round) in a pair of worker processes, server and client,
 * and turns their reports into the scenario's numbers. Nothing a worker does can crash the run: a
 * worker error, an early exit or the job's time limit become `{ ok: false, reason }`.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PROFILE_ENV } from './job-profiler.js'
import type { Report, ScenarioName, ScenarioParams } from './scenarios.js'
import type { SystemName } from './systems/index.js'
import type { SystemOptions } from './systems/types.js'
import type { FromWorker, StartMessage, ToWorker } from './worker.js'

/** The compiled worker. Resolved from the package root, so it works from src/ (vitest) and dist/. */
export const DEFAULT_WORKER = fileURLToPath(new URL('../dist/worker.js', import.meta.url))

export interface JobSpec {
  system: SystemName
  scenario: ScenarioName
  params: ScenarioParams
  options: SystemOptions
}

export interface RunOptions {
  workerPath?: string
  /** Write CPU profiles of both workers' jobs into this directory (see job-profiler.ts). */
  cpuProfDir?: string
  /** Extra time beyond the scenario's cap for process start-up and handshakes. @default 20_000 ms */
  slackMs?: number
}

/**
 * The scenario's numbers (see {@link metricsOf}; `count` is always the messages, round trips or
 * connections done), or why there are none.
 */
export type JobOutcome = { ok: true; values: Record<string, number> } | { ok: false; reason: string }

/**
 * V8 flags of the memory scenario's workers, every system alike. Without a cap, opening 500 connections
 * grows V8's young generation to 8 MiB semi-spaces, a one-off of the process that a forced GC does not
 * give back and that the division by 500 would count as per-connection memory (≈ 12 KiB of it).
 */
const MEMORY_V8_FLAGS = ['--max-semi-space-size=1']

/**
 * Extra V8 flags for every worker, space-separated, from `PARLEY_BENCH_WORKER_V8_FLAGS`: for
 * experiments only (bench/ANALYSIS.md lowers `--interrupt-budget` to show what the cold start is).
 * The report names them, so a run made with them is never mistaken for a plain one.
 */
export const WORKER_V8_FLAGS: readonly string[] = (process.env.PARLEY_BENCH_WORKER_V8_FLAGS ?? '')
  .split(' ')
  .filter((f) => f !== '')

/** A forked worker with a queue of the messages it sent. */
class Worker {
  readonly child: ChildProcess
  readonly #inbox: FromWorker[] = []
  #waiter: ((msg: FromWorker) => void) | undefined
  #stderr = ''
  #exited: string | undefined

  constructor(
    path: string,
    system: SystemName,
    name: string,
    cpuProfDir: string | undefined,
    v8Flags: readonly string[] = [],
  ) {
    const execArgv = ['--expose-gc', ...v8Flags, ...WORKER_V8_FLAGS]
    // Set for profiled workers only, never inherited: unprofiled ones would all write one file.
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env[PROFILE_ENV]
    if (cpuProfDir) env[PROFILE_ENV] = join(cpuProfDir, `${name}.cpuprofile`)
    this.child = fork(path, [system], { execArgv, env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)
    })
    this.child.on('message', (msg: FromWorker) => this.#push(msg))
    this.child.on('error', (err) => this.#push({ type: 'error', message: err.message }))
    this.child.on('exit', (code, signal) => {
      this.#exited = `exited (${signal ?? code})`
      const detail = this.#stderr.trim().split('\n').filter(Boolean).slice(-1)[0]
      this.#push({
        type: 'error',
        message: `the ${name} worker ${this.#exited}${detail ? `: ${detail}` : ''}`,
      })
    })
  }

  #push(msg: FromWorker): void {
    const w = this.#waiter
    if (w) {
      this.#waiter = undefined
      w(msg)
    } else {
      this.#inbox.push(msg)
    }
  }

  send(msg: ToWorker): void {
    if (this.#exited === undefined && this.child.connected) this.child.send(msg)
  }

  /** The next message; an `error` message (or the worker's exit) rejects. */
  async next<T extends FromWorker['type']>(type: T): Promise<Extract<FromWorker, { type: T }>> {
    const msg =
      this.#inbox.shift() ??
      (await new Promise<FromWorker>((resolve) => {
        this.#waiter = resolve
      }))
    if (msg.type === 'error') throw new Error(msg.message)
    if (msg.type !== type) throw new Error(`expected ${type} from the worker, got ${msg.type}`)
    return msg as Extract<FromWorker, { type: T }>
  }

  /** Asks the worker to exit, and kills it if it has not within `ms`. */
  async stop(ms = 5_000): Promise<void> {
    if (this.#exited !== undefined || this.child.exitCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.send({ type: 'stop' })
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms)
    await exited
    clearTimeout(timer)
  }
}

/**
 * A server and a client worker for one system, reused job after job (start-up, and js-libp2p's
 * import, are paid once). A job that fails takes the pair down with it; the next job starts a
 * fresh one. `run` never throws.
 */
export class JobRunner {
  readonly #system: SystemName
  readonly #options: RunOptions
  #pair: { server: Worker; client: Worker } | undefined
  #jobs = 0

  constructor(system: SystemName, options: RunOptions = {}) {
    this.#system = system
    this.#options = options
  }

  async run(scenario: ScenarioName, params: ScenarioParams, options: SystemOptions): Promise<JobOutcome> {
    const spec: JobSpec = { system: this.#system, scenario, params, options }
    const limitMs = params.timeCapMs + (this.#options.slackMs ?? 20_000)
    const pair = this.#spawn(`${this.#system}-${scenario}`, scenario === 'memory' ? MEMORY_V8_FLAGS : [])
    let timer: NodeJS.Timeout | undefined
    const phase = { now: 'starting' }
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${Math.round(limitMs / 1000)} s, ${phase.now}`)),
        limitMs,
      )
    })
    try {
      const values = await Promise.race([this.#job(pair, spec, phase), timedOut])
      return { ok: true, values }
    } catch (err) {
      await this.close()
      return { ok: false, reason: (err as Error).message }
    } finally {
      clearTimeout(timer)
    }
  }

  #spawn(tag: string, v8Flags: readonly string[]): { server: Worker; client: Worker } {
    if (this.#pair) return this.#pair
    const path = this.#options.workerPath ?? DEFAULT_WORKER
    const dir = this.#options.cpuProfDir
    const n = this.#jobs++ === 0 ? '' : `-${this.#jobs}`
    // Both processes start at once: Node's start-up (and js-libp2p's ≈ 0.5 s import) overlap.
    this.#pair = {
      server: new Worker(path, this.#system, `server-${tag}${n}`, dir, v8Flags),
      client: new Worker(path, this.#system, `client-${tag}${n}`, dir, v8Flags),
    }
    return this.#pair
  }

  /** Runs the job's message exchange; `phase.now` says what it waits for (for a timeout's reason). */
  async #job(
    pair: { server: Worker; client: Worker },
    spec: JobSpec,
    phase: { now: string },
  ): Promise<Record<string, number>> {
    const { server, client } = pair
    const start: Omit<StartMessage, 'role'> = { type: 'start', ...spec }
    server.send({ ...start, role: 'server' })
    phase.now = 'waiting for the server to listen'
    const { port } = await server.next('ready')
    client.send({ ...start, role: 'client', port })
    phase.now = "waiting for the client's report"
    const driven = (await client.next('result')).report
    let served: Report | undefined
    if (spec.scenario === 'oneway' || spec.scenario === 'bulk') {
      phase.now = "waiting for the receiver's count"
      served = (await server.next('result')).report
    } else if (spec.scenario === 'memory') {
      server.send({ type: 'measure', expected: driven.opened ?? 0 })
      phase.now = "waiting for the server's measurement"
      served = (await server.next('result')).report
    }
    return metricsOf(spec, driven, served)
  }

  /** Stops both workers (killed if they do not exit promptly). */
  async close(): Promise<void> {
    const pair = this.#pair
    this.#pair = undefined
    if (pair) await Promise.all([pair.server.stop(), pair.client.stop()])
  }
}

/** Runs one job in two fresh workers, stopped afterwards; never throws. */
export async function runJob(spec: JobSpec, options: RunOptions = {}): Promise<JobOutcome> {
  const runner = new JobRunner(spec.system, options)
  try {
    return await runner.run(spec.scenario, spec.params, spec.options)
  } finally {
    await runner.close()
  }
}

function short(n: number): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: 0 })
}

/**
 * The scenario's numbers from the two reports. Throws (so the job fails) when a half fell short of
 * its count, which is what a time cap looks like from here.
 */
export function metricsOf(spec: JobSpec, client: Report, server: Report | undefined): Record<string, number> {
  const { scenario, params } = spec
  const need = (have: number | undefined, what: string) => {
    if (have === undefined || have < params.count) {
      throw new Error(
        `time cap of ${Math.round(params.timeCapMs / 1000)} s reached: ${short(have ?? 0)} of ${short(params.count)} ${what}`,
      )
    }
  }
  switch (scenario) {
    case 'oneway':
    case 'bulk': {
      const s = server!
      const seconds = s.seconds ?? 0
      const count = s.count ?? 0
      const measured = s.measured ?? 0
      if (count < params.count) {
        const rate = seconds > 0 && measured > 0 ? ` (≈ ${short(measured / seconds)} msg/s)` : ''
        need(count, `messages received${rate}`)
      }
      const perMessage = (cpuUs: number | undefined) =>
        cpuUs !== undefined && measured > 0 ? cpuUs / measured : Number.NaN
      return {
        count,
        msgsPerSec: measured / seconds,
        mbPerSec: (s.bytes ?? 0) / seconds / 1e6,
        senderSeconds: client.seconds ?? Number.NaN,
        // The sender's CPU runs from its warm-up boundary to the end of its sends (its last one may
        // still be in the socket), the receiver's over its measured span: a fair per-message cost.
        senderCpuUs: perMessage(client.cpuUs),
        receiverCpuUs: perMessage(s.cpuUs),
      }
    }
    case 'pingpong':
    case 'pingcold':
      need(client.roundTrips, 'round trips')
      return {
        count: client.roundTrips!,
        p50Us: client.p50Us!,
        p99Us: client.p99Us!,
        cpuUsPerRoundTrip: client.cpuUs === undefined ? Number.NaN : client.cpuUs / client.roundTrips!,
      }
    case 'setup':
      need(client.connections, 'connections')
      return { count: client.connections!, medianMs: client.medianMs!, p99Ms: client.p99Ms! }
    case 'memory': {
      need(client.opened, 'connections opened')
      const s = server!
      if ((s.connections ?? 0) < params.count) need(s.connections, 'connections seen by the server')
      return { count: s.connections!, rssKiB: s.rssKiB!, heapKiB: s.heapKiB!, externalKiB: s.externalKiB! }
    }
  }
}
