import { randomBytes } from 'node:crypto'
import type { Channel, DisconnectEvent, MemoryNetwork, Service } from '@parley/core'
import { createPeer, memoryTransport } from '@parley/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { decodeMesh, encodeMesh, type MeshMessage } from '../src/codec.js'
import { MESH_PROTOCOL } from '../src/membership.js'
import { connected, type MeshNode, meshNetwork, symmetric, until } from './fixtures/mesh-net.js'

const meshEvents = ['neighbor:up', 'neighbor:down']

/**
 * A hand-written peer whose membership service sends `frames` as soon as its channel to `victim` opens,
 * and nothing else; connected to the victim before this resolves, to that channel (to send more).
 */
async function sending(
  network: MemoryNetwork,
  victim: MeshNode,
  frames: readonly Uint8Array[],
  listen: string | false = false,
): Promise<Channel> {
  let opened!: (channel: Channel) => void
  const open = new Promise<Channel>((resolve) => {
    opened = resolve
  })
  const service: Service = {
    protocol: MESH_PROTOCOL,
    open(channel: Channel) {
      opened(channel)
      queueMicrotask(() => {
        for (const frame of frames) channel.sendBytes(frame)
      })
      return { onFrame() {}, onClose() {} }
    },
  }
  const evil = createPeer({
    transport: memoryTransport(network, { host: 'evil' }),
    name: 'evil',
    listen,
    services: [service],
  })
  onTestFinished(() => evil.stop())
  await evil.start()
  await evil.connect(victim.peer.addresses[0]!)
  return open
}

describe('mesh membership', () => {
  it('peers joining through one contact spread over the overlay, and nobody holds more than activeSize neighbours', async () => {
    const { make } = meshNetwork({
      mesh: { activeSize: 3, shuffleInterval: 200, repairInterval: 100, dialsPerSecond: 50 },
    })
    const nodes: MeshNode[] = []
    let over = 0
    for (let i = 0; i < 10; i++) {
      const node = await make()
      node.mesh.on('neighbor:up', () => {
        if (node.mesh.active().length > 3) over++
      })
      nodes.push(node)
    }
    // Everyone joins through the same peer: without the walk it would be the hub of a star.
    for (const node of nodes.slice(1)) await node.mesh.join(nodes[0]!.peer.addresses[0]!)
    const emitters = nodes.map((n) => n.mesh)
    // Links are symmetric once the joins settle: each neighbour has the other as a neighbour too. Not
    // everyone need hold two: with 10 peers of 3 slots, one may be left with one neighbour while all
    // others are full, which refuse its low-priority requests (HyParView asks with high priority only
    // when alone), until a refresh makes room.
    await until(
      () => connected(nodes) && symmetric(nodes) && nodes.every((n) => n.mesh.active().length >= 1),
      emitters,
      meshEvents,
    )
    expect(over).toBe(0)
    expect(Math.max(...nodes.map((n) => n.mesh.active().length))).toBeLessThanOrEqual(3)
    // The contact is not everyone's neighbour: the walks placed the joiners elsewhere.
    expect(nodes.filter((n) => n.mesh.active().includes(nodes[0]!.peer.id)).length).toBeLessThanOrEqual(3)
  })

  it('a neighbour that dies is dropped and replaced from the passive view', async () => {
    const { make } = meshNetwork({
      mesh: { activeSize: 3, shuffleInterval: 100, repairInterval: 100, dialsPerSecond: 50 },
    })
    const nodes: MeshNode[] = []
    for (let i = 0; i < 9; i++) nodes.push(await make())
    for (const node of nodes.slice(1)) await node.mesh.join(nodes[0]!.peer.addresses[0]!)
    const emitters = nodes.map((n) => n.mesh)
    // Wait for the passive views to fill through shuffles, so that replacements exist.
    await until(() => connected(nodes) && nodes.every((n) => n.mesh.passive().length >= 2), emitters, [
      ...meshEvents,
      'shuffled',
    ])
    const victim = nodes.find((n) => n !== nodes[0] && n.mesh.active().length > 0)!
    const bereaved = nodes.filter((n) => n.mesh.isActive(victim.peer.id))
    expect(bereaved.length).toBeGreaterThan(0)
    const downs: string[] = []
    for (const n of bereaved)
      n.mesh.on('neighbor:down', (id, why) => id === victim.peer.id && downs.push(why))
    victim.mesh.close()
    victim.peer.destroy()
    const live = nodes.filter((n) => n !== victim)
    await until(
      () =>
        connected(live) && live.every((n) => n.mesh.active().length >= 1 && !n.mesh.isActive(victim.peer.id)),
      live.map((n) => n.mesh),
      meshEvents,
    )
    expect(downs).toEqual(bereaved.map(() => 'dead'))
  })

  it('a peer dropped to make room hears DISCONNECT and keeps the other as a candidate', async () => {
    const { make } = meshNetwork({ mesh: { activeSize: 1, shuffleInterval: 0, repairInterval: 60_000 } })
    const hub = await make()
    const a = await make()
    const b = await make()
    await a.mesh.join(hub.peer.addresses[0]!)
    await until(() => hub.mesh.isActive(a.peer.id), [hub.mesh], meshEvents)
    const dropped = new Promise<string>((resolve) => a.mesh.on('neighbor:down', (_id, why) => resolve(why)))
    await b.mesh.join(hub.peer.addresses[0]!)
    expect(await dropped).toBe('dropped')
    await until(() => hub.mesh.isActive(b.peer.id), [hub.mesh], meshEvents)
    expect(hub.mesh.active()).toEqual([b.peer.id])
    expect(a.mesh.passive().map((e) => e.id)).toContain(hub.peer.id)
  })

  it('a peer short of neighbours with no candidate rejoins through its contact, not only once alone', async () => {
    // A late joiner's walks were lost and no view exchange filled its passive view; its neighbours
    // went away, and another peer joined through it: each is the other's only neighbour.
    const { make } = meshNetwork({
      mesh: { shuffleInterval: 0, refreshInterval: 0, repairInterval: 100 },
      peer: { reconnect: false },
    })
    const contact = await make()
    const a = await make()
    const b = await make()
    await a.mesh.join(contact.peer.addresses[0]!)
    await until(() => a.mesh.isActive(contact.peer.id), [a.mesh], meshEvents)
    // The contact only answers from now on: alone, it would rejoin through a itself.
    contact.mesh.close()
    const gone = new Promise<void>((resolve) => a.mesh.once('neighbor:down', () => resolve()))
    await contact.peer.disconnect(a.peer.id)
    await gone
    await b.mesh.join(a.peer.addresses[0]!)
    await until(() => a.mesh.isActive(b.peer.id), [a.mesh], meshEvents)
    expect(a.mesh.passive()).toEqual([])
    expect(b.mesh.passive()).toEqual([])
    // Below the floor (4 of 6) with nothing to try: it rejoins through its contact (5 repair intervals
    // ± 50 %, doubling); waiting to be alone, it never would.
    await until(() => a.mesh.isActive(contact.peer.id), [a.mesh], meshEvents, 5_000)
    expect(a.mesh.active()).toHaveLength(2)
  })

  it('a content peer still trades a neighbour for a candidate now and then, within activeSize', async () => {
    // 5 peers of 3 slots: the slots' sum is odd, so one peer always has room and a trade is possible
    // (when every peer is full, each refresh is refused, by design).
    const { make } = meshNetwork({
      mesh: {
        activeSize: 3,
        repairBelow: 1,
        shuffleInterval: 100,
        repairInterval: 50,
        refreshInterval: 200,
        dialsPerSecond: 50,
      },
    })
    const nodes: MeshNode[] = []
    let over = 0
    for (let i = 0; i < 5; i++) {
      const node = await make()
      node.mesh.on('neighbor:up', () => {
        if (node.mesh.active().length > 3) over++
      })
      nodes.push(node)
    }
    for (const node of nodes.slice(1)) await node.mesh.join(nodes[0]!.peer.addresses[0]!)
    const emitters = nodes.map((n) => n.mesh)
    await until(() => connected(nodes) && nodes.every((n) => n.mesh.passive().length > 0), emitters, [
      ...meshEvents,
      'shuffled',
    ])
    // Every peer is content (1 neighbour is its floor): only the refresh changes an active view now.
    const before = nodes.map((n) => new Set(n.mesh.active()))
    const traded = () =>
      nodes.some((n, i) => n.mesh.stats.refreshes > 0 && n.mesh.active().some((id) => !before[i]!.has(id)))
    await until(traded, emitters, meshEvents)
    expect(over).toBe(0)
    await until(() => connected(nodes), emitters, meshEvents)
  })

  it('a peer that leaves and re-joins in a loop over one link has its JOIN walked once', async () => {
    const fixed = { mesh: { activeSize: 4, joinTtl: 0, shuffleInterval: 0, repairInterval: 60_000 } }
    const { network, make } = meshNetwork(fixed)
    const [victim, other] = [await make(), await make()]
    await other.mesh.join(victim.peer.addresses[0]!)
    await until(() => victim.mesh.isActive(other.peer.id), [victim.mesh], meshEvents)
    const join = encodeMesh({ type: 'JOIN', addr: '' })
    const leave = encodeMesh({ type: 'DISCONNECT' })
    await sending(network, victim, [join, leave, join, leave, join, leave], 'evil:0')
    await until(() => victim.mesh.stats.disconnects === 3, [victim.mesh], meshEvents)
    // A broadcast travels after the FORWARD_JOINs on the same connection: once it is in, they are too.
    const heard = new Promise((resolve) => other.gossip.once('gossip', resolve))
    victim.gossip.broadcast('barrier')
    await heard
    expect(victim.mesh.stats.joins).toBe(1 + 3) // other's and the loop's
    expect(other.mesh.stats.forwardJoins).toBe(1)
  })

  it("a stream of neighbour losses does not put off the repair: the replacement is asked within the first loss's delay", async () => {
    // Fake clocks, so that the repair's delay and the pace of the losses are exact; the memory network
    // delivers on setImmediate, which stays real. Restored when the test ends, whatever happens.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const fixed = { mesh: { activeSize: 1, shuffleInterval: 0, refreshInterval: 0, repairInterval: 60_000 } }
    const { network, make } = meshNetwork(fixed)
    const [hub, victim, rival] = [await make(), await make(), await make()]
    await victim.mesh.join(hub.peer.addresses[0]!)
    await until(() => victim.mesh.isActive(hub.peer.id), [victim.mesh], meshEvents)
    const join = encodeMesh({ type: 'JOIN', addr: '' })
    const leave = encodeMesh({ type: 'DISCONNECT' })
    // Without an address of its own the hostile peer never becomes a replacement candidate.
    const evil = await sending(network, victim, [])
    // Registered last, so run first: the peers stop on real timers.
    onTestFinished(() => {
      vi.useRealTimers()
    })
    // The hub, full, takes the rival and drops the victim: the victim's first loss. The hub stays
    // content, so only the victim's repair can bring the two together again, within jitter(200) ≤ 300 ms.
    await rival.mesh.join(hub.peer.addresses[0]!)
    await until(() => !victim.mesh.isActive(hub.peer.id), [victim.mesh], meshEvents)
    expect(victim.mesh.passive().map((e) => e.id)).toEqual([hub.peer.id])
    const lostAt = Date.now()
    const losses: number[] = []
    let back: number | undefined
    victim.mesh.on('neighbor:down', (id) => id !== hub.peer.id && losses.push(Date.now()))
    victim.mesh.on('neighbor:up', (id) => {
      if (id === hub.peer.id) back ??= Date.now()
    })
    const dials = victim.mesh.stats.dials
    let askedAt: number | undefined
    // For a second the hostile peer joins and leaves every 50 ms: a loss each time, sooner than any
    // fresh repair delay (100 to 300 ms) would run out.
    for (let t = 10; t <= 1_000; t += 10) {
      await vi.advanceTimersByTimeAsync(10)
      if (askedAt === undefined && victim.mesh.stats.dials > dials) askedAt = Date.now()
      if (t % 50 === 0 && evil.online) {
        evil.sendBytes(join)
        evil.sendBytes(leave)
      }
    }
    expect(losses.length).toBeGreaterThanOrEqual(10)
    // The repair ran when the first loss had it due, though later losses came before it: it dialed the
    // hub (the session was gone), and the hub is a neighbour again while the losses go on.
    expect(askedAt, 'the repair dialed the hub while the losses went on').toBeDefined()
    expect(askedAt! - lostAt).toBeLessThanOrEqual(300)
    expect(losses.filter((at) => at < askedAt!).length).toBeGreaterThan(0)
    expect(back, 'the hub is a neighbour again before the losses stop').toBeDefined()
  })

  it.each([
    ['SHUFFLE_REPLY', encodeMesh({ type: 'SHUFFLE_REPLY', entries: [] })],
    ['NEIGHBOR_REPLY', encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: true })],
    ['DISCONNECT', encodeMesh({ type: 'DISCONNECT' })],
  ])(
    'a flood of %s (replies nobody asked for, or leaving) costs the budget and is cut off',
    async (_name, frame) => {
      const { network, make } = meshNetwork({ peer: { rateLimit: { perSecond: 1, burst: 3 } } })
      const victim = await make()
      const gone = new Promise<DisconnectEvent>((resolve) => victim.peer.on('peer:disconnect', resolve))
      await sending(network, victim, Array(10).fill(frame))
      expect((await gone).reason).toBe('protocol-error')
    },
  )

  it('a neighbour flooding NEIGHBOR_REPLY (nothing asked) costs the budget too, and is cut off', async () => {
    const { network, make } = meshNetwork({ peer: { rateLimit: { perSecond: 1, burst: 3 } } })
    const victim = await make()
    const gone = new Promise<DisconnectEvent>((resolve) => victim.peer.on('peer:disconnect', resolve))
    const became = new Promise<string>((resolve) => victim.mesh.once('neighbor:up', resolve))
    const reply = encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: true })
    // Its JOIN makes it a neighbour first; a neighbour's reply is free only once, after its session resumed.
    await sending(network, victim, [encodeMesh({ type: 'JOIN', addr: '' }), ...Array(10).fill(reply)])
    await became
    expect((await gone).reason).toBe('protocol-error')
  })

  it('a malformed membership message ends the session as a protocol violation', async () => {
    const { network, make } = meshNetwork()
    const victim = await make()
    const gone = new Promise<DisconnectEvent>((resolve) => victim.peer.on('peer:disconnect', resolve))
    // A JOIN whose address runs past the end of the body.
    await sending(network, victim, [Uint8Array.of(1, 200, 0x61)])
    const event = await gone
    expect(event.reason).toBe('protocol-error')
    expect(victim.mesh.active()).toEqual([])
  })
})

/** A promise and the function that settles it (Promise.withResolvers is Node 22's). */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/**
 * A hand-written peer running the membership protocol by `script`: `opened` runs when its channel to
 * a mesh peer opens, `answer` on every message it receives; every message is also kept in `got`.
 */
async function scriptedPeer(
  network: MemoryNetwork,
  name: string,
  script: {
    opened?: (channel: Channel, self: { id: string; addr: string; age: number }) => void
    answer?: (msg: MeshMessage, channel: Channel) => void
  },
) {
  const got: MeshMessage[] = []
  const waiters: { type: MeshMessage['type']; resolve: (msg: MeshMessage) => void }[] = []
  const peer = createPeer({
    transport: memoryTransport(network, { host: name }),
    name,
    listen: `${name}:0`,
    services: [
      {
        protocol: MESH_PROTOCOL,
        open(channel: Channel) {
          queueMicrotask(() => script.opened?.(channel, { id: peer.id, addr: peer.addresses[0]!, age: 0 }))
          return {
            onFrame(body: Uint8Array) {
              const msg = decodeMesh(body)
              got.push(msg)
              script.answer?.(msg, channel)
              for (const w of waiters.filter((w) => w.type === msg.type)) {
                waiters.splice(waiters.indexOf(w), 1)
                w.resolve(msg)
              }
            },
            onClose() {},
          }
        },
      },
    ],
  })
  onTestFinished(() => peer.stop())
  await peer.start()
  /** The first message of `type`, once it has arrived (the test's timeout bounds the wait). */
  const next = (type: MeshMessage['type']) =>
    new Promise<MeshMessage>((resolve) => {
      const msg = got.find((m) => m.type === type)
      if (msg) resolve(msg)
      else waiters.push({ type, resolve })
    })
  return { peer, next }
}

describe('newcomers', () => {
  it('a newcomer asks its contact for candidates with its JOIN, not at the next period', async () => {
    // No periodic exchange at all, and no repair round within the test: only the join can send it.
    const { network, make } = meshNetwork({ mesh: { shuffleInterval: 0, repairInterval: 60_000 } })
    const contact = await scriptedPeer(network, 'contact', {
      answer: (msg, channel) => {
        if (msg.type === 'JOIN') channel.sendBytes(encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: true }))
      },
    })
    const newcomer = await make()
    await newcomer.mesh.join(contact.peer.addresses[0]!)
    const shuffle = await contact.next('SHUFFLE')
    expect(shuffle.type === 'SHUFFLE' && shuffle.entries.map((e) => e.id)).toEqual([newcomer.peer.id])
  })

  it('a newcomer has its candidates from its contact even when the contact drops it right after taking it', async () => {
    const { network, make } = meshNetwork({ mesh: { shuffleInterval: 0, repairInterval: 60_000 } })
    const entries = Array.from({ length: 8 }, (_, i) => ({
      id: randomBytes(32).toString('hex'),
      addr: `c${i}:1`,
      age: 0,
    }))
    let dropped = false
    const contact = await scriptedPeer(network, 'contact', {
      answer: (msg, channel) => {
        if (msg.type === 'JOIN') {
          channel.sendBytes(encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: true }))
          // The next joiner takes its place before anything else the newcomer sends after our answer.
          setImmediate(() => {
            dropped = true
            channel.sendBytes(encodeMesh({ type: 'DISCONNECT' }))
          })
        }
        // As a contact does: views are exchanged with neighbours only.
        if (msg.type === 'SHUFFLE' && !dropped)
          channel.sendBytes(encodeMesh({ type: 'SHUFFLE_REPLY', entries }))
      },
    })
    const newcomer = await make()
    await newcomer.mesh.join(contact.peer.addresses[0]!)
    await until(() => newcomer.mesh.passive().length >= entries.length, [newcomer.mesh], ['shuffled'], 3_000)
    expect(newcomer.mesh.passive().map((e) => e.id)).toEqual(expect.arrayContaining(entries.map((e) => e.id)))
  })

  it('a contact answers a newcomer that has only itself to send with more candidates than one', async () => {
    const { network, make } = meshNetwork({ mesh: { shuffleInterval: 0, joinTtl: 0 } })
    const contact = await make()
    const others: MeshNode[] = []
    for (let i = 0; i < 4; i++) {
      const node = await make()
      await node.mesh.join(contact.peer.addresses[0]!)
      others.push(node)
    }
    await until(() => contact.mesh.active().length === 4, [contact.mesh], meshEvents)
    const newcomer = await scriptedPeer(network, 'newcomer', {
      opened: (channel, self) => {
        channel.sendBytes(encodeMesh({ type: 'JOIN', addr: self.addr }))
        channel.sendBytes(encodeMesh({ type: 'SHUFFLE', entries: [self] }))
      },
    })
    await newcomer.peer.connect(contact.peer.addresses[0]!)
    const reply = await newcomer.next('SHUFFLE_REPLY')
    const ids = reply.type === 'SHUFFLE_REPLY' ? reply.entries.map((e) => e.id) : []
    expect(ids.sort()).toEqual(others.map((n) => n.peer.id).sort())
  })
  it('a newcomer whose exchanges keep teaching it candidates exchanges again within repairs, not periods', async () => {
    // Content with its contact alone (activeSize 1), so only the exchange itself asks again; its period
    // is longer than the test's timeout.
    const { network, make } = meshNetwork({
      mesh: { activeSize: 1, shuffleInterval: 600_000, repairInterval: 50 },
    })
    let shuffles = 0
    const { promise: thirdShuffle, resolve: shuffledThrice } = signal()
    const contact = await scriptedPeer(network, 'contact', {
      answer: (msg, channel) => {
        if (msg.type === 'JOIN') channel.sendBytes(encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: true }))
        if (msg.type === 'SHUFFLE' && ++shuffles >= 3) shuffledThrice()
        if (msg.type === 'SHUFFLE' && shuffles <= 3) {
          const entries = Array.from({ length: 8 }, (_, i) => ({
            id: randomBytes(32).toString('hex'),
            addr: `nowhere-${shuffles}-${i}:1`,
            age: 0,
          }))
          channel.sendBytes(encodeMesh({ type: 'SHUFFLE_REPLY', entries }))
        }
      },
    })
    const newcomer = await make()
    await newcomer.mesh.join(contact.peer.addresses[0]!)
    // Two replies grow the view (8, then 2: one source holds a third of it), the third does not.
    await thirdShuffle
  })

  it('a peer short of neighbours with no candidate asks its neighbour for some again, at each repair', async () => {
    const { network, make } = meshNetwork({ mesh: { shuffleInterval: 0, repairInterval: 50 } })
    let shuffles = 0
    const { promise: thirdShuffle, resolve: shuffledThrice } = signal()
    const contact = await scriptedPeer(network, 'contact', {
      answer: (msg, channel) => {
        if (msg.type === 'JOIN') channel.sendBytes(encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: true }))
        if (msg.type === 'SHUFFLE' && ++shuffles >= 3) shuffledThrice()
        // Nothing to offer: the newcomer stays short of neighbours with no candidate.
        if (msg.type === 'SHUFFLE' && shuffles <= 2)
          channel.sendBytes(encodeMesh({ type: 'SHUFFLE_REPLY', entries: [] }))
      },
    })
    const newcomer = await make()
    await newcomer.mesh.join(contact.peer.addresses[0]!)
    await thirdShuffle
  })

  it('a peer short of neighbours that full candidates keep refusing asks the next one with high priority', async () => {
    const { network, make } = meshNetwork({ mesh: { shuffleInterval: 0, repairInterval: 50 } })
    // Full candidates: they take a request only with high priority. What the peer under test asked:
    let subject = ''
    const asked: boolean[] = []
    const { promise: askedHigh, resolve: gotHigh } = signal()
    const candidates: Awaited<ReturnType<typeof scriptedPeer>>[] = []
    for (let i = 0; i < 4; i++) {
      candidates.push(
        await scriptedPeer(network, `full${i}`, {
          answer: (msg, channel) => {
            if (msg.type !== 'NEIGHBOR') return
            if (channel.peer.id === subject) asked.push(msg.high)
            if (channel.peer.id === subject && msg.high) gotHigh()
            channel.sendBytes(encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: msg.high }))
          },
        }),
      )
    }
    const contact = await scriptedPeer(network, 'contact', {
      answer: (msg, channel) => {
        if (msg.type === 'JOIN') channel.sendBytes(encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: true }))
        if (msg.type === 'SHUFFLE') {
          const entries = candidates.map((c) => ({ id: c.peer.id, addr: c.peer.addresses[0]!, age: 0 }))
          channel.sendBytes(encodeMesh({ type: 'SHUFFLE_REPLY', entries }))
        }
      },
    })
    const peer = await make()
    subject = peer.peer.id
    // Two neighbours, below the floor of four (with one, every request is high priority anyway), the
    // second one before any candidate is known.
    const other = await make()
    await other.mesh.join(peer.peer.addresses[0]!)
    await until(() => peer.mesh.isActive(other.peer.id), [peer.mesh], meshEvents)
    await peer.mesh.join(contact.peer.addresses[0]!)
    await askedHigh
    expect(asked.indexOf(true)).toBeGreaterThanOrEqual(3)
  })

  it('a peer down to one neighbour asks a candidate with high priority: full peers refuse low priority', async () => {
    const { network, make } = meshNetwork({ mesh: { shuffleInterval: 0, repairInterval: 50 } })
    const candidate = await scriptedPeer(network, 'candidate', {})
    const contact = await scriptedPeer(network, 'contact', {
      answer: (msg, channel) => {
        if (msg.type === 'JOIN') channel.sendBytes(encodeMesh({ type: 'NEIGHBOR_REPLY', accepted: true }))
        if (msg.type === 'SHUFFLE') {
          const entry = { id: candidate.peer.id, addr: candidate.peer.addresses[0]!, age: 0 }
          channel.sendBytes(encodeMesh({ type: 'SHUFFLE_REPLY', entries: [entry] }))
        }
      },
    })
    const newcomer = await make()
    await newcomer.mesh.join(contact.peer.addresses[0]!)
    const request = await candidate.next('NEIGHBOR')
    expect(request.type === 'NEIGHBOR' && request.high).toBe(true)
  })
})
