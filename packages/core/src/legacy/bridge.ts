import { EventEmitter } from 'node:events'
import type { AbortOptions, Connection, Transport } from '../transport.js'
import { type LegacyDropCode, LegacyError } from './errors.js'
import {
  checkLegacyName,
  encodeLegacyMessage,
  isLegacyCommand,
  LEGACY_MAX_MESSAGE_BYTES,
  normalizeLegacyPeerAddress,
  parseLegacyAddress,
  parseLegacyMessage,
} from './format.js'

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

export type LegacySendOutcome =
  | { readonly address: string; readonly ok: true }
  | { readonly address: string; readonly ok: false; readonly error: LegacyError }

export interface LegacySendOptions extends AbortOptions {
  /** @default the bridge's sendTimeout */
  timeout?: number
}

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
  readonly #maxConnections: number
  readonly #readTimeout: number
  readonly #quietTime: number
  readonly #sendTimeout: number
  readonly #lingerTime: number
  readonly #concurrency: number
  readonly #now: () => number
  readonly #peers = new Map<string, Entry>()
  readonly #inbound = new Set<Connection>()
  #order = 0
  #status: LegacyBridgeStatus = 'open'

  constructor(init: LegacyBridgeInit) {
    super()
    if (typeof init.name === 'string') checkedName(init.name)
    this.#name = init.name
    this.#transport = init.transport
    this.#ownAddress = init.ownAddress
    this.#maxPeers = positive('maxPeers', init.maxPeers ?? 256)
    this.#maxConnections = positive('maxConnections', init.maxConnections ?? 32)
    this.#readTimeout = positive('readTimeout', init.readTimeout ?? 10_000)
    this.#quietTime = positive('quietTime', init.quietTime ?? 200)
    this.#sendTimeout = positive('sendTimeout', init.sendTimeout ?? 10_000)
    this.#lingerTime = positive('lingerTime', init.lingerTime ?? 2_000)
    this.#concurrency = positive('concurrency', init.concurrency ?? 8)
    this.#now = init.now ?? Date.now
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
    for (const conn of this.#inbound) conn.abort(new LegacyError('STOPPED', 'the legacy bridge was closed'))
    this.#inbound.clear()
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
    const outcomes: LegacySendOutcome[] = new Array(addresses.length)
    let next = 0
    const worker = async () => {
      while (next < addresses.length) {
        const i = next++
        const address = addresses[i]!
        try {
          await this.#deliver(address, bytes, options)
          outcomes[i] = { address, ok: true }
        } catch (err) {
          outcomes[i] = { address, ok: false, error: err as LegacyError }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, addresses.length) }, worker))
    return outcomes
  }

  /**
   * One legacy message: dial, write, close. The close waits (up to `lingerTime`) for the receiver
   * to close too, so the bytes are flushed before anything is reset; its failure is not ours to
   * report, because the legacy protocol never confirms delivery anyway.
   */
  async #deliver(address: string, bytes: Uint8Array, options: LegacySendOptions): Promise<void> {
    const timeout = options.timeout ?? this.#sendTimeout
    const deadline = timer(timeout)
    const signal =
      options.signal === undefined ? deadline.signal : AbortSignal.any([options.signal, deadline.signal])
    let conn: Connection
    try {
      conn = await this.#transport.dial(address, { signal })
    } catch (cause) {
      deadline.clear()
      if (options.signal?.aborted)
        throw new LegacyError('ABORTED', `sending to ${address} was aborted`, { cause })
      if (deadline.signal.aborted) {
        throw new LegacyError('TIMEOUT', `${address} did not answer within ${timeout} ms`, { cause })
      }
      throw new LegacyError(
        'UNREACHABLE',
        `could not reach the legacy peer ${address}: ${(cause as Error).message}`,
        {
          cause,
        },
      )
    }
    deadline.clear()
    try {
      conn.send(bytes)
    } catch (cause) {
      conn.abort()
      throw new LegacyError(
        'UNREACHABLE',
        `the connection to ${address} closed before the message was written`,
        {
          cause,
        },
      )
    }
    const linger = timer(this.#lingerTime)
    try {
      await conn.close({ signal: linger.signal })
    } catch {
      // The receiver did not close in time (close() then reset the connection), or reset it itself.
    } finally {
      linger.clear()
    }
  }

  // ---- receiving ---------------------------------------------------------------------------

  #accept(conn: Connection, first: Uint8Array): void {
    if (this.#status === 'closed') {
      conn.abort()
      return
    }
    if (this.#inbound.size >= this.#maxConnections) {
      conn.abort()
      this.#drop(
        'TOO_MANY_CONNECTIONS',
        `already ${this.#inbound.size} legacy connections at once (the limit)`,
        conn.remoteAddress,
        first.length,
      )
      return
    }
    this.#inbound.add(conn)
    const chunks: Uint8Array[] = []
    let size = 0
    let finished = false
    let quiet: ReturnType<typeof setTimeout> | undefined
    const deadline = setTimeout(() => {
      stop()
      conn.abort()
      this.#drop(
        'TIMEOUT',
        `the legacy sender kept the connection open past ${this.#readTimeout} ms`,
        conn.remoteAddress,
        size,
      )
    }, this.#readTimeout)
    deadline.unref?.()

    const stop = () => {
      finished = true
      clearTimeout(deadline)
      clearTimeout(quiet)
      conn.off('data', onData)
      conn.off('end', onEnd)
    }
    const complete = () => {
      if (finished) return
      stop()
      this.#linger(conn)
      this.#receive(concat(chunks, size), conn.remoteAddress)
    }
    const onData = (chunk: Uint8Array) => {
      if (finished) return
      size += chunk.length
      // Bounded before buffering more: one byte over the limit is enough to know.
      if (size > LEGACY_MAX_MESSAGE_BYTES) {
        stop()
        conn.abort()
        this.#drop(
          'TOO_LONG',
          `more than ${LEGACY_MAX_MESSAGE_BYTES} bytes: a legacy message is one recv of at most ${LEGACY_MAX_MESSAGE_BYTES}`,
          conn.remoteAddress,
          size,
        )
        return
      }
      chunks.push(chunk)
      clearTimeout(quiet)
      quiet = setTimeout(complete, this.#quietTime)
      quiet.unref?.()
    }
    const onEnd = () => complete()
    conn.on('data', onData)
    conn.on('end', onEnd)
    conn.once('close', () => {
      this.#inbound.delete(conn)
      // Reset right after writing: what arrived is still the message (the original's recv got it too).
      if (!finished) complete()
    })
    onData(first)
  }

  /** Ends our side; a sender that never closes its own is reset after `lingerTime`. */
  #linger(conn: Connection): void {
    if (conn.status === 'closed') return
    const limit = setTimeout(() => conn.abort(), this.#lingerTime)
    limit.unref?.()
    conn.close().then(
      () => clearTimeout(limit),
      () => clearTimeout(limit),
    )
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

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

/** An abort signal fired by setTimeout (so fake timers drive it), unref'd and clearable. */
function timer(ms: number): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController()
  const t = setTimeout(() => controller.abort(new Error(`timed out after ${ms} ms`)), ms)
  t.unref?.()
  return { signal: controller.signal, clear: () => clearTimeout(t) }
}

function positive(name: string, value: number): number {
  if (!(value > 0 && Number.isFinite(value)))
    throw new RangeError(`${name} must be a positive number, got ${value}`)
  return value
}
