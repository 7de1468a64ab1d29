import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Channel, Identity, Service, ServiceHandler } from '@parley/core'
import { PeerError, TokenBucket } from '@parley/core'
import { ProtocolError } from '@parley/protocol'
import {
  decodeGossip,
  encodeGossip,
  GOSSIP_HOPS_OFFSET,
  GOSSIP_ID_BYTES,
  GossipType,
  gossipSigningBytes,
  MAX_GOSSIP_TEXT_BYTES,
  PEER_ID_BYTES,
} from './codec.js'
import type { Mesh } from './membership.js'
import { identitySigner, type Signer, verifySignature } from './signing.js'

/** Protocol name of gossip broadcast. */
export const GOSSIP_PROTOCOL = 'parley/gossip/1'

/** Where id ‖ origin sit in a GOSSIP body: the dedup key, read before anything is decoded or verified. */
const KEY_START = 2
const KEY_END = KEY_START + GOSSIP_ID_BYTES + PEER_ID_BYTES

/** Construction options of {@link createGossip}. */
export interface GossipInit {
  /** The identity the peer runs with (`createPeer({ identity })`): broadcasts are signed with it. */
  identity: Identity
  /** Relay to this mesh's neighbours. Without one, to every session that runs gossip. */
  mesh?: Mesh
  /** Message keys remembered to drop duplicates (oldest forgotten first). @default 65_536 */
  seenCacheSize?: number
  /** Links a message may travel; past it, it is delivered but not relayed. @default 16 */
  hopLimit?: number
  /** A message older than this (by its signed send time) is dropped: the seen-cache may have forgotten it. @default 300_000 ms */
  maxAge?: number
  /** Messages each origin may have relayed by us; past it its messages are dropped here. @default 20/s, burst 200 */
  perOrigin?: { perSecond: number; burst: number }
  /** Origins whose rate is tracked (least recently heard forgotten first). @default 4_096 */
  origins?: number
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

export interface GossipEvents {
  gossip: [message: GossipDelivery]
  /** Another copy of a message already delivered (id, origin): the cost of flooding. */
  duplicate: [id: string, origin: string]
  /** A valid-looking message not delivered: too old, from the future, or over its origin's rate. */
  dropped: [reason: 'stale' | 'rate']
}

/** Counters for the simulation and diagnostics. */
export interface GossipStats {
  /** GOSSIP frames read, duplicates included. */
  received: number
  duplicates: number
  delivered: number
  /** Frames sent: our broadcasts and relays. */
  sent: number
  /** Relays skipped because the neighbour was not reading. */
  skipped: number
  /** Dropped as too old, from the future, or over its origin's rate. */
  dropped: number
}

/**
 * Gossip broadcast over the mesh: eager push (flooding) to every neighbour but the one it came from,
 * deduplicated by (origin, id), each message signed by its origin and verified before it is delivered
 * or relayed, so a relay can neither forge nor alter one. See docs/MESH.md for why flooding over a
 * bounded-degree overlay rather than Plumtree or gossipsub.
 */
export class Gossip extends EventEmitter<GossipEvents> {
  readonly service: Service
  readonly stats: GossipStats = { received: 0, duplicates: 0, delivered: 0, sent: 0, skipped: 0, dropped: 0 }
  readonly #signer: Signer
  readonly #mesh: Mesh | undefined
  readonly #handlers = new Map<string, GossipHandler>()
  readonly #seen = new Set<string>()
  readonly #seenCacheSize: number
  readonly #hopLimit: number
  readonly #maxAge: number
  readonly #perOrigin: { perSecond: number; burst: number }
  readonly #origins = new Map<string, TokenBucket>()
  readonly #maxOrigins: number

  constructor(init: GossipInit) {
    super()
    this.#signer = identitySigner(init.identity)
    this.#mesh = init.mesh
    this.#seenCacheSize = Math.max(1, init.seenCacheSize ?? 65_536)
    this.#hopLimit = Math.max(1, Math.min(255, init.hopLimit ?? 16))
    this.#maxAge = init.maxAge ?? 300_000
    this.#perOrigin = init.perOrigin ?? { perSecond: 20, burst: 200 }
    this.#maxOrigins = Math.max(1, init.origins ?? 4096)
    this.service = {
      protocol: GOSSIP_PROTOCOL,
      open: (channel: Channel): ServiceHandler => {
        const handler = new GossipHandler(this, channel)
        this.#handlers.set(channel.peer.id, handler)
        return handler
      },
    }
  }

  /**
   * Signs `text` and pushes it to every neighbour; each relays it on. Returns the message id.
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
    this.#remember(id + origin)
    return { id, sentTo: this.#push(body, '') }
  }

  handlerClosed(handler: GossipHandler): void {
    const id = handler.channel.peer.id
    if (this.#handlers.get(id) === handler) this.#handlers.delete(id)
  }

  onGossip(handler: GossipHandler, body: Uint8Array): void {
    handler.channel.spend()
    this.stats.received++
    // Too short to hold its key, or not a GOSSIP: decoding throws the precise error.
    if (body.length < KEY_END || body[0] !== GossipType.GOSSIP) decodeGossip(body)
    const key = Buffer.from(body.subarray(KEY_START, KEY_END)).toString('hex')
    if (this.#seen.has(key)) {
      this.stats.duplicates++
      if (this.listenerCount('duplicate') > 0) this.emit('duplicate', key.slice(0, 32), key.slice(32))
      return
    }
    const msg = decodeGossip(body)
    const now = Date.now()
    const stale = msg.sentAt > now + 60_000 || now - msg.sentAt > this.#maxAge
    if (stale || !this.#allow(msg.origin)) {
      this.stats.dropped++
      if (this.listenerCount('dropped') > 0) this.emit('dropped', stale ? 'stale' : 'rate')
      return
    }
    // Honest relays verify before relaying, so a bad signature comes from the sender itself: a violation.
    if (
      !verifySignature(
        msg.origin,
        gossipSigningBytes(msg.id, msg.origin, msg.sentAt, msg.text),
        msg.signature,
      )
    ) {
      throw new ProtocolError('INVALID_FIELD', 'a GOSSIP signature does not verify against its origin')
    }
    this.#remember(key)
    this.stats.delivered++
    handler.channel.delivered()
    if (msg.hops < this.#hopLimit) {
      const out = Uint8Array.from(body)
      out[GOSSIP_HOPS_OFFSET] = msg.hops + 1
      this.#push(out, handler.channel.peer.id, msg.origin)
    }
    this.emit('gossip', {
      id: msg.id,
      from: msg.origin,
      text: msg.text,
      hops: msg.hops,
      sentAt: msg.sentAt,
      receivedAt: now,
    })
  }

  /** Sends `body` to every neighbour except `from` and `origin`; returns how many took it. */
  #push(body: Uint8Array, from: string, origin = ''): number {
    const targets = this.#mesh ? this.#mesh.active() : [...this.#handlers.keys()]
    let sent = 0
    for (const id of targets) {
      if (id === from || id === origin) continue
      const h = this.#handlers.get(id)
      if (!h?.channel.online) continue
      // Flooding is redundant: a neighbour that is not reading gets the message from another one.
      if (!h.channel.writable) {
        this.stats.skipped++
        continue
      }
      h.channel.sendBytes(body)
      sent++
    }
    this.stats.sent += sent
    return sent
  }

  #remember(key: string): void {
    if (this.#seen.size >= this.#seenCacheSize) this.#seen.delete(this.#seen.values().next().value!)
    this.#seen.add(key)
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

export class GossipHandler implements ServiceHandler {
  constructor(
    readonly gossip: Gossip,
    readonly channel: Channel,
  ) {}

  onFrame(body: Uint8Array): void {
    this.gossip.onGossip(this, body)
  }

  onClose(): void {
    this.gossip.handlerClosed(this)
  }
}

/** Creates the gossip service; see {@link Gossip}. @throws PeerError IDENTITY_INVALID */
export function createGossip(init: GossipInit): Gossip {
  return new Gossip(init)
}
