/**
 * The eager sender (issue: "no cliff for eager senders"): an application that fires N `send()`s at
 * once and awaits them all, against one that keeps a window of 2,000 in flight, same N, same run;
 * the same application within the default limits, which admit 20,000 sends at once (10,000 in
 * flight, 10,000 waiting): it fires bursts of 20,000 and awaits each; and the batch sender, which
 * hands the same N texts to one `sendMany()` (one promise for all).
 * Two processes, TCP + Noise; the receiver counts. The eager sender raises `inFlight.waiting` to N,
 * as such an application must.
 *
 * Run by `pnpm bench` after the main table, or alone: `node dist/eager.js [--quick] [--rounds N]`;
 * one mode alone, to profile it: `node --cpu-prof --trace-gc dist/eager.js --only eager --count N`.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createPeer, type Peer, tcpTransport } from '@parley/core'
import { spread } from './stats.js'

const TEXT = 'x'.repeat(64)

async function serve(): Promise<void> {
  const peer = createPeer({
    transport: tcpTransport(),
    name: 'sink',
    listen: '127.0.0.1:0',
    rateLimit: false,
  })
  await peer.start()
  process.send!({ type: 'ready', address: peer.addresses[0] })
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop') void peer.stop().then(() => process.exit(0))
  })
}

async function eager(peer: Peer, to: string, n: number): Promise<number> {
  const started = performance.now()
  const sends: Promise<unknown>[] = new Array(n)
  for (let i = 0; i < n; i++) sends[i] = peer.send(to, TEXT)
  await Promise.all(sends)
  return n / ((performance.now() - started) / 1000)
}

/**
 * What core's default limits admit at once: `inFlight.messages` (10,000) plus `inFlight.waiting`
 * (10,000), as in packages/core/src/limits.ts.
 */
const DEFAULT_ADMITTED = 20_000

async function bursts(peer: Peer, to: string, n: number): Promise<number> {
  const started = performance.now()
  for (let done = 0; done < n; ) {
    const size = Math.min(DEFAULT_ADMITTED, n - done)
    const sends: Promise<unknown>[] = new Array(size)
    for (let i = 0; i < size; i++) sends[i] = peer.send(to, TEXT)
    await Promise.all(sends)
    done += size
  }
  return n / ((performance.now() - started) / 1000)
}

async function batch(peer: Peer, to: string, n: number): Promise<number> {
  const texts: string[] = new Array(n).fill(TEXT)
  const started = performance.now()
  await peer.sendMany(to, texts)
  return n / ((performance.now() - started) / 1000)
}

async function windowed(peer: Peer, to: string, n: number, window = 2_000): Promise<number> {
  const started = performance.now()
  let sent = 0
  let done = 0
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (sent - done < window && sent < n) {
        sent++
        peer.send(to, TEXT).then(() => {
          if (++done === n) resolve()
          else pump()
        }, reject)
      }
    }
    pump()
  })
  return n / ((performance.now() - started) / 1000)
}

export interface EagerRound {
  /** msg/s, first `send()` to the last acknowledgement. */
  eager: number
  windowed: number
  /** msg/s of one `sendMany()` of all N. */
  batch: number
  /** msg/s of bursts of {@link DEFAULT_ADMITTED} sends at once, each awaited. */
  bursts: number
  /** The sender's CPU time (user + system, process.cpuUsage) per message, µs. */
  eagerCpuUs: number
  windowedCpuUs: number
  batchCpuUs: number
  burstsCpuUs: number
}

export interface EagerResult {
  count: number
  rounds: EagerRound[]
}

const MODES = ['eager', 'windowed', 'batch', 'bursts'] as const
type Mode = (typeof MODES)[number]
const isMode = (s: string): s is Mode => (MODES as readonly string[]).includes(s)

/** One timed run of `mode`: its rate and the sender's CPU per message. */
async function timed(
  peer: Peer,
  to: string,
  mode: Mode,
  n: number,
): Promise<{ rate: number; cpuUs: number }> {
  const cpu = process.cpuUsage()
  const rate =
    mode === 'eager'
      ? await eager(peer, to, n)
      : mode === 'batch'
        ? await batch(peer, to, n)
        : mode === 'bursts'
          ? await bursts(peer, to, n)
          : await windowed(peer, to, n)
  const used = process.cpuUsage(cpu)
  return { rate, cpuUs: (used.user + used.system) / n }
}

/** A sink process and a connected sender peer that admits `waiting` sends beyond its window. */
async function connectedPair(waiting: number): Promise<{ peer: Peer; to: string; stop(): Promise<void> }> {
  // No inherited execArgv: a profiled sender (--cpu-prof, --trace-gc) profiles itself, not the sink.
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  try {
    const [ready] = (await once(child, 'message')) as [{ address: string }]
    const peer = createPeer({
      transport: tcpTransport(),
      name: 'eager',
      listen: false,
      rateLimit: false,
      ackTimeout: 120_000,
      inFlight: { waiting },
    })
    await peer.start()
    const sink = await peer.connect(ready.address)
    return {
      peer,
      to: sink.id,
      async stop() {
        await peer.stop()
        // Killed next anyway: a channel already closed is no error (the callback keeps it from being emitted).
        child.send({ type: 'stop' }, () => {})
        child.kill()
      },
    }
  } catch (err) {
    child.kill()
    throw err
  }
}

export async function runEager(quick: boolean, rounds = 3): Promise<EagerResult> {
  const count = quick ? 50_000 : 200_000
  const { peer, to, stop } = await connectedPair(count)
  try {
    await windowed(peer, to, 20_000)
    const out: EagerRound[] = []
    // Back to back, the order alternating per round, so a change in the machine's load falls on both.
    for (let r = 0; r < rounds; r++) {
      const order: Mode[] =
        r % 2 === 0 ? ['windowed', 'eager', 'bursts', 'batch'] : ['batch', 'bursts', 'eager', 'windowed']
      const got = {} as Record<Mode, { rate: number; cpuUs: number }>
      for (const mode of order) got[mode] = await timed(peer, to, mode, count)
      out.push({
        eager: got.eager.rate,
        windowed: got.windowed.rate,
        batch: got.batch.rate,
        bursts: got.bursts.rate,
        eagerCpuUs: got.eager.cpuUs,
        windowedCpuUs: got.windowed.cpuUs,
        batchCpuUs: got.batch.cpuUs,
        burstsCpuUs: got.bursts.cpuUs,
      })
    }
    return { count, rounds: out }
  } finally {
    await stop()
  }
}

/**
 * For profiling one mode alone: `node --cpu-prof --trace-gc dist/eager.js --only eager --count 100000`.
 * A short windowed warm-up, then `mode` once; prints its rate and the sender's CPU per message.
 */
async function runOnly(mode: Mode, count: number): Promise<string> {
  const { peer, to, stop } = await connectedPair(count)
  try {
    await windowed(peer, to, 20_000)
    const { rate, cpuUs } = await timed(peer, to, mode, count)
    return `${mode} ${count.toLocaleString('en')}: ${Math.round(rate).toLocaleString('en')} msg/s, sender CPU ${cpuUs.toFixed(2)} µs/msg`
  } finally {
    await stop()
  }
}

export function renderEager(r: EagerResult): string {
  const k = (n: number) => `${Math.round(n / 1000)} k`
  const x = (n: number) => `${n.toFixed(2)}×`
  const summary = (of: (round: EagerRound) => number) => {
    const s = spread(r.rounds.map((round) => of(round) / round.windowed))
    return `median ${x(s.median)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`
  }
  return [
    '### Eager senders: all sends at once against a window of 2,000',
    '',
    `${r.count.toLocaleString('en')} messages of 64 bytes, acknowledged, Noise over TCP, two processes; per round the four run back to back on one connection, the order reversed every other round. Eager fires all of them at once (with \`inFlight.waiting\` raised to admit them) and awaits them all; bursts fire ${DEFAULT_ADMITTED.toLocaleString('en')} at once, what the default limits admit, and await each burst; batch is one \`sendMany()\` of all of them (one promise). CPU is the sender's (\`process.cpuUsage\`), per message.`,
    '',
    '| Round | Windowed msg/s | Eager msg/s | Bursts msg/s | Batch msg/s | Eager ÷ windowed | Bursts ÷ windowed | Batch ÷ windowed | Windowed CPU µs/msg | Eager CPU µs/msg | Bursts CPU µs/msg | Batch CPU µs/msg |',
    '| ----- | -------------: | ----------: | -----------: | ----------: | ---------------: | ----------------: | ---------------: | ------------------: | ---------------: | ----------------: | ---------------: |',
    ...r.rounds.map(
      (round, i) =>
        `| ${i + 1} | ${k(round.windowed)} | ${k(round.eager)} | ${k(round.bursts)} | ${k(round.batch)} | ${x(round.eager / round.windowed)} | ${x(round.bursts / round.windowed)} | ${x(round.batch / round.windowed)} | ${round.windowedCpuUs.toFixed(2)} | ${round.eagerCpuUs.toFixed(2)} | ${round.burstsCpuUs.toFixed(2)} | ${round.batchCpuUs.toFixed(2)} |`,
    ),
    '',
    `Per round, eager ÷ windowed: ${summary((round) => round.eager)}; target ≥ 0.80×. Bursts of ${DEFAULT_ADMITTED.toLocaleString('en')} ÷ windowed: ${summary((round) => round.bursts)}. Batch ÷ windowed: ${summary((round) => round.batch)}.`,
    '',
  ].join('\n')
}

if (process.argv.includes('--serve')) {
  void serve()
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      count: { type: 'string', default: '100000' },
      rounds: { type: 'string', default: '3' },
    },
  })
  const only = values.only
  if (only !== undefined && !isMode(only)) throw new Error('--only eager|windowed|batch|bursts')
  const job = only
    ? runOnly(only, Number(values.count))
    : runEager(values.quick === true, Number(values.rounds)).then(renderEager)
  job.then(
    (text) => process.stdout.write(`${text}\n`),
    (err: unknown) => {
      process.stderr.write(`eager: ${(err as Error).message}\n`)
      process.exit(1)
    },
  )
}
