import { randomBytes } from 'node:crypto'
import { EventEmitter, setMaxListeners } from 'node:events'
import { networkInterfaces } from 'node:os'
import {
  AckStatus,
  decodeMessage,
  FrameDecoder,
  FrameWriter,
  Limits,
  type Message,
  messageId,
  type PeerAnnouncement,
  type PeerRecord,
  PROTOCOL_VERSION,
  ProtocolError,
  peekHelloVersion,
  RejectCode,
  type TextMessage,
  utf8Length,
} from '@parley/protocol'
import { LinkState } from './connection-state.js'
import { fingerprint, generateIdentity, type Identity } from './identity.js'
import { type KnownPeers, keyChangedMessage, memoryKnownPeers } from './known-peers.js'
import { PeerError, type PeerErrorCode } from './peer-errors.js'
import type {
  BroadcastResult,
  ConnectResult,
  ConnectToActiveOptions,
  Direction,
  DisconnectReason,
  KnownPeer,
  PeerEvents,
  PeerInfo,
  PeerInit,
  PeerList,
  PeerStatus,
  SendOptions,
  SendResult,
} from './peer-types.js'
import { PendingQueue } from './pending-queue.js'
import { noiseUpgrader } from './secure/channel.js'
import { SecureChannelError } from './secure/errors.js'
import type { ConnectionUpgrader, SecureConnection } from './secure/upgrader.js'
import { takeChunkBuffer } from './send-buffers.js'
import type { AbortOptions, Connection, Listener } from './transport.js'

/** GOODBYE reason that means "this connection is a duplicate; keep talking on the other one". */
export const DUPLICATE_GOODBYE = 'duplicate connection'
const MAX_PENDING_QUERIES = 8
const MAX_EARLY_FRAMES = 64
const MAX_COOLING = 4096
const DEDUP_SENDERS = 1024
// Half the protocol's 256-record cap: 128 records at their largest (16 addresses of 255 bytes) still fit
// one 1 MiB frame, 256 do not.
const MAX_PEERS_PER_ANSWER = 128

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
  connect(address: string, options?: AbortOptions): Promise<PeerInfo>
  /**
   * Sends `text` to a peer (id, unique id prefix, or address — dialed first if needed) and resolves
   * when its ACK arrives. @throws PeerError `ACK_TIMEOUT`, `PEER_GONE`, `REFUSED`, `MESSAGE_TOO_LONG`, ...
   */
  send(target: string, text: string, options?: SendOptions): Promise<SendResult>
  /** Sends `text` to every connected peer; one result per peer, never rejects. */
  broadcast(text: string, options?: SendOptions): Promise<BroadcastResult[]>
  peers(): PeerList
  /** Asks a connected peer whom it knows (peer exchange). The answer is merged into the known list. */
  queryPeers(target: string, options?: SendOptions): Promise<KnownPeer[]>
  /** Connects to every known, unconnected peer. One result per peer attempted. */
  connectToActive(options?: ConnectToActiveOptions): Promise<ConnectResult[]>
  /** Says GOODBYE to one peer and closes its connection. */
  disconnect(target: string, reason?: string): Promise<void>
  /** GOODBYE to every peer, waits (bounded) for acks and flushes, stops listening. Idempotent. */
  stop(): Promise<void>
  /** Closes everything now, without GOODBYE. */
  destroy(err?: Error): void
}

/** Creates a peer. Call `start()` to listen. */
export function createPeer(init: PeerInit): Peer {
  return new ParleyPeer(init)
}

/** A send awaiting its acknowledgement; it is also the TEXT frame that is written (and re-sent). */
interface Pending extends TextMessage {
  /** Text bytes, counted against the per-peer in-flight budget. */
  readonly bytes: number
  readonly deadline: number
  resolve: (r: SendResult) => void
  reject: (e: PeerError) => void
}

// `new Promise(captureResolvers)` hands out a promise's resolvers without a closure per call
// (Promise.withResolvers needs Node 22). The executor runs synchronously, so they are read right after.
let capturedResolve: (r: SendResult) => void = () => {}
let capturedReject: (e: PeerError) => void = () => {}
function captureResolvers(resolve: (r: SendResult) => void, reject: (e: PeerError) => void): void {
  capturedResolve = resolve
  capturedReject = reject
}

/** One transport connection, from dial/accept to close. */
class Link {
  readonly state: LinkState
  readonly decoder: FrameDecoder
  readonly writer: FrameWriter
  remote: PeerAnnouncement | undefined
  lastReceived: number
  pingOutstanding = false
  /** Set when the remote said GOODBYE; the reason travels to the disconnect event. */
  goodbye: string | undefined
  /** Set when this side decided to end the link, with the reason to report. */
  closeReason: { reason: DisconnectReason; message: string } | undefined
  onHandshake: ((msg: Message) => void) | undefined
  /** Frames that arrived after the handshake reply while we were still checking it; replayed once open. */
  early: Uint8Array[] = []
  endedEarly = false
  /** Since when the transport has refused more bytes (a reader that stopped reading); 0 when flowing. */
  blockedSince = 0
  /** The ACK_UPTO owed for TEXTs read from this link and not yet answered (seq 0: none). */
  ackStream = ''
  ackSeq = 0

  constructor(
    readonly conn: SecureConnection,
    readonly direction: Direction,
    readonly dialedAddress: string | undefined,
    maxFrameSize: number,
  ) {
    this.state = new LinkState('handshaking')
    this.decoder = new FrameDecoder({ maxFrameSize })
    // Large frames (bulk TEXTs) go out in recycled memory, which the connection gives back once read.
    // Once the connection is over its high-water mark, frames wait in the writer as messages until
    // 'drain', rather than as encoded (and sealed) 64 KiB buffers queued in the socket.
    this.writer = new FrameWriter(
      (chunk) => {
        if (this.conn.status !== 'open') return true
        const flowing = this.conn.send(chunk)
        if (!flowing && this.blockedSince === 0) this.blockedSince = Date.now()
        return flowing
      },
      // The Noise channel encrypts a batch before send() returns: its buffer can serve the next batch.
      { allocate: takeChunkBuffer, backpressure: true, lend: conn.sendCopies === true },
    )
    conn.on('drain', () => {
      this.blockedSince = 0
      this.writer.resume()
    })
    this.lastReceived = Date.now()
  }

  write(msg: Message): void {
    if (this.conn.status === 'open') this.writer.write(msg)
  }

  /** Key used to break ties between two links started by the same peer; both ends compute the same. */
  get tieKey(): string {
    const c = this.conn
    return this.direction === 'outbound'
      ? `${c.localAddress}|${c.remoteAddress}`
      : `${c.remoteAddress}|${c.localAddress}`
  }
}

/** Everything we hold about one remote peer while it is connected. */
class Session {
  readonly links = new Set<Link>()
  active: Link
  readonly connectedAt = Date.now()
  lastSeen = Date.now()
  messagesIn = 0
  messagesOut = 0
  /** This peer's stream of TEXTs to the remote: ids are `stream` + seq (see PROTOCOL.md, "Acknowledgements"). */
  readonly stream = randomBytes(Limits.streamBytes).toString('hex')
  nextSeq = 1
  /** Sends awaiting their acknowledgement, by seq; insertion order is seq order. */
  readonly pending = new PendingQueue<Pending>()
  readonly queries: Array<{ resolve: (p: PeerRecord[]) => void; reject: (e: PeerError) => void }> = []
  /** Timer that ends the session if no replacement link arrives after a duplicate was retired. */
  graceTimer: ReturnType<typeof setTimeout> | undefined
  /** False while the link is lost and a replacement is awaited; sends then wait in `pending`. */
  online = true
  /** The disconnect was already reported (the session lives on while reconnecting). */
  announcedGone = false
  reconnectAttempt = 0
  reconnectTimer: ReturnType<typeof setTimeout> | undefined
  /** Text bytes sent and not yet acknowledged. */
  inFlightBytes = 0
  /** Senders waiting for room in the in-flight budget, oldest first. */
  readonly waiting: Array<{ bytes: number; wake: () => void }> = []
  /** Senders woken with room reserved for them who have not written yet (counted as in flight). */
  admitted = 0
  /** Token bucket of inbound work (TEXT, PEERS_REQUEST, PING). */
  tokens: number
  refilledAt = Date.now()

  constructor(
    readonly id: string,
    link: Link,
    burst: number,
  ) {
    this.active = link
    this.links.add(link)
    this.tokens = burst
  }

  get remote(): PeerAnnouncement {
    return this.active.remote!
  }

  #from: { readonly id: string; readonly name: string } | undefined
  /** The `from` of its messages: one frozen object while the name stays, not one per message. */
  get from(): { readonly id: string; readonly name: string } {
    const name = this.remote.name
    if (this.#from?.name !== name) this.#from = Object.freeze({ id: this.id, name })
    return this.#from
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

interface Known {
  id: string
  name: string
  addrs: string[]
  lastSeen: number
}

class ParleyPeer extends EventEmitter<PeerEvents> implements Peer {
  readonly id: string
  readonly name: string
  #status: PeerStatus = 'idle'
  readonly #init: PeerInit
  readonly #identity: Identity
  readonly #upgrader: ConnectionUpgrader
  readonly #knownPeers: KnownPeers
  readonly #maxFrameSize: number
  readonly #handshakeTimeout: number
  readonly #ackTimeout: number
  readonly #pingInterval: number
  readonly #idleTimeout: number
  readonly #stopTimeout: number
  #listener: Listener | undefined
  #addresses: string[] = []
  readonly #links = new Set<Link>()
  readonly #sessions = new Map<string, Session>()
  readonly #known = new Map<string, Known>()
  /** Dials in flight by address, so two calls for one address share one connection. */
  readonly #dials = new Map<string, Promise<PeerInfo>>()
  /** Per sender (least recently heard first, bounded): its stream and the highest seq delivered from it. */
  readonly #seen = new Map<string, Seen>()
  #seenClock = 0
  #timer: ReturnType<typeof setInterval> | undefined
  /** Timers behind deadline signals, cleared on stop so nothing outlives the peer. */
  readonly #timers = new Set<ReturnType<typeof setTimeout>>()
  /** Sends not yet settled; stop() gives them a bounded chance to be acknowledged. */
  /** Set by stop() while it waits for every pending send to be acknowledged. */
  #onAllAcked: (() => void) | undefined
  #stopping: Promise<void> | undefined
  /** Aborted when the peer finishes stopping: ends handshakes still in progress, which no link tracks yet. */
  readonly #halt = new AbortController()
  /** Peers the user dialed, by id → the address used: reconnected after a loss. */
  readonly #wanted = new Map<string, string>()
  /** Peer ids refused until the given time, after breaking the protocol or a limit. */
  readonly #cooling = new Map<string, number>()
  /** Raw connections per remote host, and per direction, counted from accept/dial to close. */
  readonly #perHost = new Map<string, number>()
  #inbound = 0
  #outbound = 0
  readonly #limits: {
    maxInbound: number
    maxOutbound: number
    maxPerHost: number
    rate: { perSecond: number; burst: number } | false
    cooldown: number
    inFlightMessages: number
    inFlightBytes: number
    waiting: number
    reconnect: { initialDelay: number; maxDelay: number; maxAttempts: number } | false
  }

  constructor(init: PeerInit) {
    super()
    this.#init = init
    this.#identity = init.identity ?? generateIdentity()
    this.id = this.#identity.peerId
    this.name = init.name ?? `peer-${fingerprint(this.id).replace(':', '')}`
    if (Buffer.byteLength(this.name) > Limits.nameBytes) {
      throw new PeerError('MESSAGE_TOO_LONG', `the name is longer than ${Limits.nameBytes} bytes`)
    }
    this.#upgrader =
      init.upgrader ??
      noiseUpgrader({
        identity: this.#identity,
        handshakeTimeout: init.handshakeTimeout ?? 10_000,
        ...(init.networkSecret !== undefined ? { networkSecret: secretBytes(init.networkSecret) } : {}),
      })
    this.#knownPeers = init.knownPeers ?? memoryKnownPeers()
    this.#maxFrameSize = init.maxFrameSize ?? 1024 * 1024
    this.#handshakeTimeout = init.handshakeTimeout ?? 10_000
    this.#ackTimeout = init.ackTimeout ?? 10_000
    this.#pingInterval = init.pingInterval ?? 5_000
    this.#idleTimeout = init.idleTimeout ?? 15_000
    this.#stopTimeout = init.stopTimeout ?? 2_000
    const r = init.reconnect
    this.#limits = {
      maxInbound: init.maxInbound ?? 256,
      maxOutbound: init.maxOutbound ?? 256,
      maxPerHost: init.maxPerHost ?? 16,
      rate: init.rateLimit ?? { perSecond: 5_000, burst: 10_000 },
      cooldown: init.cooldown ?? 60_000,
      inFlightMessages: init.inFlight?.messages ?? 10_000,
      inFlightBytes: init.inFlight?.bytes ?? 8 * 1024 * 1024,
      waiting: init.inFlight?.waiting ?? 10_000,
      reconnect:
        r === false
          ? false
          : {
              initialDelay: r?.initialDelay ?? 500,
              maxDelay: r?.maxDelay ?? 30_000,
              maxAttempts: r?.maxAttempts ?? 8,
            },
    }
  }

  get status(): PeerStatus {
    return this.#status
  }

  get addresses(): readonly string[] {
    return this.#addresses
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async start(options?: AbortOptions): Promise<void> {
    if (this.#status === 'running' || this.#status === 'starting') return
    if (this.#status !== 'idle') throw new PeerError('STOPPED', 'this peer was stopped; create a new one')
    this.#status = 'starting'
    try {
      const listen = this.#init.listen ?? '127.0.0.1:0'
      if (listen !== false) {
        this.#listener = await this.#init.transport.listen(listen, (conn) => this.#accept(conn), options)
        this.#addresses = this.#init.announce ?? announceable(this.#listener.address)
      }
    } catch (err) {
      this.#status = 'idle'
      throw err
    }
    const tick = Math.max(50, Math.min(this.#pingInterval, this.#idleTimeout, this.#ackTimeout) / 4)
    this.#timer = setInterval(() => this.#onTick(), tick)
    this.#timer.unref?.()
    this.#status = 'running'
  }

  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping
    if (this.#status === 'idle') {
      this.#status = 'stopped'
      this.#stopping = Promise.resolve()
      return this.#stopping
    }
    this.#status = 'stopping'
    this.#stopping = this.#shutdown()
    return this.#stopping
  }

  async #shutdown(): Promise<void> {
    const deadline = this.#deadline(this.#stopTimeout)
    // Every link's close listens on this one deadline: with over 10 peers Node warned of a listener leak.
    setMaxListeners(0, deadline)
    const listenerClosed = this.#listener?.close()
    // 1. Give in-flight messages half the budget to be acknowledged, so each settles as delivered if it can.
    if (!this.#allAcked()) {
      await raceSignal(
        new Promise<void>((resolve) => {
          this.#onAllAcked = resolve
        }),
        this.#deadline(this.#stopTimeout / 2),
      )
    }
    // 2. GOODBYE to everyone, then close every connection gracefully, bounded.
    for (const link of this.#links) {
      if (link.state.status === 'open') link.write({ type: 'GOODBYE', reason: 'peer is shutting down' })
      link.closeReason ??= { reason: 'local', message: 'this peer stopped' }
    }
    await raceSignal(Promise.all([...this.#links].map((l) => this.#closeLink(l, deadline))), deadline)
    for (const link of this.#links) link.conn.abort()
    await listenerClosed
    this.#finish()
  }

  destroy(err?: Error): void {
    if (this.#status === 'stopped') return
    this.#status = 'stopping'
    void this.#listener?.close()
    for (const link of this.#links) {
      link.closeReason ??= { reason: 'local', message: err?.message ?? 'this peer was destroyed' }
      link.conn.abort(err)
    }
    this.#finish()
    this.#stopping ??= Promise.resolve()
  }

  #finish(): void {
    // Without this a dial or accept mid-handshake outlived stop(): its connection and timers stayed until the handshake timeout.
    this.#halt.abort(new PeerError('STOPPED', 'this peer stopped'))
    clearInterval(this.#timer)
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    // Sessions end through their links' close events; anything left (e.g. waiting to reconnect) is failed here.
    for (const session of this.#sessions.values()) this.#endSession(session, 'local', 'this peer stopped')
    this.#wanted.clear()
    this.#status = 'stopped'
  }

  // ---- connections ----------------------------------------------------------------------------

  connect(address: string, options?: AbortOptions): Promise<PeerInfo> {
    // Not `async` (concurrent calls must share one dial), so failures are returned, never thrown.
    if (this.#status !== 'running') return Promise.reject(this.#notRunning())
    const existing = this.#sessionByAddress(address, true)
    if (existing) return Promise.resolve(existing.info())
    if (this.#addresses.includes(address)) {
      return Promise.reject(new PeerError('SELF_CONNECT', `${address} is this peer's own address`))
    }
    let dial = this.#dials.get(address)
    if (!dial) {
      dial = this.#dial(address, options).finally(() => this.#dials.delete(address))
      this.#dials.set(address, dial)
    }
    return dial
  }

  async #dial(address: string, options?: AbortOptions): Promise<PeerInfo> {
    if (this.#outbound >= this.#limits.maxOutbound) {
      throw new PeerError(
        'TOO_MANY_CONNECTIONS',
        `already ${this.#outbound} outbound connections (the limit)`,
      )
    }
    const limit = this.#handshakeLimit(options?.signal)
    try {
      return await this.#dialWithin(address, limit.signal)
    } finally {
      limit.dispose()
    }
  }

  async #dialWithin(address: string, signal: AbortSignal): Promise<PeerInfo> {
    let conn: Connection
    try {
      conn = await this.#init.transport.dial(address, { signal })
    } catch (cause) {
      throw new PeerError('DIAL_FAILED', `could not reach ${address}: ${(cause as Error).message}`, { cause })
    }
    this.#count(conn, 'outbound')
    let secure: SecureConnection
    try {
      secure = await this.#upgrader.upgrade(conn, { role: 'initiator', signal })
    } catch (cause) {
      conn.abort(cause as Error)
      throw handshakeError(address, cause)
    }
    if (this.#status !== 'running') {
      secure.abort()
      throw new PeerError('STOPPED', 'this peer is stopping')
    }
    const link = this.#track(secure, 'outbound', address)
    const reply = await this.#awaitHandshake(link, signal)
    if (reply.type === 'REJECT') {
      this.#dropLink(link)
      const code: PeerErrorCode =
        reply.code === RejectCode.SELF_CONNECT
          ? 'SELF_CONNECT'
          : reply.code === RejectCode.INCOMPATIBLE_VERSION
            ? 'INCOMPATIBLE_VERSION'
            : reply.code === RejectCode.IDENTITY_MISMATCH
              ? 'IDENTITY_MISMATCH'
              : reply.code === RejectCode.DENIED
                ? 'DENIED'
                : 'REJECTED'
      throw new PeerError(code, `${address} refused the connection: ${reply.reason}`)
    }
    if (reply.type !== 'WELCOME') {
      this.#dropLink(link)
      throw new PeerError('HANDSHAKE_FAILED', `${address} answered HELLO with ${reply.type}`)
    }
    const problem = this.#checkAnnouncement(reply, secure)
    if (problem) {
      this.#dropLink(link)
      throw new PeerError(problem.code, `${address}: ${problem.message}`)
    }
    await this.#checkKnownKey(link, address, reply)
    if (link.conn.status === 'closed') {
      // The link died after a valid WELCOME, e.g. retired as a duplicate; the other link may carry the session.
      this.#dropLink(link)
      const session = this.#sessions.get(reply.peerId)
      if (session) return session.info()
      throw new PeerError('HANDSHAKE_FAILED', `${address} closed the connection during the handshake`)
    }
    const session = this.#open(link, reply)
    this.#wanted.set(session.id, address)
    return session.info()
  }

  /** Counts a raw connection against the limits until it closes. */
  #count(conn: Connection, direction: Direction): void {
    const host = hostOf(conn.remoteAddress)
    this.#perHost.set(host, (this.#perHost.get(host) ?? 0) + 1)
    if (direction === 'inbound') this.#inbound++
    else this.#outbound++
    conn.once('close', () => {
      const n = (this.#perHost.get(host) ?? 1) - 1
      if (n > 0) this.#perHost.set(host, n)
      else this.#perHost.delete(host)
      if (direction === 'inbound') this.#inbound--
      else this.#outbound--
    })
  }

  /** Trust on first use: the key seen at `address` must match the one saved for it, unless the user accepts. */
  async #checkKnownKey(link: Link, address: string, remote: PeerAnnouncement): Promise<void> {
    const verdict = this.#knownPeers.check(address, remote.peerId)
    if (verdict.status === 'mismatch') {
      const change = {
        address,
        name: verdict.name || remote.name,
        expected: verdict.expected,
        actual: remote.peerId,
      }
      const accepted = (await this.#init.onKeyChange?.(change)) ?? false
      if (!accepted) {
        this.#dropLink(link)
        throw new PeerError(
          'KEY_CHANGED',
          keyChangedMessage(address, change.name, change.expected, change.actual),
        )
      }
    }
    if (verdict.status !== 'match') void this.#knownPeers.remember(address, remote.peerId, remote.name)
  }

  #accept(conn: Connection): void {
    if (this.#status !== 'running') {
      conn.abort()
      return
    }
    // Limits are checked before any handshake work, so a flood costs us as little as possible.
    const host = hostOf(conn.remoteAddress)
    const refusal =
      this.#inbound >= this.#limits.maxInbound
        ? `already ${this.#inbound} inbound connections (the limit)`
        : // Every local peer shares the loopback address, so the per-host limit would cap a one-machine swarm.
          !isLoopback(host) && (this.#perHost.get(host) ?? 0) >= this.#limits.maxPerHost
          ? `already ${this.#limits.maxPerHost} connections from ${host} (the limit)`
          : undefined
    if (refusal) {
      conn.abort()
      this.#report(
        new PeerError('TOO_MANY_CONNECTIONS', `refused a connection from ${conn.remoteAddress}: ${refusal}`),
      )
      return
    }
    this.#count(conn, 'inbound')
    const { signal, dispose } = this.#handshakeLimit()
    this.#upgrader
      .upgrade(conn, { role: 'responder', signal })
      .then(
        (secure) => this.#acceptSecure(secure, signal),
        (cause) => {
          conn.abort(cause as Error)
          this.#report(handshakeError(conn.remoteAddress, cause))
        },
      )
      .finally(dispose)
  }

  async #acceptSecure(secure: SecureConnection, signal: AbortSignal): Promise<void> {
    const link = this.#track(secure, 'inbound', undefined)
    let hello: Message
    try {
      hello = await this.#awaitHandshake(link, signal)
    } catch (err) {
      this.#report(err as PeerError)
      return
    }
    const reject = (code: number, reason: string) => {
      link.write({ type: 'REJECT', code, reason })
      link.closeReason = { reason: 'local', message: reason }
      void this.#closeLink(link, this.#deadline(this.#stopTimeout))
    }
    if (hello.type !== 'HELLO')
      return reject(RejectCode.PROTOCOL_VIOLATION, `expected HELLO, got ${hello.type}`)
    if (this.#status !== 'running') return reject(RejectCode.SHUTTING_DOWN, 'peer is shutting down')
    const problem = this.#checkAnnouncement(hello, secure)
    if (problem) return reject(problem.wire, problem.message)
    link.write({ type: 'WELCOME', ...this.#announcement() })
    this.#open(link, hello)
  }

  #announcement() {
    return {
      version: PROTOCOL_VERSION,
      peerId: this.id,
      name: this.name,
      listenAddrs: this.#addresses.slice(0, Limits.addresses),
      capabilities: [],
    }
  }

  #checkAnnouncement(
    a: PeerAnnouncement,
    secure: SecureConnection,
  ): { code: PeerErrorCode; wire: number; message: string } | undefined {
    if (a.peerId === this.id) {
      return {
        code: 'SELF_CONNECT',
        wire: RejectCode.SELF_CONNECT,
        message: 'a peer cannot connect to itself',
      }
    }
    // With a secure channel, the id in HELLO must be the key the handshake authenticated.
    if (secure.remotePeerId !== '' && secure.remotePeerId !== a.peerId) {
      return {
        code: 'IDENTITY_MISMATCH',
        wire: RejectCode.IDENTITY_MISMATCH,
        message: `claimed peer id ${fingerprint(a.peerId)} but authenticated as ${fingerprint(secure.remotePeerId)}`,
      }
    }
    const until = this.#cooling.get(a.peerId)
    if (until !== undefined && until > Date.now()) {
      const seconds = Math.ceil((until - Date.now()) / 1000)
      return {
        code: 'DENIED',
        wire: RejectCode.DENIED,
        message: `peer ${fingerprint(a.peerId)} is cooling down for ${seconds} s`,
      }
    }
    const { allow, deny } = this.#init
    if (deny?.includes(a.peerId) || (allow !== undefined && !allow.includes(a.peerId))) {
      return {
        code: 'DENIED',
        wire: RejectCode.DENIED,
        message: `peer ${fingerprint(a.peerId)} is not allowed`,
      }
    }
    return undefined
  }

  /** Registers a fresh connection: wires its events and, for a dialer, sends HELLO. */
  #track(conn: SecureConnection, direction: Direction, dialedAddress: string | undefined): Link {
    const link = new Link(conn, direction, dialedAddress, this.#maxFrameSize)
    this.#links.add(link)
    conn.on('data', (chunk) => this.#onData(link, chunk))
    conn.on('end', () => {
      // The remote finished writing (e.g. it retired this link right after WELCOME); finish ours too,
      // but not before a handshake reply we are still checking has been acted on.
      if (link.state.status === 'handshaking' && !link.onHandshake) link.endedEarly = true
      else void this.#closeLink(link, this.#deadline(this.#stopTimeout))
    })
    conn.on('close', (err) => this.#onClose(link, err))
    if (direction === 'outbound') link.write({ type: 'HELLO', ...this.#announcement() })
    return link
  }

  /** Resolves with the first message of the handshake (WELCOME/REJECT for a dialer, HELLO for a listener). */
  #awaitHandshake(link: Link, signal: AbortSignal): Promise<Message> {
    return new Promise<Message>((resolve, reject) => {
      const fail = (err: PeerError) => {
        link.onHandshake = undefined
        signal.removeEventListener('abort', onAbort)
        link.conn.off('close', onClose)
        this.#dropLink(link)
        reject(err)
      }
      const onAbort = () =>
        fail(new PeerError('HANDSHAKE_TIMEOUT', `no handshake from ${link.conn.remoteAddress} in time`))
      const onClose = () =>
        fail(
          new PeerError(
            'HANDSHAKE_FAILED',
            `${link.conn.remoteAddress} closed the connection during the handshake`,
          ),
        )
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      link.conn.once('close', onClose)
      link.onHandshake = (msg) => {
        link.onHandshake = undefined
        signal.removeEventListener('abort', onAbort)
        link.conn.off('close', onClose)
        resolve(msg)
      }
    })
  }

  /** The handshake succeeded: attach the link to the remote peer's session, breaking ties. */
  #open(link: Link, remote: PeerAnnouncement): Session {
    link.remote = remote
    link.state.advance('open')
    const session = this.#attach(link, remote)
    const early = link.early.splice(0)
    try {
      for (const body of early) this.#onFrame(link, body)
      this.#flushAck(link)
    } catch (err) {
      this.#violation(link, err)
    }
    if (link.endedEarly) void this.#closeLink(link, this.#deadline(this.#stopTimeout))
    return session
  }

  #attach(link: Link, remote: PeerAnnouncement): Session {
    // Learned by connecting, not by exchange: 'peer:connect' says it; no 'peer:discovered'.
    this.#learn(
      { id: remote.peerId, name: remote.name, addrs: remote.listenAddrs, lastSeen: Date.now() },
      false,
    )
    const session = this.#sessions.get(remote.peerId)
    if (!session) {
      const created = new Session(
        remote.peerId,
        link,
        this.#limits.rate === false ? 0 : this.#limits.rate.burst,
      )
      this.#sessions.set(remote.peerId, created)
      this.emit('peer:connect', created.info())
      return created
    }
    session.links.add(link)
    if (!session.online) {
      // The replacement for a lost link (a reconnection, either side dialing) or for a retired duplicate.
      clearTimeout(session.graceTimer)
      clearTimeout(session.reconnectTimer)
      session.graceTimer = undefined
      session.reconnectTimer = undefined
      // reconnectAttempt is reset by the first frame on the new link, not here: a link the remote retires at
      // once must not restart the backoff, or the retries above would never end.
      session.online = true
      this.#switchTo(session, link)
      if (session.announcedGone) {
        session.announcedGone = false
        this.emit('peer:connect', session.info())
      }
      return session
    }
    const winner = this.#preferred(session.active, link)
    const loser = winner === link ? session.active : link
    if (winner === link) this.#switchTo(session, link)
    this.#retire(loser)
    return session
  }

  /**
   * Of two links to the same peer, the one both ends keep: the one dialed by the lower peer id;
   * if one peer dialed both, the one with the lower address pair.
   */
  #preferred(a: Link, b: Link): Link {
    const initiator = (l: Link) => (l.direction === 'outbound' ? this.id : l.remote!.peerId)
    const ia = initiator(a)
    const ib = initiator(b)
    if (ia !== ib) return ia < ib ? a : b
    return a.tieKey <= b.tieKey ? a : b
  }

  #switchTo(session: Session, link: Link): void {
    session.active = link
    // Messages not yet acknowledged may have died with the old link: resend. The receiver drops duplicates by id.
    for (const p of session.pending.values()) link.write(p)
  }

  #retire(link: Link): void {
    link.write({ type: 'GOODBYE', reason: DUPLICATE_GOODBYE })
    link.goodbye = DUPLICATE_GOODBYE
    void this.#closeLink(link, this.#deadline(this.#stopTimeout))
  }

  async #closeLink(link: Link, signal: AbortSignal): Promise<void> {
    if (link.state.status === 'closed') return
    link.state.advance('closing')
    link.writer.flush()
    try {
      await link.conn.close({ signal })
    } catch {
      link.conn.abort()
    }
  }

  #dropLink(link: Link): void {
    link.state.advance('closed')
    this.#links.delete(link)
    link.conn.abort()
  }

  #onClose(link: Link, err: Error | undefined): void {
    link.state.advance('closed')
    this.#links.delete(link)
    const id = link.remote?.peerId
    const session = id === undefined ? undefined : this.#sessions.get(id)
    if (!session?.links.has(link)) return
    session.links.delete(link)
    if (session.active !== link) return
    const next = [...session.links].find((l) => l.state.status === 'open')
    if (next) {
      this.#switchTo(session, next)
      return
    }
    if (link.goodbye === DUPLICATE_GOODBYE && this.#status === 'running') {
      // The other end moved to another link we have not seen open yet: wait for it, briefly.
      session.online = false
      session.graceTimer = setTimeout(() => {
        session.graceTimer = undefined
        const message = 'the replacement connection never arrived'
        const address = this.#wanted.get(session.id)
        if (address === undefined || this.#limits.reconnect === false || this.#status !== 'running') {
          return this.#endSession(session, 'connection-lost', message)
        }
        // It may be holding a dead link of ours that it prefers (it missed our reset, e.g. in a partition): ending
        // here gave up on that peer for good. Keep dialing, as after any loss, until it lets go of the dead link.
        if (!session.announcedGone) {
          session.announcedGone = true
          this.emit('peer:disconnect', { peer: session.info(), reason: 'connection-lost', message })
        }
        this.#scheduleReconnect(session, address)
      }, this.#handshakeTimeout)
      session.graceTimer.unref?.()
      return
    }
    const { reason, message } =
      link.closeReason ??
      (link.goodbye !== undefined
        ? { reason: 'goodbye' as const, message: link.goodbye }
        : {
            // A failed integrity check means tampering or a broken peer, not a network hiccup.
            reason:
              err instanceof SecureChannelError ? ('protocol-error' as const) : ('connection-lost' as const),
            message: err?.message ?? 'the connection closed',
          })
    const address = this.#wanted.get(session.id)
    if (
      address !== undefined &&
      this.#limits.reconnect !== false &&
      this.#status === 'running' &&
      (reason === 'connection-lost' || reason === 'timeout')
    ) {
      // Say it went away, but keep its unacknowledged messages and take new ones while we dial again.
      session.online = false
      session.announcedGone = true
      this.emit('peer:disconnect', { peer: session.info(), reason, message })
      this.#scheduleReconnect(session, address)
      return
    }
    this.#endSession(session, reason, message)
  }

  #scheduleReconnect(session: Session, address: string): void {
    const policy = this.#limits.reconnect
    if (policy === false || this.#status !== 'running') return
    const attempt = ++session.reconnectAttempt
    if (attempt > policy.maxAttempts) {
      this.#endSession(
        session,
        'connection-lost',
        `gave up reconnecting to ${address} after ${policy.maxAttempts} attempts`,
      )
      return
    }
    // Exponential backoff with jitter in [50 %, 100 %], so peers that lost each other do not retry in lockstep.
    const ceiling = Math.min(policy.maxDelay, policy.initialDelay * 2 ** (attempt - 1))
    const delay = Math.round(ceiling * (0.5 + Math.random() / 2))
    session.reconnectTimer = setTimeout(() => {
      session.reconnectTimer = undefined
      if (this.#sessions.get(session.id) !== session || session.online || this.#status !== 'running') return
      this.#dial(address).catch(() => {
        if (this.#sessions.get(session.id) === session && !session.online)
          this.#scheduleReconnect(session, address)
      })
    }, delay)
    session.reconnectTimer.unref?.()
    this.emit('peer:reconnecting', { id: session.id, name: session.remote.name, attempt, delay })
  }

  #endSession(session: Session, reason: DisconnectReason, message: string): void {
    if (this.#sessions.get(session.id) !== session) return
    clearTimeout(session.graceTimer)
    clearTimeout(session.reconnectTimer)
    this.#sessions.delete(session.id)
    if (reason !== 'connection-lost' && reason !== 'timeout') this.#wanted.delete(session.id)
    const known = this.#known.get(session.id)
    if (known) known.lastSeen = session.lastSeen
    const error = new PeerError(
      'PEER_GONE',
      `${session.remote.name} disconnected before acknowledging (${message})`,
    )
    for (const p of session.pending.values()) p.reject(error)
    session.pending.clear()
    session.inFlightBytes = 0
    for (const q of session.queries.splice(0)) q.reject(error)
    for (const w of session.waiting.splice(0)) w.wake()
    for (const l of session.links) l.conn.abort()
    if (!session.announcedGone) this.emit('peer:disconnect', { peer: session.info(), reason, message })
  }

  // ---- inbound frames ------------------------------------------------------------------------

  #onData(link: Link, chunk: Uint8Array): void {
    // A link cut off for a violation may still be closing gracefully: ignore what else it sends. (The cast
    // stops TypeScript from narrowing the status for the loop below, which a frame handler can close.)
    if ((link.state.status as string) === 'closed') return
    let bodies: Uint8Array[]
    let failure: unknown
    try {
      bodies = link.decoder.push(chunk)
      // Frames before a bad length prefix come back first; the prefix's error is kept on the decoder.
      if (link.decoder.error) failure = link.decoder.error
    } catch (err) {
      bodies = []
      failure = err
    }
    link.lastReceived = Date.now()
    link.pingOutstanding = false
    try {
      for (const body of bodies) {
        if (link.state.status === 'closed') return
        this.#onFrame(link, body)
      }
      // Every frame of the chunk was decoded into fresh strings and the decoder holds none of it: its
      // memory can serve the next record (a large one arrives in recycled memory).
      if (link.decoder.buffered === 0 && link.early.length === 0) link.conn.recycle?.(chunk)
      // One cumulative acknowledgement for every TEXT of this read (PROTOCOL.md, "Acknowledgements").
      this.#flushAck(link)
      // No flush here: the writer's own flush (setImmediate, right after this poll's I/O) also takes what
      // message handlers send back from `await` continuations, so a reply and its ACK_UPTO share one write.
    } catch (err) {
      failure = err
    }
    if (failure !== undefined) this.#violation(link, failure)
  }

  #onFrame(link: Link, body: Uint8Array): void {
    if (link.state.status === 'handshaking') {
      const version = peekHelloVersion(body)
      if (link.direction === 'inbound' && version !== undefined && version !== PROTOCOL_VERSION) {
        link.write({
          type: 'REJECT',
          code: RejectCode.INCOMPATIBLE_VERSION,
          reason: `this peer speaks protocol version ${PROTOCOL_VERSION}, not ${version}`,
        })
        link.closeReason = { reason: 'protocol-error', message: 'incompatible protocol version' }
        void this.#closeLink(link, this.#deadline(this.#stopTimeout))
        link.onHandshake = undefined
        return
      }
      if (!link.onHandshake) {
        // The remote already considers the link open and may talk; hold its frames until we do too.
        if (link.early.length >= MAX_EARLY_FRAMES)
          throw new ProtocolError('INVALID_FIELD', 'too many frames during handshake')
        link.early.push(body)
        return
      }
      link.onHandshake(decodeMessage(body))
      return
    }
    // A link closing after a refused handshake has no remote: what it sends after its HELLO is ignored
    // (it used to reach `link.remote!` below and fail with a TypeError).
    if ((link.state.status !== 'open' && link.state.status !== 'closing') || !link.remote) return
    const msg = decodeMessage(body)
    const session = this.#sessions.get(link.remote!.peerId)
    if (!session) return
    session.lastSeen = link.lastReceived
    if (msg.type !== 'GOODBYE') session.reconnectAttempt = 0
    // A TEXT spends its token below, once it is known not to be a re-send of a delivered one.
    if (
      msg.type !== 'TEXT' &&
      msg.type !== 'ACK' &&
      msg.type !== 'ACK_UPTO' &&
      msg.type !== 'PONG' &&
      msg.type !== 'GOODBYE'
    )
      this.#spend(session)
    switch (msg.type) {
      case 'TEXT': {
        if (link.ackStream !== msg.stream) this.#flushAck(link)
        const seen = this.#seenFrom(session.id, msg.stream)
        link.ackStream = msg.stream
        // At or below the highest seq delivered: a re-send of a delivered TEXT; acknowledge it again.
        if (msg.seq <= seen.highest) {
          link.ackSeq = seen.highest
          return
        }
        try {
          this.#spend(session)
        } catch (err) {
          // Refuse the TEXT that broke the limit by its seq, so its send() fails with REFUSED, not PEER_GONE;
          // the ACK_UPTO for the TEXTs before it goes first.
          this.#flushAck(link)
          link.write({ type: 'ACK', stream: msg.stream, seq: msg.seq, status: AckStatus.REFUSED })
          throw err
        }
        seen.highest = link.ackSeq = msg.seq
        session.messagesIn++
        this.emit('message', {
          id: messageId(msg.stream, msg.seq),
          from: session.from,
          text: msg.text,
          sentAt: msg.sentAt,
          receivedAt: link.lastReceived,
        })
        return
      }
      case 'ACK': {
        // Another stream's: an answer to a session this peer has since ended.
        if (msg.stream !== session.stream) return
        const p = session.pending.get(msg.seq)
        if (!p) return
        this.#settled(session, p)
        if (msg.status === AckStatus.DELIVERED) {
          session.messagesOut++
          p.resolve({ id: messageId(msg.stream, msg.seq), peerId: session.id, ackedAt: Date.now() })
        } else {
          p.reject(new PeerError('REFUSED', `${session.remote.name} refused the message`))
        }
        return
      }
      case 'ACK_UPTO': {
        if (msg.stream !== session.stream) return
        const ackedAt = Date.now()
        // Pending is in seq order: settle from the front up to the acknowledged seq.
        for (
          let p = session.pending.first();
          p !== undefined && p.seq <= msg.seq;
          p = session.pending.first()
        ) {
          this.#settled(session, p)
          session.messagesOut++
          p.resolve({ id: messageId(msg.stream, p.seq), peerId: session.id, ackedAt })
        }
        return
      }
      case 'PEERS_REQUEST':
        link.write({ type: 'PEERS', peers: this.#peerRecords(link.remote!.peerId) })
        return
      case 'PEERS': {
        // Only answers are believed: an unsolicited list could fill our known peers with junk.
        const query = session.queries.shift()
        if (!query) return
        for (const r of msg.peers)
          this.#learn({ id: r.peerId, name: r.name, addrs: r.addrs, lastSeen: r.lastSeen })
        query.resolve(msg.peers)
        return
      }
      case 'PING':
        link.write({ type: 'PONG', nonce: msg.nonce })
        return
      case 'PONG':
        return
      case 'GOODBYE':
        link.goodbye = msg.reason
        void this.#closeLink(link, this.#deadline(this.#stopTimeout))
        return
      default:
        throw new ProtocolError('INVALID_FIELD', `unexpected ${msg.type} after the handshake`)
    }
  }

  /** Takes one token from the peer's bucket; a peer past its rate is a violation. */
  #spend(session: Session): void {
    const rate = this.#limits.rate
    if (rate === false) return
    const now = Date.now()
    session.tokens = Math.min(
      rate.burst,
      session.tokens + ((now - session.refilledAt) * rate.perSecond) / 1000,
    )
    session.refilledAt = now
    if (--session.tokens < 0) {
      throw new PeerError('REFUSED', `sent more than ${rate.perSecond} messages/s (burst ${rate.burst})`)
    }
  }

  /** Removes a pending send and lets a waiting sender use the room it frees. */
  #settled(session: Session, p: Pending): void {
    if (!session.pending.delete(p.seq)) return
    session.inFlightBytes -= p.bytes
    this.#admit(session)
    if (this.#onAllAcked && session.pending.size === 0 && this.#allAcked()) this.#onAllAcked()
  }

  #allAcked(): boolean {
    for (const s of this.#sessions.values()) if (s.pending.size > 0) return false
    return true
  }

  /**
   * Wakes waiting senders while there is room. Waking is asynchronous, so each one's room is reserved
   * here: without it one ACK woke every waiter and the budget was overrun by the whole queue.
   */
  #admit(session: Session): void {
    while (session.waiting.length > 0 && this.#hasRoom(session)) {
      const next = session.waiting.shift()!
      session.admitted++
      session.inFlightBytes += next.bytes
      next.wake()
    }
  }

  #hasRoom(session: Session): boolean {
    return (
      session.pending.size + session.admitted < this.#limits.inFlightMessages &&
      session.inFlightBytes < this.#limits.inFlightBytes
    )
  }

  #violation(link: Link, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    link.closeReason = { reason: 'protocol-error', message }
    // A peer that broke the protocol or a limit is refused for a while (by key: addresses are shared).
    const id = link.remote?.peerId
    if (id !== undefined) this.#cool(id)
    this.#report(
      new PeerError('REJECTED', `closed the connection to ${link.conn.remoteAddress}: ${message}`, {
        cause: err,
      }),
    )
    const open = link.state.status === 'open' || link.state.status === 'closing'
    link.state.advance('closed')
    if (!open || link.conn.status !== 'open') {
      link.conn.abort(err instanceof Error ? err : undefined)
      return
    }
    // An abort dropped the ACKs of messages accepted just before the violation (they were delivered, yet their
    // senders saw PEER_GONE) and left the remote guessing, so it redialed into the cool-down. Flush those ACKs
    // and a GOODBYE with the reason, then close, cut short after stopTimeout.
    this.#flushAck(link)
    link.write({ type: 'GOODBYE', reason: clip(message, Limits.reasonBytes) })
    link.writer.flush()
    link.conn.close({ signal: this.#deadline(this.#stopTimeout) }).catch(() => link.conn.abort())
  }

  #cool(peerId: string): void {
    this.#cooling.delete(peerId)
    this.#cooling.set(peerId, Date.now() + this.#limits.cooldown)
    if (this.#cooling.size > MAX_COOLING) this.#cooling.delete(this.#cooling.keys().next().value!)
  }

  /** Writes the ACK_UPTO owed on `link`, if any. */
  #flushAck(link: Link): void {
    if (link.ackSeq === 0) return
    link.write({ type: 'ACK_UPTO', stream: link.ackStream, seq: link.ackSeq })
    link.ackSeq = 0
  }

  /**
   * What was delivered from `sender` on `stream` (a new stream starts over). It outlives the session, so a
   * re-send after a reconnect is still recognised. Senders are forgotten least recently heard first.
   */
  #seenFrom(sender: string, stream: string): Seen {
    let seen = this.#seen.get(sender)
    if (!seen) {
      seen = { stream, highest: 0, previous: '', previousHighest: 0, touched: 0 }
      if (this.#seen.size >= DEDUP_SENDERS) this.#seen.delete(this.#seen.keys().next().value!)
      this.#seen.set(sender, seen)
    } else if (seen.touched < this.#seenClock - DEDUP_SENDERS) {
      // Re-inserting moves the sender to the back of the LRU order; done only for senders that drifted
      // towards the front, so the per-message cost stays one Map lookup.
      this.#seen.delete(sender)
      this.#seen.set(sender, seen)
    }
    if (seen.stream !== stream) {
      // A new stream (the sender started a new session) starts over; the one before is kept, so that a
      // late re-send from it is still recognised.
      const { stream: previous, highest } = seen
      seen.highest = seen.previous === stream ? seen.previousHighest : 0
      seen.stream = stream
      seen.previous = previous
      seen.previousHighest = highest
    }
    seen.touched = ++this.#seenClock
    return seen
  }

  // ---- peer exchange -------------------------------------------------------------------------

  #learn(p: Known, announce = true): void {
    if (p.id === this.id) return
    const known = this.#known.get(p.id)
    if (known) {
      known.name = p.name
      if (p.addrs.length > 0) known.addrs = [...p.addrs]
      known.lastSeen = Math.max(known.lastSeen, p.lastSeen)
      return
    }
    const max = this.#init.maxKnownPeers ?? 1024
    if (this.#known.size >= max) {
      // Forget the least recently seen peer that is not connected.
      let victim: Known | undefined
      for (const k of this.#known.values()) {
        if (!this.#sessions.has(k.id) && (!victim || k.lastSeen < victim.lastSeen)) victim = k
      }
      if (!victim) return
      this.#known.delete(victim.id)
    }
    const entry = { id: p.id, name: p.name, addrs: [...p.addrs], lastSeen: p.lastSeen }
    this.#known.set(p.id, entry)
    if (announce)
      this.emit('peer:discovered', { ...entry, connected: this.#sessions.get(p.id)?.online === true })
  }

  #peerRecords(exclude: string): PeerRecord[] {
    const out: PeerRecord[] = []
    for (const k of this.#known.values()) {
      if (k.id === exclude || k.addrs.length === 0) continue
      const session = this.#sessions.get(k.id)
      out.push({
        peerId: k.id,
        name: k.name,
        addrs: k.addrs,
        lastSeen: session ? session.lastSeen : k.lastSeen,
      })
      if (out.length === MAX_PEERS_PER_ANSWER) break
    }
    return out
  }

  peers(): PeerList {
    const online = [...this.#sessions.values()].filter((s) => s.online)
    const connected = online.map((s) => s.info())
    const known = [...this.#known.values()]
      .filter((k) => !this.#sessions.get(k.id)?.online)
      .map((k) => ({ id: k.id, name: k.name, addrs: [...k.addrs], lastSeen: k.lastSeen, connected: false }))
    return { connected, known }
  }

  async queryPeers(target: string, options?: SendOptions): Promise<KnownPeer[]> {
    this.#assertRunning()
    const session = this.#resolve(target)
    if (session.queries.length >= MAX_PENDING_QUERIES) {
      throw new PeerError(
        'REFUSED',
        `already waiting on ${MAX_PENDING_QUERIES} answers from ${session.remote.name}`,
      )
    }
    const records = await new Promise<PeerRecord[]>((resolve, reject) => {
      const timeout = options?.timeout ?? this.#ackTimeout
      const entry = {
        resolve: (r: PeerRecord[]) => {
          clearTimeout(timer)
          resolve(r)
        },
        reject: (e: PeerError) => {
          clearTimeout(timer)
          reject(e)
        },
      }
      const timer = setTimeout(() => {
        const i = session.queries.indexOf(entry)
        // Leave a placeholder so a late PEERS answers this slot, not the next query.
        if (i >= 0) session.queries[i] = { resolve: () => {}, reject: () => {} }
        reject(new PeerError('QUERY_TIMEOUT', `${session.remote.name} did not answer the peer query in time`))
      }, timeout)
      timer.unref?.()
      session.queries.push(entry)
      session.active.write({ type: 'PEERS_REQUEST' })
    })
    return records
      .filter((r) => r.peerId !== this.id)
      .map((r) => ({
        id: r.peerId,
        name: r.name,
        addrs: r.addrs,
        lastSeen: r.lastSeen,
        connected: this.#sessions.get(r.peerId)?.online === true,
      }))
  }

  async connectToActive(options?: ConnectToActiveOptions): Promise<ConnectResult[]> {
    this.#assertRunning()
    const results: ConnectResult[] = []
    const attempted = new Set<string>()
    const rounds = options?.rounds ?? 3
    for (let round = 0; round < Math.max(1, rounds); round++) {
      if (rounds > 0) {
        await Promise.allSettled([...this.#sessions.keys()].map((id) => this.queryPeers(id, options)))
      }
      const todo = [...this.#known.values()].filter(
        (k) => !this.#sessions.get(k.id)?.online && !attempted.has(k.id) && k.addrs.length > 0,
      )
      if (todo.length === 0) break
      for (const k of todo) attempted.add(k.id)
      results.push(
        ...(await mapConcurrent(todo, this.#init.connectConcurrency ?? 8, (k) =>
          this.#connectKnown(k, options),
        )),
      )
      if (options?.signal?.aborted) break
    }
    return results
  }

  async #connectKnown(k: Known, options?: AbortOptions): Promise<ConnectResult> {
    let last: PeerError | undefined
    for (const address of k.addrs) {
      try {
        const peer = await this.connect(address, options)
        return { peerId: k.id, name: k.name, address, ok: true, peer }
      } catch (err) {
        last = err instanceof PeerError ? err : new PeerError('DIAL_FAILED', String(err), { cause: err })
      }
    }
    return { peerId: k.id, name: k.name, address: k.addrs[0], ok: false, error: last! }
  }

  // ---- sending -------------------------------------------------------------------------------

  send(target: string, text: string, options?: SendOptions): Promise<SendResult> {
    // Not `async`: on the hot path (a connected target) the promise from #sendTo is the only one made.
    try {
      this.#assertRunning()
      const bytes = textBytes(text)
      const session = this.#findSession(target)
      if (session) return this.#sendTo(session, text, bytes, options)
      if (!looksLikeAddress(target)) throw this.#unknown(target)
      return this.#dialAndSend(target, text, bytes, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  async #dialAndSend(
    address: string,
    text: string,
    bytes: number,
    options?: SendOptions,
  ): Promise<SendResult> {
    const info = await this.connect(address, options)
    const session = this.#sessions.get(info.id)
    if (!session) throw this.#unknown(address)
    return this.#sendTo(session, text, bytes, options)
  }

  /** Sends now when the peer has room for more unacknowledged text; otherwise waits for room first. */
  #sendTo(session: Session, text: string, bytes: number, options?: SendOptions): Promise<SendResult> {
    if (this.#hasRoom(session) && session.waiting.length === 0)
      return this.#enqueue(session, text, bytes, options)
    return this.#sendWhenRoom(session, text, bytes, options)
  }

  async #sendWhenRoom(
    session: Session,
    text: string,
    bytes: number,
    options?: SendOptions,
  ): Promise<SendResult> {
    // Backpressure: wait for acks to make room, in order; a bounded number of senders may wait.
    if (session.waiting.length >= this.#limits.waiting) {
      throw new PeerError(
        'QUEUE_FULL',
        `${session.waiting.length} messages to ${session.remote.name} already wait for room; try again later`,
      )
    }
    await new Promise<void>((resolve, reject) => {
      const signal = options?.signal
      const entry = {
        bytes,
        wake: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      // An abort while waiting takes effect now, not once room frees up.
      const onAbort = () => {
        const i = session.waiting.indexOf(entry)
        if (i >= 0) session.waiting.splice(i, 1)
        reject(new PeerError('ABORTED', 'the send was aborted'))
      }
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      session.waiting.push(entry)
    })
    if (this.#sessions.get(session.id) !== session) {
      throw new PeerError('PEER_GONE', `${session.remote.name} disconnected before the message could be sent`)
    }
    // The room #admit reserved for us becomes this message's own entry below.
    session.admitted--
    session.inFlightBytes -= bytes
    return this.#enqueue(session, text, bytes, options)
  }

  /** Writes the TEXT and records it as pending until its acknowledgement (or a failure) settles the promise. */
  #enqueue(session: Session, text: string, bytes: number, options?: SendOptions): Promise<SendResult> {
    const signal = options?.signal
    if (signal?.aborted) {
      this.#admit(session)
      return Promise.reject(new PeerError('ABORTED', 'the send was aborted'))
    }
    // The hot path allocates the promise and one object: the pending entry is also the TEXT written.
    const promise = new Promise<SendResult>(captureResolvers)
    const now = Date.now()
    const entry: Pending = {
      type: 'TEXT',
      stream: session.stream,
      seq: session.nextSeq++,
      sentAt: now,
      text,
      bytes,
      deadline: now + (options?.timeout ?? this.#ackTimeout),
      resolve: capturedResolve,
      reject: capturedReject,
    }
    if (signal) this.#abortOn(signal, session, entry)
    session.pending.push(entry)
    session.inFlightBytes += bytes
    try {
      // While reconnecting, the message waits in `pending` and goes out on the new link.
      if (session.online) session.active.write(entry)
    } catch (err) {
      // Not written (the codec refused it): fail this send now rather than leave it to time out.
      this.#settled(session, entry)
      entry.reject(err as PeerError)
    }
    return promise
  }

  /** An abort fails a pending send at once and frees its room; settling it first unhooks the listener. */
  #abortOn(signal: AbortSignal, session: Session, entry: Pending): void {
    const { resolve, reject } = entry
    const onAbort = () => {
      if (session.pending.get(entry.seq) !== entry) return
      this.#settled(session, entry)
      reject(new PeerError('ABORTED', 'the send was aborted'))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    entry.resolve = (r) => {
      signal.removeEventListener('abort', onAbort)
      resolve(r)
    }
    entry.reject = (e) => {
      signal.removeEventListener('abort', onAbort)
      reject(e)
    }
  }

  async broadcast(text: string, options?: SendOptions): Promise<BroadcastResult[]> {
    this.#assertRunning()
    const bytes = textBytes(text)
    const sessions = [...this.#sessions.values()].filter((s) => s.online)
    return Promise.all(
      sessions.map((s) =>
        this.#sendTo(s, text, bytes, options).then(
          (result): BroadcastResult => ({ peerId: s.id, ok: true, result }),
          (error: PeerError): BroadcastResult => ({ peerId: s.id, ok: false, error }),
        ),
      ),
    )
  }

  async disconnect(target: string, reason = 'disconnected by the user'): Promise<void> {
    const session = this.#resolve(target)
    this.#wanted.delete(session.id)
    if (!session.online) return this.#endSession(session, 'local', reason)
    const signal = this.#deadline(this.#stopTimeout)
    await Promise.all(
      [...session.links].map((link) => {
        link.write({ type: 'GOODBYE', reason })
        link.closeReason = { reason: 'local', message: reason }
        return this.#closeLink(link, signal)
      }),
    )
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** An AbortSignal that fires after `ms` on the (fakeable) global timers, cleared when the peer stops. */
  #deadline(ms: number): AbortSignal {
    const controller = new AbortController()
    this.#after(ms, () => controller.abort(new PeerError('ABORTED', `timed out after ${ms} ms`)))
    return controller.signal
  }

  /** Runs `fire` after `ms` on the (fakeable) global timers; returns what cancels it. Cleared when the peer stops. */
  #after(ms: number, fire: () => void): () => void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      fire()
    }, ms)
    timer.unref?.()
    this.#timers.add(timer)
    return () => {
      clearTimeout(timer)
      this.#timers.delete(timer)
    }
  }

  /**
   * The signal a handshake runs under: it aborts after handshakeTimeout, when the peer halts, or with
   * `outer`. `dispose()` once the handshake is over: a timer left to fire held about 1 KiB per connection
   * for 10 s and built an error with a stack when it fired (AbortSignal.any cost 40–70 µs per connection).
   */
  #handshakeLimit(outer?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
    const controller = new AbortController()
    const ms = this.#handshakeTimeout
    const cancel = this.#after(ms, () =>
      controller.abort(new PeerError('HANDSHAKE_TIMEOUT', `timed out after ${ms} ms`)),
    )
    const halt = this.#halt.signal
    const onHalt = () => controller.abort(halt.reason)
    const onOuter = () => controller.abort(outer!.reason)
    halt.addEventListener('abort', onHalt, { once: true })
    outer?.addEventListener('abort', onOuter, { once: true })
    if (halt.aborted) onHalt()
    else if (outer?.aborted) onOuter()
    return {
      signal: controller.signal,
      dispose: () => {
        cancel()
        halt.removeEventListener('abort', onHalt)
        outer?.removeEventListener('abort', onOuter)
      },
    }
  }

  #onTick(): void {
    const now = Date.now()
    for (const link of this.#links) {
      if (link.state.status !== 'open') continue
      const silent = now - link.lastReceived
      if (link.blockedSince !== 0 && now - link.blockedSince >= this.#idleTimeout) {
        // It stopped reading what we send: its queue would otherwise grow in our memory forever.
        link.closeReason = {
          reason: 'timeout',
          message: `stopped reading for ${Math.round((now - link.blockedSince) / 1000)} s`,
        }
        link.conn.abort()
      } else if (silent >= this.#idleTimeout) {
        link.closeReason = { reason: 'timeout', message: `no answer for ${Math.round(silent / 1000)} s` }
        link.conn.abort()
      } else if (silent >= this.#pingInterval && !link.pingOutstanding) {
        link.pingOutstanding = true
        link.write({ type: 'PING', nonce: (Math.random() * 0xffffffff) >>> 0 })
      }
    }
    for (const session of this.#sessions.values()) {
      for (const p of session.pending.values()) {
        if (p.deadline > now) continue
        this.#settled(session, p)
        p.reject(
          new PeerError('ACK_TIMEOUT', `${session.remote.name} did not acknowledge the message in time`),
        )
      }
    }
  }

  #findSession(target: string): Session | undefined {
    const byId = this.#sessions.get(target)
    if (byId) return byId
    const byAddress = this.#sessionByAddress(target)
    if (byAddress) return byAddress
    if (/^[0-9a-f]{4,}$/.test(target.replace(':', ''))) {
      const prefix = target.replace(':', '')
      const matches = [...this.#sessions.values()].filter((s) => s.id.startsWith(prefix))
      if (matches.length === 1) return matches[0]
    }
    const byName = [...this.#sessions.values()].filter((s) => s.remote.name === target)
    return byName.length === 1 ? byName[0] : undefined
  }

  #sessionByAddress(address: string, onlineOnly = false): Session | undefined {
    for (const s of this.#sessions.values()) {
      if (onlineOnly && !s.online) continue
      for (const l of s.links) {
        if (l.dialedAddress === address || l.conn.remoteAddress === address) return s
      }
      if (s.remote.listenAddrs.includes(address)) return s
    }
    return undefined
  }

  #resolve(target: string): Session {
    const session = this.#findSession(target)
    if (!session?.online) throw this.#unknown(target)
    return session
  }

  #unknown(target: string): PeerError {
    return new PeerError('NOT_CONNECTED', `no connected peer matches "${target}"`)
  }

  #assertRunning(): void {
    if (this.#status !== 'running') throw this.#notRunning()
  }

  #notRunning(): PeerError {
    const hint = this.#status === 'idle' ? '; call start() first' : ''
    return new PeerError('NOT_RUNNING', `this peer is ${this.#status}${hint}`)
  }

  #report(err: PeerError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }
}

interface Seen {
  stream: string
  highest: number
  previous: string
  previousHighest: number
  touched: number
}

function textBytes(text: string): number {
  const bytes = utf8Length(text)
  if (bytes > Limits.textBytes) {
    throw new PeerError('MESSAGE_TOO_LONG', `the message is ${bytes} bytes; the limit is ${Limits.textBytes}`)
  }
  // Only a text with non-ASCII characters can hold a lone surrogate, which UTF-8 cannot carry.
  if (bytes !== text.length && !(text as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new PeerError('INVALID_TEXT', 'the message holds a lone UTF-16 surrogate, which UTF-8 cannot carry')
  }
  return bytes
}

/** `text` cut to at most `max` UTF-8 bytes, on a character boundary. */
function clip(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let out = text.slice(0, max)
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1)
  return out
}

/**
 * Addresses others can dial: a wildcard bind (0.0.0.0, [::]) is not one, so it becomes this machine's
 * interface addresses with the bound port (reachable ones first, loopback last); anything else is kept.
 */
function announceable(bound: string): string[] {
  const i = bound.lastIndexOf(':')
  const host = bound.slice(0, i)
  const port = bound.slice(i + 1)
  const v4 = host === '0.0.0.0'
  if (!v4 && host !== '[::]') return [bound]
  const out: string[] = []
  for (const nets of Object.values(networkInterfaces())) {
    for (const net of nets ?? []) {
      if (net.family === 'IPv4') out.push(`${net.address}:${port}`)
      else if (!v4 && !net.address.startsWith('fe80')) out.push(`[${net.address}]:${port}`)
    }
  }
  out.sort((a, b) => Number(isLoopback(hostOf(a))) - Number(isLoopback(hostOf(b))))
  return out.length > 0 ? out.slice(0, Limits.addresses) : [bound]
}

function isLoopback(host: string): boolean {
  return host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.')
}

function hostOf(address: string): string {
  const i = address.lastIndexOf(':')
  return (i < 0 ? address : address.slice(0, i)).replace(/^\[|\]$/g, '')
}

function secretBytes(secret: string | Uint8Array): Uint8Array {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret
}

function handshakeError(address: string, cause: unknown): PeerError {
  const c = (cause as { code?: string }).code
  const code = c === 'HANDSHAKE_TIMEOUT' || c === 'STOPPED' ? c : 'HANDSHAKE_FAILED'
  return new PeerError(code, `secure handshake with ${address} failed: ${(cause as Error).message}`, {
    cause,
  })
}

function looksLikeAddress(target: string): boolean {
  return /^(\[[0-9a-fA-F:.]+\]|[^\s:]+):\d{1,5}$/.test(target)
}

/** Resolves when `promise` settles or `signal` aborts, whichever is first. Never rejects. */
function raceSignal(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
    promise.then(done, done)
  })
}

async function mapConcurrent<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
