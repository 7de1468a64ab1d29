import type { Message } from '@parley/protocol'
import type { PeerError } from '../peer-errors.js'

/**
 * A protocol that runs over every session whose remote peer runs it too, on a channel of its own
 * (PROTOCOL.md, "Channels"). Chat and peer exchange are services; an embedding program can add its own
 * with `createPeer({ services: [...] })`, without touching the others.
 */
export interface Service {
  /** Protocol name announced in HELLO/WELCOME, at most 32 bytes, e.g. `parley/chat/1`. */
  readonly protocol: string
  /** A session with a peer that runs this protocol opened: return what handles its frames. */
  open(channel: Channel): ServiceHandler
}

/** One service's view of one remote peer. */
export interface ServiceHandler {
  /**
   * A frame arrived on this service's channel. `body` is the message body (type byte first), a view
   * valid only during the call: copy what you keep. Throw to end the session with a violation.
   */
  onFrame(body: Uint8Array): void
  /** Every frame of one read was handled: the moment to send what was coalesced (acknowledgements). */
  onReadEnd?(): void
  /** The session moved to another connection (or came back after a loss): re-send what is unanswered. */
  onResume?(): void
  /** The channel can take more after `send` returned false. */
  onDrain?(): void
  /** The session ended; fail whatever waits on it with `error`. */
  onClose(error: PeerError): void
}

/** A service's channel to one remote peer. */
export interface Channel {
  /** The remote peer: its id (public key, hex) and the name it announced. */
  readonly peer: { readonly id: string; readonly name: string }
  /** False while the session waits for a replacement connection, and after it ended. */
  readonly online: boolean
  /**
   * False when this channel's frames queue behind a remote that does not read fast enough: a
   * service should then wait for `onDrain` before sending more, and should not answer requests.
   */
  readonly writable: boolean
  /**
   * Bytes of this channel's frames waiting unsent behind a remote that does not read fast enough (0
   * while the connection takes everything). First in, first out: what was sent later leaves later.
   */
  readonly queuedBytes: number
  /**
   * Sends a message of the protocol package's union on this channel. Returns `writable` afterwards.
   * @throws ProtocolError for a message that cannot be encoded; PeerError NOT_CONNECTED when offline.
   */
  send(msg: Message): boolean
  /** Sends an opaque message body (for services with their own encoding). Returns `writable`. */
  sendBytes(body: Uint8Array): boolean
  /**
   * Charges the remote peer for work it asks of us (one token of its session's rate budget).
   * @throws PeerError LIMIT_EXCEEDED when it is over its rate: the session ends as a violation.
   */
  spend(): void
  /** When the frame being handled arrived (ms since the epoch): the read's time, without a clock call. */
  readonly receivedAt: number
  /** Counts a message delivered from the remote (shown in PeerInfo; eviction keeps useful peers). */
  delivered(): void
  /** Counts a message of ours the remote acknowledged (shown in PeerInfo; eviction keeps useful peers). */
  acknowledged(): void
}
