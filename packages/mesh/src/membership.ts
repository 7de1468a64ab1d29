import { EventEmitter } from 'node:events'
import { networkInterfaces } from 'node:os'
import type {
  Channel,
  DisconnectEvent,
  Peer,
  PeerError,
  PeerInfo,
  Service,
  ServiceHandler,
} from '@parley/core'
import { hostOf, isLoopback, netgroupOf, reachableFirst, TokenBucket } from '@parley/core'
import { MAX_ADDRESS_BYTES, MAX_WALK_TTL, type MeshEntry, type MeshMessage } from './codec.js'
import { DeadHosts } from './dead-hosts.js'
import { MeshHandler, type MeshHandlerOwner } from './mesh-handler.js'
import {
  clampInt,
  MAX_ACTIVE_SIZE,
  MAX_MESH_DIALS,
  MAX_PASSIVE_SIZE,
  MAX_WALK_DIALS,
  type MeshEvents,
  type MeshInit,
  type MeshStats,
  REJOIN_MAX_DELAY,
} from './mesh-options.js'
import { jitter, pick, type Random } from './random.js'
import { Shuffler } from './shuffle.js'
import { type PassiveEntry, Views } from './views.js'

/**
 * A neighbour for this long is settled: a stranger's request (JOIN, high-priority NEIGHBOR) evicts it
 * only when every neighbour it could evict has settled, and then the newest (see Mesh.#victim).
 */
const SETTLED_MS = 30_000

/** Low-priority requests refused in a row, short of neighbours, before the next one is high priority. */
const REFUSALS_BEFORE_HIGH = 3

/** Protocol name of the membership service. */
export const MESH_PROTOCOL = 'parley/mesh/1'

interface Pending {
  addr: string
  high: boolean
  /** A JOIN (to a contact) rather than a NEIGHBOR request: re-sent as such after a link switch. */
  join: boolean
  /**
   * We chose this peer ourselves (the contact of `join()`, a candidate of our passive view), rather
   * than a walk or the peer steering us to it: once a neighbour it is protected from eviction.
   */
  chosen: boolean
  /** The neighbour whose walk ended in this request ('' for none): see Mesh.#walkedIn. */
  walkFrom: string
  since: number
}

/**
 * HyParView membership (Leitão, Pereira, Rodrigues, DSN 2007) over Parley sessions: a small active
 * view of neighbours, each one a session, and a larger passive view of addresses to replace them
 * from. Create it before the peer (its `service` goes into `createPeer({ services })`), then
 * `attach(peer)` and `join(contact)`. It drives connections only through the public Peer API.
 */
export class Mesh extends EventEmitter<MeshEvents> implements MeshHandlerOwner {
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
    refreshes: 0,
  }
  readonly #repairBelow: number
  readonly #joinTtl: number
  readonly #passiveTtl: number
  readonly #repairInterval: number
  readonly #addressTtl: number
  readonly #neighborTimeout: number
  readonly #refreshInterval: number
  #refreshAt = 0
  readonly #random: Random
  readonly #dials: TokenBucket
  /** Mesh dials not yet settled, at most MAX_MESH_DIALS. */
  #dialing = 0
  #peer: Peer | undefined
  /** Sessions that run the mesh protocol, by peer id. */
  readonly #handlers = new Map<string, MeshHandler>()
  /** Listen addresses peers announced in their handshake, for sessions open now. */
  readonly #announced = new Map<string, string>()
  /** The host each connected peer's connection comes from (see #onConnect). */
  readonly #hosts = new Map<string, string>()
  /** The active view (neighbours) and the passive view (candidates). */
  readonly #views: Views
  readonly #pending = new Map<string, Pending>()
  /** Sessions the mesh dialed itself: it closes them when they are not neighbours. */
  readonly #dialed = new Set<string>()
  /** Neighbours sent a SHUFFLE and not yet answered (only answers are merged). */
  readonly #shuffler: Shuffler
  readonly #contacts: string[] = []
  /** Neighbours whose walk ended in a dial still under way: one each (see #promote). */
  readonly #walkDials = new Set<string>()
  /**
   * Neighbours a walk brought, by the neighbour whose walk it was: each walker's landings make room by
   * replacing its own earlier one, so one neighbour's walks hold one slot, not every unprotected one.
   */
  readonly #walkedIn = new Map<string, string>()
  /** Hosts where hearsay dials did not reach the peer they named. */
  readonly #deadHosts = new DeadHosts()
  #repairTimer: ReturnType<typeof setTimeout> | undefined
  /** When the scheduled repair runs (Date.now() time), 0 before the first. */
  #repairDue = 0
  #closed = false
  #lastJoinAt = 0
  /** Wait before rejoining through a contact: doubles on each rejoin, back to the start with a neighbour. */
  #rejoinDelay = 0
  /** Low-priority requests refused in a row while short of neighbours (see #fill). */
  #refusals = 0

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
    this.#repairInterval = init.repairInterval ?? 1_000
    this.#addressTtl = init.addressTtl ?? 600_000
    this.#neighborTimeout = init.neighborTimeout ?? 10_000
    this.#refreshInterval = init.refreshInterval ?? 60_000
    if (!(this.#refreshInterval >= 0 && Number.isFinite(this.#refreshInterval))) {
      throw new RangeError(`refreshInterval must be a number of ms ≥ 0, got ${this.#refreshInterval}`)
    }
    this.#random = init.random ?? Math.random
    this.#views = new Views(
      this.passiveSize,
      this.#addressTtl,
      this.#random,
      () => this.#peer?.id,
      (addr, via) => this.#believable(addr, via),
    )
    this.#shuffler = new Shuffler({
      views: this.#views,
      random: this.#random,
      interval: init.shuffleInterval ?? 10_000,
      fillInterval: Math.max(100, this.#repairInterval),
      timeout: this.#neighborTimeout,
      handler: (id) => this.#handlers.get(id),
      self: () =>
        this.#peer?.status === 'running' ? { id: this.#peer.id, addr: this.#selfAddress() } : undefined,
      merged: () => this.emit('shuffled'),
      counted: () => this.stats.shuffles++,
    })
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
    this.#shuffler.start()
  }

  /** Stops the timers and lets go of the peer (it does not close connections: `peer.stop()` does). */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#repairTimer)
    this.#shuffler.close()
    this.#peer?.off('peer:connect', this.#onConnect)
    this.#peer?.off('peer:disconnect', this.#onDisconnect)
  }

  /** Neighbours now (peer ids). */
  active(): string[] {
    return [...this.#views.active.keys()]
  }

  /** Whether the peer is a neighbour now (in the active view): gossip sends messages only to neighbours. */
  isActive(id: string): boolean {
    return this.#views.active.has(id)
  }

  /** Replacement candidates now. */
  passive(): MeshEntry[] {
    return this.#views.passiveEntries(Date.now())
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
    if (!handler || this.#views.active.has(info.id)) return info
    // The contact always takes a joiner; it becomes our neighbour when its answer says so.
    this.#pending.set(info.id, {
      addr: this.#announced.get(info.id) ?? contact,
      high: true,
      join: true,
      chosen: true,
      walkFrom: '',
      since: Date.now(),
    })
    handler.send({ type: 'JOIN', addr: this.#selfAddress() })
    this.#shuffler.shuffleWithContact(info.id)
    return info
  }

  // ---- peer events ------------------------------------------------------------------------------

  readonly #onConnect = (info: PeerInfo): void => {
    // Only an address it was reached at, or one on the host its connection comes from: any other claim
    // is unverified, and walking or keeping it would point other peers' dials at a third party's host.
    const host = hostOf(info.address)
    this.#hosts.set(info.id, host)
    const believable = believed(
      info.listenAddrs,
      info.direction === 'outbound' ? info.address : undefined,
      host,
      info.id,
    )
    const addr = believable.find((a) => Buffer.byteLength(a) <= MAX_ADDRESS_BYTES)
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
      this.#hosts.delete(id)
      this.#dialed.delete(id)
    }
    this.#shuffler.forget(id)
    this.#pending.delete(id)
    if (this.#views.removeActive(id) !== undefined) {
      if (why === 'dead') {
        this.stats.deadNeighbors++
        // A dead neighbour is not a replacement candidate: its address is likely dead too.
        this.#views.passive.delete(id)
      }
      this.emit('neighbor:down', id, why)
      this.#repairSoon()
    }
  }

  /** @internal A session's mesh channel closed: the peer leaves the active view as dead. */
  handlerClosed(handler: MeshHandler, _error: PeerError): void {
    const id = handler.channel.peer.id
    if (this.#handlers.get(id) === handler) this.#handlers.delete(id)
    this.#lost(id, 'dead')
  }

  /**
   * The session moved to another link (a simultaneous dial's duplicate was retired, or it came back
   * after a loss): what we sent on the old link may be lost, so a request is sent again, and a
   * neighbour is asked to confirm (high priority: we both agreed before).
   * @internal
   */
  handlerResumed(handler: MeshHandler): void {
    const id = handler.channel.peer.id
    const self = this.#selfAddress()
    const pending = this.#pending.get(id)
    if (pending) {
      handler.send(
        pending.join ? { type: 'JOIN', addr: self } : { type: 'NEIGHBOR', high: pending.high, addr: self },
      )
    } else if (this.#views.active.has(id)) {
      handler.confirmDue = true
      handler.send({ type: 'NEIGHBOR', high: true, addr: self })
    } else if (this.#views.active.size + this.#pending.size < this.activeSize) {
      this.#promote(id, this.#announced.get(id) ?? '', false, false)
    }
  }

  // ---- messages ---------------------------------------------------------------------------------

  /** @internal A membership message from a peer, handled per HyParView. */
  onMessage(handler: MeshHandler, msg: MeshMessage): void {
    const from = handler.channel.peer.id
    switch (msg.type) {
      case 'JOIN': {
        handler.channel.spend()
        this.stats.joins++
        const known = this.#views.active.has(from)
        // Room is made by dropping a neighbour we did not choose where there is one (see #victim);
        // refused only when the session is already gone.
        const accepted = known || this.#addActive(from, this.#announcedOr(from, msg.addr), false, true)
        if (!accepted) this.stats.neighborRejected++
        handler.send({ type: 'NEIGHBOR_REPLY', accepted })
        // A JOIN re-sent after a link switch is answered again, not walked again; nor is a second JOIN
        // on the same session (a peer joins once; a DISCONNECT-JOIN loop would have us send ~30
        // FORWARD_JOINs through the overlay per token it spends).
        if (known || handler.walked) return
        handler.walked = true
        // Walk the joiner's address through the overlay from every other neighbour.
        const addr = this.#announcedOr(from, msg.addr)
        if (addr === '') return
        for (const id of this.#views.active.keys()) {
          if (id === from) continue
          this.#handlers.get(id)?.send({ type: 'FORWARD_JOIN', id: from, addr, ttl: this.#joinTtl })
        }
        return
      }
      case 'FORWARD_JOIN': {
        handler.channel.spend()
        this.stats.forwardJoins++
        // Walks come from neighbours only: any other session could steer our dials and fill our views.
        // A neighbour's walks are budgeted (FORWARD_JOIN_RATE): past it, one FORWARD_JOIN per message of
        // its session budget would make us relay as many into our other neighbours' budgets.
        if (!this.#views.active.has(from) || !handler.forwardJoins.take()) return
        const self = this.#attached().id
        if (msg.id === self || !this.#believable(msg.addr, from)) return
        // A candidate we know is dialed where we know it: a walk naming it elsewhere (a dead address)
        // would otherwise make us forget it when that fails.
        const addr = this.#views.passive.get(msg.id)?.addr ?? msg.addr
        if (msg.ttl === 0 || this.#views.active.size <= 1) {
          this.#land(handler, msg.id, addr)
          return
        }
        if (msg.ttl === this.#passiveTtl)
          this.#views.addPassive(msg.id, msg.addr, Date.now(), 'hearsay', from)
        const next = this.#views.randomActive([from, msg.id])
        if (next === undefined) {
          this.#land(handler, msg.id, addr)
          return
        }
        // A neighbour that does not read gets no walks: this one ends here (the joiner has others).
        const nextHandler = this.#handlers.get(next)
        if (!nextHandler?.channel.writable) return
        nextHandler.send({ type: 'FORWARD_JOIN', id: msg.id, addr: msg.addr, ttl: msg.ttl - 1 })
        return
      }
      case 'NEIGHBOR': {
        handler.channel.spend()
        this.stats.neighborRequests++
        const accept =
          this.#views.active.has(from) ||
          ((msg.high || this.#views.active.size < this.activeSize) &&
            this.#addActive(from, this.#announcedOr(from, msg.addr), false, true))
        if (!accept) this.stats.neighborRejected++
        handler.send({ type: 'NEIGHBOR_REPLY', accepted: accept })
        return
      }
      case 'NEIGHBOR_REPLY': {
        const pending = this.#pending.get(from)
        // An answer to nothing we asked costs the budget; a neighbour's one answer to the NEIGHBOR we send
        // it when its session resumes is expected (any more would be frames it sends for free).
        if (!pending) {
          if (handler.confirmDue) handler.confirmDue = false
          else handler.channel.spend()
          return
        }
        this.#pending.delete(from)
        if (msg.accepted && this.#addActive(from, pending.addr, pending.chosen, false, pending.walkFrom)) {
          this.#refusals = 0
          return
        }
        // Refused, or its session is gone: tell it (it may have taken us), keep it as a candidate for
        // later, and free the session we opened.
        if (msg.accepted) handler.send({ type: 'DISCONNECT' })
        else if (!pending.high) this.#refusals++
        this.#views.addPassive(from, pending.addr, Date.now(), 'firsthand')
        this.#release(from)
        return
      }
      case 'DISCONNECT': {
        // Charged: leaving and re-joining in a loop would otherwise make us walk its JOINs for free.
        handler.channel.spend()
        this.stats.disconnects++
        const addr = this.#views.removeActive(from)
        if (addr === undefined) return
        this.#keepAsCandidate(from, addr)
        this.emit('neighbor:down', from, 'dropped')
        this.#repairSoon()
        return
      }
      case 'SHUFFLE':
        // Views are exchanged with neighbours only: anyone else could fill our passive view with
        // addresses it chose, from which repair then dials.
        if (!this.#views.active.has(from)) {
          handler.channel.spend()
          return
        }
        this.#shuffler.onShuffle(handler, msg.entries)
        return
      case 'SHUFFLE_REPLY':
        this.#shuffler.onReply(handler, msg.entries)
        return
    }
  }

  // ---- views ------------------------------------------------------------------------------------

  /**
   * Makes `id` a neighbour, dropping one to make room when full (see {@link Mesh.#victim}); false when
   * it is ourselves or its session is gone. `chosen`: we picked it ourselves (see `Pending.chosen`).
   */
  #addActive(id: string, addr: string, chosen: boolean, asked = false, walkFrom = ''): boolean {
    if (id === this.#peer?.id || !this.#handlers.has(id)) return false
    if (this.#views.active.has(id)) return true
    // Kept to the neighbours we have (at most activeSize entries).
    for (const brought of this.#walkedIn.keys())
      if (!this.#views.active.has(brought)) this.#walkedIn.delete(brought)
    while (this.#views.active.size >= this.activeSize) {
      const victim = this.#broughtBy(walkFrom) ?? this.#victim(id, asked)
      if (victim === undefined) return false
      this.#drop(victim)
    }
    if (walkFrom !== '') this.#walkedIn.set(id, walkFrom)
    this.#pending.delete(id)
    this.#views.passive.delete(id)
    this.#views.active.set(id, addr)
    this.#views.since.set(id, Date.now())
    if (chosen && this.#mayProtect(id)) this.#views.outbound.add(id)
    this.#views.rememberRecent(addr)
    this.#shuffler.neighbourUp()
    this.emit('neighbor:up', id)
    return true
  }

  /**
   * At most one protected neighbour per network group, as Bitcoin Core keeps its outbound peers in
   * distinct groups: identities on one network that get themselves chosen (a neighbour that leaves
   * becomes a first-hand candidate, which repair and refresh promote as chosen) take one slot that
   * eviction spares, not all of them. Peers on this machine (loopback) are exempt.
   */
  #mayProtect(id: string): boolean {
    const host = this.#hosts.get(id)
    if (host === undefined || isLoopback(host)) return true
    const group = netgroupOf(host)
    for (const other of this.#views.outbound) {
      const there = this.#hosts.get(other)
      if (there !== undefined && netgroupOf(there) === group) return false
    }
    return true
  }

  /**
   * Whom to drop for `newcomer` (anti-eclipse, like Bitcoin's outbound slots): a random neighbour we
   * did not choose; else, all being chosen, a random one of those. The newcomer then holds the one
   * unprotected slot, so neighbours that asked us, or that a walk sent us (an attacker steers both),
   * displace each other and at most one of those we picked from our own passive view or joined
   * through: any number of fresh identities asking with high priority evict each other, not them.
   * When the newcomer `asked` (a JOIN, a high-priority NEIGHBOR), the neighbour dropped is also one
   * that has not settled (SETTLED_MS), else the newest (as Bitcoin's inbound eviction keeps the
   * longest-connected): sybils asking a victim's neighbours cannot cut its settled links there one by
   * one. Walks that end here and our own requests keep the random choice, which spreads the churn of
   * a forming overlay over old links rather than new ones.
   */
  #victim(newcomer: string, asked: boolean): string | undefined {
    const active = [...this.#views.active.keys()].filter((id) => id !== newcomer)
    const unprotected = active.filter((id) => !this.#views.outbound.has(id))
    if (unprotected.length === 0)
      return active.length === 0 ? undefined : active[pick(this.#random, active.length)]
    if (!asked) return unprotected[pick(this.#random, unprotected.length)]
    // A stranger asked (anyone can, with any number of fresh keys): not at the expense of settled links.
    const settledBefore = Date.now() - SETTLED_MS
    const since = (id: string) => this.#views.since.get(id) ?? 0
    const unsettled = unprotected.filter((id) => since(id) > settledBefore)
    if (unsettled.length > 0) return unsettled[pick(this.#random, unsettled.length)]
    return unprotected.reduce((newest, id) => (since(id) > since(newest) ? id : newest))
  }

  /**
   * A neighbour that left the active view stays a candidate: first-hand, unless a walk brought it, which
   * stays the walker's hearsay (its share, never protected): a sybil a walk steered here must not come
   * back as a neighbour we chose by leaving.
   */
  #keepAsCandidate(id: string, addr: string): void {
    const walker = this.#walkedIn.get(id)
    this.#walkedIn.delete(id)
    if (walker === undefined) this.#views.addPassive(id, addr, Date.now(), 'firsthand')
    else this.#views.addPassive(id, addr, Date.now(), 'hearsay', walker)
  }

  /**
   * Hearsay naming an address on this machine (loopback) is believed only from a neighbour on this
   * machine: from any other it names that peer's own loopback, or steers our dials at the services
   * listening on ours. An unspecified address (0.0.0.0, ::) is dialed by no one.
   */
  #believable(addr: string, via: string): boolean {
    const host = hostOf(addr)
    if (host === '0.0.0.0' || host === '::') return false
    return !isLoopback(host) || isLoopback(this.#hosts.get(via) ?? '')
  }

  /** The neighbour an earlier walk of `walker` brought, if it is still one. */
  #broughtBy(walker: string): string | undefined {
    if (walker === '') return undefined
    for (const [brought, by] of this.#walkedIn)
      if (by === walker && this.#views.active.has(brought)) return brought
    return undefined
  }

  /** Makes room: tells a neighbour it is dropped (it keeps us as a candidate), then ends the session. */
  #drop(id: string): void {
    const addr = this.#views.removeActive(id)!
    this.#handlers.get(id)?.send({ type: 'DISCONNECT' })
    this.#keepAsCandidate(id, addr)
    this.emit('neighbor:down', id, 'dropped')
    void this.#peer?.disconnect(id, 'mesh: dropped to make room').catch(() => {})
  }

  // ---- connections ------------------------------------------------------------------------------

  /**
   * A walk of `walker`'s ends here: its joiner is asked to be a neighbour (high priority, as HyParView
   * says) within the walker's landing budget; past it, it is kept as a candidate (within the walker's
   * share of the passive view).
   */
  #land(walker: MeshHandler, id: string, addr: string): void {
    const from = walker.channel.peer.id
    if (!walker.landings.take()) {
      if (!this.#deadHosts.has(addr)) this.#views.addPassive(id, addr, Date.now(), 'hearsay', from)
      return
    }
    this.#promote(id, addr, true, false, from)
  }

  /**
   * Asks `id` to become a neighbour: over its session if there is one, else by dialing `addr` first
   * (within the dial budget). `high` is HyParView's priority: the answer is yes even when full.
   */
  #promote(id: string, addr: string, high: boolean, chosen: boolean, walkFrom = ''): void {
    const peer = this.#peer
    if (!peer || this.#closed || id === peer.id || this.#views.active.has(id) || this.#pending.has(id)) return
    const handler = this.#handlers.get(id)
    if (handler?.channel.online) {
      this.#pending.set(id, { addr, high, join: false, chosen, walkFrom, since: Date.now() })
      handler.send({ type: 'NEIGHBOR', high, addr: this.#selfAddress() })
      return
    }
    // At most MAX_MESH_DIALS at once: addresses that never answer must not hold every outbound
    // handshake slot of the peer (its user's dials wait for one). Walks get MAX_WALK_DIALS of them, one
    // per neighbour whose walk it is: walks aimed at such addresses held every slot, and the repair of
    // a lost neighbour could not dial at all.
    const walk = walkFrom !== ''
    // Hearsay at a host where it kept failing: not dialed, not kept (a neighbour may name fresh ids there).
    if (!chosen && this.#deadHosts.has(addr)) {
      this.#forget(id, addr)
      return
    }
    if (
      addr === '' ||
      this.#dialing >= MAX_MESH_DIALS ||
      (walk && (this.#walkDials.has(walkFrom) || this.#walkDials.size >= MAX_WALK_DIALS)) ||
      !this.#dials.take()
    ) {
      // No budget now: keep it as a candidate (within its source's share); the repair timer comes back to it.
      this.#views.addPassive(id, addr, Date.now(), 'hearsay', walkFrom)
      return
    }
    if (walk) this.#walkDials.add(walkFrom)
    this.#pending.set(id, { addr, high, join: false, chosen, walkFrom, since: Date.now() })
    this.stats.dials++
    this.#dialing++
    const done = () => {
      this.#dialing--
      this.#walkDials.delete(walkFrom)
    }
    // A candidate's address came from a walk or an exchange: the dial is steered, not the user's.
    peer.connect(addr, { steered: true }).then(
      (info) => {
        done()
        if (!chosen) this.#deadHosts.dialed(addr, info.id === id)
        const pending = this.#pending.get(id)
        if (info.id !== id) {
          // Someone else answers at that address now: the entry is stale, and the one who answered is a
          // candidate there, first-hand (we dialed it).
          this.#pending.delete(id)
          this.#forget(id, addr)
          this.#views.addPassive(info.id, addr, Date.now(), 'firsthand')
          if (!this.#views.active.has(info.id) && !this.#pending.has(info.id))
            void this.#disconnectQuietly(info.id)
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
        done()
        if (!chosen) this.#deadHosts.dialed(addr, false)
        this.stats.dialFailures++
        this.#pending.delete(id)
        this.#forget(id, addr)
      },
    )
  }

  /** Forgets the candidate `id` after `addr` failed, unless we know it at another address. */
  #forget(id: string, addr: string): void {
    if (this.#views.passive.get(id)?.addr === addr) this.#views.passive.delete(id)
  }

  /** Ends a session the mesh opened once it is neither a neighbour nor being asked to become one. */
  #release(id: string): void {
    if (this.#views.active.has(id) || this.#pending.has(id) || !this.#dialed.has(id)) return
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

  /**
   * Addresses a peer announced in its authenticated handshake win over what its messages claim; a
   * JOIN's or NEIGHBOR's claim is taken only if believable (see `believed`).
   */
  #announcedOr(id: string, claimed: string): string {
    const announced = this.#announced.get(id)
    if (announced !== undefined) return announced
    const host = this.#hosts.get(id)
    return host !== undefined && believed([claimed], undefined, host, id).length > 0 ? claimed : ''
  }

  #attached(): Peer {
    if (!this.#peer) throw new Error('attach(peer) the mesh first')
    return this.#peer
  }

  // ---- timers -----------------------------------------------------------------------------------

  #scheduleRepair(delay = jitter(this.#random, this.#repairInterval)): void {
    if (this.#closed) return
    clearTimeout(this.#repairTimer)
    this.#repairDue = Date.now() + delay
    this.#repairTimer = setTimeout(() => this.#repair(), delay)
    this.#repairTimer.unref?.()
  }

  #repairSoon(): void {
    // Soon, not now: several neighbours often die together, and each loss need not start its own dial.
    // Never later than a repair already due: losses in a stream must not put it off forever.
    const delay = jitter(this.#random, Math.min(200, this.#repairInterval))
    if (this.#repairDue !== 0 && this.#repairDue <= Date.now() + delay) return
    this.#scheduleRepair(delay)
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
      this.#views.expire(now)
      for (const [id, p] of this.#pending) {
        if (now - p.since > this.#neighborTimeout) {
          this.stats.timeouts++
          this.#pending.delete(id)
          this.#release(id)
        }
      }
      for (const id of this.#dialed) this.#release(id)
      this.#shuffler.expire(now)
      this.#fill(now)
      this.#refresh(now)
    }
    // A peer with enough neighbours (or nothing to try) checks five times less often: a loss
    // reschedules the check at once, and 10,000 peers' timers otherwise cost a core in one process.
    const content = this.#views.active.size + this.#pending.size >= this.#repairBelow
    const helpless =
      this.#views.active.size === 0 &&
      this.#pending.size === 0 &&
      this.#views.passive.size === 0 &&
      this.#contacts.length + this.#views.recent.length === 0
    this.#scheduleRepair(content || helpless ? jitter(this.#random, 5 * this.#repairInterval) : undefined)
  }

  /**
   * Now and then a content peer asks a random candidate to be its neighbour, with low priority: a
   * candidate with room takes it, a full one refuses (nothing changes on its side), and the asker, if
   * full, drops a random neighbour (which stays above the repair floor, or repairs). Views full of each
   * other (an island, which HyParView alone never leaves) thus meet the rest of the overlay, where
   * many peers sit between the floor and `activeSize`: measured, a group of 10 of 2,000 peers stayed
   * cut off for minutes without it. High priority merged it too, but made every refresh drop a link
   * on both sides: at 10,000 peers the tree then changed under every broadcast and one peer in
   * 10,000 missed three of five.
   */
  #refresh(now: number): void {
    if (this.#refreshInterval === 0) return
    if (this.#refreshAt === 0) this.#refreshAt = now + jitter(this.#random, this.#refreshInterval)
    if (now < this.#refreshAt) return
    this.#refreshAt = now + jitter(this.#random, this.#refreshInterval)
    // Short of neighbours, or already asking someone: the fill is at work.
    if (this.#views.active.size < this.#repairBelow || this.#pending.size > 0) return
    const candidate = this.#takeCandidate(now)
    if (candidate === undefined) return
    this.stats.refreshes++
    this.#promoteCandidate(candidate, false)
  }

  /**
   * Asks a passive candidate to become a neighbour. Chosen (protected once a neighbour, see #victim)
   * only if vouched for first-hand: candidates that walks and exchanges brought are anyone's say-so,
   * and an attacker's would then take the slots that eviction spares.
   */
  #promoteCandidate([id, entry]: [string, PassiveEntry], high: boolean): void {
    this.#promote(id, entry.addr, high, entry.source === 'firsthand')
  }

  /** A random passive entry not tried in the last 5 repair intervals, marked as tried now. */
  #takeCandidate(now: number): [string, PassiveEntry] | undefined {
    const backoff = 5 * this.#repairInterval
    const candidates = [...this.#views.passive].filter(([, e]) => now - e.triedAt > backoff)
    if (candidates.length === 0) return undefined
    const candidate = candidates[pick(this.#random, candidates.length)]!
    candidate[1].triedAt = now
    return candidate
  }

  /** One promotion per round while the active view is short: bounded dials, never a storm. */
  #fill(now: number): void {
    // Below the floor only: in a settled overlay nearly everyone is full, so a peer one short asking
    // random candidates would mostly be refused, each refusal a wasted dial; it is found instead by
    // the next joiner's walk or by a peer that lost more.
    // The rejoin backoff and the count of refusals start over once the peer is back at the floor.
    if (this.#views.active.size >= this.#repairBelow) {
      this.#rejoinDelay = 0
      this.#refusals = 0
    }
    if (this.#views.active.size + this.#pending.size >= this.#repairBelow) return
    const candidate = this.#takeCandidate(now)
    if (candidate !== undefined) {
      // High priority with one neighbour or none (HyParView: none). In a settled overlay everyone is
      // full and refuses low priority, so two peers left each other's only neighbour asked for good.
      // For the same reason, after a few refusals in a row: peers with room for each other alone (an
      // island of a few, every outsider full) otherwise stayed cut off for tens of seconds (150-peer
      // simulations). The one a full candidate then drops is left above the floor, or repairs.
      this.#promoteCandidate(
        candidate,
        this.#views.active.size <= 1 || this.#refusals >= REFUSALS_BEFORE_HIGH,
      )
      return
    }
    // No candidate to try: a neighbour we still have is asked for some. A newcomer whose contact is its
    // only neighbour (the walks of its JOIN found no one with a dial to spare) otherwise knows nobody
    // else, and is left alone for good if that contact leaves (3,000-peer simulations, 20 % churn).
    if (this.#views.active.size > 0) this.#shuffler.shuffleNow()
    // Short of neighbours with nothing to try (alone, or with a few neighbours and an empty passive
    // view): rejoin through a contact, with exponential backoff and jitter, so that thousands of peers
    // cut off together do not storm the same few contacts. Waiting until alone left a late joiner whose
    // walks were lost, and a newcomer that joined through it, each other's only neighbour for good.
    if (this.#pending.size > 0 || (this.#views.active.size > 0 && this.#views.passive.size > 0)) return
    const neighbours = new Set(this.#views.active.values())
    const through = [
      ...this.#contacts,
      ...this.#views.recent.filter((a) => !this.#contacts.includes(a)),
    ].filter((a) => !neighbours.has(a))
    if (through.length === 0) return
    if (this.#rejoinDelay === 0) {
      this.#rejoinDelay = jitter(this.#random, 5 * this.#repairInterval)
      // With neighbours left, a whole delay first: an exchange or a walk may bring candidates meanwhile,
      // and a neighbour the application just disconnected is not dialed straight back.
      if (this.#views.active.size > 0) this.#lastJoinAt = now
    }
    if (now - this.#lastJoinAt < this.#rejoinDelay || this.#dialing >= MAX_MESH_DIALS || !this.#dials.take())
      return
    this.#rejoinDelay = Math.min(REJOIN_MAX_DELAY, this.#rejoinDelay * 2)
    const contact = through[pick(this.#random, through.length)]!
    this.#dialing++
    this.join(contact)
      .catch(() => {})
      .finally(() => {
        this.#dialing--
      })
  }
}

/** Creates the membership service; see {@link Mesh}. @throws RangeError for an option out of range */
export function createMesh(init: MeshInit = {}): Mesh {
  return new Mesh(init)
}

/**
 * The claimed addresses to believe, best first (see #onConnect): core's `reachableFirst`; and for a peer
 * on this machine (a loopback connection), first its claims on this machine's own interface addresses,
 * which other hosts can reach where its loopback address would send them to themselves.
 */
function believed(claims: readonly string[], dialed: string | undefined, host: string, id: string): string[] {
  const near = reachableFirst(claims, dialed, host, id)
  if (!isLoopback(host)) return near
  const own = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const net of list ?? []) own.add(net.address)
  const wider = claims.filter((a) => !near.includes(a) && own.has(hostOf(a)) && !isLoopback(hostOf(a)))
  return [...wider, ...near]
}
