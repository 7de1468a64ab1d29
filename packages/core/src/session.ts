import type { Message, PeerAnnouncement } from '@parley/protocol'
import type { Link } from './link.js'
import { PeerError } from './peer-errors.js'
import type { PeerInfo } from './peer-types.js'
import type { Channel, Service, ServiceHandler } from './services/service.js'
import { TokenBucket } from './util.js'

/** Frames one channel may have waiting behind a slow reader before `writable` turns false. */
const CHANNEL_SOFT_LIMIT = 256 * 1024

/**
 * Everything about one remote peer while it is connected: its links (one active), liveness, standing
 * (what eviction looks at), and one handler per service both sides run.
 */
export class Session {
  readonly links = new Set<Link>()
  active: Link
  readonly connectedAt = Date.now()
  lastSeen = Date.now()
  messagesIn = 0
  messagesOut = 0
  /** When the remote last delivered something we accepted, and its smallest round-trip time seen. */
  lastUseful = 0
  rtt = Number.POSITIVE_INFINITY
  /** Timer that ends the session if no replacement link arrives after a duplicate was retired. */
  graceTimer: ReturnType<typeof setTimeout> | undefined
  /** False while the link is lost and a replacement is awaited; sends then wait in their service. */
  online = true
  /** The disconnect was already reported (the session lives on while reconnecting). */
  announcedGone = false
  ended = false
  reconnectAttempt = 0
  reconnectTimer: ReturnType<typeof setTimeout> | undefined
  /** Rate budget for the work this peer asks of us (messages, requests, pings). */
  readonly bucket: TokenBucket | undefined
  readonly #handlers = new Map<string, ServiceHandler>()
  #from: { readonly id: string; readonly name: string } | undefined

  constructor(
    readonly id: string,
    link: Link,
    rate: { perSecond: number; burst: number } | false,
  ) {
    this.active = link
    this.links.add(link)
    this.bucket = rate === false ? undefined : new TokenBucket(rate.perSecond, rate.burst)
  }

  get remote(): PeerAnnouncement {
    return this.active.remote!
  }

  /** The `from` of its messages: one frozen object while the name stays, not one per message. */
  get from(): { readonly id: string; readonly name: string } {
    const name = this.remote.name
    if (this.#from?.name !== name) this.#from = Object.freeze({ id: this.id, name })
    return this.#from
  }

  /** Opens a handler for each service the remote runs too (on the active link). */
  openServices(services: readonly Service[]): void {
    for (const service of services) {
      if (this.active.channelOf(service.protocol) === undefined) continue
      this.#handlers.set(service.protocol, service.open(new SessionChannel(this, service.protocol)))
    }
  }

  handler(protocol: string): ServiceHandler | undefined {
    return this.#handlers.get(protocol)
  }

  /** Routes a service frame; a channel not numbered on this link is a violation. */
  dispatch(link: Link, channel: number, body: Uint8Array): void {
    const protocol = link.protocolAt(channel)
    const handler = protocol === undefined ? undefined : this.#handlers.get(protocol)
    if (!handler) throw new PeerError('REJECTED', `a frame on channel ${channel}, which was not opened`)
    handler.onFrame(body)
  }

  forEachHandler(fn: (h: ServiceHandler) => void): void {
    for (const h of this.#handlers.values()) fn(h)
  }

  /**
   * Takes one token of the peer's rate budget, refilled up to the time of the frame being handled
   * (`lastSeen`, the read's clock): no clock call per message. Called between frames, a stale time
   * only defers the refill to the next frame's spend; nothing is lost or given.
   */
  spend(): void {
    if (this.bucket && !this.bucket.take(1, this.lastSeen)) {
      throw new PeerError(
        'LIMIT_EXCEEDED',
        `sent more than ${this.bucket.perSecond} messages/s (burst ${this.bucket.burst})`,
      )
    }
  }

  info(): PeerInfo {
    const remote = this.remote
    return {
      id: this.id,
      name: remote.name,
      address: this.active.dialedAddress ?? this.active.conn.remoteAddress,
      listenAddrs: remote.listenAddrs,
      direction: this.active.direction,
      connectedAt: this.connectedAt,
      lastSeen: this.lastSeen,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
    }
  }
}

class SessionChannel implements Channel {
  // Plain (not #private) members: a service may wrap its channel with Object.create(channel, …) and
  // still use every getter and method through the prototype.
  /** The link the channel number below was looked up on; looked up again when the session moves. */
  private boundLink: Link | undefined
  private boundNumber: number | undefined

  constructor(
    readonly session: Session,
    readonly protocol: string,
  ) {}

  get peer(): { readonly id: string; readonly name: string } {
    return this.session.from
  }

  get online(): boolean {
    return this.session.online && !this.session.ended
  }

  get receivedAt(): number {
    return this.session.lastSeen
  }

  get writable(): boolean {
    const link = this.session.active
    if (!this.online || link.conn.status !== 'open') return false
    const channel = this.numberOn(link)
    // Cheap while the link flows; the per-channel queue is looked at only once it pushes back.
    return (
      channel !== undefined && (!link.writer.blocked || link.writer.heldBytesOf(channel) < CHANNEL_SOFT_LIMIT)
    )
  }

  get queuedBytes(): number {
    const link = this.session.active
    const channel = this.numberOn(link)
    return channel === undefined ? 0 : link.writer.heldBytesOf(channel)
  }

  send(msg: Message): boolean {
    const link = this.session.active
    const channel = this.channelOn(link)
    // A link already closing takes nothing more, like a socket: unacknowledged sends go again on the next.
    if (link.conn.status !== 'open') return false
    link.writer.write(msg, channel)
    return !link.writer.blocked || link.writer.heldBytesOf(channel) < CHANNEL_SOFT_LIMIT
  }

  sendBytes(body: Uint8Array): boolean {
    const link = this.session.active
    const channel = this.channelOn(link)
    if (link.conn.status !== 'open') return false
    link.writer.writeBody(body, channel)
    return !link.writer.blocked || link.writer.heldBytesOf(channel) < CHANNEL_SOFT_LIMIT
  }

  spend(): void {
    this.session.spend()
  }

  delivered(): void {
    this.session.messagesIn++
    // When the frame arrived (the read's time), not a clock call per message.
    this.session.lastUseful = this.session.lastSeen
  }

  acknowledged(): void {
    this.session.messagesOut++
  }

  private numberOn(link: Link): number | undefined {
    if (link !== this.boundLink) {
      this.boundLink = link
      this.boundNumber = link.channelOf(this.protocol)
    }
    return this.boundNumber
  }

  private channelOn(link: Link): number {
    if (!this.session.online || this.session.ended) {
      throw new PeerError('NOT_CONNECTED', `${this.session.remote.name} is not connected`)
    }
    const channel = this.numberOn(link)
    if (channel === undefined) {
      throw new PeerError('NOT_SUPPORTED', `${this.session.remote.name} does not run ${this.protocol}`)
    }
    return channel
  }
}
