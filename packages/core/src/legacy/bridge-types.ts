/** The public face of the legacy bridge: its options, events, and what it reports. */
import type { EventEmitter } from 'node:events'
import type { AbortOptions, Transport } from '../transport.js'
import type { LegacyDropCode, LegacyError } from './errors.js'

/** Construction options of {@link createLegacyBridge}. */
export interface LegacyBridgeInit {
  /** Dials legacy peers to send to them: the transport the peer listens with (decorated or not). */
  transport: Transport
  /**
   * Our name in legacy strings: 1–64 UTF-8 bytes, no whitespace or control characters. A function
   * is called on every send (e.g. `() => peer.name` when the peer picks its default name itself).
   */
  name: string | (() => string)
  /**
   * Our listening address as legacy peers should dial it back (`ip:port`, not 0.0.0.0). Called on
   * every send, so it can read the peer's address once it is listening, e.g. `() => peer.addresses[0]`.
   */
  ownAddress: () => string | undefined
  /** Legacy peers remembered; beyond it, the one heard from least recently is forgotten. @default 256 */
  maxPeers?: number
  /** Inbound legacy connections handled at once; more are dropped (`TOO_MANY_CONNECTIONS`). @default 32 */
  maxConnections?: number
  /** Time one inbound legacy connection may take to deliver its message. @default 10_000 ms */
  readTimeout?: number
  /**
   * A legacy sender closes right after writing, which ends the message. A sender that keeps the
   * connection open gets its message taken once no byte arrived for this long (the original's
   * single `recv` would have taken the first chunk). @default 200 ms
   */
  quietTime?: number
  /** Time one send (dial, write) may take. @default 10_000 ms */
  sendTimeout?: number
  /** Time we wait for a legacy peer to close its side after a message, before resetting. @default 2_000 ms */
  lingerTime?: number
  /** Sends `connectAll()`/`exitAll()` run at once. @default 8 */
  concurrency?: number
  /** Clock for `lastSeen` and `receivedAt`, ms since the epoch. @default Date.now */
  now?: () => number
}

/** A peer speaking the legacy plain-text protocol. Nothing about it is authenticated. */
export interface LegacyPeerInfo {
  /** The address it listens on (as it claims, or as the user added it). */
  readonly address: string
  /** The name it last used; undefined while it was only added by address. */
  readonly name: string | undefined
  /** When we last heard from it, ms since the epoch; undefined while it was only added by address. */
  readonly lastSeen: number | undefined
  readonly legacy: true
}

/** A chat message from a legacy peer. Its sender is whatever the string claims. */
export interface LegacyMessage {
  readonly from: { readonly address: string; readonly name: string }
  readonly text: string
  /** Where the connection came from; the claimed `from.address` is not checked against it. */
  readonly remoteAddress: string
  readonly receivedAt: number
  readonly legacy: true
  /** Always false: the legacy protocol cannot authenticate anyone. */
  readonly verified: false
}

/** An inbound connection dropped, and why. */
export interface LegacyDrop {
  readonly code: LegacyDropCode
  /** One sentence saying why. */
  readonly reason: string
  readonly remoteAddress: string
  /** Bytes received before it was dropped. */
  readonly bytes: number
}

/** Why a legacy peer left the list: it said `exit`, was forgotten to make room, or removed by the user. */
export type LegacyLeaveReason = 'exit' | 'evicted' | 'removed'

/** Events of a {@link LegacyBridge}. */
export interface LegacyBridgeEvents {
  /** A chat message arrived (the sender is added to the peer list first). */
  message: [message: LegacyMessage]
  /** A legacy peer announced itself with `connect`, or a first message came from an unlisted address. */
  'peer:joined': [peer: LegacyPeerInfo]
  /** A listed legacy peer said `exit`, was evicted or removed. */
  'peer:left': [event: { peer: LegacyPeerInfo; reason: LegacyLeaveReason }]
  /** An inbound connection was dropped without harm (malformed, too long, silent, ...). */
  dropped: [drop: LegacyDrop]
}

/** What a send to one legacy peer came to: `ok`, or the error that stopped it. */
export type LegacySendOutcome =
  | { readonly address: string; readonly ok: true }
  | { readonly address: string; readonly ok: false; readonly error: LegacyError }

export interface LegacySendOptions extends AbortOptions {
  /** @default the bridge's sendTimeout */
  timeout?: number
}

/** Whether a {@link LegacyBridge} still sends and receives (`open`) or was closed. */
export type LegacyBridgeStatus = 'open' | 'closed'

/**
 * Speaks the legacy plain-text protocol next to a Parley peer. It receives through a listener made
 * with {@link legacyAwareTransport}, and sends by dialing each legacy peer once per message.
 */
export interface LegacyBridge extends EventEmitter<LegacyBridgeEvents> {
  /** Our name in legacy strings (read again on every send when given as a function). */
  readonly name: string
  readonly status: LegacyBridgeStatus
  /** Every known legacy peer, most recently heard from first. */
  peers(): LegacyPeerInfo[]
  /** The legacy peer with this address, or else the only one with this name. */
  find(target: string): LegacyPeerInfo | undefined
  /**
   * Adds (or keeps) a legacy peer by address; a host name is fine.
   * @throws LegacyError `INVALID_ADDRESS`, `STOPPED`
   */
  addPeer(address: string): LegacyPeerInfo
  /** Forgets a legacy peer (by address or name); `peer:left` fires with `removed`. */
  removePeer(target: string): boolean
  /**
   * Sends one chat message: dials `target` (a known name, or any address), writes
   * `"<our ip:port> <our name> <text>"`, and closes. Resolves once the string is written: the legacy
   * protocol has no acknowledgement, so delivery is never confirmed.
   * @throws LegacyError `MESSAGE_TOO_LONG` (over 1024 bytes, refused rather than split),
   *   `INVALID_TEXT` (empty, or exactly `connect`/`exit`), `INVALID_ADDRESS` (our own address is not
   *   dialable), `UNKNOWN_PEER`, `UNREACHABLE`, `TIMEOUT`, `ABORTED`, `STOPPED`
   */
  send(target: string, text: string, options?: LegacySendOptions): Promise<void>
  /** Sends `connect` to every known legacy peer. Never rejects: each outcome says how it went. */
  connectAll(options?: LegacySendOptions): Promise<LegacySendOutcome[]>
  /** Sends `exit` to every known legacy peer, as the original does on quit. Never rejects. */
  exitAll(options?: LegacySendOptions): Promise<LegacySendOutcome[]>
  /**
   * Stops handling inbound legacy connections (those in progress are reset) and refuses new sends.
   * Does not send `exit`: call {@link exitAll} first. Idempotent.
   */
  close(): Promise<void>
}
