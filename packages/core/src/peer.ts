import { EventEmitter, setMaxListeners } from 'node:events'
import { displayNameProblem, Limits, type PeerRecord, PROTOCOL_VERSION } from '@parley/protocol'
import { processHandshakeGate } from './admission.js'
import { connectToActive } from './connect-to-active.js'
import { ConnectionManager } from './connection-manager.js'
import { wrongPeer } from './dialer.js'
import { findSession, keysNamed, knownByIdOrPrefix, notConnected, sessionByAddress } from './find-target.js'
import { generateIdentity, type Identity } from './identity.js'
import { memoryKnownPeers } from './known-peers.js'
import { type ResolvedLimits, resolveLimits } from './limits.js'
import { PeerError } from './peer-errors.js'
import { PeerStore, reachableFirst } from './peer-store.js'
import type {
  BroadcastOptions,
  BroadcastResult,
  ConnectOptions,
  ConnectResult,
  ConnectToActiveOptions,
  ConnectToActiveResult,
  KeyChange,
  KnownPeer,
  Peer,
  PeerEvents,
  PeerInfo,
  PeerInit,
  PeerList,
  PeerResources,
  PeerStatus,
  PendingKeyChange,
  SendManyResult,
  SendOptions,
  SendResult,
} from './peer-types.js'
import { noiseUpgrader } from './secure/channel.js'
import { CHAT_PROTOCOL, type ChatHandler, ChatService } from './services/chat.js'
import { PEERS_PROTOCOL, type PeerExchangeHandler, PeerExchangeService } from './services/peer-exchange.js'
import type { Service } from './services/service.js'
import type { Session } from './session.js'
import { TransientSessions } from './transient-sessions.js'
import type { AbortOptions, Listener } from './transport.js'
import { Trust } from './trust.js'
import { announceable, looksLikeAddress, raceSignal, secretBytes, textBytes } from './util.js'

export { DUPLICATE_GOODBYE, EVICTED_GOODBYE } from './connection-host.js'
export type { Peer, PeerResources } from './peer-types.js'

/** Creates a peer. Call `start()` to listen. */
export function createPeer(init: PeerInit): Peer {
  return new ParleyPeer(init)
}

/**
 * The composition: a connection manager (links and sessions), a peer store, and the services that
 * run on every session (chat, peer exchange, and the caller's own). The public API routes to them.
 */
class ParleyPeer extends EventEmitter<PeerEvents> implements Peer {
  readonly id: string
  readonly name: string
  #status: PeerStatus = 'idle'
  readonly #init: PeerInit
  readonly #limits: ResolvedLimits
  readonly #store: PeerStore
  readonly #chat: ChatService
  readonly #manager: ConnectionManager
  readonly #trust: Trust
  readonly #listeners: Listener[] = []
  #addresses: string[] = []
  #timer: ReturnType<typeof setInterval> | undefined
  #stopping: Promise<void> | undefined
  /** Sessions opened only to deliver a `send()`, closed once idle. */
  readonly #transient = new TransientSessions()

  constructor(init: PeerInit) {
    super()
    this.#init = init
    const identity: Identity = init.identity ?? generateIdentity()
    this.id = identity.peerId
    this.name = init.name ?? `peer-${this.id.slice(0, 16)}`
    if (Buffer.byteLength(this.name) > Limits.nameBytes) {
      throw new PeerError('MESSAGE_TOO_LONG', `the name is longer than ${Limits.nameBytes} bytes`)
    }
    const nameProblem = displayNameProblem(this.name)
    if (nameProblem !== undefined) throw new PeerError('INVALID_NAME', `the name ${nameProblem}`)
    const limits = resolveLimits(init)
    this.#limits = limits
    this.#store = new PeerStore({
      selfId: this.id,
      maxEntries: limits.maxKnownPeers,
      maxPerSource: 32,
      hearsayTtl: 60 * 60_000,
      goneTtl: 10 * 60_000,
    })
    this.#chat = new ChatService({
      ackTimeout: limits.ackTimeout,
      inFlightMessages: limits.inFlightMessages,
      inFlightBytes: limits.inFlightBytes,
      waiting: limits.waiting,
      pace: limits.sendPace,
      onMessage: (m) => this.emit('message', m),
      isConnected: (id) => this.#manager.sessions.has(id),
    })
    const pex = new PeerExchangeService({
      store: this.#store,
      maxFrameSize: limits.maxFrameSize,
      isConnected: (id) => this.#manager.sessions.get(id)?.online === true,
      lastSeenOf: (e) => this.#manager.sessions.get(e.id)?.lastSeen ?? e.lastSeen,
      onDiscovered: (p) => this.emit('peer:discovered', p),
    })
    const services: Service[] = [this.#chat, pex, ...(init.services ?? [])]
    this.#trust = new Trust(
      init.knownPeers ?? memoryKnownPeers(),
      init.onKeyChange,
      (err) => this.#report(err),
      (name, peerId) => this.#store.firstHandNamed(name).some((id) => id !== peerId),
    )
    this.#manager = new ConnectionManager({
      transport: init.transport,
      upgrader:
        init.upgrader ??
        noiseUpgrader({
          identity,
          handshakeTimeout: limits.handshakeTimeout,
          ...(init.networkSecret !== undefined ? { networkSecret: secretBytes(init.networkSecret) } : {}),
          ...(init.cipher !== undefined ? { cipher: init.cipher } : {}),
        }),
      selfId: this.id,
      services,
      trust: this.#trust,
      allow: init.allow,
      deny: init.deny,
      limits,
      gate: init.handshakeGate ?? processHandshakeGate,
      announcement: () => ({
        version: PROTOCOL_VERSION,
        peerId: this.id,
        name: this.name,
        listenAddrs: this.#addresses.slice(0, Limits.addresses),
        capabilities: services.map((s) => s.protocol),
      }),
      isRunning: () => this.#status === 'running',
      events: {
        // Learned by connecting, not by exchange: 'peer:connect' says it; no 'peer:discovered'.
        learned: (remote, direction, dialedAddress, host) =>
          void this.#store.learnDirect(
            remote.peerId,
            remote.name,
            reachableFirst(remote.listenAddrs, dialedAddress, host, remote.peerId),
            { dialled: direction === 'outbound', connected: (id) => this.#manager.sessions.has(id), host },
          ),
        opened: (session) => this.emit('peer:connect', session.info()),
        resumed: (session) => this.emit('peer:connect', session.info()),
        lost: (session, reason, message) =>
          this.emit('peer:disconnect', { peer: session.info(), reason, message }),
        ended: (session, reason, message) => {
          this.#store.touch(session.id, session.lastSeen)
          if (reason === 'goodbye') this.#store.markGone(session.id)
          if (!session.announcedGone) this.emit('peer:disconnect', { peer: session.info(), reason, message })
        },
        reconnecting: (event) => this.emit('peer:reconnecting', event),
        report: (err) => this.#report(err),
      },
    })
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
      // One address or several (TCP and a DHT key side by side, say), all on the one transport.
      for (const address of listen === false ? [] : typeof listen === 'string' ? [listen] : listen) {
        const listener = await this.#init.transport.listen(
          address,
          (conn) => this.#manager.accept(conn),
          options,
        )
        this.#listeners.push(listener)
      }
      this.#addresses = this.#init.announce ?? this.#listeners.flatMap((l) => announceable(l.address))
    } catch (err) {
      await Promise.allSettled(this.#listeners.splice(0).map((l) => l.close()))
      this.#status = 'idle'
      throw err
    }
    const l = this.#limits
    const tick = Math.max(50, Math.min(l.pingInterval, l.idleTimeout, l.ackTimeout) / 4)
    this.#timer = setInterval(() => this.#onTick(), tick)
    this.#timer.unref?.()
    this.#status = 'running'
  }

  stop(options?: AbortOptions): Promise<void> {
    const signal = options?.signal
    if (signal && !this.#stopping && this.#status !== 'idle') {
      // Cut the graceful part short when the caller gives up waiting.
      const onAbort = () => {
        if (this.#status !== 'stopped') this.destroy()
      }
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    }
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
    const manager = this.#manager
    const deadline = manager.timers.deadline(this.#limits.stopTimeout)
    // Every link's close listens on this one deadline: with over 10 peers Node warned of a listener leak.
    setMaxListeners(0, deadline)
    const listenerClosed = Promise.allSettled(this.#listeners.map((l) => l.close()))
    // 1. Give in-flight messages half the budget to be acknowledged, so each settles as delivered if it can.
    if (!this.#chat.allAcked()) {
      await raceSignal(
        new Promise<void>((resolve) => {
          this.#chat.onAllAcked = resolve
        }),
        manager.timers.deadline(this.#limits.stopTimeout / 2),
      )
    }
    // 2. GOODBYE to everyone, then close every connection gracefully, bounded.
    for (const link of manager.links) {
      if (link.state.status === 'open') link.write({ type: 'GOODBYE', reason: 'peer is shutting down' })
      link.closeReason ??= { reason: 'local', message: 'this peer stopped' }
    }
    await raceSignal(Promise.all([...manager.links].map((l) => manager.closeLink(l, deadline))), deadline)
    for (const link of manager.links) link.conn.abort()
    await listenerClosed
    await this.#init.transport.close?.().catch(() => {})
    this.#finish()
  }

  destroy(err?: Error): void {
    if (this.#status === 'stopped') return
    this.#status = 'stopping'
    for (const l of this.#listeners) void l.close()
    void this.#init.transport.close?.().catch(() => {})
    for (const link of this.#manager.links) {
      link.closeReason ??= { reason: 'local', message: err?.message ?? 'this peer was destroyed' }
      link.conn.abort(err)
    }
    this.#finish()
    this.#stopping ??= Promise.resolve()
  }

  #finish(): void {
    const manager = this.#manager
    // Without this a dial or accept mid-handshake outlived stop(): its connection and timers stayed until the handshake timeout.
    manager.halt.abort(new PeerError('STOPPED', 'this peer stopped'))
    clearInterval(this.#timer)
    manager.timers.clear()
    // Sessions end through their links' close events; anything left (e.g. waiting to reconnect) is failed here.
    for (const session of manager.sessions.values()) manager.endSession(session, 'local', 'this peer stopped')
    manager.wanted.clear()
    this.#status = 'stopped'
  }

  #onTick(): void {
    const now = Date.now()
    this.#manager.tick(now)
    this.#chat.tick(now)
    this.#store.expire(now, (id) => this.#manager.sessions.has(id))
    this.#transient.tick(now, this.#manager, this.#limits.transientIdleTimeout, this.#init.retain)
  }

  // ---- connections --------------------------------------------------------------------------

  connect(address: string, options?: ConnectOptions): Promise<PeerInfo> {
    return this.#connectTo(address, undefined, options)
  }

  /** `connect()`, for the peer `expect` when given: whoever else answers there is refused (WRONG_PEER). */
  #connectTo(address: string, expect: string | undefined, options?: ConnectOptions): Promise<PeerInfo> {
    // Not `async` (concurrent calls must share one dial), so failures are returned, never thrown.
    if (this.#status !== 'running') return Promise.reject(this.#notRunning())
    const existing = sessionByAddress(this.#manager.sessions, this.#trust.known, address)
    if (existing) {
      if (expect !== undefined && existing.id !== expect) {
        return Promise.reject(wrongPeer(address, expect, existing.id))
      }
      // Asked for by the user now: no longer a session kept only for a send.
      if (this.#transient.delete(existing.id)) this.#manager.wanted.set(existing.id, address)
      return Promise.resolve(existing.info())
    }
    if (this.#addresses.includes(address)) {
      return Promise.reject(new PeerError('SELF_CONNECT', `${address} is this peer's own address`))
    }
    const dial = this.#manager.dial(address, { signal: options?.signal, expect, steered: options?.steered })
    return dial.then((info) => {
      this.#transient.delete(info.id)
      return info
    })
  }

  async disconnect(
    target: string,
    reason = 'disconnected by the user',
    options?: AbortOptions,
  ): Promise<void> {
    const session = this.#resolve(target)
    this.#manager.wanted.delete(session.id)
    if (!session.online) return this.#manager.endSession(session, 'local', reason)
    const deadline = this.#manager.timers.deadline(this.#limits.stopTimeout)
    const signal = options?.signal ? AbortSignal.any([deadline, options.signal]) : deadline
    await this.#manager.disconnect(session, reason, signal)
  }

  peers(): PeerList {
    const sessions = this.#manager.sessions
    const connected = [...sessions.values()].filter((s) => s.online).map((s) => s.info())
    const known = [...this.#store.values()]
      .filter((k) => !sessions.get(k.id)?.online)
      .map((k) => this.#store.toKnownPeer(k))
    return { connected, known }
  }

  resources(): PeerResources {
    const m = this.#manager
    let heldBytes = 0
    for (const link of m.links) heldBytes += link.heldBytes
    return {
      sessions: m.sessions.size,
      inboundSessions: [...m.sessions.values()].filter((s) => s.active.direction === 'inbound').length,
      links: m.links.size,
      handshakes: m.handshakesInProgress,
      heldBytes,
      knownPeers: this.#store.size,
    }
  }

  namedKeys(name: string): string[] {
    return keysNamed(this.#trust, this.#store, name)
  }

  keyChanges(): PendingKeyChange[] {
    return this.#trust.pending()
  }

  acceptKeyChange(address: string, peerId?: string): Promise<KeyChange> {
    return this.#trust.accept(address, peerId)
  }

  async queryPeers(target: string, options?: SendOptions): Promise<KnownPeer[]> {
    this.#assertRunning()
    const session = this.#resolve(target)
    const handler = session.handler(PEERS_PROTOCOL) as PeerExchangeHandler | undefined
    if (!handler) throw new PeerError('NOT_SUPPORTED', `${session.remote.name} does not exchange peers`)
    const records: PeerRecord[] = await handler.query(options?.timeout ?? this.#limits.ackTimeout)
    return records
      .filter((r) => r.peerId !== this.id)
      .map((r) => ({
        id: r.peerId,
        name: r.name,
        addrs: r.addrs,
        lastSeen: Math.min(r.lastSeen, Date.now()),
        connected: this.#manager.sessions.get(r.peerId)?.online === true,
      }))
  }

  connectToActive(options?: ConnectToActiveOptions): Promise<ConnectToActiveResult> {
    try {
      this.#assertRunning()
    } catch (err) {
      return Promise.reject(err)
    }
    return connectToActive(
      {
        store: this.#store,
        sessions: this.#manager.sessions,
        coolingUntil: (id) => this.#manager.policy.coolingUntil(id),
        limits: this.#limits,
        query: (id) => this.queryPeers(id, options),
        dial: (k) => this.#connectKnown(k, options),
      },
      options,
    )
  }

  async #connectKnown(
    k: { id: string; name: string; addrs: string[] },
    options?: AbortOptions,
  ): Promise<ConnectResult> {
    let last: PeerError | undefined
    for (const address of k.addrs) {
      try {
        const peer = await this.#connectTo(address, k.id, options)
        return { peerId: k.id, name: k.name, address, ok: true, status: 'dialed', peer }
      } catch (err) {
        last = err instanceof PeerError ? err : new PeerError('DIAL_FAILED', String(err), { cause: err })
      }
    }
    return { peerId: k.id, name: k.name, address: k.addrs[0], ok: false, status: 'failed', error: last! }
  }

  // ---- sending ------------------------------------------------------------------------------

  send(target: string, text: string, options?: SendOptions): Promise<SendResult> {
    // Not `async`: on the hot path (a connected target) the promise from the chat handler is the only one made.
    try {
      this.#assertRunning()
      const bytes = textBytes(text)
      const session = findSession(this.#manager.sessions, this.#trust, this.#store, target)
      if (session) return this.#chatWith(session).send(text, bytes, options)
      if (looksLikeAddress(target)) return this.#dialAndSend([target], text, bytes, options)
      // A peer known by id (e.g. a broadcast's origin, learned from exchange) is dialed at its addresses.
      const known = knownByIdOrPrefix(this.#store, target)
      if (!known)
        throw notConnected(target, this.#manager.sessions, keysNamed(this.#trust, this.#store, target))
      // It said GOODBYE: it left on purpose, and is not dialed again unless the user asks (connect()).
      if (known.gone)
        throw new PeerError('NOT_CONNECTED', `"${target}" said goodbye; connect to it again to send`)
      return this.#dialAndSend(known.addrs.slice(0, 2), text, bytes, options, known.id)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  sendMany(target: string, texts: readonly string[], options?: SendOptions): Promise<SendManyResult> {
    try {
      this.#assertRunning()
      const bytes = texts.map((t) => textBytes(t))
      const session = findSession(this.#manager.sessions, this.#trust, this.#store, target)
      if (!session) {
        throw new PeerError('NOT_CONNECTED', `"${target}" is not connected; connect to it before sendMany()`)
      }
      return this.#chatWith(session).sendMany(texts, bytes, options)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Delivers a send to a peer without a session: dials its address (the first that answers) and marks
   * the session transient, so it is closed once idle unless the user connects to it or `retain` keeps it.
   * `expect`: the peer the addresses were heard for (a known peer's id); nobody else gets its message.
   */
  async #dialAndSend(
    addresses: readonly string[],
    text: string,
    bytes: number,
    options?: SendOptions,
    expect?: string,
  ): Promise<SendResult> {
    let info: PeerInfo | undefined
    let last: unknown
    for (const address of addresses) {
      const existing = sessionByAddress(this.#manager.sessions, this.#trust.known, address)
      if (existing && expect !== undefined && existing.id !== expect) {
        last = wrongPeer(address, expect, existing.id)
        continue
      }
      if (existing) {
        info = existing.info()
        break
      }
      if (this.#addresses.includes(address)) {
        throw new PeerError('SELF_CONNECT', `${address} is this peer's own address`)
      }
      try {
        const had = new Set(this.#manager.sessions.keys())
        info = await this.#manager.dial(address, { signal: options?.signal, expect })
        if (!had.has(info.id)) {
          const s = this.#manager.sessions.get(info.id)
          if (s) this.#transient.add(s)
          // Not the user's connection: not redialed after a loss either.
          this.#manager.wanted.delete(info.id)
        }
        break
      } catch (err) {
        last = err
      }
    }
    if (!info) throw last ?? notConnected(addresses[0] ?? '')
    const session = this.#manager.sessions.get(info.id)
    if (!session) throw notConnected(addresses[0] ?? info.id)
    return this.#chatWith(session).send(text, bytes, options)
  }

  async broadcast(text: string, options?: BroadcastOptions): Promise<BroadcastResult[]> {
    this.#assertRunning()
    const bytes = textBytes(text)
    const sessions = [...this.#manager.sessions.values()].filter((s) => s.online)
    const { onResult, ...sendOptions } = options ?? {}
    const told = (r: BroadcastResult): BroadcastResult => {
      onResult?.(r)
      return r
    }
    return Promise.all(
      sessions.map((s) => {
        let sent: Promise<SendResult>
        try {
          sent = this.#chatWith(s).send(text, bytes, sendOptions)
        } catch (err) {
          sent = Promise.reject(err)
        }
        return sent.then(
          (result) => told({ peerId: s.id, ok: true, result }),
          (error: PeerError) => told({ peerId: s.id, ok: false, error }),
        )
      }),
    )
  }

  #chatWith(session: Session): ChatHandler {
    const handler = session.handler(CHAT_PROTOCOL) as ChatHandler | undefined
    if (!handler) throw new PeerError('NOT_SUPPORTED', `${session.remote.name} does not run chat`)
    return handler
  }

  #resolve(target: string): Session {
    const session = findSession(this.#manager.sessions, this.#trust, this.#store, target)
    if (!session?.online) throw notConnected(target)
    return session
  }

  #report(err: PeerError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  #assertRunning(): void {
    if (this.#status !== 'running') throw this.#notRunning()
  }

  #notRunning(): PeerError {
    const hint = this.#status === 'idle' ? '; call start() first' : ''
    return new PeerError('NOT_RUNNING', `this peer is ${this.#status}${hint}`)
  }
}
