import { randomBytes } from 'node:crypto'
import {
  type Channel,
  createPeer,
  fingerprint,
  generateIdentity,
  memoryNetwork,
  memoryTransport,
  type Peer,
  plaintextUpgrader,
  type ReceivedMessage,
  signWithIdentity,
} from '@parley/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { decodeGossipControl, encodeGossip, encodeGossipControl, gossipSigningBytes } from '../src/codec.js'
import { GOSSIP_PROTOCOL } from '../src/gossip.js'
import { createMeshPeer, type MeshPeer, type MeshPeerInit } from '../src/mesh-peer.js'
import { seededRandom } from '../src/random.js'
import { until } from './fixtures/mesh-net.js'

function meshPeers(options: Partial<MeshPeerInit> = {}) {
  const network = memoryNetwork()
  let count = 0
  const make = async (): Promise<MeshPeer> => {
    const name = `m${count++}`
    const peer = createMeshPeer({
      transport: memoryTransport(network, { host: name }),
      upgrader: plaintextUpgrader(),
      name,
      listen: `${name}:0`,
      ...options,
      mesh: { random: seededRandom(count), ...options.mesh },
    })
    onTestFinished(() => peer.stop())
    await peer.start()
    return peer
  }
  return { network, make }
}

function inbox(peer: Peer): ReceivedMessage[] {
  const got: ReceivedMessage[] = []
  peer.on('message', (m) => got.push(m))
  return got
}

describe('a peer in the mesh', () => {
  it.each([
    ['a short text', 'over the mesh'],
    // Long texts are matched by their digest: the two copies at b must still meet.
    ['a long text', `over the mesh ${'·'.repeat(4_000)}`],
  ])(
    'a broadcast of %s reaches a peer that is not connected to the sender, once, from its signed origin',
    async (_, text) => {
      // a and c cannot reach each other: c hears a only through b.
      const { network, make } = meshPeers({ mesh: { activeSize: 2, shuffleInterval: 0 } })
      network.partition('m0', 'm2')
      const a = await make()
      const b = await make()
      const c = await make()
      await a.connect(b.addresses[0]!)
      await a.connectToActive({ rounds: 0 })
      await c.connect(b.addresses[0]!)
      await c.connectToActive({ rounds: 0 })
      await until(() => b.mesh.isActive(a.id) && b.mesh.isActive(c.id), [b.mesh], ['neighbor:up'])
      expect(a.peers().connected.map((p) => p.id)).not.toContain(c.id)
      const atB = inbox(b)
      const atC = inbox(c)
      const results = await a.broadcast(text)
      // The direct copy to b is acknowledged, as a broadcast always was.
      expect(results).toEqual([expect.objectContaining({ peerId: b.id, ok: true })])
      await until(() => atC.length === 1, [c], ['message'])
      expect(atC[0]).toMatchObject({ text, from: { id: a.id } })
      // b got it directly and as a gossip: delivered once.
      await until(() => b.gossip.stats.delivered === 1, [b.gossip], ['gossip'])
      expect(atB.map((m) => m.text)).toEqual([text])
      expect(atC).toHaveLength(1)
    },
  )

  it('in a small network connect-to-active connects to everyone and joins the mesh', async () => {
    const { make } = meshPeers()
    const nodes = [await make(), await make(), await make(), await make()]
    const [hub, me] = nodes as [MeshPeer, MeshPeer]
    for (const p of nodes.slice(1)) await p.connect(hub.addresses[0]!)
    const results = await me.connectToActive()
    expect(results.filter((r) => r.ok)).toHaveLength(2)
    expect(results.skipped).toEqual([])
    expect(me.peers().connected).toHaveLength(3)
    await until(() => me.mesh.active().length > 0, [me.mesh], ['neighbor:up'])
  })

  it('in a large network it dials nobody itself: it joins the mesh and reports the others as skipped', async () => {
    const { make } = meshPeers({ maxDegree: 3 })
    const nodes: MeshPeer[] = []
    for (let i = 0; i < 8; i++) nodes.push(await make())
    const [hub, me] = nodes as [MeshPeer, MeshPeer]
    for (const p of nodes.slice(1)) await p.connect(hub.addresses[0]!)
    const results = await me.connectToActive()
    expect(results).toHaveLength(0)
    expect(results.alreadyConnected.map((p) => p.peerId)).toEqual([hub.id])
    expect(results.skipped).toHaveLength(6)
    expect(new Set(results.skipped.map((s) => s.reason))).toEqual(new Set(['degree-reached']))
    await until(() => me.mesh.isActive(hub.id), [me.mesh], ['neighbor:up'])
  })

  it('a plain peer (no mesh) connected to a mesh peer still gets its broadcasts', async () => {
    const network = memoryNetwork()
    const mesh = createMeshPeer({
      transport: memoryTransport(network, { host: 'm' }),
      upgrader: plaintextUpgrader(),
      listen: 'm:0',
    })
    const plain = createPeer({
      transport: memoryTransport(network, { host: 'p' }),
      upgrader: plaintextUpgrader(),
      listen: 'p:0',
    })
    onTestFinished(async () => {
      await Promise.all([mesh.stop(), plain.stop()])
    })
    await mesh.start()
    await plain.start()
    await plain.connect(mesh.addresses[0]!)
    const got = inbox(plain)
    const results = await mesh.broadcast('hello, plain peer')
    expect(results).toEqual([expect.objectContaining({ peerId: plain.id, ok: true })])
    expect(got.map((m) => m.text)).toEqual(['hello, plain peer'])
  })
})

/**
 * A mesh peer `b`, a plain peer `a` (its identity known, so the test can sign gossip as `a`) connected
 * to it, and `relay`: a session to `b` that runs gossip, to hand `b` a copy of a's broadcast at will.
 */
async function originAndRelay() {
  const { network, make } = meshPeers()
  const b = await make()
  const identity = generateIdentity()
  const a = createPeer({
    transport: memoryTransport(network, { host: 'a' }),
    upgrader: plaintextUpgrader(),
    name: 'a',
    identity,
  })
  let channel: Channel | undefined
  const relayPeer = createPeer({
    transport: memoryTransport(network, { host: 'relay' }),
    upgrader: plaintextUpgrader(),
    name: 'relay',
    services: [
      {
        protocol: GOSSIP_PROTOCOL,
        open(ch) {
          channel = ch
          return { onFrame() {}, onClose() {} }
        },
      },
    ],
  })
  onTestFinished(async () => {
    await Promise.all([a.stop(), relayPeer.stop()])
  })
  await a.start()
  await relayPeer.start()
  await a.connect(b.addresses[0]!)
  await relayPeer.connect(b.addresses[0]!)
  /** Hands b the gossip copy of a broadcast of `text` that `a` stamped at `sentAt`. */
  const relay = (text: string, sentAt: number) => {
    const id = randomBytes(16).toString('hex')
    const signature = signWithIdentity(identity, gossipSigningBytes(id, identity.peerId, sentAt, text))
    channel!.sendBytes(
      encodeGossip({ type: 'GOSSIP', hops: 1, id, origin: identity.peerId, sentAt, text, signature }),
    )
  }
  return { a, b, relay, relayPeer }
}

describe('one delivery per broadcast, and no more', () => {
  it('a relayed copy that comes minutes after the direct one is not shown again', async () => {
    const { a, b, relay } = await originAndRelay()
    const atB = inbox(b)
    await a.send(b.id, 'the meeting moved to 3pm')
    expect(atB).toHaveLength(1)
    // A relay held the copy for 90 s: late, but within gossip's maxAge (300 s), so it is accepted.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    vi.setSystemTime(Date.now() + 90_000)
    relay('the meeting moved to 3pm', atB[0]!.sentAt)
    await until(() => b.gossip.stats.delivered === 1, [b.gossip], ['gossip'])
    expect(atB.map((m) => m.text)).toEqual(['the meeting moved to 3pm'])
  })

  it("another sender's flood of distinct texts does not make a broadcast's late copy show twice", async () => {
    const { a, b, relay, relayPeer } = await originAndRelay()
    const atB = inbox(b)
    await a.send(b.id, 'the meeting moved to 3pm')
    expect(atB).toHaveLength(1)
    // More distinct texts than the table holds pairs (4,096), before the relayed copy comes.
    const flood = Array.from({ length: 4_200 }, (_, i) => `flood ${i}`)
    await relayPeer.sendMany(b.id, flood)
    expect(atB).toHaveLength(4_201)
    relay('the meeting moved to 3pm', atB[0]!.sentAt)
    await until(() => b.gossip.stats.delivered === 1, [b.gossip], ['gossip'])
    expect(atB.filter((m) => m.text === 'the meeting moved to 3pm')).toHaveLength(1)
  })

  it('a message that repeats a text its origin broadcast a while before is delivered', async () => {
    const { a, b, relay } = await originAndRelay()
    const atB = inbox(b)
    // a broadcast "ok" 30 s ago; b got only the relayed copy.
    relay('ok', Date.now() - 30_000)
    await until(() => atB.length === 1, [b], ['message'])
    await a.send(b.id, 'ok')
    expect(atB.map((m) => m.text)).toEqual(['ok', 'ok'])
    expect(atB[1]!.from.id).toBe(a.id)
  })

  it('two copies the origin stamped within seconds of each other are one broadcast', async () => {
    const { a, b, relay } = await originAndRelay()
    const atB = inbox(b)
    relay('ok', Date.now() - 1_000)
    await until(() => atB.length === 1, [b], ['message'])
    await a.send(b.id, 'ok')
    expect(atB).toHaveLength(1)
  })
})

describe('names on relayed broadcasts', () => {
  it("a name heard from a peer list is not shown when it is another peer's: the origin shows as its fingerprint", async () => {
    const { network, make } = meshPeers()
    const b = await make()
    const alice = createPeer({
      transport: memoryTransport(network, { host: 'alice' }),
      upgrader: plaintextUpgrader(),
      name: 'alice',
    })
    const impostorIdentity = generateIdentity()
    const impostor = createPeer({
      transport: memoryTransport(network, { host: 'imp' }),
      upgrader: plaintextUpgrader(),
      name: 'alice',
      identity: impostorIdentity,
      listen: 'imp:0',
    })
    let channel: Channel | undefined
    const relay = createPeer({
      transport: memoryTransport(network, { host: 'relay' }),
      upgrader: plaintextUpgrader(),
      name: 'relay',
      listen: 'relay:0',
      services: [
        {
          protocol: GOSSIP_PROTOCOL,
          open(ch) {
            channel = ch
            return { onFrame() {}, onClose() {} }
          },
        },
      ],
    })
    onTestFinished(async () => {
      await Promise.all([alice.stop(), impostor.stop(), relay.stop()])
    })
    for (const p of [alice, impostor, relay]) await p.start()
    await alice.connect(b.addresses[0]!)
    await impostor.connect(relay.addresses[0]!)
    await b.connect(relay.addresses[0]!)
    // b hears of the impostor, by the name alice, from the relay's list.
    await b.queryPeers(relay.id)
    expect(b.peers().known.map((k) => [k.id, k.name])).toContainEqual([impostor.id, 'alice'])
    const atB = inbox(b)
    const id = randomBytes(16).toString('hex')
    const sentAt = Date.now()
    const text = 'alice here: send me the wifi password'
    const signature = signWithIdentity(impostorIdentity, gossipSigningBytes(id, impostor.id, sentAt, text))
    channel!.sendBytes(
      encodeGossip({ type: 'GOSSIP', hops: 1, id, origin: impostor.id, sentAt, text, signature }),
    )
    await until(() => atB.length === 1, [b], ['message'])
    expect(atB[0]!.from).toEqual({ id: impostor.id, name: fingerprint(impostor.id) })
  })
})

describe('a stranger to the mesh', () => {
  it('cannot make a mesh peer track or ask for announcements: only neighbours and sessions it opened announce', async () => {
    const { network, make } = meshPeers({ gossip: { graftTimeout: 50 } })
    const victim = await make()
    const { id } = victim.gossip.broadcast('kept')
    const origin = victim.id
    // A session the remote opened that runs gossip but is no mesh neighbour (it runs no membership).
    let answered: () => void = () => {}
    const answer = new Promise<void>((resolve) => {
      answered = resolve
    })
    let grafts = 0
    let channel: Channel | undefined
    const stranger = createPeer({
      transport: memoryTransport(network, { host: 'stranger' }),
      upgrader: plaintextUpgrader(),
      name: 'stranger',
      services: [
        {
          protocol: GOSSIP_PROTOCOL,
          open(ch) {
            channel = ch
            return {
              onFrame(body) {
                if (body[0] === 1) answered()
                else if (decodeGossipControl(body).type === 'GRAFT') grafts++
              },
              onClose() {},
            }
          },
        },
      ],
    })
    onTestFinished(() => stranger.stop())
    await stranger.start()
    await stranger.connect(victim.addresses[0]!)
    expect(channel).toBeDefined()
    const keys = Array.from({ length: 32 }, () => ({ id: randomBytes(16).toString('hex'), origin }))
    channel!.sendBytes(encodeGossipControl({ type: 'IHAVE', keys }))
    // A GRAFT for a message the victim has is answered after the IHAVE was handled, on the same channel.
    channel!.sendBytes(encodeGossipControl({ type: 'GRAFT', id, origin }))
    await answer
    expect(victim.gossip.state().missing).toBe(0)
    expect(grafts).toBe(0)
  })
})
