import { createPeer, type Peer, PeerError, type Transport, tcpTransport } from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createTestNetwork, inbox, type TestNetworkInit, waitFor } from '../src/index.js'

// The same user-visible scenarios over the in-memory harness and over real TCP on 127.0.0.1.
const transports: Array<[string, () => Transport | undefined]> = [
  ['memory', () => undefined],
  ['tcp', () => tcpTransport()],
]

describe.each(transports)('peers over %s', (_name, makeTransport) => {
  async function network(init: TestNetworkInit) {
    const transport = makeTransport()
    const net = await createTestNetwork({ ...init, ...(transport ? { transport } : {}) })
    onTestFinished(() => net.stop())
    return net
  }

  it('two peers exchange messages in both directions at once', async () => {
    const net = await network({ size: 2, names: ['alice', 'bob'] })
    const [alice, bob] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]]
    await net.connect(alice, bob)
    const aliceInbox = inbox(alice)
    const bobInbox = inbox(bob)
    const sends = []
    for (let i = 0; i < 50; i++) {
      sends.push(alice.send(bob.id, `a${i}`), bob.send(alice.id, `b${i}`))
    }
    const results = await Promise.all(sends)
    expect(results.every((r) => r.ackedAt > 0)).toBe(true)
    await Promise.all([aliceInbox.waitForCount(50), bobInbox.waitForCount(50)])
    expect(bobInbox.texts()).toEqual(Array.from({ length: 50 }, (_, i) => `a${i}`))
    expect(aliceInbox.texts()).toEqual(Array.from({ length: 50 }, (_, i) => `b${i}`))
    expect(bobInbox.messages[0]!.from).toEqual({ id: alice.id, name: 'alice' })
  })

  it('lists connected peers with name, direction and counters on both sides', async () => {
    const net = await network({ size: 2, names: ['alice', 'bob'] })
    const [alice, bob] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]]
    await net.connect(alice, bob)
    await alice.send(bob.id, 'hi')
    const seenByAlice = alice.peers().connected
    expect(seenByAlice).toHaveLength(1)
    expect(seenByAlice[0]).toMatchObject({ id: bob.id, name: 'bob', direction: 'outbound', messagesOut: 1 })
    expect(seenByAlice[0]!.listenAddrs).toEqual([net.address(bob)])
    const seenByBob = bob.peers().connected
    expect(seenByBob[0]).toMatchObject({ id: alice.id, name: 'alice', direction: 'inbound', messagesIn: 1 })
  })

  it('three peers: query a peer for whom it knows, then connect to all of them', async () => {
    const net = await network({ size: 3 })
    const [p0, p1, p2] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0], (typeof net.peers)[0]]
    await net.connect(p1, p0)
    await net.connect(p2, p0)
    const known = await p1.queryPeers(p0.id)
    expect(known.map((k) => k.id)).toEqual([p2.id])
    expect(p1.peers().known.map((k) => k.id)).toEqual([p2.id])
    const results = await p1.connectToActive()
    expect(results).toEqual([expect.objectContaining({ peerId: p2.id, ok: true })])
    expect(
      p1
        .peers()
        .connected.map((c) => c.id)
        .sort(),
    ).toEqual([p0.id, p2.id].sort())
    expect(p1.peers().known).toEqual([])
  })

  it('20 peers in a star build a full mesh with connect-to-active', async () => {
    const net = await network({ size: 20 })
    await net.star()
    for (const p of net.peers.slice(1)) await p.connectToActive()
    for (const p of net.peers) {
      await expect.poll(() => p.peers().connected.length, { timeout: 5_000, interval: 20 }).toBe(19)
    }
    // Every pair shares exactly one connection: each peer lists each other peer once.
    for (const p of net.peers) {
      const ids = p.peers().connected.map((c) => c.id)
      expect(new Set(ids).size).toBe(19)
    }
  })

  it('broadcast reaches every connected peer, with one result each', async () => {
    const net = await network({ size: 4 })
    await net.star()
    const hub = net.peers[0]!
    const boxes = net.peers.slice(1).map((p) => inbox(p))
    const results = await hub.broadcast('to all')
    expect(results).toHaveLength(3)
    expect(results.every((r) => r.ok)).toBe(true)
    for (const box of boxes) expect((await box.waitForCount(1))[0]!.text).toBe('to all')
  })

  it('graceful stop is seen by every peer as a goodbye', async () => {
    const net = await network({ size: 3 })
    await net.fullMesh()
    const [p0, p1, p2] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0], (typeof net.peers)[0]]
    const seen = [p1, p2].map((p) => waitFor(p, 'peer:disconnect', (e) => e.peer.id === p0.id))
    await p0.stop()
    for (const event of await Promise.all(seen)) {
      expect(event.reason).toBe('goodbye')
      expect(event.message).toBe('peer is shutting down')
    }
    expect(p0.status).toBe('stopped')
    expect(p1.peers().connected.map((c) => c.id)).toEqual([p2.id])
    await expect(p1.connect(net.address(p0))).rejects.toBeInstanceOf(PeerError)
  })

  it('a killed peer is noticed and the rest keep talking', async () => {
    const net = await network({ size: 3 })
    await net.fullMesh()
    const [p0, p1, p2] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0], (typeof net.peers)[0]]
    const seen = waitFor(p1, 'peer:disconnect', (e) => e.peer.id === p0.id)
    net.kill(p0)
    expect((await seen).reason).toBe('connection-lost')
    await expect(p1.send(p2.id, 'still here')).resolves.toMatchObject({ peerId: p2.id })
  })

  it('two peers dialing each other at the same moment end with one connection and lose nothing', async () => {
    const net = await network({ size: 2 })
    const [a, b] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]]
    const boxA = inbox(a)
    const boxB = inbox(b)
    await Promise.all([a.connect(net.address(b)), b.connect(net.address(a))])
    const sends = []
    for (let i = 0; i < 20; i++) sends.push(a.send(b.id, `x${i}`), b.send(a.id, `y${i}`))
    await Promise.all(sends)
    await Promise.all([boxA.waitForCount(20), boxB.waitForCount(20)])
    expect(boxB.texts()).toHaveLength(20)
    expect(new Set(boxB.texts()).size).toBe(20)
    expect(new Set(boxA.texts()).size).toBe(20)
    expect(a.peers().connected).toHaveLength(1)
    expect(b.peers().connected).toHaveLength(1)
    // Both ends kept the same connection: its direction is mirrored.
    expect(a.peers().connected[0]!.direction).not.toBe(b.peers().connected[0]!.direction)
  })

  it('connecting to yourself is refused clearly', async () => {
    const net = await network({ size: 1 })
    const p = net.peers[0]!
    await expect(p.connect(net.address(p))).rejects.toMatchObject({ code: 'SELF_CONNECT' })
    expect(p.peers().connected).toEqual([])
  })

  it('sending to an unknown peer fails with a reason, not silently', async () => {
    const net = await network({ size: 1 })
    await expect(net.peers[0]!.send('no-such-peer', 'hi')).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
  })
})

describe('peers over the in-memory network with faults', () => {
  it('simultaneous dials settle on one shared connection, 20 times in a row, under chunking', async () => {
    for (let round = 0; round < 20; round++) {
      const net = await createTestNetwork({ size: 2 })
      onTestFinished(() => net.stop())
      net.network.setChunking(1 + (round % 7) * 16)
      const [a, b] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]]
      const box = inbox(b)
      const dials = [a.connect(net.address(b)), b.connect(net.address(a))]
      const early = a.send(net.address(b), `round ${round}`)
      await Promise.all([...dials, early])
      await box.waitForCount(1)
      expect(box.texts()).toEqual([`round ${round}`])
      expect(a.peers().connected.map((c) => c.id)).toEqual([b.id])
      expect(b.peers().connected.map((c) => c.id)).toEqual([a.id])
      await net.stop()
    }
  })

  it('messages survive a network that delivers one byte at a time', async () => {
    const net = await createTestNetwork({ size: 2 })
    onTestFinished(() => net.stop())
    net.network.setChunking(1)
    const [a, b] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]]
    await net.connect(a, b)
    const box = inbox(b)
    await a.send(b.id, 'héllo wörld, one byte at a time')
    expect(box.texts()).toEqual(['héllo wörld, one byte at a time'])
  })
})

describe('listening on every interface', () => {
  it('advertises dialable addresses instead of 0.0.0.0, and peer exchange passes them on', async () => {
    const hub = createPeer({ name: 'hub', transport: tcpTransport(), listen: '0.0.0.0:0' })
    onTestFinished(() => hub.stop())
    await hub.start()
    expect(hub.addresses.some((a) => a.startsWith('0.0.0.0'))).toBe(false)
    const port = hub.addresses[0]!.split(':').pop()
    expect(hub.addresses).toContain(`127.0.0.1:${port}`)
    const alice = createPeer({ name: 'alice', transport: tcpTransport() })
    onTestFinished(() => alice.stop())
    await alice.start()
    const info = await alice.connect(`127.0.0.1:${port}`)
    expect(info.listenAddrs).toEqual(hub.addresses)
  })
})

// Partitions need the in-memory network.
describe('broadcast, over the in-memory harness', () => {
  it('broadcast tells each result as it comes: a peer cut off does not hold up the others', async () => {
    const net = await createTestNetwork({ size: 3, peer: { ackTimeout: 60_000 } })
    onTestFinished(() => net.stop())
    await net.star()
    const [hub, fast, cut] = net.peers as [Peer, Peer, Peer]
    net.partition(hub, cut)
    const told: string[] = []
    let fastTold!: () => void
    const fastHeard = new Promise<void>((resolve) => {
      fastTold = resolve
    })
    const all = hub.broadcast('to all', {
      onResult: (r) => {
        told.push(r.peerId)
        if (r.peerId === fast.id && r.ok) fastTold()
      },
    })
    // The fast peer's result is told while the cut one's is still 60 s away.
    await fastHeard
    expect(told).toEqual([fast.id])
    net.heal()
    net.kill(cut)
    const results = await all
    expect(told.sort()).toEqual(results.map((r) => r.peerId).sort())
    expect(results.find((r) => r.peerId === cut.id)?.ok).toBe(false)
  })
})
