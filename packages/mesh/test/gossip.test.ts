import { randomBytes } from 'node:crypto'
import type { Channel, DisconnectEvent, Service } from '@parley/core'
import { createPeer, generateIdentity, memoryTransport, signWithIdentity } from '@parley/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import {
  decodeGossip,
  decodeGossipControl,
  encodeGossip,
  encodeGossipControl,
  encodeMesh,
  GOSSIP_HOPS_OFFSET,
  gossipSigningBytes,
} from '../src/codec.js'
import { GOSSIP_PROTOCOL, type GossipDelivery } from '../src/gossip.js'
import { MESH_PROTOCOL } from '../src/membership.js'
import { type MeshNode, meshNetwork, until } from './fixtures/mesh-net.js'

// Every signature check the gossip service makes, counted (the real check still runs).
const verifications = vi.hoisted(() => ({ fn: undefined as unknown as ReturnType<typeof vi.fn> }))
vi.mock('../src/signing.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/signing.js')>()
  verifications.fn = vi.fn(real.verifySignature)
  return { ...real, verifySignature: verifications.fn }
})

/** Makes `b` and `a` neighbours (b joins through a) and waits until both see it. */
async function link(a: MeshNode, b: MeshNode): Promise<void> {
  await b.mesh.join(a.peer.addresses[0]!)
  await until(
    () => a.mesh.isActive(b.peer.id) && b.mesh.isActive(a.peer.id),
    [a.mesh, b.mesh],
    ['neighbor:up'],
  )
}

function deliveries(node: MeshNode): GossipDelivery[] {
  const got: GossipDelivery[] = []
  node.gossip.on('gossip', (m) => got.push(m))
  return got
}

/**
 * A hand-written neighbour of `victim`: it joins the victim's mesh, then hands every gossip frame the
 * victim sends it to `onFrame`. Returns its gossip channel, to send whatever it likes.
 */
async function hostileNeighbour(
  network: Parameters<typeof memoryTransport>[0],
  victim: MeshNode,
  onFrame: (body: Uint8Array) => void,
  name = 'evil',
): Promise<Channel> {
  let channel: Channel | undefined
  const evilMesh: Service = {
    protocol: MESH_PROTOCOL,
    open(ch) {
      queueMicrotask(() => ch.sendBytes(encodeMesh({ type: 'JOIN', addr: '' })))
      return { onFrame() {}, onClose() {} }
    },
  }
  const evilGossip: Service = {
    protocol: GOSSIP_PROTOCOL,
    open(ch) {
      channel = ch
      return { onFrame, onClose() {} }
    },
  }
  const evil = createPeer({
    transport: memoryTransport(network, { host: name }),
    name,
    services: [evilMesh, evilGossip],
  })
  onTestFinished(() => evil.stop())
  await evil.start()
  await evil.connect(victim.peer.addresses[0]!)
  await until(() => victim.mesh.isActive(evil.id), [victim.mesh], ['neighbor:up'])
  return channel!
}

/** A GOSSIP frame from `origin`, signed, one hop out. */
function signedBy(origin: ReturnType<typeof generateIdentity>, text: string, sentAt: number): Uint8Array {
  const id = randomBytes(16).toString('hex')
  const signature = signWithIdentity(origin, gossipSigningBytes(id, origin.peerId, sentAt, text))
  return encodeGossip({ type: 'GOSSIP', hops: 1, id, origin: origin.peerId, sentAt, text, signature })
}

// Walks of length 0 and no repair or shuffle: the overlay is exactly the links each test makes.
const fixed = { mesh: { activeSize: 4, joinTtl: 0, shuffleInterval: 0, repairInterval: 60_000 } }

describe('mesh gossip', () => {
  it('the first broadcast floods and prunes the redundant links; later ones travel the tree once per peer', async () => {
    const { make } = meshNetwork(fixed)
    const nodes = [await make(), await make(), await make(), await make()]
    const [a, ...others] = nodes as [MeshNode, ...MeshNode[]]
    // Walks of length 0 connect each joiner to the contact's neighbours too: four peers, all neighbours.
    for (const n of others) await link(a, n)
    const emitters = nodes.map((n) => n.mesh)
    await until(() => nodes.every((n) => n.mesh.active().length === 3), emitters, ['neighbor:up'])
    const got = others.map(deliveries)
    const { id } = a.gossip.broadcast('hello, mesh')
    // Every link starts on the tree: each relays to the two neighbours other than the origin, so each
    // gets two copies more, and prunes both links they came over.
    await until(
      () => others.every((n) => n.gossip.stats.delivered === 1 && n.gossip.stats.duplicates === 2),
      others.map((n) => n.gossip),
      ['gossip', 'duplicate'],
    )
    for (const list of got) {
      expect(list).toEqual([expect.objectContaining({ id, from: a.peer.id, text: 'hello, mesh', hops: 1 })])
    }
    expect(a.gossip.stats.delivered).toBe(0)
    // What is left of the tree is the star around the origin.
    for (const n of others) expect(n.gossip.state().eager).toEqual([a.peer.id])
    const second = a.gossip.broadcast('once each')
    await until(
      () => others.every((n) => n.gossip.stats.delivered === 2),
      others.map((n) => n.gossip),
      ['gossip'],
    )
    for (const list of got) expect(list[1]).toEqual(expect.objectContaining({ id: second.id, hops: 1 }))
    // Nobody relayed it again (they relay before they deliver): the other links only carry IHAVEs.
    expect(others.map((n) => n.gossip.stats.sent)).toEqual([2, 2, 2])
  })

  it('a message announced but not pushed is asked for (GRAFT), and that link joins the tree', async () => {
    const { make } = meshNetwork({ ...fixed, gossip: { graftTimeout: 100 } })
    const [a, b, c] = [await make(), await make(), await make()]
    // A triangle: the first broadcast prunes the b–c link, leaving a–b and a–c on the tree.
    await link(a, b)
    await link(a, c)
    await link(b, c)
    a.gossip.broadcast('prune')
    await until(
      () => b.gossip.stats.duplicates === 1 && c.gossip.stats.duplicates === 1,
      [b.gossip, c.gossip],
      ['duplicate'],
    )
    expect(c.gossip.state()).toEqual(expect.objectContaining({ eager: [a.peer.id], lazy: [b.peer.id] }))
    // The a–c link goes: c now hears of a's messages only through b's announcements.
    await a.peer.disconnect(c.peer.id)
    await until(() => !c.mesh.isActive(a.peer.id), [c.mesh], ['neighbor:down'])
    const atC = deliveries(c)
    const { id } = a.gossip.broadcast('around the gap')
    await until(() => atC.length === 1, [c.gossip], ['gossip'])
    expect(atC[0]).toEqual(expect.objectContaining({ id, hops: 2, text: 'around the gap' }))
    expect(c.gossip.stats.grafts).toBe(1)
    expect(b.gossip.stats.graftAnswers).toBe(1)
    // b–c is on the tree again: the next message is pushed, not asked for.
    expect(c.gossip.state().eager).toEqual([b.peer.id])
    a.gossip.broadcast('on the tree')
    await until(() => atC.length === 2, [c.gossip], ['gossip'])
    expect(c.gossip.stats.grafts).toBe(1)
  })

  it('a neighbour cannot make us re-send without bound or track its invented announcements', async () => {
    const { network, make } = meshNetwork({
      ...fixed,
      gossip: {
        graftTimeout: 50,
        graftAnswers: { perSecond: 0.001, burst: 3 },
        missing: { total: 64, perNeighbour: 8 },
      },
    })
    const victim = await make()
    let received = 0
    let grafts = 0
    let eighth: () => void = () => {}
    const eightGrafts = new Promise<void>((resolve) => {
      eighth = resolve
    })
    const channel = await hostileNeighbour(network, victim, (body) => {
      if (body[0] === 1) received++
      else if (decodeGossipControl(body).type === 'GRAFT' && ++grafts === 8) eighth()
    })
    const { id } = victim.gossip.broadcast('once')
    const origin = victim.peer.id
    // 100 GRAFTs for a message the victim has: it answers the first three.
    for (let i = 0; i < 100; i++) channel.sendBytes(encodeGossipControl({ type: 'GRAFT', id, origin }))
    // 20 IHAVEs of 32 invented keys each: the victim tracks 8 of them and asks for each once.
    for (let i = 0; i < 20; i++) {
      const keys = Array.from({ length: 32 }, () => ({ id: randomBytes(16).toString('hex'), origin }))
      channel.sendBytes(encodeGossipControl({ type: 'IHAVE', keys }))
    }
    // The victim's GRAFTs follow its answers on the same channel: by the eighth, every answer is in.
    await eightGrafts
    expect(received).toBe(1 + 3)
    expect(victim.gossip.stats.graftAnswers).toBe(3)
    expect(victim.gossip.state().missing).toBeLessThanOrEqual(8)
  })

  it('a forged stale copy of an announced message does not cancel asking for the real one', async () => {
    const { network, make } = meshNetwork({ ...fixed, gossip: { graftTimeout: 50 } })
    const victim = await make()
    const origin = (await make()).peer.id
    const id = randomBytes(16).toString('hex')
    let grafted: () => void = () => {}
    const graft = new Promise<void>((resolve) => {
      grafted = resolve
    })
    const channel = await hostileNeighbour(network, victim, (body) => {
      if (body[0] === 1) return
      const control = decodeGossipControl(body)
      if (control.type === 'GRAFT' && control.id === id) grafted()
    })
    channel.sendBytes(encodeGossipControl({ type: 'IHAVE', keys: [{ id, origin }] }))
    // Same key, a year old, signed by nobody: dropped as stale before its signature is even checked.
    const forged = { type: 'GOSSIP' as const, hops: 0, id, origin, sentAt: Date.now() - 365 * 86_400_000 }
    channel.sendBytes(encodeGossip({ ...forged, text: 'forged', signature: new Uint8Array(64) }))
    await graft
    expect(victim.gossip.stats.dropped).toBe(1)
  })

  it('a relay that alters a message or reuses its signature is cut off, and only the real text is delivered', async () => {
    const { network, make } = meshNetwork(fixed)
    const a = await make()
    const c = await make()
    const d = await make()
    // The forger joins the mesh (so it is a neighbour of a and of c) and passes on what it gets, altered.
    const gossipChannels: Channel[] = []
    const forgerMesh: Service = {
      protocol: MESH_PROTOCOL,
      open(channel) {
        queueMicrotask(() => channel.sendBytes(encodeMesh({ type: 'JOIN', addr: '' })))
        return { onFrame() {}, onClose() {} }
      },
    }
    const forgerGossip: Service = {
      protocol: GOSSIP_PROTOCOL,
      open(channel) {
        gossipChannels.push(channel)
        return {
          onFrame(body) {
            const msg = decodeGossip(body)
            const altered = encodeGossip({ ...msg, text: 'send your keys to mallory' })
            const reused = encodeGossip({ ...msg, id: randomBytes(16).toString('hex') })
            for (const other of gossipChannels) {
              if (other === channel) continue
              other.sendBytes(altered)
              other.sendBytes(reused)
            }
          },
          onClose() {},
        }
      },
    }
    const evil = createPeer({
      transport: memoryTransport(network, { host: 'evil' }),
      name: 'evil',
      services: [forgerMesh, forgerGossip],
    })
    onTestFinished(() => evil.stop())
    await evil.start()
    await evil.connect(a.peer.addresses[0]!)
    await evil.connect(c.peer.addresses[0]!)
    await link(a, d)
    await link(d, c)
    await until(
      () => a.mesh.active().length === 2 && c.mesh.active().length === 2,
      [a.mesh, c.mesh],
      ['neighbor:up'],
    )
    const atC = deliveries(c)
    const cut = new Promise<DisconnectEvent>((resolve) =>
      c.peer.on('peer:disconnect', (e) => e.peer.name === 'evil' && resolve(e)),
    )
    const { id } = a.gossip.broadcast('the real text')
    expect((await cut).reason).toBe('protocol-error')
    await until(() => atC.length === 1, [c.gossip], ['gossip'])
    expect(atC).toEqual([expect.objectContaining({ id, text: 'the real text', from: a.peer.id })])
    expect(c.mesh.isActive(evil.id)).toBe(false)
  })

  it('a message is relayed beyond its origin’s neighbours, counting its hops', async () => {
    const { make } = meshNetwork(fixed)
    const [a, b, c, d] = [await make(), await make(), await make(), await make()]
    // A line a–b–c–d: each joins through a peer with no neighbour yet, so no walk adds a shortcut.
    await link(b, a)
    await link(c, b)
    await link(d, c)
    const atC = deliveries(c)
    a.gossip.broadcast('not far')
    await until(() => atC.length === 1, [c.gossip], ['gossip'])
    expect(atC[0]).toEqual(expect.objectContaining({ from: a.peer.id, hops: 2 }))
    const atD = deliveries(d)
    await until(() => atD.length === 1, [d.gossip], ['gossip'])
    expect(atD[0]).toEqual(expect.objectContaining({ from: a.peer.id, text: 'not far', hops: 3 }))
  })

  it('a relay that maxes out the hop count (it is not signed) neither stops nor slows the message after it', async () => {
    const { network, make } = meshNetwork(fixed)
    const victim = await make()
    const next = await make()
    await link(next, victim)
    const channel = await hostileNeighbour(network, victim, () => {})
    const atNext = deliveries(next)
    const origin = generateIdentity()
    const frame = signedBy(origin, 'pass it on', Date.now())
    frame[GOSSIP_HOPS_OFFSET] = 255
    channel.sendBytes(frame)
    await until(() => atNext.length === 1, [next.gossip], ['gossip'])
    expect(atNext[0]).toEqual(expect.objectContaining({ from: origin.peerId, text: 'pass it on', hops: 255 }))
    // Pushed on the tree, not left to an announcement and a GRAFT.
    expect(next.gossip.stats.grafts).toBe(0)
  })

  it('a message from an origin over its rate is dropped before its signature is checked, replays too', async () => {
    const { network, make } = meshNetwork({ ...fixed, gossip: { perOrigin: { perSecond: 0.001, burst: 1 } } })
    const victim = await make()
    const channel = await hostileNeighbour(network, victim, () => {})
    const origin = generateIdentity()
    const [first, second] = [signedBy(origin, 'first', Date.now()), signedBy(origin, 'second', Date.now())]
    const checks = verifications.fn.mock.calls.length
    channel.sendBytes(first)
    for (let i = 0; i < 21; i++) channel.sendBytes(second)
    const stats = victim.gossip.stats
    await until(() => stats.received === 22, [victim.gossip], ['gossip', 'duplicate', 'dropped'])
    expect(stats.delivered).toBe(1)
    // Still dropped for the rate, not taken for a duplicate: it was never delivered, and no link is pruned.
    expect(stats.dropped).toBe(21)
    expect(stats.duplicates).toBe(0)
    // One check, for `first`: its origin had no token left for any copy of `second`.
    expect(verifications.fn.mock.calls.length - checks).toBe(1)
  })

  it('a session past its budget of signature checks has its GOSSIPs dropped unchecked, and stays connected', async () => {
    const { network, make } = meshNetwork({
      ...fixed,
      gossip: { verifications: { perSecond: 0.001, burst: 5 } },
    })
    const victim = await make()
    const channel = await hostileNeighbour(network, victim, () => {})
    const checks = verifications.fn.mock.calls.length
    const reasons: string[] = []
    victim.gossip.on('dropped', (reason) => reasons.push(reason))
    // Twelve fresh origins, each well within its own rate: only the session's budget stops them.
    for (let i = 0; i < 12; i++) channel.sendBytes(signedBy(generateIdentity(), `fresh ${i}`, Date.now()))
    const stats = victim.gossip.stats
    await until(() => stats.received === 12, [victim.gossip], ['gossip', 'dropped'])
    expect(stats.delivered).toBe(5)
    expect(reasons).toEqual(Array(7).fill('budget'))
    expect(verifications.fn.mock.calls.length - checks).toBe(5)
    expect(victim.peer.peers().connected.map((p) => p.name)).toContain('evil')
  })

  it("sessions share the peer's budget of signature checks: more sessions from an attacker cost no more", async () => {
    const { network, make } = meshNetwork({
      ...fixed,
      gossip: { totalVerifications: { perSecond: 0.001, burst: 6 } },
    })
    const victim = await make()
    const channels = [
      await hostileNeighbour(network, victim, () => {}, 'evil1'),
      await hostileNeighbour(network, victim, () => {}, 'evil2'),
      await hostileNeighbour(network, victim, () => {}, 'evil3'),
    ]
    const checks = verifications.fn.mock.calls.length
    // Ten fresh origins on each session, each well within its own rate and the session's own budget.
    for (const channel of channels)
      for (let i = 0; i < 10; i++) channel.sendBytes(signedBy(generateIdentity(), `fresh ${i}`, Date.now()))
    const stats = victim.gossip.stats
    await until(() => stats.received === 30, [victim.gossip], ['gossip', 'dropped'])
    // Three sessions, a third of the budget of 6 each.
    expect(verifications.fn.mock.calls.length - checks).toBe(6)
    expect(stats.delivered).toBe(6)
  })

  it('idle sessions do not shrink the share of the one that sends: the budget is split among senders', async () => {
    const { network, make } = meshNetwork({
      ...fixed,
      gossip: { totalVerifications: { perSecond: 0.001, burst: 6 } },
    })
    const victim = await make()
    const sender = await hostileNeighbour(network, victim, () => {}, 'sender')
    // Sessions that never send: before, each took an equal share, unused.
    for (const name of ['idle1', 'idle2', 'idle3']) await hostileNeighbour(network, victim, () => {}, name)
    const checks = verifications.fn.mock.calls.length
    for (let i = 0; i < 10; i++) sender.sendBytes(signedBy(generateIdentity(), `busy ${i}`, Date.now()))
    const stats = victim.gossip.stats
    await until(() => stats.received === 10, [victim.gossip], ['gossip', 'dropped'])
    expect(verifications.fn.mock.calls.length - checks).toBe(6)
  })

  it('a session past its share may use what sessions sending little leave, within the peer’s budget', async () => {
    const { network, make } = meshNetwork({
      ...fixed,
      gossip: { totalVerifications: { perSecond: 0.001, burst: 40 } },
    })
    const victim = await make()
    const busy = await hostileNeighbour(network, victim, () => {}, 'busy')
    const quiet = [
      await hostileNeighbour(network, victim, () => {}, 'quiet1'),
      await hostileNeighbour(network, victim, () => {}, 'quiet2'),
      await hostileNeighbour(network, victim, () => {}, 'quiet3'),
    ]
    // Each quiet session sends one message: it counts among the senders, and uses little.
    for (const q of quiet) q.sendBytes(signedBy(generateIdentity(), 'a trickle', Date.now()))
    const stats = victim.gossip.stats
    await until(() => stats.received === 3, [victim.gossip], ['gossip', 'dropped'])
    const checks = verifications.fn.mock.calls.length
    for (let i = 0; i < 40; i++) busy.sendBytes(signedBy(generateIdentity(), `busy ${i}`, Date.now()))
    await until(() => stats.received === 43, [victim.gossip], ['gossip', 'dropped'])
    const used = verifications.fn.mock.calls.length - checks
    // More than an equal share of 40 among four senders (and than a new session's 16)…
    expect(used).toBeGreaterThanOrEqual(20)
    // …and never more than the peer's budget.
    expect(used + 3).toBeLessThanOrEqual(40)
  })

  it('a message forgotten by a full seen-cache, replayed, is dropped as stale and not delivered twice', async () => {
    const { network, make } = meshNetwork({ ...fixed, gossip: { seenCacheSize: 8 } })
    const victim = await make()
    const channel = await hostileNeighbour(network, victim, () => {})
    const now = Date.now()
    const replayed = signedBy(generateIdentity(), 'once', now - 1_000)
    channel.sendBytes(replayed)
    // Eight messages from throwaway origins, each within its origin's rate, push it out of the cache.
    for (let i = 0; i < 8; i++) channel.sendBytes(signedBy(generateIdentity(), `flush ${i}`, now))
    channel.sendBytes(replayed)
    const stats = victim.gossip.stats
    await until(() => stats.received === 10, [victim.gossip], ['gossip', 'duplicate', 'dropped'])
    expect(stats.delivered).toBe(9)
    expect(stats.dropped).toBe(1)
  })

  it('messages dated into the future do not make later messages stale when they fill the seen-cache', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const { network, make } = meshNetwork({ ...fixed, gossip: { seenCacheSize: 8 } })
    const victim = await make()
    const channel = await hostileNeighbour(network, victim, () => {})
    const floodAt = Date.now()
    for (let i = 0; i < 8; i++)
      channel.sendBytes(signedBy(generateIdentity(), `ahead ${i}`, floodAt + 59_000))
    const stats = victim.gossip.stats
    await until(() => stats.received === 8, [victim.gossip], ['gossip', 'duplicate', 'dropped'])
    // A second later, two honest messages arrive out of order: both are delivered.
    vi.setSystemTime(floodAt + 1_000)
    const got = deliveries(victim)
    channel.sendBytes(signedBy(generateIdentity(), 'later', floodAt + 900))
    channel.sendBytes(signedBy(generateIdentity(), 'earlier', floodAt + 800))
    await until(() => stats.received === 10, [victim.gossip], ['gossip', 'duplicate', 'dropped'])
    expect(got.map((m) => m.text)).toEqual(['later', 'earlier'])
  })

  it('an announcement from a session that is not a neighbour is ignored', async () => {
    const { network, make } = meshNetwork(fixed)
    const victim = await make()
    let opened: (ch: Channel) => void = () => {}
    const gossipChannel = new Promise<Channel>((resolve) => {
      opened = resolve
    })
    const strangerGossip: Service = {
      protocol: GOSSIP_PROTOCOL,
      open(ch) {
        opened(ch)
        return { onFrame() {}, onClose() {} }
      },
    }
    // Gossip but no mesh service: it never becomes a neighbour.
    const stranger = createPeer({
      transport: memoryTransport(network, { host: 'stranger' }),
      name: 'stranger',
      services: [strangerGossip],
    })
    onTestFinished(() => stranger.stop())
    await stranger.start()
    await stranger.connect(victim.peer.addresses[0]!)
    const channel = await gossipChannel
    const origin = generateIdentity()
    channel.sendBytes(
      encodeGossipControl({
        type: 'IHAVE',
        keys: [{ id: randomBytes(16).toString('hex'), origin: origin.peerId }],
      }),
    )
    // Frames are handled in order: once this message is in, the announcement before it was handled.
    channel.sendBytes(signedBy(origin, 'marker', Date.now()))
    await until(() => victim.gossip.stats.received === 1, [victim.gossip], ['gossip', 'duplicate', 'dropped'])
    expect(victim.mesh.isActive(stranger.id)).toBe(false)
    expect(victim.gossip.state().missing).toBe(0)
  })

  it('an origin over its rate has its messages dropped at the first relay', async () => {
    const { make } = meshNetwork({ ...fixed, gossip: { perOrigin: { perSecond: 0.001, burst: 2 } } })
    const [a, b, c] = [await make(), await make(), await make()]
    await link(a, b)
    await link(b, c)
    const atB = deliveries(b)
    for (let i = 0; i < 5; i++) a.gossip.broadcast(`flood ${i}`)
    await until(() => b.gossip.stats.received === 5, [b.gossip], ['gossip', 'duplicate', 'dropped'])
    expect(atB.map((m) => m.text)).toEqual(['flood 0', 'flood 1'])
    expect(b.gossip.stats.dropped).toBe(3)
  })
})
