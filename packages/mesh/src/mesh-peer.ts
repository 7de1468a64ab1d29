import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import {
  type AbortOptions,
  type BroadcastOptions,
  type BroadcastResult,
  type ConnectOptions,
  type ConnectResult,
  type ConnectToActiveOptions,
  type ConnectToActiveResult,
  createPeer,
  fingerprint,
  generateIdentity,
  type KeyChange,
  type Peer,
  type PeerEvents,
  type PeerInfo,
  type PeerInit,
  type PeerList,
  type PeerResources,
  type PendingKeyChange,
  type ReceivedMessage,
  type SendManyResult,
  type SendOptions,
  type SendResult,
  type SkippedPeer,
} from '@parley/core'
import { createGossip, type Gossip, type GossipDelivery, type GossipInit } from './gossip.js'
import { createMesh, type Mesh } from './membership.js'
import type { MeshInit } from './mesh-options.js'

/** Construction options of {@link createMeshPeer}: a peer's, plus its membership and gossip. */
export interface MeshPeerInit extends PeerInit {
  /** Membership (HyParView) options: the neighbours kept, shuffles, repair. */
  mesh?: MeshInit
  /** Gossip options besides the identity and the mesh (seen-cache, hop limit, rates). */
  gossip?: Omit<GossipInit, 'identity' | 'mesh'>
  /**
   * How long a copy of a broadcast (direct or relayed) is kept to be matched with the other, so the
   * broadcast is delivered once. @default gossip's `maxAge` plus the 60 s of clock skew it accepts (360,000 ms)
   */
  matchWindow?: number
}

/** A {@link Peer} that runs membership and gossip: its broadcasts reach peers it is not connected to. */
export interface MeshPeer extends Peer {
  readonly mesh: Mesh
  readonly gossip: Gossip
}

/** Known (origin, text) pairs of broadcasts kept to deliver each once: direct and relayed copies match. */
const MAX_MATCHES = 4096
/** Copies of one pair kept per side: the same text broadcast again and again keeps its last ones. */
const COPIES_PER_PAIR = 8
/**
 * Two copies are one broadcast when the origin stamped them this close: both stamps are the origin's
 * clock within one `broadcast()` call, the direct one later only if it waited behind a full window.
 * Further apart, they are two messages that happen to say the same thing (a `send()` after a broadcast).
 */
const SAME_BROADCAST_MS = 5_000
/** How long after its own `maxAge` a gossip may still arrive: it accepts stamps 60 s in the future. */
const GOSSIP_SKEW_MS = 60_000
/** A text longer than this (UTF-16 units) is matched by its SHA-256, so no key holds a long text. */
const MATCH_TEXT_UNITS = 128
const NAMES = 4096

/** The key of an (origin, text) pair: at most ≈ 200 characters, whatever the text. */
function matchKey(origin: string, text: string): string {
  if (text.length <= MATCH_TEXT_UNITS) return `${origin}\0${text}`
  // A different separator: a short text cannot pass for a long one's digest.
  return `${origin}\u0001${createHash('sha256').update(text).digest('base64')}`
}

/**
 * Creates a peer composed with membership and gossip (docs/MESH.md, "A peer in the mesh"):
 *
 * - `broadcast()` sends the text as before to every connected peer (one acknowledged result per peer)
 *   and as a signed gossip that the mesh relays to everyone else; a receiver delivers it once, as a
 *   `message` whose `from` is the signed origin, whichever copy comes first.
 * - `connectToActive()` connects to everyone in a small network (the known peers fit in `maxDegree`,
 *   by default the mesh's `activeSize`, 6);
 *   in a large one it joins the mesh through a connected peer and dials nobody itself: the membership
 *   chooses `mesh.activeSize` neighbours, its dials bounded in rate. The peers not dialed are reported
 *   as skipped (`degree-reached`).
 * - Sessions opened for a `send()` are closed once idle unless the peer is a mesh neighbour.
 *
 * Everything else is the core peer's. The membership and gossip services go into `services` after
 * the caller's own.
 */
export function createMeshPeer(init: MeshPeerInit): MeshPeer {
  return new ComposedPeer(init)
}

class ComposedPeer extends EventEmitter<PeerEvents> implements MeshPeer {
  readonly mesh: Mesh
  readonly gossip: Gossip
  readonly #inner: Peer
  readonly #maxDegree: number
  readonly #matchWindow: number
  /**
   * Copies seen of recent texts by origin, per channel, as the origin's stamps (`sentAt`): a copy on
   * one side cancels one on the other stamped within {@link SAME_BROADCAST_MS}.
   */
  readonly #matches = new Map<string, { origin: string; direct: number[]; relayed: number[]; at: number }>()
  /** The keys of #matches by origin, oldest first: a full table makes room from the origin with the most. */
  readonly #matchesOf = new Map<string, Set<string>>()
  readonly #names = new Map<string, string>()
  /** What `namedKeys` answered lately, by name (see #relayedName). */
  readonly #namedKeys = new Map<string, { at: number; keys: string[] }>()
  /** Ids in #names whose name came from their own handshake (authenticated), not from hearsay. */
  readonly #ownNames = new Set<string>()
  /** Sessions the application asked for, and sessions the remote opened: the membership does not close them. */
  readonly #wanted = new Set<string>()
  readonly #inbound = new Set<string>()
  readonly #meshDisconnect = (id: string, reason?: string, options?: AbortOptions): Promise<void> => {
    if (this.#wanted.has(id) || this.#inbound.has(id)) return Promise.resolve()
    return this.#inner.disconnect(id, reason, options)
  }

  constructor(init: MeshPeerInit) {
    super()
    const identity = init.identity ?? generateIdentity()
    this.mesh = createMesh(init.mesh)
    // Relayed over every session that runs gossip, not only the mesh's neighbours: the sessions the
    // application opened (a peer's contact, above all) keep the overlay connected where the membership
    // alone can leave islands (small networks whose views are all full, docs/MESH.md).
    // IHAVEs are another matter: only from the mesh's neighbours and the sessions the application
    // opened. Any stranger could otherwise fill the missing table with keys and have us GRAFT it.
    this.gossip = createGossip({
      announcers: (id) => this.mesh.isActive(id) || this.#wanted.has(id),
      ...init.gossip,
      identity,
    })
    // "Small" is what the neighbours alone could hold: peers that join at the same moment each know
    // only a few others, so a larger bound would make a crowd of joiners dial each other (a storm).
    this.#maxDegree = init.maxDegree ?? this.mesh.activeSize
    // A relayed copy can come as late as gossip accepts it; kept shorter, it would be shown twice.
    this.#matchWindow = init.matchWindow ?? (init.gossip?.maxAge ?? 300_000) + GOSSIP_SKEW_MS
    const retain = init.retain
    const inner = createPeer({
      ...init,
      identity,
      services: [...(init.services ?? []), this.mesh.service, this.gossip.service],
      // A neighbour is kept whatever its traffic: the mesh decides when it goes.
      retain: (id) => this.mesh.isActive(id) || retain?.(id) === true,
    })
    this.#inner = inner
    // The membership drives connections through the Peer API; it gets the peer with one change: it
    // cannot close a session the application asked for (a `connect`, a connect-to-active dial) or one
    // the remote opened (the remote's own reasons, its contact above all). Closing the contact sessions
    // of a crowd joining at once split a 1,000-peer run into dozens of parts.
    this.mesh.attach(
      new Proxy(inner, {
        get: (target, prop) => {
          if (prop === 'disconnect') return this.#meshDisconnect
          const value = Reflect.get(target, prop, target)
          return typeof value === 'function' ? value.bind(target) : value
        },
      }),
    )
    inner.on('peer:connect', (p) => {
      if (p.direction === 'inbound') this.#inbound.add(p.id)
      else this.#inbound.delete(p.id)
    })
    inner.on('peer:disconnect', (e) => {
      this.#inbound.delete(e.peer.id)
      this.#wanted.delete(e.peer.id)
    })
    inner.on('message', (m) => this.#direct(m))
    inner.on('peer:connect', (p) => {
      this.#name(p.id, p.name)
      this.#ownNames.add(p.id)
      this.emit('peer:connect', p)
    })
    inner.on('peer:disconnect', (e) => this.emit('peer:disconnect', e))
    inner.on('peer:discovered', (p) => {
      // Hearsay (another peer's PEERS answer): never over the name a peer gave in its own handshake.
      if (!this.#ownNames.has(p.id)) this.#name(p.id, p.name)
      this.emit('peer:discovered', p)
    })
    inner.on('peer:reconnecting', (e) => this.emit('peer:reconnecting', e))
    inner.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err)
    })
    this.gossip.on('gossip', (d) => this.#relayed(d))
  }

  get id(): string {
    return this.#inner.id
  }
  get name(): string {
    return this.#inner.name
  }
  get status() {
    return this.#inner.status
  }
  get addresses(): readonly string[] {
    return this.#inner.addresses
  }

  start(options?: AbortOptions): Promise<void> {
    return this.#inner.start(options)
  }
  async connect(address: string, options?: ConnectOptions): Promise<PeerInfo> {
    const info = await this.#inner.connect(address, options)
    this.#wanted.add(info.id)
    return info
  }
  send(target: string, text: string, options?: SendOptions): Promise<SendResult> {
    return this.#inner.send(target, text, options)
  }
  sendMany(target: string, texts: readonly string[], options?: SendOptions): Promise<SendManyResult> {
    return this.#inner.sendMany(target, texts, options)
  }
  peers(): PeerList {
    return this.#inner.peers()
  }
  queryPeers(target: string, options?: SendOptions) {
    return this.#inner.queryPeers(target, options)
  }
  disconnect(target: string, reason?: string, options?: AbortOptions): Promise<void> {
    return this.#inner.disconnect(target, reason, options)
  }
  stop(options?: AbortOptions): Promise<void> {
    this.mesh.close()
    return this.#inner.stop(options)
  }
  destroy(err?: Error): void {
    this.mesh.close()
    this.#inner.destroy(err)
  }
  resources(): PeerResources {
    return this.#inner.resources()
  }
  namedKeys(name: string): string[] {
    return this.#inner.namedKeys(name)
  }
  keyChanges(): PendingKeyChange[] {
    return this.#inner.keyChanges()
  }
  acceptKeyChange(address: string, peerId?: string): Promise<KeyChange> {
    return this.#inner.acceptKeyChange(address, peerId)
  }

  /**
   * Gossips `text` to the whole mesh, and sends it as before to every connected peer, whose results
   * (acknowledged or not) are returned. A text over gossip's 16 KiB limit goes to connected peers only.
   */
  async broadcast(text: string, options?: BroadcastOptions): Promise<BroadcastResult[]> {
    const direct = this.#inner.broadcast(text, options)
    try {
      this.gossip.broadcast(text)
    } catch {
      // Too long to gossip (or not running: the direct broadcast says so).
    }
    return direct
  }

  async connectToActive(options?: ConnectToActiveOptions): Promise<ConnectToActiveResult> {
    const maxDegree = options?.maxDegree ?? this.#maxDegree
    // First only learn whom the connected peers know (no dial), to tell a small network from a large one.
    const rounds = Math.min(1, options?.rounds ?? 1)
    const probe = await this.#inner.connectToActive({ ...options, maxDegree, maxDials: 0, rounds })
    const dialable = probe.skipped.filter((s) => s.reason === 'dial-budget' || s.reason === 'degree-reached')
    if (dialable.length === 0) {
      // Nobody new to dial: the probe is the answer (one round of questions, not two).
      await this.#join()
      return probe
    }
    if (probe.alreadyConnected.length + dialable.length <= maxDegree) {
      const result = await this.#inner.connectToActive({ ...options, maxDegree })
      for (const r of result) if (r.ok) this.#wanted.add(r.peerId)
      await this.#join()
      return result
    }
    await this.#join()
    const skipped: SkippedPeer[] = probe.skipped.map((s) =>
      s.reason === 'dial-budget' ? { ...s, reason: 'degree-reached' } : s,
    )
    return Object.defineProperties([] as ConnectResult[], {
      alreadyConnected: { value: probe.alreadyConnected, enumerable: false },
      skipped: { value: skipped, enumerable: false },
    }) as ConnectToActiveResult
  }

  /**
   * Joins the mesh through a connected peer unless it already has a neighbour: the first one this
   * peer dialed that is still connected (its contact), else any. Peers that all join through a random
   * session of theirs split into separate overlays (two peers joining through each other form an
   * island); joining along the first dials keeps the overlay as connected as those dials were.
   */
  async #join(): Promise<void> {
    if (this.mesh.active().length > 0 || this.#inner.status !== 'running') return
    const connected = this.#inner.peers().connected
    const dialed = connected
      .filter((p) => p.direction === 'outbound')
      .sort((a, b) => a.connectedAt - b.connectedAt)
    const order = [...dialed.slice(0, 1), ...connected.filter((p) => p !== dialed[0])]
    for (const p of order.slice(0, 3)) {
      try {
        await this.mesh.join(p.address)
        return
      } catch {
        // Gone meanwhile: another one.
      }
    }
  }

  // ---- one delivery per broadcast ---------------------------------------------------------------

  #direct(m: ReceivedMessage): void {
    if (this.#match(m.from.id, m.text, m.sentAt, 'direct')) this.emit('message', m)
  }

  #relayed(d: GossipDelivery): void {
    if (!this.#match(d.from, d.text, d.sentAt, 'relayed')) return
    this.emit('message', {
      id: d.id,
      from: { id: d.from, name: this.#relayedName(d.from) },
      text: d.text,
      sentAt: d.sentAt,
      receivedAt: d.receivedAt,
    })
  }

  /**
   * A mesh peer's broadcast arrives twice at a direct peer: as a chat message and as a gossip. The
   * first copy is delivered and kept; a copy from the other side with the same origin and text,
   * stamped by the origin within {@link SAME_BROADCAST_MS} of a kept one, cancels it and is not
   * delivered. Copies are kept for `matchWindow`. Returns whether to deliver.
   */
  #match(origin: string, text: string, sentAt: number, side: 'direct' | 'relayed'): boolean {
    const now = Date.now()
    const key = matchKey(origin, text)
    let e = this.#matches.get(key)
    if (e && now - e.at > this.#matchWindow) {
      this.#forgetMatch(key)
      e = undefined
    }
    const other = e?.[side === 'direct' ? 'relayed' : 'direct']
    const twin = other ? other.findIndex((at) => Math.abs(at - sentAt) <= SAME_BROADCAST_MS) : -1
    if (e && other && twin >= 0) {
      other.splice(twin, 1)
      if (e.direct.length === 0 && e.relayed.length === 0) this.#forgetMatch(key)
      return false
    }
    if (!e) {
      // Expired pairs leave from the front (oldest first), so a quiet peer does not keep a full table.
      for (const [k, old] of this.#matches) {
        if (now - old.at <= this.#matchWindow) break
        this.#forgetMatch(k)
      }
      // Full: room is made from the origin with the most pairs. Oldest first overall, one sender's
      // distinct texts flushed the pairs of everyone else's broadcasts, whose late copies then showed twice.
      if (this.#matches.size >= MAX_MATCHES) {
        let most: Set<string> | undefined
        for (const keys of this.#matchesOf.values()) if (!most || keys.size > most.size) most = keys
        this.#forgetMatch(most!.values().next().value!)
      }
      e = { origin, direct: [], relayed: [], at: now }
    }
    const copies = e[side]
    copies.push(sentAt)
    if (copies.length > COPIES_PER_PAIR) copies.shift()
    e.at = now
    // At the back of the table, so expired pairs stay at its front (see above).
    this.#matches.delete(key)
    this.#matches.set(key, e)
    let keys = this.#matchesOf.get(origin)
    if (!keys) {
      keys = new Set()
      this.#matchesOf.set(origin, keys)
    }
    keys.delete(key)
    keys.add(key)
    return true
  }

  #forgetMatch(key: string): void {
    const e = this.#matches.get(key)
    if (!e) return
    this.#matches.delete(key)
    const keys = this.#matchesOf.get(e.origin)
    keys?.delete(key)
    if (keys?.size === 0) this.#matchesOf.delete(e.origin)
  }

  /**
   * The name a relayed message shows: the one its origin gave in its own handshake; else (hearsay, a
   * peer list's) only while that name means no other peer we know, since a relay or a peer list chose
   * it; else its fingerprint.
   */
  #relayedName(origin: string): string {
    const name = this.#names.get(origin)
    if (name === undefined) return fingerprint(origin)
    if (this.#ownNames.has(origin)) return name
    // Asked at most once a second per name: a busy mesh relays many messages of the same origins.
    const now = Date.now()
    let seen = this.#namedKeys.get(name)
    if (seen === undefined || now - seen.at >= 1_000) {
      if (this.#namedKeys.size >= NAMES) this.#namedKeys.clear()
      seen = { at: now, keys: this.#inner.namedKeys(name) }
      this.#namedKeys.set(name, seen)
    }
    return seen.keys.every((k) => k === origin) ? name : fingerprint(origin)
  }

  #name(id: string, name: string): void {
    this.#names.delete(id)
    if (this.#names.size >= NAMES) {
      const oldest = this.#names.keys().next().value!
      this.#names.delete(oldest)
      this.#ownNames.delete(oldest)
    }
    this.#names.set(id, name)
  }
}
