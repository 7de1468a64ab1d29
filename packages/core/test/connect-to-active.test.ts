import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { Peer } from '../src/peer.js'
import type { DisconnectEvent, PeerInit } from '../src/peer-types.js'
import { plaintextUpgrader } from '../src/secure/plaintext.js'
import { memoryNetwork } from '../src/transports/memory.js'
import { memoryPeer } from './fixtures/memory-peer.js'

/** `size` started peers on one in-memory network (plaintext: the handshakes are not under test). */
async function peers(size: number, init: Partial<PeerInit> = {}): Promise<Peer[]> {
  const network = memoryNetwork()
  const out: Peer[] = []
  for (let i = 0; i < size; i++) {
    const peer = memoryPeer(network, `p${i}`, { upgrader: plaintextUpgrader(), ...init })
    await peer.start()
    out.push(peer)
  }
  return out
}

/** Every other peer dials the hub `p0`, so each one knows all the others through one exchange. */
async function star(all: Peer[]): Promise<void> {
  for (const p of all.slice(1)) await p.connect(all[0]!.addresses[0]!)
}

const connectedIds = (p: Peer) =>
  p
    .peers()
    .connected.map((c) => c.id)
    .sort()

describe('connectToActive at any size', () => {
  it('in a small network it connects to everyone and says who was already connected', async () => {
    const all = await peers(5)
    await star(all)
    const [hub, me] = all as [Peer, Peer]
    const results = await me.connectToActive()
    expect(results.map((r) => r.status)).toEqual(['dialed', 'dialed', 'dialed'])
    expect(results.alreadyConnected.map((p) => p.peerId)).toEqual([hub.id])
    expect(results.skipped).toEqual([])
    expect(connectedIds(me)).toEqual(
      all
        .filter((p) => p !== me)
        .map((p) => p.id)
        .sort(),
    )
  })

  it('in a large network it stops at the degree and reports every peer it did not dial', async () => {
    const all = await peers(10)
    await star(all)
    const me = all[1]!
    const results = await me.connectToActive({ maxDegree: 4 })
    // Connected to the hub already: three more make four.
    expect(results).toHaveLength(3)
    expect(results.every((r) => r.ok)).toBe(true)
    expect(me.peers().connected).toHaveLength(4)
    expect(results.skipped).toHaveLength(5)
    expect(new Set(results.skipped.map((s) => s.reason))).toEqual(new Set(['degree-reached']))
    const accounted = [
      ...results.map((r) => r.peerId),
      ...results.skipped.map((s) => s.peerId),
      ...results.alreadyConnected.map((p) => p.peerId),
    ]
    expect(accounted.sort()).toEqual(
      all
        .filter((p) => p !== me)
        .map((p) => p.id)
        .sort(),
    )
  })

  it('dials no more than maxDials in one call, and says the budget was the reason', async () => {
    const all = await peers(8, { maxDialsPerCall: 2 })
    await star(all)
    const me = all[1]!
    const results = await me.connectToActive()
    expect(results).toHaveLength(2)
    expect(results.skipped).toHaveLength(4)
    expect(new Set(results.skipped.map((s) => s.reason))).toEqual(new Set(['dial-budget']))
  })

  it('does not dial a peer that said goodbye, and reports it as gone', async () => {
    const all = await peers(4)
    await star(all)
    const [, me, leaver] = all as [Peer, Peer, Peer]
    // me learns of leaver, connects to it, and sees it leave with a GOODBYE.
    await me.connectToActive()
    const left = once(me, 'peer:disconnect')
    await leaver.stop()
    await left
    const results = await me.connectToActive({ rounds: 0 })
    expect(results).toHaveLength(0)
    expect(results.skipped).toEqual([{ peerId: leaver.id, name: 'p2', reason: 'gone' }])
  })
})

describe('sends to peers without a session', () => {
  it('a send to a known peer by id dials it, and the session closes once idle unless it is retained', async () => {
    const kept = new Set<string>()
    const all = await peers(4, { transientIdleTimeout: 200, retain: (id) => kept.has(id) })
    await star(all)
    const [hub, me, a, b] = all as [Peer, Peer, Peer, Peer]
    await me.queryPeers(hub.id)
    kept.add(b.id)
    // By id: known from the hub's answer, not connected.
    expect((await me.send(a.id, 'to a')).peerId).toBe(a.id)
    expect((await me.send(b.addresses[0]!, 'to b')).peerId).toBe(b.id)
    const gone: DisconnectEvent = await new Promise((resolve) =>
      me.on('peer:disconnect', (e) => e.peer.id === a.id && resolve(e)),
    )
    expect(gone.reason).toBe('local')
    // b was opened the same way and is as idle, but retained: still connected after a was closed.
    expect(connectedIds(me)).toEqual([hub.id, b.id].sort())
  })

  it('a session the user connects to is never closed as idle', async () => {
    const all = await peers(3, { transientIdleTimeout: 200 })
    const [me, a, b] = all as [Peer, Peer, Peer]
    await me.send(a.addresses[0]!, 'one send')
    await me.send(b.addresses[0]!, 'one send')
    // The user asks for b: it is theirs now.
    await me.connect(b.addresses[0]!)
    await new Promise((resolve) => me.on('peer:disconnect', (e) => e.peer.id === a.id && resolve(e)))
    expect(connectedIds(me)).toEqual([b.id])
  })
})
