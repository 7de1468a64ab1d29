import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Channel, Connection, MemoryNetwork, Peer, Service } from '@parley/core'
import { createPeer, memoryTransport } from '@parley/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { decodeMesh, encodeMesh, type MeshEntry, type MeshMessage } from '../src/codec.js'
import { MESH_PROTOCOL } from '../src/membership.js'
import { FORWARD_JOIN_BURST, FORWARD_JOIN_RATE, MAX_WALK_DIALS } from '../src/mesh-options.js'
import { type MeshNode, meshNetwork, until } from './fixtures/mesh-net.js'

// Every peer here but the victim may be hostile: it speaks the mesh protocol by hand.

const meshEvents = ['neighbor:up', 'neighbor:down']

/** A peer whose membership service is written by hand: it sends what the test says and records what it hears. */
interface RawMesh {
  readonly peer: Peer
  /** Its channel to the victim (the current one: a session ended and dialed again opens a new one). */
  channel(): Channel
  /** Counts of membership messages heard from the victim, by type. */
  readonly heard: Map<MeshMessage['type'], number>
  /** Resolves with the next message of `type` from the victim; rejects after 5 s. */
  next(type: MeshMessage['type']): Promise<MeshMessage>
  /** Connects to the victim (again) and resolves once the mesh channel is open. */
  connect(): Promise<void>
  send(msg: MeshMessage): void
}

let raws = 0

async function rawMesh(
  network: MemoryNetwork,
  victim: MeshNode,
  listen = false,
  announce?: string[],
): Promise<RawMesh> {
  const events = new EventEmitter()
  events.setMaxListeners(0)
  const heard = new Map<MeshMessage['type'], number>()
  let channel: Channel | undefined
  const service: Service = {
    protocol: MESH_PROTOCOL,
    open(ch) {
      channel = ch
      queueMicrotask(() => events.emit('open'))
      return {
        onFrame(body) {
          const msg = decodeMesh(body)
          heard.set(msg.type, (heard.get(msg.type) ?? 0) + 1)
          events.emit(msg.type, msg)
        },
        onClose() {},
      }
    },
  }
  const name = `raw${raws++}`
  const peer = createPeer({
    transport: memoryTransport(network, { host: name }),
    name,
    listen: listen ? `${name}:0` : false,
    services: [service],
    ...(announce ? { announce } : {}),
  })
  onTestFinished(() => peer.stop())
  await peer.start()
  const next = (type: MeshMessage['type']) =>
    new Promise<MeshMessage>((resolve, reject) => {
      const signal = AbortSignal.timeout(5_000)
      const done = (msg: MeshMessage) => {
        signal.removeEventListener('abort', timeout)
        resolve(msg)
      }
      const timeout = () => {
        events.off(type, done)
        reject(new Error(`no ${type} from the victim in 5 s`))
      }
      signal.addEventListener('abort', timeout, { once: true })
      events.once(type, done)
    })
  const raw: RawMesh = {
    peer,
    heard,
    channel: () => channel!,
    next,
    async connect() {
      const open = new Promise((resolve) => events.once('open', resolve))
      await peer.connect(victim.peer.addresses[0]!)
      if (!channel?.online) await open
    },
    send(msg) {
      channel!.sendBytes(encodeMesh(msg))
    },
  }
  await raw.connect()
  return raw
}

/** Joins the victim as a neighbour (a JOIN without an address: the victim walks nothing for it). */
async function neighbour(network: MemoryNetwork, victim: MeshNode): Promise<RawMesh> {
  const raw = await rawMesh(network, victim)
  const reply = raw.next('NEIGHBOR_REPLY')
  raw.send({ type: 'JOIN', addr: '' })
  await reply
  expect(victim.mesh.isActive(raw.peer.id)).toBe(true)
  return raw
}

/**
 * Resolves once the victim has handled everything `raw` sent before: it answers a SHUFFLE of a
 * neighbour on the same channel, after the frames before it (the victim answers 4 at once).
 */
async function handled(raw: RawMesh): Promise<void> {
  const reply = raw.next('SHUFFLE_REPLY')
  raw.send({ type: 'SHUFFLE', entries: [] })
  await reply
}

const freshId = () => randomBytes(32).toString('hex')

/** Listeners that take a connection and never answer the handshake, and a fresh id for each. */
async function tarpits(network: MemoryNetwork, n: number) {
  const holes: Connection[] = []
  const transport = memoryTransport(network, { host: 'hole' })
  const targets: { id: string; addr: string }[] = []
  for (let port = 1; port <= n; port++) {
    const listener = await transport.listen(`hole:${port}`, (conn) => holes.push(conn))
    onTestFinished(() => listener.close())
    targets.push({ id: freshId(), addr: `hole:${port}` })
  }
  return { holes, targets }
}

// Walks of length 0, no timers that change the views on their own: each test makes every link.
const quiet = {
  joinTtl: 0,
  shuffleInterval: 0,
  repairInterval: 60_000,
  refreshInterval: 0,
  dialsPerSecond: 50,
}

/**
 * A victim with one neighbour slot, which an attacker's JOIN took from an honest peer: the honest peer
 * is its one candidate, first-hand, at the address it announced in its own handshake.
 */
async function honestCandidate(): Promise<{ victim: MeshNode; honest: MeshNode; attacker: RawMesh }> {
  const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 1 } })
  const victim = await make()
  const honest = await make()
  await honest.mesh.join(victim.peer.addresses[0]!)
  await until(() => victim.mesh.isActive(honest.peer.id), [victim.mesh], meshEvents)
  const attacker = await neighbour(network, victim)
  expect(victim.mesh.passive().map(({ id, addr }) => ({ id, addr }))).toEqual([
    { id: honest.peer.id, addr: honest.peer.addresses[0]! },
  ])
  return { victim, honest, attacker }
}

describe('mesh membership with hostile peers', () => {
  it('a session that is not a neighbour cannot steer our dials or fill our views with FORWARD_JOIN or SHUFFLE', async () => {
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 4 } })
    const victim = await make()
    const honest = await make()
    await honest.mesh.join(victim.peer.addresses[0]!)
    await until(() => victim.mesh.isActive(honest.peer.id), [victim.mesh], meshEvents)
    // A sybil that would take a neighbour request: where an attacker wants the victim to dial.
    const sybil = await rawMesh(network, honest, true)
    const attacker = await rawMesh(network, victim)
    const dials = victim.mesh.stats.dials
    const steered = freshId()
    const shuffled = freshId()
    // ttl 0: "take it as a neighbour"; ttl 3 (passiveTtl): "keep it as a candidate"; and a view exchange.
    attacker.send({ type: 'FORWARD_JOIN', id: sybil.peer.id, addr: sybil.peer.addresses[0]!, ttl: 0 })
    attacker.send({ type: 'FORWARD_JOIN', id: steered, addr: 'sybil:1', ttl: 3 })
    attacker.send({ type: 'SHUFFLE', entries: [{ id: shuffled, addr: 'sybil:2', age: 0 }] })
    // Its JOIN comes after them on the same channel: once it is answered, they were handled.
    const reply = attacker.next('NEIGHBOR_REPLY')
    attacker.send({ type: 'JOIN', addr: '' })
    await reply
    expect(victim.mesh.stats.dials, 'dials the victim made').toBe(dials)
    expect(victim.mesh.active().sort()).toEqual([honest.peer.id, attacker.peer.id].sort())
    expect(victim.mesh.passive()).toEqual([])
    expect(attacker.heard.get('SHUFFLE_REPLY') ?? 0, 'our view, answered to a stranger').toBe(0)
  })

  it("a joiner's address on another host than its connection is neither walked through the overlay nor kept", async () => {
    const { network, make } = meshNetwork()
    const victim = await make()
    const other = await neighbour(network, victim)
    // It listens nowhere: its handshake and its JOIN name a third party's address instead.
    const liar = await rawMesh(network, victim, false, ['third:22'])
    const reply = liar.next('NEIGHBOR_REPLY')
    liar.send({ type: 'JOIN', addr: 'third:23' })
    await reply
    const left = new Promise<void>((resolve) =>
      victim.mesh.on('neighbor:down', (id) => id === liar.peer.id && resolve()),
    )
    liar.send({ type: 'DISCONNECT' })
    await left
    await handled(other)
    // No walk carried either address to the other neighbour, and no candidate kept points there.
    expect(other.heard.get('FORWARD_JOIN') ?? 0).toBe(0)
    expect(victim.mesh.passive().filter((e) => e.addr.startsWith('third:'))).toEqual([])
  })

  it("a neighbour's FORWARD_JOINs are acted on within a budget: it cannot launder its session's rate into walks to our other neighbours", async () => {
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 4 } })
    const victim = await make()
    const attacker = await neighbour(network, victim)
    const other = await neighbour(network, victim)
    const started = Date.now()
    // Walks still to go: the victim relays each to its only other neighbour.
    for (let i = 0; i < 1_000; i++)
      attacker.send({ type: 'FORWARD_JOIN', id: freshId(), addr: 'x:1', ttl: 5 })
    await handled(attacker)
    // What the victim sent `other` before answering its SHUFFLE is in by then.
    await handled(other)
    const elapsed = (Date.now() - started) / 1000
    const relayed = other.heard.get('FORWARD_JOIN') ?? 0
    expect(relayed).toBeGreaterThanOrEqual(FORWARD_JOIN_BURST)
    expect(relayed).toBeLessThanOrEqual(FORWARD_JOIN_BURST + Math.ceil(FORWARD_JOIN_RATE * elapsed) + 1)
    // Ignored, not punished: the neighbour stays.
    expect(victim.mesh.isActive(attacker.peer.id)).toBe(true)
  })

  it('a walk naming a candidate we know at a dead address neither dials that address nor makes us forget the candidate', async () => {
    const { victim, honest, attacker } = await honestCandidate()
    // "Take it as a neighbour, at dead:1": a failed dial there used to drop the candidate.
    attacker.send({ type: 'FORWARD_JOIN', id: honest.peer.id, addr: 'dead:1', ttl: 0 })
    await handled(attacker)
    // It is dialed where we know it, and comes back as a neighbour.
    await until(() => victim.mesh.isActive(honest.peer.id), [victim.mesh], meshEvents)
    expect(victim.mesh.stats.dialFailures).toBe(0)
  })

  it('a SHUFFLE from a neighbour cannot re-point a candidate we know to an address it chose', async () => {
    const { victim, honest, attacker } = await honestCandidate()
    const known = { id: honest.peer.id, addr: honest.peer.addresses[0]! }
    const stranger: MeshEntry = { id: freshId(), addr: 'sybil:9', age: 0 }
    attacker.send({ type: 'SHUFFLE', entries: [{ id: honest.peer.id, addr: 'sybil:1', age: 0 }, stranger] })
    await handled(attacker)
    const passive = victim.mesh.passive().map(({ id, addr }) => ({ id, addr }))
    // New ids are still learnt from neighbours (the exchange exists for that); known ones keep their address.
    expect(passive).toContainEqual(known)
    expect(passive).toContainEqual({ id: stranger.id, addr: stranger.addr })
    expect(passive).toHaveLength(2)
  })

  it(`walks hold at most ${MAX_WALK_DIALS} mesh dials at once: addresses that never answer leave the user's own dials a handshake slot`, async () => {
    // Three outbound handshake slots; a FORWARD_JOIN (ttl 0) is a promotion, each one a dial.
    const { network, make } = meshNetwork({
      mesh: { ...quiet, activeSize: 4 },
      peer: { maxHandshakes: { outbound: 3 } },
    })
    const victim = await make()
    const friend = await make()
    // Three neighbours: one neighbour's walks get one dial at a time (see the next test).
    const attackers = [
      await neighbour(network, victim),
      await neighbour(network, victim),
      await neighbour(network, victim),
    ]
    const { holes, targets } = await tarpits(network, 6)
    for (const [i, t] of targets.entries())
      attackers[i % 3]!.send({ type: 'FORWARD_JOIN', id: t.id, addr: t.addr, ttl: 0 })
    for (const attacker of attackers) await handled(attacker)
    // The user's dial starts after the mesh's and gets a slot; without the cap it waits for a handshake
    // timeout of one of the holes.
    const info = await victim.peer.connect(friend.peer.addresses[0]!, { signal: AbortSignal.timeout(5_000) })
    expect(info.id).toBe(friend.peer.id)
    expect(holes).toHaveLength(MAX_WALK_DIALS)
    // The others are kept as candidates, as when the dial budget is spent.
    const passive = new Set(victim.mesh.passive().map((e) => e.id))
    expect(targets.filter((t) => passive.has(t.id))).toHaveLength(targets.length - MAX_WALK_DIALS)
  })

  it("one neighbour's walks at addresses that never answer hold one mesh dial at a time: another's walk is still dialed", async () => {
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 4 } })
    const victim = await make()
    const attacker = await neighbour(network, victim)
    const honest = await neighbour(network, victim)
    const { holes, targets } = await tarpits(network, 6)
    for (const t of targets) attacker.send({ type: 'FORWARD_JOIN', id: t.id, addr: t.addr, ttl: 0 })
    await handled(attacker)
    expect(holes).toHaveLength(1)
    // An honest walk ends at the victim: the joiner it names is dialed and asked, not left waiting
    // for a hole's handshake timeout.
    const joiner = await rawMesh(network, victim, true)
    await joiner.peer.disconnect(victim.peer.id)
    const asked = joiner.next('NEIGHBOR')
    honest.send({ type: 'FORWARD_JOIN', id: joiner.peer.id, addr: joiner.peer.addresses[0]!, ttl: 0 })
    expect(await asked).toMatchObject({ type: 'NEIGHBOR', high: true })
  })

  it("one neighbour's walks naming peers that accept hold one slot between them: they replace each other, not our other neighbours", async () => {
    const activeSize = 6
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize } })
    const victim = await make()
    // Five honest neighbours that joined us (none chosen, so none protected: the weakest case) and the attacker.
    const honest: RawMesh[] = []
    for (let i = 0; i < activeSize - 1; i++) honest.push(await neighbour(network, victim))
    const attacker = await neighbour(network, victim)
    // Its walks end here (ttl 0), each naming a sybil of its own that accepts our request. The clock
    // moves 2 s between them, so each is within the landing budget.
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => void vi.useRealTimers())
    const sybils: RawMesh[] = []
    for (let i = 0; i < 8; i++) {
      if (!victim.mesh.isActive(attacker.peer.id)) break
      vi.setSystemTime(Date.now() + 2_000)
      const sybil = await rawMesh(network, victim, true)
      await sybil.peer.disconnect(victim.peer.id)
      const asked = sybil.next('NEIGHBOR')
      attacker.send({ type: 'FORWARD_JOIN', id: sybil.peer.id, addr: sybil.peer.addresses[0]!, ttl: 0 })
      await asked
      sybil.send({ type: 'NEIGHBOR_REPLY', accepted: true })
      await until(() => victim.mesh.isActive(sybil.peer.id), [victim.mesh], meshEvents)
      sybils.push(sybil)
    }
    expect(sybils.length).toBeGreaterThan(0)
    expect(sybils.filter((x) => victim.mesh.isActive(x.peer.id))).toHaveLength(1)
    // The first took one neighbour's place (at random); every later one took the earlier sybil's.
    expect(honest.filter((h) => victim.mesh.isActive(h.peer.id)).length).toBeGreaterThanOrEqual(
      activeSize - 2,
    )
  })

  it("one neighbour's walks naming fresh ids at an address where nobody answers are dialed twice, then not at all", async () => {
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 4 } })
    const victim = await make()
    const attacker = await neighbour(network, victim)
    // A third party's address: nothing there speaks Parley, so every dial there fails.
    const third = 'third:1'
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => void vi.useRealTimers())
    for (let i = 0; i < 10; i++) {
      // Far apart, so every walk is within the landing budget.
      vi.setSystemTime(Date.now() + 10_000)
      attacker.send({ type: 'FORWARD_JOIN', id: freshId(), addr: third, ttl: 0 })
      await handled(attacker)
      // No event says a dial failed: wait for the counter (the memory transport refuses at once).
      await vi.waitFor(() => expect(victim.mesh.stats.dialFailures).toBe(victim.mesh.stats.dials))
    }
    expect(victim.mesh.stats.dials).toBe(2)
    expect(victim.mesh.passive().filter((e) => e.addr === third)).toEqual([])
  })

  it('a neighbour on another host cannot have us dial this machine (loopback) or an unspecified address', async () => {
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 4 } })
    const victim = await make()
    const attacker = await neighbour(network, victim)
    const local = ['127.0.0.1:6379', '[::1]:22', '0.0.0.0:80', 'localhost-not:1']
    for (const addr of local.slice(0, 3)) {
      attacker.send({ type: 'FORWARD_JOIN', id: freshId(), addr, ttl: 0 })
      attacker.send({ type: 'FORWARD_JOIN', id: freshId(), addr, ttl: 3 })
    }
    attacker.send({ type: 'SHUFFLE', entries: local.map((addr) => ({ id: freshId(), addr, age: 0 })) })
    await handled(attacker)
    expect(victim.mesh.stats.dials).toBe(0)
    // Only the one that is not this machine's is kept, as hearsay.
    expect(victim.mesh.passive().map((e) => e.addr)).toEqual(['localhost-not:1'])
  })

  it("one neighbour's walks and exchanges hold at most a third of the passive view: candidates from others stay", async () => {
    const passiveSize = 30
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 4, passiveSize } })
    const victim = await make()
    const honest = await neighbour(network, victim)
    const attacker = await neighbour(network, victim)
    const vouched = Array.from({ length: 8 }, (_, i) => ({ id: freshId(), addr: `honest:${i}`, age: 0 }))
    honest.send({ type: 'SHUFFLE', entries: vouched })
    await handled(honest)
    // Its view exchanges (each neighbour's are answered a few at once) and walks that end in its passive
    // view: far more candidates than the view holds.
    for (let round = 0; round < 3; round++) {
      const entries = Array.from({ length: 32 }, (_, i) => ({
        id: freshId(),
        addr: `sybil:${round}-${i}`,
        age: 0,
      }))
      attacker.send({ type: 'SHUFFLE', entries })
    }
    for (let i = 0; i < 40; i++)
      attacker.send({ type: 'FORWARD_JOIN', id: freshId(), addr: `sybil:w${i}`, ttl: 3 })
    await handled(attacker)
    const passive = victim.mesh.passive()
    expect(passive.filter((e) => e.addr.startsWith('sybil:'))).toHaveLength(Math.ceil(passiveSize / 3))
    expect(
      passive
        .filter((e) => e.addr.startsWith('honest:'))
        .map((e) => e.id)
        .sort(),
    ).toEqual(vouched.map((e) => e.id).sort())
  })

  it('hearsay naming other ids at the address of a candidate neither adds them nor displaces it', async () => {
    const { victim, honest, attacker } = await honestCandidate()
    const known = { id: honest.peer.id, addr: honest.peer.addresses[0]! }
    // Each would be dialed in turn at one address (one that never answers, or an honest peer's).
    const entries = Array.from({ length: 8 }, () => ({ id: freshId(), addr: known.addr, age: 0 }))
    attacker.send({ type: 'SHUFFLE', entries })
    await handled(attacker)
    expect(victim.mesh.passive().map(({ id, addr }) => ({ id, addr }))).toEqual([known])
  })

  it('walks at addresses that never answer leave repair a dial: a lost neighbour is replaced from the passive view', async () => {
    // A request not answered within neighborTimeout is given up, and repair stops counting on it; the
    // dial under it keeps its slot until the handshake times out (10 s, after this test).
    const { network, make } = meshNetwork({
      mesh: { ...quiet, activeSize: 4, neighborTimeout: 300, repairInterval: 50 },
    })
    const victim = await make()
    const candidate = await make()
    const attackers = [await neighbour(network, victim), await neighbour(network, victim)]
    // The third neighbour, at the floor of three, vouches for a candidate.
    const honest = await neighbour(network, victim)
    honest.send({
      type: 'SHUFFLE',
      entries: [{ id: candidate.peer.id, addr: candidate.peer.addresses[0]!, age: 0 }],
    })
    await handled(honest)
    const { holes, targets } = await tarpits(network, 2)
    for (const [i, t] of targets.entries())
      attackers[i]!.send({ type: 'FORWARD_JOIN', id: t.id, addr: t.addr, ttl: 0 })
    for (const attacker of attackers) await handled(attacker)
    expect(holes).toHaveLength(MAX_WALK_DIALS)
    // The honest neighbour leaves; below the floor, the victim dials its candidate and asks it.
    await honest.peer.stop()
    await until(() => victim.mesh.isActive(candidate.peer.id), [victim.mesh], meshEvents, 5_000)
  })

  it("hearsay naming another id at an honest peer's address does not keep that peer out of the passive view", async () => {
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 1 } })
    const victim = await make()
    const honest = await make()
    const attacker = await neighbour(network, victim)
    const squatter = { id: freshId(), addr: honest.peer.addresses[0]!, age: 0 }
    attacker.send({ type: 'SHUFFLE', entries: [squatter] })
    await handled(attacker)
    // The honest peer joins (taking the one slot), then the attacker joins again and takes it back:
    // the honest peer, dropped, is a first-hand candidate at its own address.
    await honest.mesh.join(victim.peer.addresses[0]!)
    await until(() => victim.mesh.isActive(honest.peer.id), [victim.mesh], meshEvents)
    const dropped = (p: Peer) => !p.peers().connected.some((c) => c.id === victim.peer.id)
    await until(() => dropped(attacker.peer), [attacker.peer], ['peer:disconnect'])
    await attacker.connect()
    const reply = attacker.next('NEIGHBOR_REPLY')
    attacker.send({ type: 'JOIN', addr: '' })
    await reply
    expect(victim.mesh.passive().map(({ id, addr }) => ({ id, addr }))).toEqual([
      { id: honest.peer.id, addr: honest.peer.addresses[0]! },
    ])
  })

  it('fresh identities asking to be neighbours with high priority evict each other, not the neighbours we chose', async () => {
    const activeSize = 6
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize } })
    const victim = await make()
    // The victim chose every neighbour: it joined through each of six contacts.
    const contacts: MeshNode[] = []
    for (let i = 0; i < activeSize; i++) {
      const contact = await make()
      await victim.mesh.join(contact.peer.addresses[0]!)
      contacts.push(contact)
    }
    await until(() => victim.mesh.active().length === activeSize, [victim.mesh], meshEvents)
    await sybilsAskingHigh(network, victim, activeSize)
    // The first sybil took the place of one contact; every later one took the place of a sybil.
    const kept = contacts.filter((c) => victim.mesh.isActive(c.peer.id)).length
    expect(kept).toBe(activeSize - 1)
    expect(victim.mesh.active()).toHaveLength(activeSize)
  })

  it('neighbours we chose on one network hold one protected slot between them: asking identities evict the others', async () => {
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize: 3 } })
    const victim = await make()
    // Chosen (the victim joined through each), two of them on one /16.
    const first = await make([], '203.0.1.1')
    const elsewhere = await make([], '198.51.100.1')
    const second = await make([], '203.0.2.1')
    for (const contact of [first, elsewhere, second]) {
      await victim.mesh.join(contact.peer.addresses[0]!)
      await until(() => victim.mesh.isActive(contact.peer.id), [victim.mesh], meshEvents)
    }
    // Settled links: among the neighbours it may drop, an asking newcomer takes the newest's place.
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => void vi.useRealTimers())
    vi.setSystemTime(Date.now() + 31_000)
    // Each asks once: the first takes the place of the neighbour protection no longer covers.
    for (let i = 0; i < 3; i++) {
      const sybil = await rawMesh(network, victim)
      const reply = sybil.next('NEIGHBOR_REPLY')
      sybil.send({ type: 'NEIGHBOR', high: true, addr: '' })
      await reply
    }
    expect(victim.mesh.isActive(first.peer.id)).toBe(true)
    expect(victim.mesh.isActive(elsewhere.peer.id)).toBe(true)
    expect(victim.mesh.isActive(second.peer.id)).toBe(false)
  })

  it("fresh identities asking a victim's neighbour with high priority do not cut the victim's settled link there: they evict each other", async () => {
    const activeSize = 6
    const { network, make } = meshNetwork({ mesh: { ...quiet, activeSize } })
    const hub = await make()
    // Six peers joined through the hub: to the hub, each one asked (none is a neighbour it chose).
    const members: MeshNode[] = []
    for (let i = 0; i < activeSize; i++) {
      const member = await make()
      await member.mesh.join(hub.peer.addresses[0]!)
      members.push(member)
    }
    await until(() => hub.mesh.active().length === activeSize, [hub.mesh], meshEvents)
    // Half a minute later their links have settled (only the clock moves: the peers' timers stay real).
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => void vi.useRealTimers())
    vi.setSystemTime(Date.now() + 31_000)
    await sybilsAskingHigh(network, hub, activeSize)
    // The first sybil took the newest settled link's place; every later one took a sybil's.
    const kept = members.filter((m) => hub.mesh.isActive(m.peer.id)).length
    expect(kept).toBeGreaterThanOrEqual(activeSize - 1)
  })
})

/**
 * `count` fresh identities ask `victim` to take them as neighbours with high priority: each round,
 * every one not a neighbour (dialing again if it was dropped) asks, for at most 12 rounds.
 */
async function sybilsAskingHigh(network: MemoryNetwork, victim: MeshNode, count: number): Promise<void> {
  const sybils: RawMesh[] = []
  for (let i = 0; i < count; i++) sybils.push(await rawMesh(network, victim))
  for (let round = 0; round < 12; round++) {
    const outside = sybils.filter((s) => !victim.mesh.isActive(s.peer.id))
    if (outside.length === 0) break
    for (const sybil of outside) {
      if (!sybil.channel().online) await sybil.connect()
      const reply = sybil.next('NEIGHBOR_REPLY')
      sybil.send({ type: 'NEIGHBOR', high: true, addr: '' })
      await reply
    }
  }
}
