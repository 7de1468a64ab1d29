/**
 * The eager sender (issue: "no cliff for eager senders"): an application that fires N `send()`s at
 * once and awaits them all, against one that keeps a window of 2,000 in flight, same N, same run;
 * and the batch sender, which hands the same N texts to one `sendMany()` (one promise for all).
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
  /** The sender's CPU time (user + system, process.cpuUsage) per message, µs. */
  eagerCpuUs: number
  windowedCpuUs: number
  batchCpuUs: number
}

export interface EagerResult {
  count: number
  rounds: EagerRound[]
}

type Mode = 'eager' | 'windowed' | 'batch'

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
        child.send({ type: 'stop' })
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
      const order: Mode[] = r % 2 === 0 ? ['windowed', 'eager', 'batch'] : ['batch', 'eager', 'windowed']
      const got = {} as Record<Mode, { rate: number; cpuUs: number }>
      for (const mode of order) got[mode] = await timed(peer, to, mode, count)
      out.push({
        eager: got.eager.rate,
        windowed: got.windowed.rate,
        batch: got.batch.rate,
        eagerCpuUs: got.eager.cpuUs,
        windowedCpuUs: got.windowed.cpuUs,
        batchCpuUs: got.batch.cpuUs,
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
  const ratios = r.rounds.map((x) => x.eager / x.windowed).sort((a, b) => a - b)
  const median = ratios[Math.floor(ratios.length / 2)]!
  const batchRatios = r.rounds.map((x) => x.batch / x.windowed).sort((a, b) => a - b)
  const batchMedian = batchRatios[Math.floor(batchRatios.length / 2)]!
  return [
    '### Eager senders: all sends at once against a window of 2,000',
    '',
    `${r.count.toLocaleString('en')} messages of 64 bytes, acknowledged, Noise over TCP, two processes; per round the three run back to back on one connection, the order reversed every other round. Batch is one \`sendMany()\` of all of them (one promise). CPU is the sender's (\`process.cpuUsage\`), per message.`,
    '',
    '| Round | Windowed msg/s | Eager msg/s | Batch msg/s | Eager ÷ windowed | Batch ÷ windowed | Windowed CPU µs/msg | Eager CPU µs/msg | Batch CPU µs/msg |',
    '| ----- | -------------: | ----------: | ----------: | ---------------: | ---------------: | ------------------: | ---------------: | ---------------: |',
    ...r.rounds.map(
      (x, i) =>
        `| ${i + 1} | ${k(x.windowed)} | ${k(x.eager)} | ${k(x.batch)} | ${(x.eager / x.windowed).toFixed(2)}× | ${(x.batch / x.windowed).toFixed(2)}× | ${x.windowedCpuUs.toFixed(2)} | ${x.eagerCpuUs.toFixed(2)} | ${x.batchCpuUs.toFixed(2)} |`,
    ),
    '',
    `Eager ÷ windowed, per round: median ${median.toFixed(2)}× (${ratios[0]!.toFixed(2)}–${ratios.at(-1)!.toFixed(2)}); target ≥ 0.80×. Batch ÷ windowed: median ${batchMedian.toFixed(2)}× (${batchRatios[0]!.toFixed(2)}–${batchRatios.at(-1)!.toFixed(2)}).`,
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
  if (only !== undefined && only !== 'eager' && only !== 'windowed' && only !== 'batch')
    throw new Error('--only eager|windowed|batch')
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
