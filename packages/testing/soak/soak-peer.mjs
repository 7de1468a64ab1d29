// One peer of the soak, in its own OS process over real TCP on 127.0.0.1. Driven by its parent over
// the IPC channel (see soak.mjs): it connects, sends a fixed count of messages with a bounded window,
// counts what it receives without growing (one preallocated counter per possible message), and, when
// asked, measures its heap after a full GC (run with --expose-gc).
import { createPeer, tcpTransport } from '@parley/core'

const index = Number(process.env.SOAK_INDEX)
const processes = Number(process.env.SOAK_PROCESSES)
const messages = Number(process.env.SOAK_MESSAGES)
const window = Number(process.env.SOAK_WINDOW ?? 32)
const textBytes = Number(process.env.SOAK_TEXT_BYTES ?? 64)
const padding = 'x'.repeat(textBytes)

// The parent dying must not leave us running.
process.on('disconnect', () => process.exit(2))

const peer = createPeer({ transport: tcpTransport(), name: `soak-${index}`, listen: '127.0.0.1:0' })
/** Deliveries per (sender, sequence number), allocated once: counting must not grow the heap we measure. */
const deliveries = new Uint8Array(processes * messages)
let received = 0
let duplicates = 0
let foreign = 0
peer.on('message', (m) => {
  received++
  const [, from, seq] = m.text.split(' ', 3)
  const slot = Number(from) * messages + Number(seq)
  if (!(slot >= 0 && slot < deliveries.length)) return void foreign++
  if (deliveries[slot]++ > 0) duplicates++
})
let disconnects = 0
peer.on('peer:disconnect', () => disconnects++)

/** mulberry32: the parent hands each process a seed, so a run's traffic can be replayed. */
function random(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

let others = []
let targetOf = () => undefined

async function sendRange(from, to) {
  const started = performance.now()
  const failed = {}
  let acked = 0
  let next = from
  const worker = async () => {
    while (next < to) {
      const seq = next++
      try {
        await peer.send(targetOf(seq), `soak ${index} ${seq} ${padding}`)
        acked++
      } catch (err) {
        const code = err?.code ?? 'NOT_A_PEER_ERROR'
        failed[code] = (failed[code] ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  return { acked, failed, ms: performance.now() - started }
}

async function heapAfterGc() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

process.on('message', async (cmd) => {
  try {
    switch (cmd.cmd) {
      case 'connect': {
        others = cmd.peers.filter((p) => p.index !== index)
        // Every peer dials those after it: a full mesh, each pair once.
        await Promise.all(others.filter((p) => p.index > index).map((p) => peer.connect(p.address)))
        const rand = random(cmd.seed)
        const observer = others.find((p) => p.index === 0)
        // Half of everyone's traffic goes to the long-lived observer (process 0), the rest anywhere.
        const plan = Array.from({ length: messages }, () =>
          observer && rand() < 0.5 ? observer.id : others[Math.floor(rand() * others.length)].id,
        )
        targetOf = (seq) => plan[seq]
        process.send({ type: 'connected', index, connected: peer.peers().connected.length })
        break
      }
      case 'send':
        process.send({ type: 'sent', index, ...(await sendRange(cmd.from, cmd.to)) })
        break
      case 'measure':
        process.send({ type: 'measured', index, heapUsed: await heapAfterGc(), received })
        break
      case 'report':
        process.send({
          type: 'report',
          index,
          received,
          duplicates,
          foreign,
          disconnects,
          connected: peer.peers().connected.length,
        })
        break
      case 'stop':
        await peer.stop()
        process.send({ type: 'stopped', index }, () => process.exit(0))
        break
    }
  } catch (err) {
    process.send({ type: 'failed', index, error: String(err?.stack ?? err) })
  }
})

await peer.start()
process.send({
  type: 'ready',
  index,
  id: peer.id,
  address: peer.addresses[0],
  gc: typeof globalThis.gc === 'function',
})
