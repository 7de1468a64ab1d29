/**
 * A worker process: one half (server or client) of one scenario for one system. Started by the
 * runner with child_process.fork; talks to it over IPC only:
 *
 * A worker may run several jobs of its system one after another (the runner reuses the pair for
 * scenarios a–d of a round); a new `start` first closes what the previous job left open.
 *
 * ```
 *  runner ── start{role: server} ──▶ server ── ready{port} ──▶ runner
 *  runner ── start{role: client, port} ──▶ client ── result ──▶ runner
 *  server ── result ──▶ runner            (oneway, bulk: counted at the receiver)
 *  runner ── measure{expected} ──▶ server ── result ──▶ runner   (memory)
 *  runner ── stop ──▶ both: exit at once, connections and all
 * ```
 *
 * Only the system under test is imported (named in argv[2], so the import overlaps start-up), so
 * js-libp2p (and its Promise.withResolvers polyfill) loads in js-libp2p workers alone.
 */
import { startJobProfile, writeJobProfile } from './job-profiler.js'
import { drive, type ScenarioName, type ScenarioParams, serve } from './scenarios.js'
import { isSystemName, type SystemName, systemFactory } from './systems/index.js'
import type { SystemOptions } from './systems/types.js'

export interface StartMessage {
  type: 'start'
  role: 'server' | 'client'
  system: SystemName
  scenario: ScenarioName
  params: ScenarioParams
  options: SystemOptions
  port?: number
}

export type ToWorker = StartMessage | { type: 'measure'; expected: number } | { type: 'stop' }

export type FromWorker =
  | { type: 'ready'; port: number }
  | { type: 'result'; report: Record<string, number> }
  | { type: 'error'; message: string }

function post(message: FromWorker): void {
  process.send?.(message)
}

function fail(err: unknown): void {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  post({ type: 'error', message })
}

// The runner names the system on the command line so its import starts before the start message
// arrives (js-libp2p takes ≈ 0.5 s to import); a failed import is reported on start.
const preloadName = process.argv[2]
const preloaded =
  preloadName !== undefined && isSystemName(preloadName) ? systemFactory(preloadName) : undefined
preloaded?.catch(() => {})

let measure: ((expected: number) => Promise<Record<string, number>>) | undefined
/** Closes what the previous job left open, when this worker runs another job. */
let closeCurrent: (() => Promise<void>) | undefined

/** Bounded: a close that hangs must not hold up the next job (the runner's limit would fail it). */
async function closePrevious(): Promise<void> {
  const close = closeCurrent
  closeCurrent = undefined
  measure = undefined
  if (!close) return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    close().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 3_000)
    }),
  ])
  clearTimeout(timer)
}

async function start(msg: StartMessage): Promise<void> {
  await closePrevious()
  const factory = await (msg.system === preloadName && preloaded ? preloaded : systemFactory(msg.system))
  const system = await factory(msg.options)
  await startJobProfile()
  if (msg.role === 'server') {
    const run = await serve(system, msg.scenario, msg.params)
    closeCurrent = () => run.close()
    measure = run.measure?.bind(run)
    post({ type: 'ready', port: run.port })
    if (run.report) post({ type: 'result', report: await run.report })
    return
  }
  if (msg.port === undefined) throw new Error('a client needs the server port')
  const driven = await drive(system, msg.scenario, msg.params, msg.port)
  closeCurrent = () => driven.close()
  post({ type: 'result', report: driven.report })
}

process.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'start':
      start(msg).catch(fail)
      return
    case 'measure':
      if (!measure) return fail(new Error('this scenario has nothing to measure'))
      measure(msg.expected).then((report) => post({ type: 'result', report }), fail)
      return
    case 'stop':
      // Exit without closing anything gracefully: the run is over, and a graceful close of hundreds
      // of connections would only cost time. A profile is written first; a failed write exits too.
      writeJobProfile().finally(() => process.exit(0))
      return
  }
})

// A library error nobody awaits must reach the runner as a failure, not kill the worker silently.
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)
// The runner went away: nothing left to do.
process.on('disconnect', () => process.exit(0))
