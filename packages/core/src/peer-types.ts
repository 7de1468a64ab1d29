import type { EventEmitter } from 'node:events'
import type { PeerRecord } from '@parley/protocol'
import type { HandshakeGate } from './admission.js'
import type { Identity } from './identity.js'
import type { KnownPeers } from './known-peers.js'
import type { PeerError } from './peer-errors.js'
import type { NoiseCipher } from './secure/noise-cipher-state.js'
import type { ConnectionUpgrader } from './secure/upgrader.js'
import type { Service } from './services/service.js'
import type { AbortOptions, Transport } from './transport.js'

/** Construction options of {@link createPeer}. */
export interface PeerInit {
  transport: Transport
  /** Long-term key pair. @default a fresh in-memory identity */
  identity?: Identity
  /** Display name sent in HELLO (≤ 64 UTF-8 bytes). @default `peer-` and the first 16 hex digits of the id */
  name?: string
  /**
   * Address to listen on (or several, e.g. a TCP address and a `dht:` key through a routing transport),
   * or false to only dial out. @default '127.0.0.1:0'
   */
  listen?: string | readonly string[] | false
  /** Addresses to advertise instead of the bound one (e.g. when bound to 0.0.0.0). */
  announce?: string[]
  /**
   * Wraps every connection before HELLO. @default noiseUpgrader: Noise XX, mutual authentication of
   * the Ed25519 identities, ChaCha20-Poly1305 on every byte after the handshake
   */
  upgrader?: ConnectionUpgrader
  /** Private network: peers without the same secret cannot complete the handshake. */
  networkSecret?: string | Uint8Array
  /**
   * The cipher this peer asks for when it dials (see `NoiseUpgraderInit.cipher`): `'AESGCM'` for
   * AES-256-GCM on machines with AES instructions. Measure before choosing it (`pnpm bench` runs both):
   * on the project's machines it moved bulk no faster and made round trips a third slower. Ignored
   * when `upgrader` is given. @default 'ChaChaPoly'
   */
  cipher?: NoiseCipher
  /** Trust-on-first-use store of address → key. @default in memory (see fileKnownPeers for a persistent one) */
  knownPeers?: KnownPeers
  /**
   * Called when a saved peer presents a different key. Resolve true to accept (and save) the new key;
   * otherwise the connection is refused with `KEY_CHANGED`. @default refuse
   */
  onKeyChange?: (change: KeyChange) => boolean | Promise<boolean>
  /** Only these peer ids may connect or be connected to (checked before any application message). */
  allow?: readonly string[]
  /** These peer ids are refused (checked before any application message). */
  deny?: readonly string[]
  /** Largest frame body accepted, in bytes. @default 1 MiB */
  maxFrameSize?: number
  /** Time allowed from dial to WELCOME. @default 10_000 ms */
  handshakeTimeout?: number
  /** Time a sent TEXT waits for its ACK. @default 10_000 ms */
  ackTimeout?: number
  /** A PING goes out on a connection idle this long. @default 5_000 ms */
  pingInterval?: number
  /** A connection silent this long is declared dead. @default 15_000 ms */
  idleTimeout?: number
  /** Longest `stop()` waits for acks and goodbyes before closing hard. @default 2_000 ms */
  stopTimeout?: number
  /** Dials `connectToActive()` runs at once. @default 8 */
  connectConcurrency?: number
  /**
   * Connections `connectToActive()` fills up to. When every known peer fits (connected + dialable ≤
   * this), it connects to all of them, as in a small network; beyond it, it dials only up to this many
   * sessions and reports the rest as skipped (`degree-reached`). @default 32
   */
  maxDegree?: number
  /** Dials one `connectToActive()` call may start in all, over every round. @default 32 */
  maxDialsPerCall?: number
  /**
   * A session this peer opened only to deliver a `send()` to an address or a known peer (not a
   * `connect()`) is closed once no message went either way for this long and nothing is left to
   * acknowledge, unless `retain` keeps it. `false` keeps such sessions open. @default 60_000 ms
   */
  transientIdleTimeout?: number | false
  /**
   * Sessions to keep whatever their use, asked before a transient session is closed as idle. A mesh
   * keeps its neighbours this way (see `@parley/mesh`'s `createMeshPeer`). @default none
   */
  retain?: (peerId: string) => boolean
  /** Peers remembered from exchange. @default 1024 */
  maxKnownPeers?: number
  /**
   * Inbound sessions at once. When full, a newcomer takes the slot of the least valuable inbound peer
   * (inbound eviction, docs/ARCHITECTURE.md), or is refused when every one is protected. @default 256
   */
  maxInbound?: number
  /** Outbound connections at once. @default 256 */
  maxOutbound?: number
  /** Connections at once from one remote host (an IPv4 address or IPv6 /64; loopback is exempt). @default 16 */
  maxPerHost?: number
  /**
   * New inbound connections one remote host (as for `maxPerHost`; loopback is exempt) may open: past it
   * they are refused before any handshake work, so one host cannot make us run a key exchange per
   * packet it sends, nor churn the handshake slots other peers wait in. `false` turns it off.
   * @default { perSecond: 10, burst: 20 }
   */
  connectRate?: { perSecond: number; burst: number } | false
  /**
   * Handshakes running at once. Past `inbound`, a new inbound connection pushes out the oldest inbound
   * handshake still in progress (a stalled, half-open one, most likely); past `outbound`, dials wait.
   * @default { inbound: 32, outbound: 16 }
   */
  maxHandshakes?: { inbound?: number; outbound?: number }
  /**
   * Dials in their handshake at once across every peer sharing this gate (see {@link HandshakeGate}):
   * a process hosting many peers has one CPU for all their key exchanges. A dial waits for a slot
   * (up to 6 × `handshakeTimeout`) before it connects; its handshake timeout starts with its turn.
   * @default the process-wide gate of 64 slots
   */
  handshakeGate?: HandshakeGate
  /**
   * Bytes one remote peer may make this peer hold: its partial frame, frames during its handshake, and
   * our frames waiting for it to read. Past it, the connection is closed as a violation.
   * @default 2 × maxFrameSize + 1 MiB
   */
  maxPeerMemory?: number
  /**
   * Bytes all remote peers together may make this peer hold (each within `maxPeerMemory`). Past it,
   * the connection holding the most is closed as a violation, until the sum is back under it.
   * @default 64 MiB (at least 8 × maxFrameSize)
   */
  maxTotalPeerMemory?: number
  /**
   * More services to run besides chat and peer exchange, each on its own channel of every session with
   * a peer that runs it too (see {@link Service}).
   */
  services?: readonly Service[]
  /**
   * Inbound messages (TEXT, PEERS_REQUEST, PING) one peer may send: a token bucket. A peer over it is
   * disconnected and cooled down (a peer from a network group that broke a limit recently gets a quarter
   * of the burst). `false` turns it off (benchmarks). @default { perSecond: 5_000, burst: 10_000 }
   */
  rateLimit?: { perSecond: number; burst: number } | false
  /**
   * The pace of our TEXTs to each peer, so that we stay within its `rateLimit`: at most `burst` at once
   * and unacknowledged, `perSecond` over time; sends past it wait for room, in order, as sends past the
   * window do. The default assumes the remote's `rateLimit` is ours and keeps below it: 80 % of its rate
   * and a tenth of its burst (a discouraged peer gets a quarter).
   * `false` sends as fast as the window allows, for a remote known to allow it.
   * @default derived from `rateLimit` (4,000/s, burst 1,000); `false` when `rateLimit` is false
   */
  sendPace?: { perSecond: number; burst: number } | false
  /** How long a peer that broke the protocol or a limit is refused. @default 60_000 ms */
  cooldown?: number
  /**
   * Unacknowledged text one peer may hold before `send()` waits for acks (backpressure).
   * @default { messages: 10_000, bytes: 8 MiB, waiting: 10_000 } — beyond `waiting`, send fails with QUEUE_FULL
   */
  inFlight?: { messages?: number; bytes?: number; waiting?: number }
  /**
   * Automatic reconnection to peers this peer dialed, after a lost connection (not after GOODBYE).
   * Exponential backoff with jitter. `perSecond` and `burst` bound the redials across all peers together
   * (a token bucket), so a peer that lost hundreds of connections at once does not redial them in one
   * storm; a redial over the budget waits a jittered while without counting as an attempt. `false` turns
   * it off. @default { initialDelay: 500, maxDelay: 30_000, maxAttempts: 8, perSecond: 4, burst: 8 }
   */
  reconnect?:
    | { initialDelay?: number; maxDelay?: number; maxAttempts?: number; perSecond?: number; burst?: number }
    | false
}

/** Payload of the `peer:reconnecting` event: a lost peer is dialed again after `delay` ms. */
export interface ReconnectingEvent {
  id: string
  name: string
  /** 1 for the first retry. */
  attempt: number
  /** Milliseconds until this attempt. */
  delay: number
}

/**
 * A saved address presented a different key than the one remembered (trust on first use), passed to
 * {@link PeerInit.onKeyChange}.
 */
export interface KeyChange {
  address: string
  name: string
  /** The peer id saved for this address. */
  expected: string
  /** The peer id the handshake authenticated now. */
  actual: string
}

/** Who dialed: `outbound` when this peer did, `inbound` when the remote did. */
export type Direction = 'inbound' | 'outbound'

/** A peer connected now. */
export interface PeerInfo {
  readonly id: string
  readonly name: string
  /** The socket address of the connection in use. */
  readonly address: string
  /** Where the peer says it listens. */
  readonly listenAddrs: readonly string[]
  readonly direction: Direction
  /** Milliseconds since the epoch. */
  readonly connectedAt: number
  readonly lastSeen: number
  readonly messagesIn: number
  readonly messagesOut: number
}

/** A peer learned of, connected or not. */
export interface KnownPeer {
  readonly id: string
  readonly name: string
  readonly addrs: readonly string[]
  readonly lastSeen: number
  readonly connected: boolean
}

/** What `peer.peers()` returns: peers connected now, and peers known but not connected. */
export interface PeerList {
  connected: PeerInfo[]
  /** Known through exchange or earlier sessions, not connected now. */
  known: KnownPeer[]
}

/** A text delivered to the application (exactly once per message id). */
export interface ReceivedMessage {
  readonly id: string
  readonly from: { readonly id: string; readonly name: string }
  readonly text: string
  readonly sentAt: number
  readonly receivedAt: number
}

/** Why a peer went away. */
export type DisconnectReason =
  /** It said GOODBYE; `message` holds its reason. */
  | 'goodbye'
  /** The connection closed or broke without a GOODBYE. */
  | 'connection-lost'
  /** It stopped answering PINGs. */
  | 'timeout'
  /** It broke the protocol. */
  | 'protocol-error'
  /** We closed it (disconnect() or stop()). */
  | 'local'

/** Payload of the `peer:disconnect` event. */
export interface DisconnectEvent {
  peer: PeerInfo
  reason: DisconnectReason
  message: string
}

/**
 * The events a {@link Peer} emits, with their arguments:
 *
 * ```ts
 * peer.on('message', (m) => console.log(m.from.name, m.text))
 * peer.on('peer:disconnect', ({ peer, reason }) => console.log(peer.name, reason))
 * ```
 */
export interface PeerEvents {
  /** A text from a connected peer, delivered exactly once per message id. */
  message: [message: ReceivedMessage]
  /** A connection finished its handshake (either direction): the remote key is authenticated. */
  'peer:connect': [peer: PeerInfo]
  /** An open connection ended; `reason` says how. */
  'peer:disconnect': [event: DisconnectEvent]
  /** A peer not known before was learned of through peer exchange. */
  'peer:discovered': [peer: KnownPeer]
  /** A lost peer this peer dialed will be dialed again; its unacknowledged and new messages wait. */
  'peer:reconnecting': [event: ReconnectingEvent]
  /** Problems that do not stop the peer (a failed inbound handshake, a bad frame). Only emitted when listened to. */
  error: [error: PeerError]
}

/** What {@link Peer.sendMany} resolves with once every text of the batch is acknowledged. */
export interface SendManyResult {
  /** The receiver. */
  readonly peerId: string
  /** Texts sent and acknowledged (all of them). */
  readonly count: number
  /** Message ids of the first and the last text, in send order (the ids of a batch run in sequence). */
  readonly firstId: string
  readonly lastId: string
  /** When the last ACK arrived, ms since the epoch. */
  readonly ackedAt: number
}

/** What a successful `send()` resolves with: the message id and when the receiver acknowledged it. */
export interface SendResult {
  /** The message id (32 hex characters), the same as the receiver's {@link ReceivedMessage.id}. */
  readonly id: string
  /** The receiver. */
  readonly peerId: string
  /** When the ACK arrived, ms since the epoch. */
  readonly ackedAt: number
}

/**
 * Options of one `send()`, `broadcast()` or `queryPeers()`. Aborting `signal` rejects the call with a
 * {@link PeerError} whose code is `ABORTED`.
 */
export interface SendOptions extends AbortOptions {
  /** Milliseconds to wait for the acknowledgement (or the answer) before giving up. @default the peer's ackTimeout */
  timeout?: number
}

/** Options of one `broadcast()`. */
export interface BroadcastOptions extends SendOptions {
  /**
   * Called with each peer's result as soon as it is known (its acknowledgement, or why it failed), before
   * the slowest peer's: an application can show each outcome as it comes. It must not throw: an
   * exception it throws rejects the broadcast.
   */
  onResult?: (result: BroadcastResult) => void
}

/** One entry of `broadcast()`'s result per connected peer: its {@link SendResult}, or why it failed. */
export type BroadcastResult =
  | { peerId: string; ok: true; result: SendResult }
  | { peerId: string; ok: false; error: PeerError }

/**
 * One entry of `connectToActive()`'s result per peer attempted: `status` is `dialed` (connected) or
 * `failed` (`error` says why).
 */
export type ConnectResult =
  | { peerId: string; name: string; address: string; ok: true; status?: 'dialed'; peer: PeerInfo }
  | {
      peerId: string
      name: string
      address: string | undefined
      ok: false
      status?: 'failed'
      error: PeerError
    }

/**
 * Why `connectToActive()` did not dial a known peer:
 * - `degree-reached`: this peer already holds `maxDegree` sessions (or a mesh chose its neighbours);
 * - `dial-budget`: the call's `maxDials` were spent;
 * - `gone`: it said GOODBYE or could not be reached lately;
 * - `cooling-down`: it broke the protocol or a limit and is refused for a while;
 * - `no-address`: nothing to dial.
 */
export type SkipReason = 'degree-reached' | 'dial-budget' | 'gone' | 'cooling-down' | 'no-address'

/** A known peer `connectToActive()` did not dial, and why. */
export interface SkippedPeer {
  readonly peerId: string
  readonly name: string
  readonly reason: SkipReason
}

/**
 * What `connectToActive()` resolves with: one {@link ConnectResult} per peer dialed (the array, as
 * before), plus the known peers that were already connected and those it did not dial, with the reason.
 */
export type ConnectToActiveResult = ConnectResult[] & {
  readonly alreadyConnected: readonly { readonly peerId: string; readonly name: string }[]
  readonly skipped: readonly SkippedPeer[]
}

export interface ConnectToActiveOptions extends AbortOptions {
  /** Ask connected peers whom they know first, repeating while new peers appear. @default 3 rounds */
  rounds?: number
  /** Sessions to fill up to; see {@link PeerInit.maxDegree}. @default the peer's maxDegree (32) */
  maxDegree?: number
  /** Dials this call may start in all. @default the peer's maxDialsPerCall (32) */
  maxDials?: number
}

/** A peer's lifecycle: `idle` → `starting` → `running` → `stopping` → `stopped`. */
export type PeerStatus = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped'

export type { PeerRecord }

/** Options of {@link Peer.connect}. */
export interface ConnectOptions extends AbortOptions {
  /**
   * The address came from another peer (a peer list, a mesh walk), not from the user: the name the
   * peer answers with is then not saved with its key when another key is already known by that name,
   * so a dial someone else steered cannot take a name over. @default false
   */
  steered?: boolean
}

/**
 * A running Parley peer: listens, dials, keeps one connection per remote peer, and delivers
 * acknowledged text messages. Create it with {@link createPeer}.
 */
export interface Peer extends EventEmitter<PeerEvents> {
  readonly id: string
  readonly name: string
  readonly status: PeerStatus
  /** Addresses this peer listens on (empty until started, or when `listen: false`). */
  readonly addresses: readonly string[]
  /** Starts listening. Idempotent. @throws TransportError when the address cannot be bound. */
  start(options?: AbortOptions): Promise<void>
  /** Dials `address` and completes the handshake. Resolves with the already-open peer if connected. */
  connect(address: string, options?: ConnectOptions): Promise<PeerInfo>
  /**
   * Sends `text` to a peer (id, unique id prefix, fingerprint, address, or a connected peer's unique
   * name — dialed first if needed) and resolves when its ACK arrives. A target written like an id
   * (8 hex digits or more) never means a name; a known peer dialed at an address heard for it must
   * answer with its own key there, else the send fails with `WRONG_PEER` and nothing is sent.
   * @throws PeerError `ACK_TIMEOUT`, `PEER_GONE`, `REFUSED`, `MESSAGE_TOO_LONG`, `WRONG_PEER`, ...
   */
  send(target: string, text: string, options?: SendOptions): Promise<SendResult>
  /**
   * Sends every text of `texts` to a connected peer, in order, as separate messages, with one promise
   * for the whole batch: it resolves when all are acknowledged and rejects with the first failure
   * (texts already acknowledged stay delivered; texts not yet written by then are dropped). For applications that stream
   * many small messages: a promise per message costs more than the message. The batch waits for room
   * in the send window like any send, and does not count against `inFlight.waiting`; its texts become
   * messages only as the window admits them, so a batch of any size costs about 16 bytes a text
   * besides the texts themselves, and a window's worth of messages in flight.
   * @throws PeerError `NOT_CONNECTED` (no session with the target), `MESSAGE_TOO_LONG`, `ACK_TIMEOUT`, ...
   */
  sendMany(target: string, texts: readonly string[], options?: SendOptions): Promise<SendManyResult>
  /**
   * Sends `text` to every connected peer; one result per peer (each also to `options.onResult` as it
   * comes), never rejects.
   */
  broadcast(text: string, options?: BroadcastOptions): Promise<BroadcastResult[]>
  /** The peers connected now, and the ones known (from handshakes and peer exchange) but not connected. */
  peers(): PeerList
  /** Asks a connected peer whom it knows (peer exchange). The answer is merged into the known list. */
  queryPeers(target: string, options?: SendOptions): Promise<KnownPeer[]>
  /**
   * Connects to the known, unconnected peers: to all of them when they fit in `maxDegree`, else up to
   * `maxDegree` sessions, at most `maxDials` dials and `connectConcurrency` at once. One result per
   * peer attempted; `skipped` and `alreadyConnected` account for the rest.
   */
  connectToActive(options?: ConnectToActiveOptions): Promise<ConnectToActiveResult>
  /**
   * Says GOODBYE to one peer and closes its connection, within `stopTimeout`; an aborted `signal`
   * closes it at once instead.
   */
  disconnect(target: string, reason?: string, options?: AbortOptions): Promise<void>
  /**
   * GOODBYE to every peer, waits (bounded by `stopTimeout`) for acks and flushes, stops listening.
   * Idempotent. An aborted `signal` cuts the wait short: what is left is closed at once, as `destroy()`.
   */
  stop(options?: AbortOptions): Promise<void>
  /** Closes everything now, without GOODBYE. */
  destroy(err?: Error): void
  /** What this peer holds right now, against its bounds (docs/ARCHITECTURE.md, "Bounds"). */
  resources(): PeerResources
  /**
   * The peer ids a display name may mean: the one it is saved with in the known peers, else every
   * peer known first-hand by it. A name names a peer (for `send()` and the like) only when this is one
   * id; names are claims, so with two ids a frontend should ask for a fingerprint.
   */
  namedKeys(name: string): string[]
  /** Key changes seen (a dial reached another key, or a peer claimed a saved address), awaiting a decision. */
  keyChanges(): PendingKeyChange[]
  /**
   * The user accepts the key last seen at `address` (or `peerId`): it replaces the saved one in the
   * known-peers store. @throws PeerError UNKNOWN_PEER when no change is waiting for the address
   */
  acceptKeyChange(address: string, peerId?: string): Promise<KeyChange>
}

/** A snapshot of what a peer holds: connections, handshakes and memory held for remote peers. */
export interface PeerResources {
  readonly sessions: number
  readonly inboundSessions: number
  readonly links: number
  readonly handshakes: number
  /** Bytes held for remote peers: partial frames being read and frames waiting for them to read. */
  readonly heldBytes: number
  readonly knownPeers: number
}

/** A key change seen, waiting for the user's decision (`acceptKeyChange`). */
export interface PendingKeyChange extends KeyChange {
  /** `outbound`: we dialed the address and another key answered; `inbound`: a peer claimed it. */
  readonly direction: 'inbound' | 'outbound'
  readonly seenAt: number
}
