/**
 * The eager sender (issue: "no cliff for eager senders"): an application that fires N `send()`s at
 * once and awaits them all, against one that keeps a window of 2,000 in flight, same N, same run.
 * Two processes, TCP + Noise; the receiver counts. The eager sender raises `inFlight.waiting` to N,
 * as such an application must.
 *
 * Run by `pnpm bench` after the main table, or alone: `node dist/eager.js [--quick]`.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
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

export interface EagerResult {
  count: number
  rounds: { eager: number; windowed: number }[]
}

export async function runEager(quick: boolean): Promise<EagerResult> {
  const count = quick ? 50_000 : 200_000
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], {
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
      inFlight: { waiting: count },
    })
    await peer.start()
    const sink = await peer.connect(ready.address)
    await windowed(peer, sink.id, 20_000)
    const rounds: { eager: number; windowed: number }[] = []
    // Alternated, so a change in the machine's load falls on both.
    for (let r = 0; r < 3; r++) {
      rounds.push({
        windowed: await windowed(peer, sink.id, count),
        eager: await eager(peer, sink.id, count),
      })
    }
    await peer.stop()
    return { count, rounds }
  } finally {
    child.send({ type: 'stop' })
    child.kill()
  }
}

export function renderEager(r: EagerResult): string {
  const k = (n: number) => `${Math.round(n / 1000)} k`
  const ratios = r.rounds.map((x) => x.eager / x.windowed).sort((a, b) => a - b)
  return [
    '### Eager senders: all sends at once against a window of 2,000',
    '',
    `${r.count.toLocaleString('en')} messages of 64 bytes, acknowledged, Noise over TCP, two processes; rounds alternate.`,
    '',
    '| round | windowed msg/s | eager msg/s | eager ÷ windowed |',
    '| ----- | -------------- | ----------- | ---------------- |',
    ...r.rounds.map(
      (x, i) => `| ${i + 1} | ${k(x.windowed)} | ${k(x.eager)} | ${(x.eager / x.windowed).toFixed(2)}× |`,
    ),
    '',
    `Median eager ÷ windowed: ${ratios[1]!.toFixed(2)}× (target ≥ 0.80×).`,
    '',
  ].join('\n')
}

if (process.argv.includes('--serve')) {
  void serve()
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runEager(process.argv.includes('--quick')).then(
    (r) => process.stdout.write(`${renderEager(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`eager: ${(err as Error).message}\n`)
      process.exit(1)
    },
  )
}
