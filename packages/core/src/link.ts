import { FrameDecoder, FrameWriter, type Message, type PeerAnnouncement } from '@parley/protocol'
import { LinkState } from './connection-state.js'
import type { Direction, DisconnectReason } from './peer-types.js'
import type { SecureConnection } from './secure/upgrader.js'
import { takeChunkBuffer } from './send-buffers.js'
import { CHAT_PROTOCOL } from './services/chat.js'
import type { TokenBucket } from './util.js'

/**
 * A batch of frames is written as soon as it holds this much, rather than at the deferred flush: the
 * receiver starts on it while we frame the rest of a burst. It is one Noise record's plaintext and
 * about one socket read. Batches of up to 256 KiB (the writer's default) kept a stream of small
 * messages ~20 % slower on Node 20 and ~35 % on Node 24.
 */
const LINK_BATCH_BYTES = 65_519

/**
 * When a link's batch is written: once the JavaScript that the current event runs has finished, its
 * promise reactions included (a nextTick queued from a microtask runs after the microtask queue has
 * drained). Everything a read or a send loop wrote leaves in one write, as with setImmediate, but
 * without waiting for the event loop's next turn, which a ping-pong paid twice per round trip.
 */
const afterMicrotasks = (flush: () => void): void => queueMicrotask(() => process.nextTick(flush))

/** One transport connection, from dial/accept to close: its framing, state and channel numbering. */
export class Link {
  readonly state = new LinkState('handshaking')
  readonly decoder: FrameDecoder
  readonly writer: FrameWriter
  readonly openedAt = Date.now()
  remote: PeerAnnouncement | undefined
  lastReceived = Date.now()
  /** The nonce and send time of the PING awaiting its PONG (0: none). */
  pingNonce = 0
  pingSentAt = 0
  /** Set when the remote said GOODBYE; the reason travels to the disconnect event. */
  goodbye: string | undefined
  /** Set when this side decided to end the link, with the reason to report. */
  closeReason: { reason: DisconnectReason; message: string } | undefined
  onHandshake: ((msg: Message) => void) | undefined
  /** Frames that arrived after the handshake reply while we were still checking it; replayed once open. */
  early: Uint8Array[] = []
  earlyBytes = 0
  /** What this link counts in its reader's total of bytes held for all peers (LinkReader). */
  countedBytes = 0
  endedEarly = false
  /** Since when the transport has refused more bytes (a reader that stopped reading); 0 when flowing. */
  blockedSince = 0
  /** Budget of chunks (records) the remote may make us process; undefined when rate limits are off. */
  chunks: TokenBucket | undefined
  /** Service protocols both ends run, sorted: protocol i travels on channel i + 1. */
  #protocols: readonly string[] = []
  #channels = new Map<string, number>()

  constructor(
    readonly conn: SecureConnection,
    readonly direction: Direction,
    readonly dialedAddress: string | undefined,
    maxFrameSize: number,
  ) {
    this.decoder = new FrameDecoder({ maxFrameSize })
    // Large frames go out in recycled memory, which the connection gives back once read. Once the
    // connection is over its high-water mark, frames wait in the writer (per channel, released round
    // robin) rather than as encoded and sealed buffers queued in the socket.
    this.writer = new FrameWriter(
      (chunk) => {
        if (this.conn.status !== 'open') return true
        const flowing = this.conn.send(chunk)
        if (!flowing && this.blockedSince === 0) this.blockedSince = Date.now()
        return flowing
      },
      // The Noise channel encrypts a batch before send() returns: its buffer can serve the next batch.
      {
        allocate: takeChunkBuffer,
        backpressure: true,
        lend: conn.sendCopies === true,
        maxFrameSize,
        maxBatchBytes: LINK_BATCH_BYTES,
        schedule: afterMicrotasks,
      },
    )
  }

  /** Numbers the channels from both sides' service lists (PROTOCOL.md, "Channels"). */
  bindChannels(local: readonly string[], remote: readonly string[]): void {
    const theirs = new Set(remote)
    this.#protocols = [...new Set(local)].filter((p) => theirs.has(p)).sort(byteOrder)
    this.#channels = new Map(this.#protocols.map((p, i) => [p, i + 1]))
  }

  channelOf(protocol: string): number | undefined {
    return this.#channels.get(protocol)
  }

  protocolAt(channel: number): string | undefined {
    return this.#protocols[channel - 1]
  }

  /** Writes a control-channel message, if the connection is still open. */
  write(msg: Message, channel = 0): void {
    if (this.conn.status === 'open') this.writer.write(msg, channel)
  }

  /** Memory held for this link's traffic: the partial frame being read and the frames waiting to go out. */
  get heldBytes(): number {
    return this.decoder.heldBytes + this.writer.heldBytes + this.earlyBytes
  }

  /**
   * What the remote makes us hold, for the per-peer memory bound: its partial frame, its early frames
   * and every frame waiting for it to read — except our own chat messages, which the send window
   * (`inFlight`) bounds already and which a fast sender legitimately queues. `chatAcks` is how much of
   * the chat channel's queue is acknowledgements we owe the remote: those count, since a peer that
   * sends and never reads makes them.
   */
  remoteInducedBytes(chatAcks: number): number {
    const held = this.heldBytes
    const queued = this.writer.heldBytes
    if (queued === 0) return held
    const chat = this.channelOf(CHAT_PROTOCOL)
    return chat === undefined ? held : held - this.writer.heldBytesOf(chat) + chatAcks
  }

  /** Key used to break ties between two links started by the same peer; both ends compute the same. */
  get tieKey(): string {
    const c = this.conn
    return this.direction === 'outbound'
      ? `${c.localAddress}|${c.remoteAddress}`
      : `${c.remoteAddress}|${c.localAddress}`
  }
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}
