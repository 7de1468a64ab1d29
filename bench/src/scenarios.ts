/**
 * The five scenarios, written once against {@link System}. Each has a server half (run in one
 * worker process) and a client half (run in another). Every loop is bounded by its count and by the
 * scenario's time cap; hitting the cap ends the loop early and the partial count tells the
 * orchestrator what happened.
 */
import { performance } from 'node:perf_hooks'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { quantile } from './stats.js'
import type { Channel, Dialer, Payload, System } from './systems/types.js'

export const SCENARIOS = ['oneway', 'bulk', 'pingpong', 'pingcold', 'setup', 'memory'] as const
/** Scenarios run in fresh worker processes of their own (a cold start, or a clean memory baseline). */
export const FRESH_SCENARIOS: readonly ScenarioName[] = ['pingcold', 'memory']
export type ScenarioName = (typeof SCENARIOS)[number]

export interface ScenarioParams {
  /** Messages (oneway, bulk), measured round trips (pingpong) or connections (setup, memory). */
  count: number
  /** Payload bytes of each message. */
  size: number
  /** Wall-clock bound of the scenario's loops, in ms. */
  timeCapMs: number
  /** Messages (oneway, bulk) or round trips (pingpong) sent first and left out of the numbers. @default 0 */
  warmup?: number
}

/** Numbers a half reports to the orchestrator. */
export type Report = Record<string, number>

/** The server half, listening. */
export interface ServerRun {
  readonly port: number
  /** Stops listening and closes what the scenario opened (when the worker runs another job next). */
  close(): Promise<void>
  /** Settles once the server has its numbers (oneway, bulk); undefined when it reports none. */
  readonly report: Promise<Report> | undefined
  /** memory only: measure once the client has opened `expected` connections. */
  measure?(expected: number): Promise<Report>
}

/** Thrown when a scenario's time cap runs out while it waits. */
export class TimeCapError extends Error {
  constructor(ms: number) {
    super(`time cap of ${ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`} reached`)
    this.name = 'TimeCapError'
  }
}

/** Runs `loop`; a time cap that runs out inside it ends it early (the counts say how far it got). */
async function capped(loop: () => Promise<void>): Promise<void> {
  try {
    await loop()
  } catch (err) {
    if (!(err instanceof TimeCapError)) throw err
  }
}

/** One timer for a whole loop: `wait(p)` rejects with TimeCapError once the cap has run out. */
class Deadline {
  readonly #ms: number
  readonly #timer: NodeJS.Timeout
  readonly #waiting = new Set<(err: Error) => void>()
  #expired = false

  constructor(ms: number) {
    this.#ms = ms
    this.#timer = setTimeout(() => {
      this.#expired = true
      for (const reject of this.#waiting) reject(new TimeCapError(ms))
      this.#waiting.clear()
    }, ms)
  }

  get expired(): boolean {
    return this.#expired
  }

  wait<T>(promise: Promise<T>): Promise<T> {
    if (this.#expired) return Promise.reject(new TimeCapError(this.#ms))
    return new Promise<T>((resolve, reject) => {
      this.#waiting.add(reject)
      promise.then(
        (value) => {
          this.#waiting.delete(reject)
          resolve(value)
        },
        (err: unknown) => {
          this.#waiting.delete(reject)
          reject(err)
        },
      )
    })
  }

  clear(): void {
    clearTimeout(this.#timer)
  }
}

/** CPU time (user + system) of this process since `start`, in µs. */
function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start)
  return used.user + used.system
}

const echo = (channel: Channel): void => {
  channel.onMessage = (msg) => {
    try {
      channel.send(msg)
    } catch {
      // The channel failed; the client sees it and reports.
    }
  }
}

/** Forces a full collection a few times, letting finalizers and freed buffers go in between. */
async function collect(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run the worker with --expose-gc')
  for (let i = 0; i < 4; i++) {
    gc()
    await nextTurn()
  }
}

// ---- server halves -----------------------------------------------------------------------------

export async function serve(
  system: System,
  scenario: ScenarioName,
  params: ScenarioParams,
): Promise<ServerRun> {
  switch (scenario) {
    case 'oneway':
    case 'bulk':
      return serveCount(system, params)
    case 'pingpong':
    case 'pingcold':
    case 'setup': {
      const server = await system.listen(echo)
      return { port: server.port, report: undefined, close: () => server.close() }
    }
    case 'memory':
      return serveMemory(system, params)
  }
}

/**
 * Counts what arrives; the rate is taken at the receiver, from the end of the warm-up (the first
 * `warmup` messages, left out so JIT compilation is not timed) to the last message.
 */
async function serveCount(system: System, params: ScenarioParams): Promise<ServerRun> {
  const warmup = Math.min(params.warmup ?? 0, params.count - 1)
  let count = 0
  let bytes = 0
  let first = 0
  let last = 0
  // CPU (user + system) over the measured span, both sides: wall-clock rates alone hide what a
  // message costs when the two processes share the machine's cores.
  let cpuAtFirst = { user: 0, system: 0 }
  let finish!: (report: Report) => void
  const report = new Promise<Report>((resolve) => {
    finish = resolve
  })
  // `count` is every message received; bytes and seconds cover the measured ones only.
  const result = (): Report => ({
    count,
    measured: count - warmup - 1,
    bytes,
    seconds: (last - first) / 1000,
    cpuUs: cpuSince(cpuAtFirst),
  })
  let timer: NodeJS.Timeout | undefined
  const server = await system.listen((channel) => {
    channel.onMessage = (msg: Payload) => {
      count++
      if (count <= warmup + 1) {
        if (count === 1) {
          // The cap starts with the first message, so a slow handshake cannot eat it.
          timer = setTimeout(() => finish(result()), params.timeCapMs)
        }
        // The clock starts when the last warm-up message (or the first one) has arrived.
        if (count === warmup + 1) {
          first = performance.now()
          cpuAtFirst = process.cpuUsage()
        }
        return
      }
      last = performance.now()
      bytes += msg.length
      if (count === params.count) {
        clearTimeout(timer)
        finish(result())
      }
    }
  })
  return { port: server.port, report, close: () => server.close() }
}

async function serveMemory(system: System, params: ScenarioParams): Promise<ServerRun> {
  const server = await system.listen((channel) => {
    established++
    echo(channel)
  })
  let established = 0
  // Baseline: the system is initialised and listening, no connection yet.
  await collect()
  const before = process.memoryUsage()
  return {
    port: server.port,
    report: undefined,
    close: () => server.close(),
    async measure(expected) {
      // The client counts a connection once its first round trip is back, so the server has
      // normally seen all of them; wait briefly (bounded) if not.
      const until = performance.now() + Math.min(params.timeCapMs, 10_000)
      while (established < expected && performance.now() < until) await nextTurn()
      // Let the handshakes' garbage and timers settle, then collect.
      await new Promise((resolve) => setTimeout(resolve, 250))
      await collect()
      const after = process.memoryUsage()
      const n = Math.max(1, established)
      return {
        connections: established,
        rssKiB: (after.rss - before.rss) / n / 1024,
        heapKiB: (after.heapUsed - before.heapUsed) / n / 1024,
        externalKiB: (after.external + after.arrayBuffers - before.external - before.arrayBuffers) / n / 1024,
      }
    },
  }
}

// ---- client halves -----------------------------------------------------------------------------

/** The client half's report, and how to close the connections it still holds. */
export interface Driven {
  report: Report
  close(): Promise<void>
}

/** The client half: resolves with its report; connections stay open until `close()` or exit. */
export async function drive(
  system: System,
  scenario: ScenarioName,
  params: ScenarioParams,
  port: number,
): Promise<Driven> {
  const deadline = new Deadline(params.timeCapMs)
  try {
    switch (scenario) {
      case 'oneway':
      case 'bulk':
        return await driveStream(system, params, port, deadline)
      case 'pingpong':
      case 'pingcold':
        return await drivePingPong(system, params, port, deadline)
      case 'setup':
        return await driveSetup(system, params, port, deadline)
      case 'memory':
        return await driveMemory(system, params, port, deadline)
    }
  } finally {
    deadline.clear()
  }
}

async function open(
  system: System,
  port: number,
  deadline: Deadline,
): Promise<{ channel: Channel; close(): Promise<void> }> {
  const dialer = await system.dialer()
  await deadline.wait(dialer.prepare())
  const channel = await deadline.wait(dialer.dial(port))
  return {
    channel,
    close: async () => {
      await channel.close()
      await dialer.close()
    },
  }
}

/** Sends `count` messages as fast as the system's backpressure (or Parley's window) allows. */
async function driveStream(
  system: System,
  params: ScenarioParams,
  port: number,
  deadline: Deadline,
): Promise<Driven> {
  const { channel, close } = await open(system, port, deadline)
  const payload = system.payload(params.size)
  const start = performance.now()
  const warmup = params.warmup ?? 0
  let sent = 0
  let cpuAtWarm = process.cpuUsage()
  await capped(async () => {
    while (sent < params.count && !deadline.expired) {
      const more = channel.send(payload)
      sent++
      // The sender's CPU is counted from the same message on as the receiver's rate.
      if (sent === warmup + 1) cpuAtWarm = process.cpuUsage()
      if (!more) await deadline.wait(channel.ready())
    }
    await deadline.wait(channel.settled())
  })
  return {
    report: { sent, seconds: (performance.now() - start) / 1000, cpuUs: cpuSince(cpuAtWarm) },
    close,
  }
}

/** One message out, the echo back, `warmup + count` times; percentiles over the last `count`. */
async function drivePingPong(
  system: System,
  params: ScenarioParams,
  port: number,
  deadline: Deadline,
): Promise<Driven> {
  const { channel, close } = await open(system, port, deadline)
  const payload = system.payload(params.size)
  let wake: (() => void) | undefined
  channel.onMessage = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  const warmup = params.warmup ?? 0
  const samples: number[] = []
  // The pinging side's CPU over the measured round trips: a round trip's work is the same on both
  // sides (one message out, one in, and for Parley an acknowledgement each way).
  let cpuAtWarm = process.cpuUsage()
  await capped(async () => {
    for (let i = 0; i < warmup + params.count && !deadline.expired; i++) {
      if (i === warmup) cpuAtWarm = process.cpuUsage()
      const start = performance.now()
      const back = new Promise<void>((resolve) => {
        wake = resolve
      })
      channel.send(payload)
      await deadline.wait(back)
      if (i >= warmup) samples.push((performance.now() - start) * 1000)
    }
  })
  const cpuUs = cpuSince(cpuAtWarm)
  return {
    report: {
      roundTrips: samples.length,
      p50Us: quantile(samples, 0.5),
      p99Us: quantile(samples, 0.99),
      cpuUs,
    },
    close,
  }
}

/** A round trip on a channel just opened: the "first round trip" of setup and memory. */
async function firstRoundTrip(channel: Channel, payload: Payload, deadline: Deadline): Promise<void> {
  const back = new Promise<void>((resolve) => {
    channel.onMessage = () => resolve()
  })
  channel.send(payload)
  await deadline.wait(back)
}

/** One fresh connection: dial + handshake + first round trip; `onOpen` sees it before the round trip. */
async function openWithRoundTrip(
  dialer: Dialer,
  port: number,
  payload: Payload,
  deadline: Deadline,
  onOpen?: (channel: Channel) => void,
): Promise<Channel> {
  const channel = await deadline.wait(dialer.dial(port))
  onOpen?.(channel)
  await firstRoundTrip(channel, payload, deadline)
  return channel
}

/** Fresh connections one after another: dial + handshake + first round trip, then close. */
async function driveSetup(
  system: System,
  params: ScenarioParams,
  port: number,
  deadline: Deadline,
): Promise<Driven> {
  const dialer = await system.dialer()
  const payload = system.payload(params.size)
  const samples: number[] = []
  await capped(async () => {
    for (let i = 0; i < params.count && !deadline.expired; i++) {
      await deadline.wait(dialer.prepare())
      const start = performance.now()
      const channel = await openWithRoundTrip(dialer, port, payload, deadline)
      samples.push(performance.now() - start)
      await deadline.wait(channel.close())
    }
  })
  return {
    report: { connections: samples.length, medianMs: quantile(samples, 0.5), p99Ms: quantile(samples, 0.99) },
    close: () => dialer.close(),
  }
}

/** Opens `count` connections (each with its first round trip done) and leaves them idle. */
async function driveMemory(
  system: System,
  params: ScenarioParams,
  port: number,
  deadline: Deadline,
): Promise<Driven> {
  const dialer = await system.dialer()
  const payload = system.payload(params.size)
  const held: Channel[] = []
  let opened = 0
  let next = 0
  const worker = async () => {
    while (next < params.count && !deadline.expired) {
      next++
      await deadline.wait(dialer.prepare())
      await openWithRoundTrip(dialer, port, payload, deadline, (channel) => held.push(channel))
      opened++
    }
  }
  await capped(async () => {
    await Promise.all(Array.from({ length: Math.max(1, system.dialConcurrency) }, worker))
  })
  return {
    report: { opened },
    close: async () => {
      await Promise.all(held.map((c) => c.close()))
      await dialer.close()
    },
  }
}
