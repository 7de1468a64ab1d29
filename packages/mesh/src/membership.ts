import { EventEmitter } from 'node:events'
import type {
  Channel,
  DisconnectEvent,
  Peer,
  PeerError,
  PeerInfo,
  Service,
  ServiceHandler,
} from '@parley/core'
import { TokenBucket } from '@parley/core'
import {
  decodeMesh,
  encodeMesh,
  MAX_ADDRESS_BYTES,
  MAX_SHUFFLE_ENTRIES,
  MAX_WALK_TTL,
  type MeshEntry,
  type MeshMessage,
} from './codec.js'
import { jitter, pick, type Random, sample } from './random.js'

/** Protocol name of the membership service. */
export const MESH_PROTOCOL = 'parley/mesh/1'

/** No configuration may ask for more neighbours than this (the degree bound the issue asks for). */
export const MAX_ACTIVE_SIZE = 30
export const MAX_PASSIVE_SIZE = 1024
/** Longest wait between two rejoins of an isolated peer. */
const REJOIN_MAX_DELAY = 60_000

/** Construction options of {@link createMesh}. */
export interface MeshInit {
  /** Neighbours kept (the active view): links gossip flows over. ~log2(N) + 1. @default 6, at most 30 */
  activeSize?: number
  /**
   * The repair timer asks candidates to become neighbours while the active view is below this; between
   * it and `activeSize` the peer only accepts requests. @default ⌈2/3 × activeSize⌉ (4 of 6)
   */
  repairBelow?: number
  /** Peers remembered as replacements (the passive view). @default 30 */
  passiveSize?: number
  /** Length of the random walk a JOIN starts (HyParView's ARWL). @default 6 */
  joinTtl?: number
  /** Walk step at which the joiner is put in the passive view (PRWL). @default 3 */
  passiveTtl?: number
  /** Period of the view exchange with a random neighbour, jittered ±50 %. @default 10_000 ms */
  shuffleInterval?: number
  /** Period of the repair check (fill the active view from the passive one), jittered. @default 1_000 ms */
  repairInterval?: number
  /** Dials the mesh may start per second, across all purposes. @default 4 (burst 4) */
  dialsPerSecond?: number
  /** A passive entry not refreshed for this long is forgotten. @default 600_000 ms */
  addressTtl?: number
  /** A NEIGHBOR request (dial included) not answered in this long is given up. @default 10_000 ms */
  neighborTimeout?: number
  /** Random source of every choice; pass a seeded one (see `seededRandom`) to replay a run. @default Math.random */
  random?: Random
}

export interface MeshEvents {
  /** A peer entered the active view. */
  'neighbor:up': [id: string]
  /** A peer left the active view: `dead` when its connection was lost, `dropped` when one side made room. */
  'neighbor:down': [id: string, why: 'dead' | 'dropped']
  /** A view exchange was merged into the passive view. */
  shuffled: []
}

/** Counters, for the simulation and for diagnostics. */
export interface MeshStats {
  joins: number
  forwardJoins: number
  neighborRequests: number
  neighborRejected: number
  disconnects: number
  shuffles: number
  dials: number
  dialFailures: number
  deadNeighbors: number
  /** JOINs and NEIGHBOR requests given up unanswered. */
  timeouts: number
}

interface PassiveEntry {
  addr: string
  /** When it was last known alive (ms, our clock). */
  at: number
  /** When a promotion was last tried (ms), for backoff. */
  triedAt: number
}

interface Pending {
  addr: string
  high: boolean
  /** A JOIN (to a contact) rather than a NEIGHBOR request: re-sent as such after a link switch. */
  join: boolean
  since: number
}

/**
 * HyParView membership (Leitão, Pereira, Rodrigues, DSN 2007) over Parley sessions: a small active
 * view of neighbours, each one a session, and a larger passive view of addresses to replace them
 * from. Create it before the peer (its `service` goes into `createPeer({ services })`), then
 * `attach(peer)` and `join(contact)`. It drives connections only through the public Peer API.
 */
export class Mesh extends EventEmitter<MeshEvents> {
  readonly service: Service
  readonly activeSize: number
  readonly passiveSize: number
  readonly stats: MeshStats = {
    joins: 0,
    forwardJoins: 0,
    neighborRequests: 0,
    neighborRejected: 0,
    disconnects: 0,
    shuffles: 0,
    dials: 0,
    dialFailures: 0,
    deadNeighbors: 0,
    timeouts: 0,
  }
  readonly #repairBelow: number
  readonly #joinTtl: number
  readonly #passiveTtl: number
  readonly #shuffleInterval: number
  readonly #repairInterval: number
  readonly #addressTtl: number
  readonly #neighborTimeout: number
  readonly #random: Random
  readonly #dials: TokenBucket
  #peer: Peer | undefined
  /** Sessions that run the mesh protocol, by peer id. */
  readonly #handlers = new Map<string, MeshHandler>()
  /** Listen addresses peers announced in their handshake, for sessions open now. */
  readonly #announced = new Map<string, string>()
  readonly #active = new Map<string, string>()
  readonly #passive = new Map<string, PassiveEntry>()
  readonly #pending = new Map<string, Pending>()
  /** Sessions the mesh dialed itself: it closes them when they are not neighbours. */
  readonly #dialed = new Set<string>()
  /** Neighbours sent a SHUFFLE and not yet answered (only answers are merged). */
  readonly #shuffling = new Map<string, number>()
  readonly #contacts: string[] = []
  /** Addresses of the last few neighbours: an isolated peer rejoins through them too (its contacts may be gone). */
  readonly #recent: string[] = []
  #repairTimer: ReturnType<typeof setTimeout> | undefined
  #shuffleTimer: ReturnType<typeof setTimeout> | undefined
  #closed = false
  #lastJoinAt = 0
  /** Wait before rejoining through a contact: doubles on each rejoin, back to the start with a neighbour. */
  #rejoinDelay = 0

  constructor(init: MeshInit = {}) {
    super()
    this.activeSize = clampInt(init.activeSize ?? 6, 1, MAX_ACTIVE_SIZE, 'activeSize')
    this.passiveSize = clampInt(init.passiveSize ?? 30, 0, MAX_PASSIVE_SIZE, 'passiveSize')
    this.#repairBelow = clampInt(
      init.repairBelow ?? Math.ceil((2 * this.activeSize) / 3),
      1,
      this.activeSize,
      'repairBelow',
    )
    this.#joinTtl = clampInt(init.joinTtl ?? 6, 0, MAX_WALK_TTL, 'joinTtl')
    this.#passiveTtl = clampInt(init.passiveTtl ?? 3, 0, MAX_WALK_TTL, 'passiveTtl')
    this.#shuffleInterval = init.shuffleInterval ?? 10_000
    this.#repairInterval = init.repairInterval ?? 1_000
    this.#addressTtl = init.addressTtl ?? 600_000
    this.#neighborTimeout = init.neighborTimeout ?? 10_000
    this.#random = init.random ?? Math.random
    const dps = init.dialsPerSecond ?? 4
    this.#dials = new TokenBucket(dps, Math.max(1, Math.ceil(dps)))
    this.service = {
      protocol: MESH_PROTOCOL,
      open: (channel: Channel): ServiceHandler => {
        const handler = new MeshHandler(this, channel)
        this.#handlers.set(channel.peer.id, handler)
        return handler
      },
    }
  }

  /**
   * Binds the mesh to the peer whose `services` include `this.service`, and starts its timers.
   * @throws Error when already attached
   */
  attach(peer: Peer): void {
    if (this.#peer) throw new Error('this mesh is already attached to a peer')
    this.#peer = peer
    peer.on('peer:connect', this.#onConnect)
    peer.on('peer:disconnect', this.#onDisconnect)
    this.#scheduleRepair()
    this.#scheduleShuffle()
  }

  /** Stops the timers and lets go of the peer (it does not close connections: `peer.stop()` does). */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#repairTimer)
    clearTimeout(this.#shuffleTimer)
    this.#peer?.off('peer:connect', this.#onConnect)
    this.#peer?.off('peer:disconnect', this.#onDisconnect)
  }

  /** Neighbours now (peer ids). */
  active(): string[] {
    return [...this.#active.keys()]
  }

  isActive(id: string): boolean {
    return this.#active.has(id)
  }

  /** Replacement candidates now. */
  passive(): MeshEntry[] {
    const now = Date.now()
    return [...this.#passive].map(([id, e]) => ({ id, addr: e.addr, age: ageSeconds(now, e.at) }))
  }

  /**
   * Joins the overlay through one contact: dials it and sends JOIN; the contact walks our address
   * through the overlay so that about `activeSize` peers take us as a neighbour. The contact is kept
   * to rejoin through if every neighbour and replacement is lost.
   * @throws PeerError from `connect` when the contact cannot be reached
   */
  async join(contact: string): Promise<PeerInfo> {
    const peer = this.#attached()
    if (!this.#contacts.includes(contact) && this.#contacts.length < 8) this.#contacts.push(contact)
    this.#lastJoinAt = Date.now()
    this.stats.dials++
    const info = await peer.connect(contact)
    this.#dialed.add(info.id)
    const handler = this.#handlers.get(info.id)
    if (!handler || this.#active.has(info.id)) return info
    // The contact always takes a joiner; it becomes our neighbour when its answer says so.
    this.#pending.set(info.id, {
      addr: this.#announced.get(info.id) ?? contact,
      high: true,
      join: true,
      since: Date.now(),
    })
    handler.send({ type: 'JOIN', addr: this.#selfAddress() })
    return info
  }

  // ---- peer events ------------------------------------------------------------------------------

  readonly #onConnect = (info: PeerInfo): void => {
    const addr = info.listenAddrs.find((a) => Buffer.byteLength(a) <= MAX_ADDRESS_BYTES)
    if (addr !== undefined) this.#announced.set(info.id, addr)
  }

  readonly #onDisconnect = (event: DisconnectEvent): void => {
    this.#lost(event.peer.id, event.reason === 'goodbye' ? 'dropped' : 'dead')
  }

  /** A session ended or its link was lost: a neighbour is gone, and is replaced by the repair timer. */
  #lost(id: string, why: 'dead' | 'dropped'): void {
    // A session waiting to reconnect keeps its handler: what we dialed stays ours to close.
    if (!this.#handlers.has(id)) {
      this.#announced.delete(id)
      this.#dialed.delete(id)
    }
    this.#shuffling.delete(id)
    this.#pending.delete(id)
    if (this.#active.delete(id)) {
      if (why === 'dead') {
        this.stats.deadNeighbors++
        // A dead neighbour is not a replacement candidate: its address is likely dead too.
        this.#passive.delete(id)
      }
      this.emit('neighbor:down', id, why)
      this.#repairSoon()
    }
  }

  handlerClosed(handler: MeshHandler, _error: PeerError): void {
    const id = handler.channel.peer.id
    if (this.#handlers.get(id) === handler) this.#handlers.delete(id)
    this.#lost(id, 'dead')
  }

  /**
   * The session moved to another link (a simultaneous dial's duplicate was retired, or it came back
   * after a loss): what we sent on the old link may be lost, so a request is sent again, and a
   * neighbour is asked to confirm (high priority: we both agreed before).
   */
  handlerResumed(handler: MeshHandler): void {
    const id = handler.channel.peer.id
    const self = this.#selfAddress()
    const pending = this.#pending.get(id)
    if (pending) {
      handler.send(
        pending.join ? { type: 'JOIN', addr: self } : { type: 'NEIGHBOR', high: pending.high, addr: self },
      )
    } else if (this.#active.has(id)) {
      handler.send({ type: 'NEIGHBOR', high: true, addr: self })
    } else if (this.#active.size + this.#pending.size < this.activeSize) {
      this.#promote(id, this.#announced.get(id) ?? '', false)
    }
  }

  // ---- messages ---------------------------------------------------------------------------------

  onMessage(handler: MeshHandler, msg: MeshMessage): void {
    const from = handler.channel.peer.id
    switch (msg.type) {
      case 'JOIN': {
        handler.channel.spend()
        this.stats.joins++
        const known = this.#active.has(from)
        if (!known) this.#addActive(from, this.#announcedOr(from, msg.addr))
        handler.send({ type: 'NEIGHBOR_REPLY', accepted: true })
        // A JOIN re-sent after a link switch is answered again, not walked again.
        if (known) return
        // Walk the joiner's address through the overlay from every other neighbour.
        const addr = this.#announcedOr(from, msg.addr)
        if (addr === '') return
        for (const id of this.#active.keys()) {
          if (id === from) continue
          this.#handlers.get(id)?.send({ type: 'FORWARD_JOIN', id: from, addr, ttl: this.#joinTtl })
        }
        return
      }
      case 'FORWARD_JOIN': {
        handler.channel.spend()
        this.stats.forwardJoins++
        const self = this.#attached().id
        if (msg.id === self) return
        if (msg.ttl === 0 || this.#active.size <= 1) {
          this.#promote(msg.id, msg.addr, true)
          return
        }
        if (msg.ttl === this.#passiveTtl) this.#addPassive(msg.id, msg.addr, Date.now())
        const next = this.#randomActive([from, msg.id])
        if (next === undefined) {
          this.#promote(msg.id, msg.addr, true)
          return
        }
        this.#handlers.get(next)?.send({ type: 'FORWARD_JOIN', id: msg.id, addr: msg.addr, ttl: msg.ttl - 1 })
        return
      }
      case 'NEIGHBOR': {
        handler.channel.spend()
        this.stats.neighborRequests++
        const accept = this.#active.has(from) || msg.high || this.#active.size < this.activeSize
        if (accept) this.#addActive(from, this.#announcedOr(from, msg.addr))
        else this.stats.neighborRejected++
        handler.send({ type: 'NEIGHBOR_REPLY', accepted: accept })
        return
      }
      case 'NEIGHBOR_REPLY': {
        const pending = this.#pending.get(from)
        if (!pending) return
        this.#pending.delete(from)
        if (msg.accepted) {
          this.#addActive(from, pending.addr)
        } else {
          // Full: keep it as a candidate for later, and free the session we opened for the request.
          this.#addPassive(from, pending.addr, Date.now())
          this.#release(from)
        }
        return
      }
      case 'DISCONNECT': {
        this.stats.disconnects++
        const addr = this.#active.get(from)
        if (addr === undefined) return
        this.#active.delete(from)
        this.#addPassive(from, addr, Date.now())
        this.emit('neighbor:down', from, 'dropped')
        this.#repairSoon()
        return
      }
      case 'SHUFFLE': {
        handler.channel.spend()
        if (!handler.shuffles.take() || !handler.channel.writable) return
        this.stats.shuffles++
        const reply = this.#sampleEntries(
          msg.entries.length,
          new Set([from, ...msg.entries.map((e) => e.id)]),
        )
        handler.send({ type: 'SHUFFLE_REPLY', entries: reply })
        this.#merge(msg.entries)
        return
      }
      case 'SHUFFLE_REPLY': {
        // Only an answer to our own SHUFFLE is believed: an unsolicited list could fill the view with junk.
        if (!this.#shuffling.delete(from)) return
        this.#merge(msg.entries)
        return
      }
    }
  }

  // ---- views ------------------------------------------------------------------------------------

  #addActive(id: string, addr: string): void {
    if (id === this.#peer?.id || this.#active.has(id)) return
    if (!this.#handlers.has(id)) return
    this.#pending.delete(id)
    this.#passive.delete(id)
    while (this.#active.size >= this.activeSize) {
      const victim = this.#randomActive([id])
      if (victim === undefined) break
      this.#drop(victim)
    }
    this.#active.set(id, addr)
    if (addr !== '' && !this.#recent.includes(addr)) {
      this.#recent.push(addr)
      if (this.#recent.length > 8) this.#recent.shift()
    }
    this.emit('neighbor:up', id)
  }

  /** Makes room: tells a neighbour it is dropped (it keeps us as a candidate), then ends the session. */
  #drop(id: string): void {
    const addr = this.#active.get(id)!
    this.#active.delete(id)
    this.#handlers.get(id)?.send({ type: 'DISCONNECT' })
    this.#addPassive(id, addr, Date.now())
    this.emit('neighbor:down', id, 'dropped')
    void this.#peer?.disconnect(id, 'mesh: dropped to make room').catch(() => {})
  }

  #addPassive(id: string, addr: string, at: number): void {
    if (this.passiveSize === 0 || addr === '' || id === this.#peer?.id || this.#active.has(id)) return
    const existing = this.#passive.get(id)
    if (existing) {
      if (at > existing.at) {
        existing.at = at
        existing.addr = addr
      }
      return
    }
    if (Date.now() - at > this.#addressTtl) return
    if (this.#passive.size >= this.passiveSize) {
      const ids = [...this.#passive.keys()]
      this.#passive.delete(ids[pick(this.#random, ids.length)]!)
    }
    this.#passive.set(id, { addr, at, triedAt: 0 })
  }

  #merge(entries: readonly MeshEntry[]): void {
    const now = Date.now()
    for (const e of entries) this.#addPassive(e.id, e.addr, now - e.age * 1000)
    this.emit('shuffled')
  }

  /** Up to `n` entries from both views (never those in `exclude`), passive ones with their age. */
  #sampleEntries(n: number, exclude: Set<string>): MeshEntry[] {
    const now = Date.now()
    const out: MeshEntry[] = []
    const active = [...this.#active].filter(([id, addr]) => !exclude.has(id) && addr !== '')
    for (const [id, addr] of sample(this.#random, active, Math.ceil(n / 2))) out.push({ id, addr, age: 0 })
    const passive = [...this.#passive].filter(([id]) => !exclude.has(id))
    for (const [id, e] of sample(this.#random, passive, n - out.length)) {
      out.push({ id, addr: e.addr, age: ageSeconds(now, e.at) })
    }
    return out
  }

  #randomActive(exclude: readonly string[]): string | undefined {
    const ids = [...this.#active.keys()].filter((id) => !exclude.includes(id))
    return ids.length === 0 ? undefined : ids[pick(this.#random, ids.length)]
  }

  // ---- connections ------------------------------------------------------------------------------

  /**
   * Asks `id` to become a neighbour: over its session if there is one, else by dialing `addr` first
   * (within the dial budget). `high` is HyParView's priority: the answer is yes even when full.
   */
  #promote(id: string, addr: string, high: boolean): void {
    const peer = this.#peer
    if (!peer || this.#closed || id === peer.id || this.#active.has(id) || this.#pending.has(id)) return
    const handler = this.#handlers.get(id)
    if (handler?.channel.online) {
      this.#pending.set(id, { addr, high, join: false, since: Date.now() })
      handler.send({ type: 'NEIGHBOR', high, addr: this.#selfAddress() })
      return
    }
    if (addr === '' || !this.#dials.take()) {
      // No budget now: keep it as a candidate; the repair timer comes back to it.
      this.#addPassive(id, addr, Date.now())
      return
    }
    this.#pending.set(id, { addr, high, join: false, since: Date.now() })
    this.stats.dials++
    peer.connect(addr).then(
      (info) => {
        const pending = this.#pending.get(id)
        if (info.id !== id) {
          // Someone else answers at that address now: the entry is stale.
          this.#pending.delete(id)
          this.#passive.delete(id)
          if (!this.#active.has(info.id) && !this.#pending.has(info.id)) void this.#disconnectQuietly(info.id)
          return
        }
        this.#dialed.add(id)
        if (!pending) {
          this.#release(id)
          return
        }
        const h = this.#handlers.get(id)
        if (!h) {
          this.#pending.delete(id)
          return
        }
        h.send({ type: 'NEIGHBOR', high: pending.high, addr: this.#selfAddress() })
      },
      () => {
        this.stats.dialFailures++
        this.#pending.delete(id)
        this.#passive.delete(id)
      },
    )
  }

  /** Ends a session the mesh opened once it is neither a neighbour nor being asked to become one. */
  #release(id: string): void {
    if (this.#active.has(id) || this.#pending.has(id) || !this.#dialed.has(id)) return
    this.#dialed.delete(id)
    void this.#disconnectQuietly(id)
  }

  async #disconnectQuietly(id: string): Promise<void> {
    try {
      await this.#peer?.disconnect(id, 'mesh: not a neighbour')
    } catch {
      // Already gone.
    }
  }

  #selfAddress(): string {
    const addr = this.#peer?.addresses[0] ?? ''
    return Buffer.byteLength(addr) <= MAX_ADDRESS_BYTES ? addr : ''
  }

  /** Addresses a peer announced in its authenticated handshake win over what its messages claim. */
  #announcedOr(id: string, claimed: string): string {
    return this.#announced.get(id) ?? claimed
  }

  #attached(): Peer {
    if (!this.#peer) throw new Error('attach(peer) the mesh first')
    return this.#peer
  }

  // ---- timers -----------------------------------------------------------------------------------

  #scheduleRepair(delay = jitter(this.#random, this.#repairInterval)): void {
    if (this.#closed) return
    clearTimeout(this.#repairTimer)
    this.#repairTimer = setTimeout(() => this.#repair(), delay)
    this.#repairTimer.unref?.()
  }

  #repairSoon(): void {
    // Soon, not now: several neighbours often die together, and each loss need not start its own dial.
    this.#scheduleRepair(jitter(this.#random, Math.min(200, this.#repairInterval)))
  }

  #repair(): void {
    const peer = this.#peer
    if (!peer || this.#closed) return
    if (peer.status === 'stopping' || peer.status === 'stopped') {
      this.close()
      return
    }
    if (peer.status === 'running') {
      const now = Date.now()
      for (const [id, e] of this.#passive) if (now - e.at > this.#addressTtl) this.#passive.delete(id)
      for (const [id, p] of this.#pending) {
        if (now - p.since > this.#neighborTimeout) {
          this.stats.timeouts++
          this.#pending.delete(id)
          this.#release(id)
        }
      }
      for (const id of this.#dialed) this.#release(id)
      for (const [id, at] of this.#shuffling) if (now - at > this.#neighborTimeout) this.#shuffling.delete(id)
      this.#fill(now)
    }
    this.#scheduleRepair()
  }

  /** One promotion per round while the active view is short: bounded dials, never a storm. */
  #fill(now: number): void {
    // Below the floor only: in a settled overlay nearly everyone is full, so a peer one short asking
    // random candidates would mostly be refused, each refusal a wasted dial; it is found instead by
    // the next joiner's walk or by a peer that lost more.
    if (this.#active.size + this.#pending.size >= this.#repairBelow) return
    const backoff = 5 * this.#repairInterval
    const candidates = [...this.#passive].filter(([, e]) => now - e.triedAt > backoff)
    if (candidates.length > 0) {
      const [id, e] = candidates[pick(this.#random, candidates.length)]!
      e.triedAt = now
      this.#promote(id, e.addr, this.#active.size === 0)
      return
    }
    // Alone with no candidates: rejoin through a contact, with exponential backoff and jitter, so that
    // thousands of peers cut off together do not storm the same few contacts.
    if (this.#active.size > 0) this.#rejoinDelay = 0
    if (
      this.#active.size === 0 &&
      this.#pending.size === 0 &&
      this.#contacts.length + this.#recent.length > 0
    ) {
      if (this.#rejoinDelay === 0) this.#rejoinDelay = jitter(this.#random, backoff)
      if (now - this.#lastJoinAt < this.#rejoinDelay || !this.#dials.take()) return
      this.#rejoinDelay = Math.min(REJOIN_MAX_DELAY, this.#rejoinDelay * 2)
      const through = [...this.#contacts, ...this.#recent.filter((a) => !this.#contacts.includes(a))]
      const contact = through[pick(this.#random, through.length)]!
      this.join(contact).catch(() => {})
    }
  }

  #scheduleShuffle(): void {
    if (this.#closed || this.#shuffleInterval <= 0) return
    this.#shuffleTimer = setTimeout(
      () => {
        this.#shuffle()
        this.#scheduleShuffle()
      },
      jitter(this.#random, this.#shuffleInterval),
    )
    this.#shuffleTimer.unref?.()
  }

  /** Sends ourselves, a few neighbours and a few candidates to a random neighbour, which answers in kind. */
  #shuffle(): void {
    const peer = this.#peer
    if (peer?.status !== 'running') return
    const target = this.#randomActive([])
    if (target === undefined) return
    const handler = this.#handlers.get(target)
    if (!handler?.channel.writable) return
    const self = this.#selfAddress()
    const entries = this.#sampleEntries(7, new Set([target]))
    if (self !== '') entries.unshift({ id: peer.id, addr: self, age: 0 })
    this.#shuffling.set(target, Date.now())
    handler.send({ type: 'SHUFFLE', entries: entries.slice(0, MAX_SHUFFLE_ENTRIES) })
  }
}

/** The mesh's view of one session. */
export class MeshHandler implements ServiceHandler {
  /** SHUFFLEs this peer may make us answer: a burst, then one every two seconds. */
  readonly shuffles = new TokenBucket(0.5, 4)

  constructor(
    readonly mesh: Mesh,
    readonly channel: Channel,
  ) {}

  onFrame(body: Uint8Array): void {
    this.mesh.onMessage(this, decodeMesh(body))
  }

  send(msg: MeshMessage): void {
    if (!this.channel.online) return
    this.channel.sendBytes(encodeMesh(msg))
  }

  /** The session came back on a new link after a loss (we dialed it): it may become a neighbour again. */
  onResume(): void {
    this.mesh.handlerResumed(this)
  }

  onClose(error: PeerError): void {
    this.mesh.handlerClosed(this, error)
  }
}

/** Creates the membership service; see {@link Mesh}. @throws RangeError for an option out of range */
export function createMesh(init: MeshInit = {}): Mesh {
  return new Mesh(init)
}

function clampInt(v: number, min: number, max: number, name: string): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`)
  }
  return v
}

function ageSeconds(now: number, at: number): number {
  return Math.max(0, Math.min(0xffff, Math.floor((now - at) / 1000)))
}
