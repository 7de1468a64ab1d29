import { EventEmitter } from 'node:events'
import type { Connection, Transport } from '../transport.js'
import type {
  LegacyBridge,
  LegacyBridgeEvents,
  LegacyBridgeInit,
  LegacyBridgeStatus,
  LegacyPeerInfo,
  LegacySendOptions,
  LegacySendOutcome,
} from './bridge-types.js'
import { type LegacyDropCode, LegacyError } from './errors.js'
import {
  checkLegacyName,
  encodeLegacyMessage,
  isLegacyCommand,
  normalizeLegacyPeerAddress,
  parseLegacyAddress,
  parseLegacyMessage,
} from './format.js'
import { LegacyInbound } from './inbound.js'
import { deliverLegacyMessage, deliverToAll } from './outbound.js'

/** What {@link legacyAwareTransport} needs from a bridge; kept off the public surface. */
export interface BridgeInternals {
  isClosed(): boolean
  accept(conn: Connection, first: Uint8Array): void
  drop(code: LegacyDropCode, reason: string, remoteAddress: string, bytes: number): void
}

const internals = new WeakMap<LegacyBridge, BridgeInternals>()

/** @internal the hooks {@link legacyAwareTransport} feeds inbound legacy connections through */
export function bridgeInternals(bridge: LegacyBridge): BridgeInternals {
  const found = internals.get(bridge)
  if (found === undefined) throw new TypeError('expected a bridge made by createLegacyBridge()')
  return found
}

/**
 * Creates a bridge to peers that speak the legacy plain-text protocol (see docs/PROTOCOL.md,
 * "Legacy bridge"). It is the core side of `--legacy`: install it by decorating the peer's transport,
 *
 * ```ts
 * const tcp = tcpTransport()
 * let peer: Peer
 * const bridge = createLegacyBridge({ transport: tcp, name: 'alice', ownAddress: () => peer.addresses[0] })
 * peer = createPeer({ transport: legacyAwareTransport(tcp, bridge), name: 'alice', listen: '127.0.0.1:5000' })
 * bridge.on('message', (m) => console.log(`[legacy, unverified] ${m.from.name}: ${m.text}`))
 * await peer.start()
 * await bridge.send('127.0.0.1:5001', 'hello')
 * await bridge.exitAll(); await bridge.close(); await peer.stop()
 * ```
 *
 * @throws LegacyError `INVALID_NAME` (for a name given as a string); RangeError for a bound that is not a positive number
 */
export function createLegacyBridge(init: LegacyBridgeInit): LegacyBridge {
  return new Bridge(init)
}

interface Entry {
  address: string
  name: string | undefined
  lastSeen: number | undefined
  /** Insertion order, to break ties when evicting peers never heard from. */
  order: number
}

class Bridge extends EventEmitter<LegacyBridgeEvents> implements LegacyBridge {
  readonly #name: string | (() => string)
  readonly #transport: Transport
  readonly #ownAddress: () => string | undefined
  readonly #maxPeers: number
  readonly #sendTimeout: number
  readonly #lingerTime: number
  readonly #concurrency: number
  readonly #now: () => number
  readonly #peers = new Map<string, Entry>()
  readonly #inbound: LegacyInbound
  #order = 0
  #status: LegacyBridgeStatus = 'open'

  constructor(init: LegacyBridgeInit) {
    super()
    if (typeof init.name === 'string') checkedName(init.name)
    this.#name = init.name
    this.#transport = init.transport
    this.#ownAddress = init.ownAddress
    this.#maxPeers = positive('maxPeers', init.maxPeers ?? 256)
    const maxConnections = positive('maxConnections', init.maxConnections ?? 32)
    const readTimeout = positive('readTimeout', init.readTimeout ?? 10_000)
    const quietTime = positive('quietTime', init.quietTime ?? 200)
    this.#sendTimeout = positive('sendTimeout', init.sendTimeout ?? 10_000)
    this.#lingerTime = positive('lingerTime', init.lingerTime ?? 2_000)
    this.#concurrency = positive('concurrency', init.concurrency ?? 8)
    this.#now = init.now ?? Date.now
    this.#inbound = new LegacyInbound({
      maxConnections,
      readTimeout,
      quietTime,
      lingerTime: this.#lingerTime,
      onMessage: (bytes, remoteAddress) => this.#receive(bytes, remoteAddress),
      onDrop: (code, reason, remoteAddress, bytes) => this.#drop(code, reason, remoteAddress, bytes),
    })
    internals.set(this, {
      isClosed: () => this.#status === 'closed',
      accept: (conn, first) => this.#accept(conn, first),
      drop: (code, reason, remoteAddress, bytes) => this.#drop(code, reason, remoteAddress, bytes),
    })
  }

  get name(): string {
    return typeof this.#name === 'string' ? this.#name : this.#name()
  }

  get status(): LegacyBridgeStatus {
    return this.#status
  }

  peers(): LegacyPeerInfo[] {
    return [...this.#peers.values()]
      .sort((a, b) => (b.lastSeen ?? -1) - (a.lastSeen ?? -1) || a.order - b.order)
      .map(info)
  }

  find(target: string): LegacyPeerInfo | undefined {
    const entry = this.#find(target)
    return entry === undefined || entry === 'ambiguous' ? undefined : info(entry)
  }

  addPeer(address: string): LegacyPeerInfo {
    this.#assertOpen()
    const normalized = normalizeLegacyPeerAddress(address)
    const existing = this.#peers.get(normalized)
    if (existing !== undefined) return info(existing)
    return info(
      this.#insert({ address: normalized, name: undefined, lastSeen: undefined, order: this.#order++ }),
    )
  }

  removePeer(target: string): boolean {
    const entry = this.#find(target)
    if (entry === undefined || entry === 'ambiguous') return false
    this.#peers.delete(entry.address)
    this.emit('peer:left', { peer: info(entry), reason: 'removed' })
    return true
  }

  async send(target: string, text: string, options: LegacySendOptions = {}): Promise<void> {
    this.#assertOpen()
    if (isLegacyCommand(text)) {
      throw new LegacyError(
        'INVALID_TEXT',
        `"${text}" is a command in the legacy protocol, not a message; reword it (e.g. "${text}.")`,
      )
    }
    const address = this.#resolve(target)
    await this.#deliver(address, this.#encode(text), options)
  }

  connectAll(options?: LegacySendOptions): Promise<LegacySendOutcome[]> {
    return this.#toAll('connect', options)
  }

  exitAll(options?: LegacySendOptions): Promise<LegacySendOutcome[]> {
    return this.#toAll('exit', options)
  }

  async close(): Promise<void> {
    if (this.#status === 'closed') return
    this.#status = 'closed'
    this.#inbound.abortAll(new LegacyError('STOPPED', 'the legacy bridge was closed'))
  }

  // ---- sending -----------------------------------------------------------------------------

  #encode(text: string): Uint8Array {
    const own = this.#ownAddress()
    if (own === undefined) {
      throw new LegacyError('INVALID_ADDRESS', 'we are not listening, so legacy peers could not answer us')
    }
    return encodeLegacyMessage({ address: own, name: checkedName(this.name), text })
  }

  #resolve(target: string): string {
    const entry = this.#find(target)
    if (entry === 'ambiguous') {
      throw new LegacyError(
        'UNKNOWN_PEER',
        `several legacy peers are named ${target}; give the address instead`,
      )
    }
    if (entry !== undefined) return entry.address
    try {
      return normalizeLegacyPeerAddress(target)
    } catch (cause) {
      throw new LegacyError('UNKNOWN_PEER', `no legacy peer is called ${JSON.stringify(target)}`, { cause })
    }
  }

  async #toAll(command: 'connect' | 'exit', options: LegacySendOptions = {}): Promise<LegacySendOutcome[]> {
    const addresses = [...this.#peers.keys()]
    let bytes: Uint8Array
    try {
      this.#assertOpen()
      bytes = this.#encode(command)
    } catch (err) {
      return addresses.map((address) => ({ address, ok: false, error: err as LegacyError }))
    }
    return deliverToAll(addresses, this.#concurrency, (address) => this.#deliver(address, bytes, options))
  }

  async #deliver(address: string, bytes: Uint8Array, options: LegacySendOptions): Promise<void> {
    await deliverLegacyMessage(this.#transport, address, bytes, options, this.#sendTimeout, this.#lingerTime)
  }

  // ---- receiving ---------------------------------------------------------------------------

  #accept(conn: Connection, first: Uint8Array): void {
    if (this.#status === 'closed') {
      conn.abort()
      return
    }
    this.#inbound.accept(conn, first)
  }

  #receive(bytes: Uint8Array, remoteAddress: string): void {
    if (this.#status === 'closed') return
    const parsed = parseLegacyMessage(bytes)
    if (!parsed.ok) {
      this.#drop(parsed.code, parsed.reason, remoteAddress, bytes.length)
      return
    }
    const { kind, address, name, text } = parsed.message
    const own = this.#ownAddress()
    if (own !== undefined && parseLegacyAddress(own) === address) {
      this.#drop('SELF', `the message claims our own address ${address}`, remoteAddress, bytes.length)
      return
    }
    const now = this.#now()
    const existing = this.#peers.get(address)
    if (kind === 'exit') {
      if (existing === undefined) return
      this.#peers.delete(address)
      this.emit('peer:left', { peer: info({ ...existing, name, lastSeen: now }), reason: 'exit' })
      return
    }
    let entry: Entry
    if (existing === undefined) {
      entry = this.#insert({ address, name, lastSeen: now, order: this.#order++ })
    } else {
      entry = existing
      entry.name = name
      entry.lastSeen = now
    }
    if (kind === 'connect' || existing === undefined) this.emit('peer:joined', info(entry))
    if (kind === 'chat') {
      this.emit('message', {
        from: { address, name },
        text,
        remoteAddress,
        receivedAt: now,
        legacy: true,
        verified: false,
      })
    }
  }

  #drop(code: LegacyDropCode, reason: string, remoteAddress: string, bytes: number): void {
    this.emit('dropped', { code, reason, remoteAddress, bytes })
  }

  // ---- the peer list -----------------------------------------------------------------------

  #insert(entry: Entry): Entry {
    if (this.#peers.size >= this.#maxPeers) {
      let oldest: Entry | undefined
      for (const e of this.#peers.values()) {
        if (
          oldest === undefined ||
          (e.lastSeen ?? -1) < (oldest.lastSeen ?? -1) ||
          ((e.lastSeen ?? -1) === (oldest.lastSeen ?? -1) && e.order < oldest.order)
        ) {
          oldest = e
        }
      }
      if (oldest !== undefined) {
        this.#peers.delete(oldest.address)
        this.emit('peer:left', { peer: info(oldest), reason: 'evicted' })
      }
    }
    this.#peers.set(entry.address, entry)
    return entry
  }

  #find(target: string): Entry | 'ambiguous' | undefined {
    const trimmed = target.trim()
    const byAddress = this.#peers.get(trimmed) ?? this.#peers.get(tryNormalize(trimmed) ?? '')
    if (byAddress !== undefined) return byAddress
    const named = [...this.#peers.values()].filter((e) => e.name === trimmed)
    if (named.length > 1) return 'ambiguous'
    return named[0]
  }

  #assertOpen(): void {
    if (this.#status === 'closed') throw new LegacyError('STOPPED', 'the legacy bridge is closed')
  }
}

/** @throws LegacyError `INVALID_NAME` */
function checkedName(name: string): string {
  const problem = checkLegacyName(name)
  if (problem !== undefined) {
    throw new LegacyError('INVALID_NAME', `${JSON.stringify(name)} cannot be a legacy name: ${problem}`)
  }
  return name
}

function info(entry: Entry): LegacyPeerInfo {
  return { address: entry.address, name: entry.name, lastSeen: entry.lastSeen, legacy: true }
}

function tryNormalize(address: string): string | undefined {
  try {
    return normalizeLegacyPeerAddress(address)
  } catch {
    return undefined
  }
}

function positive(name: string, value: number): number {
  if (!(value > 0 && Number.isFinite(value)))
    throw new RangeError(`${name} must be a positive number, got ${value}`)
  return value
}
