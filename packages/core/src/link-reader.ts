import {
  CONTROL_CHANNEL,
  decodeMessage,
  type Message,
  PROTOCOL_VERSION,
  ProtocolError,
  peekHelloVersion,
  splitChannel,
} from '@parley/protocol'
import { decodeHandshake } from './handshake.js'
import type { ResolvedLimits } from './limits.js'
import type { Link } from './link.js'
import { PeerError } from './peer-errors.js'
import { CHAT_PROTOCOL, ChatHandler } from './services/chat.js'
import type { Session } from './session.js'

/** Records below this many plaintext bytes count against the peer's record budget. */
const SMALL_RECORD_BYTES = 1024
/** Frames held while a handshake reply is being checked: a handful is all an honest peer sends. */
const MAX_EARLY_FRAMES = 64
/**
 * A read of at least this many frames is a stream: its acknowledgements leave as soon as it is handled,
 * not at the writer's deferred flush, which runs only after every read already waiting. Holding them
 * until then left the sender's window shut while we worked through the rest (both sides ~45 % idle).
 * Smaller reads keep coalescing, so a reply and its acknowledgement still leave in one write.
 */
const ACK_NOW_FRAMES = 16

export interface LinkReaderInit {
  sessions: ReadonlyMap<string, Session>
  /** Every link, open or in its handshake: the total memory bound sheds from them. */
  links: ReadonlySet<Link>
  limits: ResolvedLimits
  closeLink: (link: Link) => void
  violation: (link: Link, err: unknown) => void
  rejectVersion: (link: Link, version: number, legacyFormat: boolean) => void
}

/**
 * The receiving side of every link: bytes → frames → the control channel or a service's handler.
 * Checks the link's memory bound after each read: a peer that makes us hold more than its budget
 * (a partial frame, answers it does not read) is a violator.
 */
export class LinkReader {
  readonly #init: LinkReaderInit
  /** Bytes held for all links, as each one's last read left it (see #account). */
  #total = 0

  constructor(init: LinkReaderInit) {
    this.#init = init
  }

  onData(link: Link, chunk: Uint8Array): void {
    // A link cut off for a violation may still be closing gracefully: ignore what else it sends. (The cast
    // stops TypeScript from narrowing the status for the loop below, which a frame handler can close.)
    if ((link.state.status as string) === 'closed') return
    let bodies: Uint8Array[]
    let failure: unknown
    // Once open, the decoder splits each body into its channel and its message (one view per frame).
    // A handshake's frames stay whole: a version 1 or 2 peer's have no channel byte.
    const channels: number[] | undefined = link.state.status === 'handshaking' ? undefined : []
    // Every chunk (a decrypted record) costs us work whatever it holds: a peer sending a byte per record
    // spends our CPU, not its bandwidth. Small records are budgeted like messages (honest peers send at
    // most one per message, and coalesce); large ones carry their own weight in bytes.
    // One clock read per read: the bucket's refill and `lastReceived` share it.
    const now = Date.now()
    if (chunk.byteLength < SMALL_RECORD_BYTES && link.chunks !== undefined && !link.chunks.take(1, now)) {
      this.#init.violation(
        link,
        new PeerError(
          'LIMIT_EXCEEDED',
          `sent more than ${link.chunks.perSecond} small records/s (burst ${link.chunks.burst})`,
        ),
      )
      return
    }
    try {
      bodies = channels === undefined ? link.decoder.push(chunk) : link.decoder.pushMessages(chunk, channels)
      // Frames before a bad length prefix come back first; the prefix's error is kept on the decoder.
      if (link.decoder.error) failure = link.decoder.error
    } catch (err) {
      bodies = []
      failure = err
    }
    link.lastReceived = now
    try {
      for (let i = 0; i < bodies.length; i++) {
        if (link.state.status === 'closed') return
        if (channels === undefined) this.#onBody(link, bodies[i]!)
        else this.#onFrame(link, channels[i]!, bodies[i]!)
      }
      // The decoder keeps no chunk; once no early frame refers to it, its memory can serve the next record.
      if (link.early.length === 0) link.conn.recycle?.(chunk)
      this.readEnd(link, bodies.length >= ACK_NOW_FRAMES)
      const held = this.#remoteInducedBytes(link)
      if (failure === undefined && held > this.#init.limits.peerMemory) {
        failure = new PeerError(
          'LIMIT_EXCEEDED',
          `made this peer hold ${held} bytes for it (the limit is ${this.#init.limits.peerMemory})`,
        )
      }
      if (failure === undefined) this.#account(link, held)
    } catch (err) {
      failure ??= err
    }
    if (failure !== undefined) this.#init.violation(link, failure)
  }

  /** A link closed: what it held is no longer counted. */
  forget(link: Link): void {
    this.#total -= link.countedBytes
    link.countedBytes = 0
  }

  /**
   * Counts what `link` holds now in the total of all links. Past `totalPeerMemory` the total is
   * counted again from every link (a link's share shrinks without a read of ours: the remote reads
   * what we queued), and while it is still over, the link holding the most is cut: many sessions each
   * within its own bound must not add up to more than this peer can hold.
   */
  #account(link: Link, held: number): void {
    this.#total += held - link.countedBytes
    link.countedBytes = held
    const limit = this.#init.limits.totalPeerMemory
    if (this.#total <= limit) return
    let total = 0
    for (const l of this.#init.links) {
      l.countedBytes = l.state.status === 'closed' ? 0 : this.#remoteInducedBytes(l)
      total += l.countedBytes
    }
    this.#total = total
    while (this.#total > limit) {
      let largest: Link | undefined
      for (const l of this.#init.links) if (l.countedBytes > (largest?.countedBytes ?? 0)) largest = l
      if (largest === undefined) return
      const bytes = largest.countedBytes
      this.forget(largest)
      this.#init.violation(
        largest,
        new PeerError(
          'LIMIT_EXCEEDED',
          `made this peer hold ${bytes} bytes for it while all peers together held more than ${limit}`,
        ),
      )
    }
  }

  /** See `Link.remoteInducedBytes`; the chat handler is looked up only while frames wait unsent. */
  #remoteInducedBytes(link: Link): number {
    if (link.writer.heldBytes === 0) return link.heldBytes
    const session = link.remote && this.#init.sessions.get(link.remote.peerId)
    const chat = session?.active === link ? session.handler(CHAT_PROTOCOL) : undefined
    return link.remoteInducedBytes(chat instanceof ChatHandler ? chat.queuedAckBytes : 0)
  }

  /**
   * Lets each service send what it coalesced during the read (acknowledgements); `now` writes it at
   * once (see ACK_NOW_FRAMES).
   */
  readEnd(link: Link, now = false): void {
    if (link.state.status !== 'open' && link.state.status !== 'closed') return
    const session = link.remote && this.#init.sessions.get(link.remote.peerId)
    if (!session?.links.has(link)) return
    session.forEachHandler((h) => h.onReadEnd?.())
    // Services write on the session's active link, which is not always the one just read.
    if (now && session.active.state.status === 'open') session.active.writer.flushPending()
  }

  /** The link just opened: handles the frames that arrived while its handshake reply was checked. */
  replayEarly(link: Link): void {
    const early = link.early.splice(0)
    link.earlyBytes = 0
    try {
      for (const body of early) this.#onBody(link, body)
      this.readEnd(link)
    } catch (err) {
      this.#init.violation(link, err)
    }
  }

  /** A whole frame body: from a read that began during the handshake, or held until it ended. */
  #onBody(link: Link, body: Uint8Array): void {
    if (link.state.status === 'handshaking') {
      this.#onHandshakeFrame(link, body)
      return
    }
    const { channel, message } = splitChannel(body)
    this.#onFrame(link, channel, message)
  }

  #onFrame(link: Link, channel: number, message: Uint8Array): void {
    // A link closing after a refused handshake has no remote: what it sends after its HELLO is ignored.
    if ((link.state.status !== 'open' && link.state.status !== 'closing') || !link.remote) return
    const session = this.#init.sessions.get(link.remote.peerId)
    if (!session) return
    session.lastSeen = link.lastReceived
    if (channel !== CONTROL_CHANNEL) {
      session.reconnectAttempt = 0
      session.dispatch(link, channel, message)
      return
    }
    const msg = decodeMessage(message)
    if (msg.type !== 'GOODBYE') session.reconnectAttempt = 0
    this.#onControl(link, session, msg)
  }

  #onHandshakeFrame(link: Link, body: Uint8Array): void {
    const version = peekHelloVersion(body)
    if (link.direction === 'inbound' && version !== undefined && version !== PROTOCOL_VERSION) {
      this.#init.rejectVersion(link, version, body[0] !== CONTROL_CHANNEL)
      return
    }
    if (!link.onHandshake) {
      // The remote already considers the link open and may talk; hold its frames until we do too.
      if (link.early.length >= MAX_EARLY_FRAMES)
        throw new ProtocolError('INVALID_FIELD', 'too many frames during handshake')
      link.early.push(body)
      link.earlyBytes += body.byteLength
      return
    }
    link.onHandshake(decodeHandshake(body))
  }

  #onControl(link: Link, session: Session, msg: Message): void {
    switch (msg.type) {
      case 'PING':
        session.spend()
        // No answer for a peer that does not read what we send.
        if (!link.writer.blocked) link.write({ type: 'PONG', nonce: msg.nonce })
        return
      case 'PONG':
        if (msg.nonce === link.pingNonce && msg.nonce !== 0) {
          session.rtt = Math.min(session.rtt, Date.now() - link.pingSentAt)
          link.pingNonce = 0
        } else {
          // An answer to no ping of ours: work for nothing, charged like a PING.
          session.spend()
        }
        return
      case 'GOODBYE':
        link.goodbye = msg.reason
        // Once: a GOODBYE repeated while the link closes would start another close (a timer) each.
        if (link.state.status === 'open') this.#init.closeLink(link)
        return
      default:
        throw new ProtocolError('INVALID_FIELD', `unexpected ${msg.type} after the handshake`)
    }
  }
}
