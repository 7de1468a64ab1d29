/**
 * Fair sharing of one link (issue: "services over bounded sessions"): chat round trips while another
 * service saturates the same connection with bulk data. Two processes, two peers over TCP with the
 * default Noise channel; the dialer runs a bulk-source service that keeps its channel full (64 KiB
 * messages, paced by `writable`, `onDrain` and a window the sink grants), the listener a bulk sink. Chat round trips are
 * `send()` to acknowledgement, one at a time, measured first on the idle link, then during the transfer.
 *
 * Run by `pnpm bench` after the main table, or alone: `node dist/fairness.js [--quick]`.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import {
  type Channel,
  createPeer,
  type Peer,
  type Service,
  type ServiceHandler,
  tcpTransport,
} from '@parley/core'
import { quantile } from './stats.js'

const BULK_PROTOCOL = 'bench/bulk/1'

/**
 * Bulk: the source keeps its channel full, within a window of unacknowledged bytes the sink grants
 * back as it consumes them — what any bulk service (file transfer) does over a shared link, so that
 * the kernel's socket buffers (megabytes on loopback) do not become a queue that chat waits behind.
 */
const DATA = 1
const CREDIT = 2
const WINDOW = 512 * 1024
const CREDIT_EVERY = 128 * 1024
const BULK_MESSAGE = Buffer.alloc(64 * 1024, 0x61)
BULK_MESSAGE[0] = DATA

class BulkService implements Service {
  readonly protocol = BULK_PROTOCOL
  received = 0
  #sources = new Set<{ pump(): void; stop(): void }>()
  constructor(readonly source: boolean) {}

  open(channel: Channel): ServiceHandler {
    let running = this.source
    let outstanding = 0
    let unacked = 0
    const pump = () => {
      while (running && channel.online && channel.writable && outstanding < WINDOW) {
        channel.sendBytes(BULK_MESSAGE)
        outstanding += BULK_MESSAGE.byteLength
      }
    }
    const source = { pump, stop: () => (running = false) }
    this.#sources.add(source)
    queueMicrotask(pump)
    return {
      onFrame: (body) => {
        if (body[0] === CREDIT) {
          outstanding -= new DataView(body.buffer, body.byteOffset + 1, 4).getUint32(0)
          pump()
          return
        }
        this.received += body.byteLength
        unacked += body.byteLength
        if (unacked >= CREDIT_EVERY) {
          const credit = Buffer.alloc(5)
          credit[0] = CREDIT
          credit.writeUInt32BE(unacked, 1)
          channel.sendBytes(credit)
          unacked = 0
        }
      },
      onDrain: pump,
      onClose: () => {
        running = false
        this.#sources.delete(source)
      },
    }
  }

  stopAll(): void {
    for (const s of this.#sources) s.stop()
  }
}

function newPeer(name: string, listen: string | false, bulk: BulkService): Peer {
  return createPeer({ transport: tcpTransport(), name, listen, services: [bulk], rateLimit: false })
}

/** The listening half, in a child process: a bulk sink that reports bytes received on request. */
async function serve(): Promise<void> {
  const bulk = new BulkService(false)
  const peer = newPeer('sink', '127.0.0.1:0', bulk)
  await peer.start()
  process.send!({ type: 'ready', address: peer.addresses[0] })
  process.on('message', (m: { type: string }) => {
    if (m.type === 'count') process.send!({ type: 'count', received: bulk.received })
    if (m.type === 'stop') void peer.stop().then(() => process.exit(0))
  })
}

async function roundTrips(peer: Peer, to: string, count: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint()
    await peer.send(to, `ping ${i}`)
    out.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  return out
}

export interface FairnessResult {
  idle: { p50: number; p99: number }
  loaded: { p50: number; p99: number }
  bulkMBps: number
  count: number
}

/** Measures chat round trips on an idle link and during a saturating transfer on the same link. */
export async function runFairness(quick: boolean): Promise<FairnessResult> {
  const count = quick ? 500 : 2_000
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  try {
    const [ready] = (await once(child, 'message')) as [{ address: string }]
    const bulk = new BulkService(false)
    const peer = newPeer('source', false, bulk)
    await peer.start()
    const sink = await peer.connect(ready.address)
    await roundTrips(peer, sink.id, 200)
    const idle = await roundTrips(peer, sink.id, count)
    // Start the transfer: a bulk source on the same session.
    const source = new BulkService(true)
    const loadedPeer = newPeer('source-2', false, source)
    await loadedPeer.start()
    const sink2 = await loadedPeer.connect(ready.address)
    await roundTrips(loadedPeer, sink2.id, 50)
    child.send({ type: 'count' })
    const [before] = (await once(child, 'message')) as [{ received: number }]
    const started = performance.now()
    const loaded = await roundTrips(loadedPeer, sink2.id, count)
    child.send({ type: 'count' })
    const [after] = (await once(child, 'message')) as [{ received: number }]
    const seconds = (performance.now() - started) / 1000
    source.stopAll()
    await Promise.all([peer.stop(), loadedPeer.stop()])
    return {
      idle: { p50: quantile(idle, 0.5), p99: quantile(idle, 0.99) },
      loaded: { p50: quantile(loaded, 0.5), p99: quantile(loaded, 0.99) },
      bulkMBps: (after.received - before.received) / seconds / 1e6,
      count,
    }
  } finally {
    // Killed next anyway: a channel already closed is no error (the callback keeps it from being emitted).
    child.send({ type: 'stop' }, () => {})
    child.kill()
  }
}

export function renderFairness(r: FairnessResult): string {
  const ms = (n: number) => `${n.toFixed(3)} ms`
  return [
    '### Fair sharing: chat round trips while a bulk transfer saturates the same link',
    '',
    `${r.count} chat round trips (send → acknowledgement, one at a time), Noise over TCP, two processes.`,
    '',
    '| link | chat p50 | chat p99 | bulk on the same link |',
    '| ---- | -------- | -------- | --------------------- |',
    `| idle | ${ms(r.idle.p50)} | ${ms(r.idle.p99)} | — |`,
    `| saturated by another service | ${ms(r.loaded.p50)} | ${ms(r.loaded.p99)} | ${r.bulkMBps.toFixed(0)} MB/s |`,
    '',
  ].join('\n')
}

if (process.argv.includes('--serve')) {
  void serve()
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runFairness(process.argv.includes('--quick')).then(
    (r) => process.stdout.write(`${renderFairness(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`fairness: ${(err as Error).message}\n`)
      process.exit(1)
    },
  )
}
