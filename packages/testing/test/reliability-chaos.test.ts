import { createPeer, generateIdentity, memoryTransport, type Peer, type PeerInit } from '@parley/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { chaosSeed, deliveryLedger, seededRandom } from '../src/index.js'
import { advance, fakeTimeNetwork, until } from './fixtures/fake-time.js'

// Chaos over the harness: 20 peers, a seeded random schedule of drops, delays, partitions, kills,
// graceful stops and restarts (same identity, same address), and random sends. At the end: every send
// settled (acked, or failed with a PeerError code), acked means delivered, nothing delivered twice, and
// after everyone stops no timer and no connection is left. On a fake clock: 200 steps of up to 0.3 s
// of network time run in a few seconds. Replay a failure with PARLEY_CHAOS_SEED=<seed>.

const SIZE = 20
const STEPS = 200

const options: Omit<PeerInit, 'transport' | 'listen'> = {
  pingInterval: 1_000,
  idleTimeout: 3_000,
  ackTimeout: 4_000,
  handshakeTimeout: 2_000,
  stopTimeout: 1_000,
  reconnect: { initialDelay: 200, maxDelay: 2_000, maxAttempts: 5 },
  inFlight: { messages: 50, waiting: 20 },
}

describe('chaos over the harness', () => {
  it(`${SIZE} peers under a seeded schedule of faults keep every delivery promise`, async () => {
    const seed = chaosSeed()
    try {
      await chaos(seed)
    } catch (err) {
      if (err instanceof Error)
        err.message = `[chaos seed ${seed}; replay with PARLEY_CHAOS_SEED=${seed}] ${err.message}`
      throw err
    }
  })
})

async function chaos(seed: number): Promise<void> {
  const rng = seededRandom(seed)
  // Reconnection jitter and ping nonces come from Math.random: seed them too, so a seed replays the run.
  const jitter = seededRandom(seed ^ 0x5eed)
  const random = vi.spyOn(Math, 'random').mockImplementation(() => jitter.next())
  onTestFinished(() => random.mockRestore())
  const identities = Array.from({ length: SIZE }, () => generateIdentity())
  const net = await fakeTimeNetwork({
    size: SIZE,
    peer: options,
    peerInit: (i) => ({ identity: identities[i]! }),
  })
  const names = net.peers.map((p) => p.name)
  const addresses = net.peers.map((p) => net.address(p))
  const ids = net.peers.map((p) => p.id)
  /** The running incarnation of each peer, or undefined while it is down. */
  const live: Array<Peer | undefined> = [...net.peers]
  const everyIncarnation: Peer[] = [...net.peers]
  const generation = Array(SIZE).fill(0) as number[]
  const ledger = deliveryLedger()
  for (const [i, p] of net.peers.entries()) ledger.watch(p, `${names[i]}#0`)
  const tally: Record<string, number> = {}
  const did = (what: string) => {
    tally[what] = (tally[what] ?? 0) + 1
  }
  let texts = 0

  const running = () => live.flatMap((p, i) => (p && p.status === 'running' ? [i] : []))
  const connect = (from: number, to: number) => {
    const p = live[from]
    if (p?.status === 'running' && from !== to) void p.connect(addresses[to]!).catch(() => {})
  }
  const restart = async (i: number) => {
    const peer = createPeer({
      ...options,
      name: names[i]!,
      identity: identities[i]!,
      transport: memoryTransport(net.network, { host: names[i]! }),
      listen: addresses[i]!,
    })
    generation[i]!++
    ledger.watch(peer, `${names[i]}#${generation[i]}`)
    everyIncarnation.push(peer)
    await until(peer.start())
    live[i] = peer
    for (const j of rng.sample(running(), 2)) connect(i, j)
  }

  // A sparse random mesh to start with: each peer dials three others.
  for (let i = 0; i < SIZE; i++) for (const j of rng.sample([...Array(SIZE).keys()], 4)) connect(i, j)
  await advance(500)

  for (let step = 0; step < STEPS; step++) {
    const up = running()
    const r = rng.next()
    if (r < 0.45) {
      // Random sends, mostly to connected peers, sometimes to anyone (possibly down or unknown).
      for (let k = rng.between(1, 8); k > 0; k--) {
        const from = live[rng.pick(up)]!
        const connected = from.peers().connected
        const to = connected.length > 0 && rng.chance(0.85) ? rng.pick(connected).id : rng.pick(ids)
        ledger.track(from.id, to, from.send(to, `${from.name}>${to.slice(0, 6)} #${texts++}`))
      }
      did('send')
    } else if (r < 0.55) {
      connect(rng.pick(up), rng.int(SIZE))
      did('connect')
    } else if (r < 0.62) {
      net.network.dropConnections(names[rng.int(SIZE)]!)
      did('drop')
    } else if (r < 0.67) {
      net.network.setDelay(rng.pick([1, 1, 5, 20, 80, 250]))
      did('delay')
    } else if (r < 0.75) {
      const [a, b] = rng.sample([...Array(SIZE).keys()], 2) as [number, number]
      net.network.partition(names[a]!, names[b]!)
      did('partition')
    } else if (r < 0.8) {
      net.network.heal()
      did('heal')
    } else if (r < 0.85 && up.length > SIZE / 2) {
      const i = rng.pick(up)
      net.kill(live[i]!)
      live[i] = undefined
      did('kill')
    } else if (r < 0.88 && up.length > SIZE / 2) {
      // A graceful stop, not awaited: the schedule goes on while it says goodbye.
      const i = rng.pick(up)
      void live[i]!.stop()
      live[i] = undefined
      did('stop')
    } else if (r < 0.95) {
      const down = live.flatMap((p, i) => (p === undefined ? [i] : []))
      if (down.length > 0) {
        const i = rng.pick(down)
        // The old incarnation must be gone from the address before the new one listens there.
        await until(
          everyIncarnation
            .filter((p) => p.id === ids[i])
            .reduce((s, p) => s.then(() => p.stop()), Promise.resolve()),
        )
        await restart(i)
        did('restart')
      }
    }
    await advance(rng.between(10, 300))
  }

  // Calm: heal everything and give every pending send its ack timeout, retries included.
  net.network.heal()
  net.network.setDelay(1)
  await advance(15_000)
  const report = ledger.report()
  expect(report.unsettled, 'sends still pending long after their ack timeout').toBe(0)
  expect(report.untyped, 'sends that failed without a PeerError').toEqual([])
  expect(report.duplicates, 'messages delivered twice to one incarnation').toEqual([])
  expect(report.ackedNotDelivered, 'acknowledged but never delivered').toEqual([])
  expect(report.acked).toBeGreaterThan(report.sent / 4)

  // Everyone stops: nothing may outlive the peers.
  await until(Promise.all(everyIncarnation.map((p) => p.stop())))
  expect(net.network.connections, 'connections left after every peer stopped').toBe(0)
  expect(vi.getTimerCount(), 'timers left after every peer stopped').toBe(0)
  // A one-line summary, so a green run still shows what it went through.
  console.info(
    `chaos seed ${seed}: ${JSON.stringify(tally)} → ${JSON.stringify({ ...report, duplicates: undefined, ackedNotDelivered: undefined, untyped: undefined })}`,
  )
}
