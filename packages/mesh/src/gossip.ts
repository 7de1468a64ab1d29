import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Channel, Identity, Service, ServiceHandler } from '@parley/core'
import { PeerError, TokenBucket } from '@parley/core'
import { ProtocolError } from '@parley/protocol'
import {
  decodeGossip,
  decodeGossipControl,
  encodeGossip,
  encodeGossipControl,
  GOSSIP_HOPS_OFFSET,
  GOSSIP_ID_BYTES,
  type GossipControl,
  type GossipKey,
  GossipType,
  gossipSigningBytes,
  MAX_GOSSIP_TEXT_BYTES,
  MAX_IHAVE_ENTRIES,
  PEER_ID_BYTES,
} from './codec.js'
import type { Mesh } from './membership.js'
import { MessageStore, MissingTable, SeenCache } from './plumtree.js'
import { identitySigner, type Signer, verifySignature } from './signing.js'

/** Protocol name of gossip broadcast. */
export const GOSSIP_PROTOCOL = 'parley/gossip/1'

/** Where id ‖ origin sit in a GOSSIP body: the dedup key, read before anything is decoded or verified. */
const KEY_START = 2
const KEY_END = KEY_START + GOSSIP_ID_BYTES + PEER_ID_BYTES
const ID_HEX = GOSSIP_ID_BYTES * 2
/** Announcements queued for one neighbour between two flushes; past it the oldest are dropped. */
const MAX_QUEUED_IHAVE = 256
/** Construction options of {@link createGossip}. */
export interface GossipInit {
  /** The identity the peer runs with (`createPeer({ identity })`): broadcasts are signed with it. */
  identity: Identity
  /** Relay to this mesh's neighbours. Without one, to every session that runs gossip. */
  mesh?: Mesh
  /**
   * The peers whose IHAVEs we act on (an IHAVE makes us remember its keys and GRAFT the announcer).
   * @default the mesh's neighbours; without a mesh, every session that runs gossip
   */
  announcers?: (peerId: string) => boolean
  /** Message keys remembered to drop duplicates. When full, the one sent earliest is forgotten and messages sent at or before it are dropped as stale. @default 65_536 */
  seenCacheSize?: number
  /**
   * @deprecated Ignored since 2026-12-08: every message is relayed whatever its hop count. The count
   * is not signed, and a relay that set it to 255 cut off (or, past the limit, throttled to the GRAFT
   * answer rate) every peer after it; duplicates and `maxAge` already bound how far a message goes.
   */
  hopLimit?: number
  /** A message older than this (by its signed send time) is dropped, whatever the seen-cache still holds. @default 300_000 ms */
  maxAge?: number
  /** Messages each origin may have relayed by us; past it its messages are dropped here. @default 20/s, burst 200 */
  perOrigin?: { perSecond: number; burst: number }
  /** Origins whose rate is tracked (least recently heard forgotten first). @default 4_096 */
  origins?: number
  /** After an IHAVE, how long the copy on the tree may take before we ask the announcer (GRAFT). @default 1_000 ms */
  graftTimeout?: number
  /** After a GRAFT, how long before the next announcer is asked. @default 500 ms */
  graftRetry?: number
  /** Announcements to lazy neighbours are batched for this long into one IHAVE. @default 50 ms */
  lazyDelay?: number
  /** Messages kept to answer GRAFTs: count, total bytes, age. @default 1_024 messages, 4 MiB, 60_000 ms */
  store?: { messages: number; bytes: number; ttl: number }
  /** Announced messages tracked while missing, in total and per announcing neighbour. @default 1_024 and 256 */
  missing?: { total: number; perNeighbour: number }
  /** GRAFTs of one neighbour answered with the message; past it they only repair the tree. @default 10/s, burst 32 */
  graftAnswers?: { perSecond: number; burst: number }
  /**
   * Signatures checked for one session's GOSSIPs; past it they are dropped unchecked (and unseen, so
   * another neighbour's copy or announcement still brings them). A checked GOSSIP costs 4 to 5 times
   * a chat message, and fresh origins are free to make. @default 500/s, burst 2,000
   */
  verifications?: { perSecond: number; burst: number }
  /**
   * Signatures checked for all sessions together. With n sessions that sent a GOSSIP in the last
   * second, each is sure of 1/n of this; past it, a session may use what the others leave while the
   * peer's bucket is over a quarter full; each stays within `verifications`, and one bucket for the
   * whole peer caps them all: sessions from one attacker cost a bounded share of the CPU, however many
   * it opens, and leave the others theirs. @default 2,000/s, burst 4,000 (a check is about 50 µs: a tenth of a core)
   */
  totalVerifications?: { perSecond: number; burst: number }
}

/** A broadcast delivered to the application, once per message. */
export interface GossipDelivery {
  /** The origin's 16-byte message id, hex. */
  readonly id: string
  /** The origin's peer id: the signature proves it wrote `text`. */
  readonly from: string
  readonly text: string
  /** Links it travelled to reach us (1: straight from the origin). */
  readonly hops: number
  /** Origin's clock, ms since the epoch (signed). */
  readonly sentAt: number
  readonly receivedAt: number
}

/** Events of a {@link Gossip} service. */
export interface GossipEvents {
  gossip: [message: GossipDelivery]
  /** Another copy of a message already delivered (id, origin): its sender is pruned from the tree. */
  duplicate: [id: string, origin: string]
  /**
   * A valid-looking message not delivered: too old or from the future (`stale`), over its origin's rate
   * (`rate`), or unchecked because its session is past its budget of signature checks (`budget`).
   */
  dropped: [reason: 'stale' | 'rate' | 'budget']
}

/** Counters for the simulation and diagnostics. */
export interface GossipStats {
  /** GOSSIP frames read, duplicates included. */
  received: number
  duplicates: number
  delivered: number
  /** GOSSIP frames sent: our broadcasts, relays on the tree and answers to GRAFTs. */
  sent: number
  /** Pushes skipped because the neighbour was not reading. */
  skipped: number
  /** Dropped as too old, from the future, over its origin's rate, or past its session's check budget. */
  dropped: number
  /** Message keys announced in IHAVEs sent. */
  announced: number
  /** GRAFTs sent: a message announced did not arrive on the tree in time. */
  grafts: number
  /** GRAFTs answered with the message. */
  graftAnswers: number
  /** PRUNEs sent: a duplicate came over a tree link. */
  prunes: number
}

/**
 * Gossip broadcast over the mesh with Plumtree (Leitão, Pereira, Rodrigues, SRDS 2007): the full
 * message is pushed along a spanning tree (eager links), other neighbours get a batched IHAVE with
 * its key (lazy links); a duplicate prunes the link it came over, and a message announced but not
 * received in time is asked for with GRAFT, which also puts that link back on the tree. Messages are
 * deduplicated by (origin, id), each signed by its origin and verified before it is delivered or
 * relayed, so a relay can neither forge nor alter one. See docs/MESH.md.
 */
export class Gossip extends EventEmitter<GossipEvents> {
  readonly service: Service
  readonly stats: GossipStats = {
    received: 0,
    duplicates: 0,
    delivered: 0,
    sent: 0,
    skipped: 0,
    dropped: 0,
    announced: 0,
    grafts: 0,
    graftAnswers: 0,
    prunes: 0,
  }
  readonly #signer: Signer
  readonly #mesh: Mesh | undefined
  readonly #announcers: (peerId: string) => boolean
  readonly #handlers = new Map<string, GossipHandler>()
  readonly #seen: SeenCache
  readonly #maxAge: number
  readonly #perOrigin: { perSecond: number; burst: number }
  readonly #origins = new Map<string, TokenBucket>()
  readonly #maxOrigins: number
  readonly #graftTimeout: number
  readonly #graftRetry: number
  readonly #lazyDelay: number
  readonly #graftAnswerRate: { perSecond: number; burst: number }
  readonly #verifyRate: { perSecond: number; burst: number }
  readonly #totalVerifyRate: { perSecond: number; burst: number }
  /** The peer's signature checks, all sessions together. */
  readonly #checks: TokenBucket
  readonly #store: MessageStore
  readonly #missing: MissingTable
  /** Handlers with announcements queued: one timer flushes them all. */
  readonly #queued = new Set<GossipHandler>()
  #flushTimer: ReturnType<typeof setTimeout> | undefined

  constructor(init: GossipInit) {
    super()
    this.#signer = identitySigner(init.identity)
    this.#mesh = init.mesh
    this.#announcers = init.announcers ?? ((id) => this.#isNeighbour(id))
    this.#seen = new SeenCache(Math.max(1, init.seenCacheSize ?? 65_536))
    this.#maxAge = init.maxAge ?? 300_000
    this.#perOrigin = init.perOrigin ?? { perSecond: 20, burst: 200 }
    this.#maxOrigins = Math.max(1, init.origins ?? 4096)
    this.#graftTimeout = Math.max(1, init.graftTimeout ?? 1_000)
    this.#graftRetry = Math.max(1, init.graftRetry ?? 500)
    this.#lazyDelay = Math.max(0, init.lazyDelay ?? 50)
    this.#graftAnswerRate = init.graftAnswers ?? { perSecond: 10, burst: 32 }
    this.#verifyRate = init.verifications ?? { perSecond: 500, burst: 2_000 }
    this.#totalVerifyRate = init.totalVerifications ?? { perSecond: 2_000, burst: 4_000 }
    this.#checks = new TokenBucket(this.#totalVerifyRate.perSecond, this.#totalVerifyRate.burst)
    const store = init.store ?? { messages: 1024, bytes: 4 * 2 ** 20, ttl: 60_000 }
    this.#store = new MessageStore(Math.max(0, store.messages), Math.max(0, store.bytes), store.ttl)
    const missing = init.missing ?? { total: 1024, perNeighbour: 256 }
    this.#missing = new MissingTable(
      Math.max(1, missing.total),
      Math.max(1, missing.perNeighbour),
      this.#askNext,
    )
    // A new neighbour starts on the tree (eager), as in the paper; duplicates prune it later.
    this.#mesh?.on('neighbor:up', (id) => {
      const h = this.#handlers.get(id)
      if (h) h.lazy = false
    })
    this.service = {
      protocol: GOSSIP_PROTOCOL,
      open: (channel: Channel): ServiceHandler => {
        const handler = new GossipHandler(this, channel, this.#graftAnswerRate, this.#verifyRate)
        this.#handlers.set(channel.peer.id, handler)
        return handler
      },
    }
  }

  /**
   * Signs `text` and pushes it along the tree (IHAVE to the other neighbours); each relays it on.
   * Returns the message id and how many neighbours got the message itself.
   * @throws PeerError MESSAGE_TOO_LONG over 16 KiB
   */
  broadcast(text: string): { id: string; sentTo: number } {
    if (Buffer.byteLength(text) > MAX_GOSSIP_TEXT_BYTES) {
      throw new PeerError('MESSAGE_TOO_LONG', `a broadcast is limited to ${MAX_GOSSIP_TEXT_BYTES} bytes`)
    }
    const id = randomBytes(GOSSIP_ID_BYTES).toString('hex')
    const origin = this.#signer.peerId
    const sentAt = Date.now()
    const signature = this.#signer.sign(gossipSigningBytes(id, origin, sentAt, text))
    const body = encodeGossip({ type: 'GOSSIP', hops: 1, id, origin, sentAt, text, signature })
    const key = id + origin
    this.#seen.add(key, sentAt)
    this.#store.put(key, body, sentAt)
    return { id, sentTo: this.#push(body, key, '') }
  }

  /**
   * The tree as this peer sees it now: neighbours pushed to (eager) and announced to (lazy), messages
   * announced but not received yet, and messages kept to answer GRAFTs.
   */
  state(): { eager: string[]; lazy: string[]; missing: number; stored: number } {
    const targets = this.#mesh ? this.#mesh.active() : [...this.#handlers.keys()]
    const eager: string[] = []
    const lazy: string[] = []
    for (const id of targets) {
      const h = this.#handlers.get(id)
      if (h) (h.lazy ? lazy : eager).push(id)
    }
    return { eager, lazy, missing: this.#missing.size, stored: this.#store.size }
  }

  /** Stops the timers (the sessions close with the peer). */
  close(): void {
    clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
    this.#missing.close()
    for (const h of this.#queued) h.queue.length = 0
    this.#queued.clear()
  }

  /** @internal A session's gossip channel closed: forget its handler and what was queued for it. */
  handlerClosed(handler: GossipHandler): void {
    const id = handler.channel.peer.id
    if (this.#handlers.get(id) === handler) {
      this.#handlers.delete(id)
      this.#missing.leave(id)
    }
    this.#queued.delete(handler)
  }

  /** Sessions that sent a GOSSIP in the last second, `handler` (sending now) included; counted at most every 100 ms. */
  #sendingSessions(handler: GossipHandler, now: number): number {
    handler.lastGossipAt = now
    if (now - this.#countedAt >= 100 || now < this.#countedAt) {
      this.#countedAt = now
      let n = 0
      for (const h of this.#handlers.values()) if (now - h.lastGossipAt <= 1_000) n++
      this.#sending = Math.max(1, n)
    }
    return this.#sending
  }

  #sending = 1
  #countedAt = Number.NEGATIVE_INFINITY

  #drop(reason: 'stale' | 'rate' | 'budget'): void {
    this.stats.dropped++
    if (this.listenerCount('dropped') > 0) this.emit('dropped', reason)
  }

  /** @internal A GOSSIP frame from a neighbour: deduplicated by key, verified, delivered and relayed. */
  onGossip(handler: GossipHandler, body: Uint8Array): void {
    handler.channel.spend()
    this.stats.received++
    // Too short to hold its key: decoding throws the precise error.
    if (body.length < KEY_END) decodeGossip(body)
    const key = Buffer.from(body.subarray(KEY_START, KEY_END)).toString('hex')
    if (this.#seen.has(key)) {
      this.stats.duplicates++
      // A second copy over a tree link: that link is redundant, take it off the tree on both sides.
      if (!handler.lazy && this.#isNeighbour(handler.channel.peer.id)) {
        handler.lazy = true
        handler.send({ type: 'PRUNE' })
        this.stats.prunes++
      }
      if (this.listenerCount('duplicate') > 0) this.emit('duplicate', key.slice(0, ID_HEX), key.slice(ID_HEX))
      return
    }
    const msg = decodeGossip(body)
    const now = Date.now()
    // Nothing unverified touches state another origin or message depends on: a forged copy of an
    // announced message must not cancel its recovery, nor spend the real origin's rate.
    // At or before the seen-cache's horizon, a copy of this message may have been forgotten: refused,
    // or flushing the cache with throwaway origins would let a replay be delivered twice.
    const seenAt = Math.min(msg.sentAt, now)
    if (msg.sentAt > now + 60_000 || now - msg.sentAt > this.#maxAge || seenAt <= this.#seen.horizon) {
      this.#drop('stale')
      return
    }
    // An origin already over its rate here is dropped before its signature costs anything (a replay
    // of a dropped message included). Only looked at, not spent: a forgery cannot take the real
    // origin's tokens, only find them gone. Nor is it forgotten from the missing table: unverified.
    if (this.#overRate(msg.origin, now)) {
      this.#drop('rate')
      return
    }
    // Each session has a budget of signature checks: many fresh origins, each within its own rate,
    // cannot make one session cost us a check for every token of its budget. The peer's budget is
    // split between the sessions that sent a message lately: idle ones (forty an attacker opened, or a
    // hub's quiet peers) would otherwise shrink the share of the neighbour that relays everything.
    const sessions = this.#sendingSessions(handler, now)
    const rate = this.#totalVerifyRate.perSecond / sessions
    const burst = Math.max(1, this.#totalVerifyRate.burst / sessions)
    // And the peer's own bucket, so that sessions starting to send together cannot each spend a whole
    // share at once: whatever the sessions do, the checks stay within the peer's budget. A session past
    // its share may use what the others leave, while the peer's bucket holds more than a quarter of
    // its size: forty sessions each sending a message a second counted as senders, and held a relay
    // that needed 150 checks a second to its equal share of 49, though nobody used the rest.
    // Whatever it borrows, a session stays within its own cap (`verifications`).
    if (handler.verifyCap.available(now) < 1) {
      this.#drop('budget')
      return
    }
    const own = handler.verifications.take(now, rate, burst)
    const spare = !own && this.#checks.available(now) > this.#totalVerifyRate.burst / 4
    if (!(own || spare) || !this.#checks.take(1, now)) {
      this.#drop('budget')
      return
    }
    handler.verifyCap.take(1, now)
    // Honest relays verify before relaying, so a bad signature comes from the sender itself: a violation.
    const signed = gossipSigningBytes(msg.id, msg.origin, msg.sentAt, msg.text)
    if (!verifySignature(msg.origin, signed, msg.signature)) {
      throw new ProtocolError('INVALID_FIELD', 'a GOSSIP signature does not verify against its origin')
    }
    // Verified: now it may spend its origin's rate (the check above found a token).
    if (!this.#allow(msg.origin)) {
      this.#missing.delete(key)
      this.#drop('rate')
      return
    }
    this.#seen.add(key, seenAt)
    this.#missing.delete(key)
    this.stats.delivered++
    handler.channel.delivered()
    // The link the message came first over is on the tree.
    handler.lazy = false
    const out = Uint8Array.from(body)
    out[GOSSIP_HOPS_OFFSET] = Math.min(255, msg.hops + 1)
    this.#store.put(key, out, now, handler.channel.peer.id)
    // Whatever its hop count, which is not signed (a relay may set it to anything): only the first copy
    // of a message is relayed, and it dies of age, so the count is for display alone.
    this.#push(out, key, handler.channel.peer.id, msg.origin)
    this.emit('gossip', {
      id: msg.id,
      from: msg.origin,
      text: msg.text,
      hops: msg.hops,
      sentAt: msg.sentAt,
      receivedAt: now,
    })
  }

  /** @internal A Plumtree control message (IHAVE, GRAFT, PRUNE) from a neighbour. */
  onControl(handler: GossipHandler, msg: GossipControl): void {
    handler.channel.spend()
    switch (msg.type) {
      case 'IHAVE': {
        // Only a neighbour announces: a stranger's keys would fill the missing table and make us GRAFT it.
        if (!this.#announcers(handler.channel.peer.id)) return
        const deadline = Date.now() + this.#graftTimeout
        const from = handler.channel.peer.id
        for (const k of msg.keys) {
          const key = k.id + k.origin
          if (this.#seen.has(key)) continue
          // Full (or this neighbour's share is): the message still comes over the tree or another IHAVE.
          this.#missing.announce(key, from, deadline)
        }
        return
      }
      case 'GRAFT': {
        handler.lazy = false
        const body = this.#store.get(msg.id + msg.origin, Date.now())
        // The answer is bounded per neighbour: GRAFTs past it still mend the tree but re-send nothing.
        if (!body || !handler.channel.writable || !handler.graftAnswers.take()) return
        handler.channel.sendBytes(body)
        this.stats.sent++
        this.stats.graftAnswers++
        return
      }
      case 'PRUNE':
        handler.lazy = true
        return
    }
  }

  /** An announced message did not arrive in time: ask the next announcer still connected for it. */
  readonly #askNext = (key: string, announcers: string[], now: number): number | undefined => {
    while (announcers.length > 0) {
      const h = this.#handlers.get(announcers.shift()!)
      if (!h?.channel.online) continue
      h.lazy = false
      h.send({ type: 'GRAFT', id: key.slice(0, ID_HEX), origin: key.slice(ID_HEX) })
      this.stats.grafts++
      return now + this.#graftRetry
    }
    return undefined
  }

  #isNeighbour(peerId: string): boolean {
    return this.#mesh ? this.#mesh.isActive(peerId) : true
  }

  /**
   * Sends `body` to the eager neighbours and queues its key for the lazy ones, except `from` and
   * `origin`; returns how many got the message itself.
   */
  #push(body: Uint8Array, key: string, from: string, origin = ''): number {
    const targets = this.#mesh ? this.#mesh.active() : [...this.#handlers.keys()]
    let sent = 0
    for (const id of targets) {
      if (id === from || id === origin) continue
      const h = this.#handlers.get(id)
      if (!h?.channel.online) continue
      if (!h.channel.writable) {
        // Not reading now: it gets at most the announcement, and asks for the message if it still needs it.
        this.stats.skipped++
        this.#announce(h, key)
        continue
      }
      if (h.lazy) {
        this.#announce(h, key)
        continue
      }
      h.channel.sendBytes(body)
      sent++
    }
    this.stats.sent += sent
    return sent
  }

  #announce(handler: GossipHandler, key: string): void {
    if (handler.queue.length >= MAX_QUEUED_IHAVE) handler.queue.shift()
    handler.queue.push(key)
    this.#queued.add(handler)
    if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(this.#flush, this.#lazyDelay)
      this.#flushTimer.unref?.()
    }
  }

  readonly #flush = (): void => {
    this.#flushTimer = undefined
    for (const h of this.#queued) {
      const keys = h.queue.splice(0)
      // A neighbour still not reading loses these announcements; other neighbours announce them too.
      if (!h.channel.online || !h.channel.writable) continue
      for (let i = 0; i < keys.length; i += MAX_IHAVE_ENTRIES) {
        const batch: GossipKey[] = keys
          .slice(i, i + MAX_IHAVE_ENTRIES)
          .map((k) => ({ id: k.slice(0, ID_HEX), origin: k.slice(ID_HEX) }))
        h.send({ type: 'IHAVE', keys: batch })
        this.stats.announced += batch.length
      }
    }
    this.#queued.clear()
  }

  /** Whether `origin` has no token left here now (an origin not tracked has all of its burst). */
  #overRate(origin: string, now: number): boolean {
    const bucket = this.#origins.get(origin)
    return bucket !== undefined && bucket.available(now) < 1
  }

  #allow(origin: string): boolean {
    let bucket = this.#origins.get(origin)
    if (bucket) {
      // Re-inserting keeps the most recently heard origins at the back of the eviction order.
      this.#origins.delete(origin)
    } else {
      bucket = new TokenBucket(this.#perOrigin.perSecond, this.#perOrigin.burst)
      if (this.#origins.size >= this.#maxOrigins) this.#origins.delete(this.#origins.keys().next().value!)
    }
    this.#origins.set(origin, bucket)
    return bucket.take()
  }
}

/** Gossip's view of one session: whether its link is on the tree, and what is queued for it. */
export class GossipHandler implements ServiceHandler {
  /** Off the tree: it gets IHAVEs, not messages. New links start on it. */
  lazy = false
  /** Message keys to announce at the next flush. */
  readonly queue: string[] = []
  /** GRAFTs of this neighbour we answer with the message. */
  readonly graftAnswers: TokenBucket
  /** Signatures of this session's GOSSIPs we check: its share of the peer's budget. */
  readonly verifications = new ShareBucket()
  /** And at most this many, whatever it borrows from the others' shares (`verifications` option). */
  readonly verifyCap: TokenBucket
  /** When it last sent a GOSSIP (Date.now() time): it counts among those sharing the budget for a second. */
  lastGossipAt = Number.NEGATIVE_INFINITY

  constructor(
    readonly gossip: Gossip,
    readonly channel: Channel,
    graftAnswers: { perSecond: number; burst: number },
    verifyCap: { perSecond: number; burst: number },
  ) {
    this.graftAnswers = new TokenBucket(graftAnswers.perSecond, graftAnswers.burst)
    this.verifyCap = new TokenBucket(verifyCap.perSecond, verifyCap.burst)
  }

  onFrame(body: Uint8Array): void {
    if (body[0] === GossipType.GOSSIP) this.gossip.onGossip(this, body)
    else this.gossip.onControl(this, decodeGossipControl(body))
  }

  send(msg: GossipControl): void {
    if (this.channel.online) this.channel.sendBytes(encodeGossipControl(msg))
  }

  onClose(): void {
    this.gossip.handlerClosed(this)
  }
}

/** Signature checks a new session may spend at once, before its share's rate: not a whole burst. */
const NEW_SESSION_CHECKS = 16

/**
 * A token bucket whose rate and size are given at each take: a session's share of a budget that the
 * sessions sending at the time split between them. It starts with {@link NEW_SESSION_CHECKS}, not a
 * full share: with one, hosts reconnecting under fresh identities had 3.3 times the peer's budget
 * checked.
 */
class ShareBucket {
  #tokens = NEW_SESSION_CHECKS
  #at = Date.now()

  take(now: number, perSecond: number, burst: number): boolean {
    this.#tokens = Math.min(burst, this.#tokens + (Math.max(0, now - this.#at) * perSecond) / 1000)
    this.#at = Math.max(this.#at, now)
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
}

/** Creates the gossip service; see {@link Gossip}. @throws PeerError IDENTITY_INVALID */
export function createGossip(init: GossipInit): Gossip {
  return new Gossip(init)
}
