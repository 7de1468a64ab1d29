import { TransportError } from '../errors.js'
import type { AbortOptions, Connection, Listener, Transport } from '../transport.js'
import { abortedError } from './abort.js'
import { formatAddress, parseAddress } from './address.js'
import { type Link, MemoryConnection, type PipeNetwork } from './memory-connection.js'

/** Options of {@link memoryNetwork}. */
export interface MemoryNetworkInit {
  /**
   * Bytes queued in one direction of a connection (sent but not yet delivered) at which `send()`
   * starts returning false.
   * @default 65_536
   */
  highWaterMark?: number
  /** Initial {@link MemoryNetwork.setDelay}, in milliseconds. @default 0 */
  delay?: number
  /** Initial {@link MemoryNetwork.setChunking}. @default undefined (chunks arrive as sent) */
  chunking?: number
}

/**
 * An in-memory network that {@link memoryTransport}s attach to, with fault injection for tests.
 *
 * A *host* is the part of an address before the port (`alice` in `alice:1`). Delivery is always
 * asynchronous and in order: on `setImmediate` without delay, on `setTimeout` with one. Both are looked
 * up when called, so `vi.useFakeTimers()` applies — with fake timers, bytes move only as the clock does
 * (`await vi.advanceTimersByTimeAsync(ms)`).
 */
export interface MemoryNetwork {
  /** Connections not yet closed at both ends: 0 once everything is closed (for leak checks). */
  readonly connections: number
  /**
   * Splits every chunk into pieces of at most `max` bytes on delivery (1 = byte at a time), including
   * chunks already queued; `undefined` delivers chunks as sent.
   * @throws RangeError unless `max` is a positive integer or undefined
   */
  setChunking(max: number | undefined): void
  /**
   * Delays every later send, dial and reset by `ms` milliseconds (order is kept: a chunk never
   * overtakes one sent before it).
   * @throws RangeError unless `ms` is a finite number ≥ 0
   */
  setDelay(ms: number): void
  /**
   * Cuts the cable between two hosts: from now on bytes, half-closes and resets between them are
   * silently dropped (connections stay open, nobody is told), and new dials between them fail with
   * `CONNECTION_REFUSED`. Bytes already in flight are dropped too.
   */
  partition(hostA: string, hostB: string): void
  /** Ends every partition. What was dropped stays lost. */
  heal(): void
  /** Ends the partition between two hosts. */
  heal(hostA: string, hostB: string): void
  /**
   * Kills every connection with an end on `host` at once: both ends emit `close` with
   * `CONNECTION_RESET` (no `end`), whatever was queued is lost. Listeners stay.
   */
  dropConnections(host: string): void
}

/** Options of {@link memoryTransport}. */
export interface MemoryTransportInit {
  /**
   * The host this transport dials from (its connections' `localAddress`, what partitions and
   * `dropConnections` match). Defaults to the host of the first address it listened on, and before
   * it ever listened to a host name unique to this transport (`anonymous-1`, ...).
   */
  host?: string
}

/**
 * Creates an isolated in-memory network. Each test makes its own, so tests never collide.
 *
 * @throws RangeError on an invalid option
 */
export function memoryNetwork(init: MemoryNetworkInit = {}): MemoryNetwork {
  return new Network(init)
}

/**
 * A {@link Transport} over a {@link MemoryNetwork}. Addresses are `host:port` like TCP's
 * (`listen('alice:0')` gets a free port such as `alice:1`); listening on a taken address fails with
 * `ADDRESS_IN_USE`, dialing an address nobody listens on with `CONNECTION_REFUSED`.
 * Sent bytes are not copied: `send()` owns them, and the receiver's `data` chunks are the sender's
 * bytes themselves (or views of them when the network splits chunks).
 *
 * @throws TypeError if `network` did not come from {@link memoryNetwork}
 */
export function memoryTransport(network: MemoryNetwork, init: MemoryTransportInit = {}): Transport {
  if (!(network instanceof Network)) {
    throw new TypeError('memoryTransport() needs a network from memoryNetwork()')
  }
  if (init.host !== undefined) parseAddress(formatAddress(init.host, 0))
  return new MemoryTransport(network, init)
}

const DEFAULT_HIGH_WATER_MARK = 64 * 1024

class MemoryTransport implements Transport {
  readonly name = 'memory'
  readonly #network: Network
  readonly #host: string | undefined
  #listenHost: string | undefined
  #anonymousHost: string | undefined

  constructor(network: Network, init: MemoryTransportInit) {
    this.#network = network
    this.#host = init.host
  }

  async listen(
    address: string,
    onConnection: (conn: Connection) => void,
    options: AbortOptions = {},
  ): Promise<Listener> {
    const { host, port } = parseAddress(address)
    if (options.signal?.aborted) throw abortedError(options.signal, 'listen')
    const listener = this.#network.listen(host, port, onConnection)
    this.#listenHost ??= host
    return listener
  }

  async dial(address: string, options: AbortOptions = {}): Promise<Connection> {
    const { host, port } = parseAddress(address)
    if (port === 0) throw new TransportError('INVALID_ADDRESS', `cannot dial port 0 (${address})`)
    const { signal } = options
    if (signal?.aborted) throw abortedError(signal, 'dial')
    // Never connect in the caller's tick: the listener's callback must not run inside dial().
    await this.#network.wait(signal)
    return this.#network.connect(this.#dialHost(), formatAddress(host, port))
  }

  /** See {@link MemoryTransportInit.host}. */
  #dialHost(): string {
    if (this.#host !== undefined) return this.#host
    if (this.#listenHost !== undefined) return this.#listenHost
    if (this.#anonymousHost === undefined) this.#anonymousHost = this.#network.anonymousHost()
    return this.#anonymousHost
  }
}

class MemoryListener implements Listener {
  #closed = false

  constructor(
    readonly network: Network,
    readonly host: string,
    readonly address: string,
    readonly onConnection: (conn: Connection) => void,
  ) {}

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.network.unlisten(this)
  }
}

class Network implements MemoryNetwork, PipeNetwork {
  readonly highWaterMark: number
  chunking: number | undefined
  delay = 0
  readonly #listeners = new Map<string, MemoryListener>()
  /** Local addresses of dialed connections, so ephemeral ports are not handed out twice. */
  readonly #localAddresses = new Set<string>()
  readonly #nextPort = new Map<string, number>()
  readonly #partitions = new Set<string>()
  readonly #links = new Set<Link>()
  #anonymous = 0

  constructor(init: MemoryNetworkInit) {
    const hwm = init.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
    if (!Number.isInteger(hwm) || hwm < 1) throw new RangeError(`highWaterMark must be a positive integer`)
    this.highWaterMark = hwm
    this.setChunking(init.chunking)
    this.setDelay(init.delay ?? 0)
  }

  get connections(): number {
    return this.#links.size
  }

  setChunking(max: number | undefined): void {
    if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
      throw new RangeError(`chunking must be a positive integer or undefined, got ${max}`)
    }
    this.chunking = max
  }

  setDelay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`delay must be a finite number >= 0, got ${ms}`)
    this.delay = ms
  }

  partition(hostA: string, hostB: string): void {
    this.#partitions.add(pairKey(hostA, hostB))
  }

  heal(hostA?: string, hostB?: string): void {
    if (hostA === undefined || hostB === undefined) this.#partitions.clear()
    else this.#partitions.delete(pairKey(hostA, hostB))
  }

  isPartitioned(hostA: string, hostB: string): boolean {
    return this.#partitions.size > 0 && this.#partitions.has(pairKey(hostA, hostB))
  }

  dropConnections(host: string): void {
    for (const { dialer, accepted } of [...this.#links]) {
      if (dialer.host !== host && accepted.host !== host) continue
      for (const end of [dialer, accepted]) {
        end.destroy(new TransportError('CONNECTION_RESET', `connection dropped by the network (${host})`))
      }
    }
  }

  anonymousHost(): string {
    return `anonymous-${++this.#anonymous}`
  }

  listen(host: string, port: number, onConnection: (conn: Connection) => void): MemoryListener {
    let address: string
    if (port === 0) {
      address = this.#freeAddress(host)
    } else {
      address = formatAddress(host, port)
      if (this.#listeners.has(address)) throw new TransportError('ADDRESS_IN_USE', `${address} is in use`)
    }
    const listener = new MemoryListener(this, host, address, onConnection)
    this.#listeners.set(address, listener)
    return listener
  }

  unlisten(listener: MemoryListener): void {
    if (this.#listeners.get(listener.address) === listener) this.#listeners.delete(listener.address)
  }

  /** The dial handshake: `delay` ms, or one microtask. @throws TransportError `ABORTED` */
  async wait(signal: AbortSignal | undefined): Promise<void> {
    const delay = this.delay
    if (delay > 0) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          clearTimeout(timer)
          reject(abortedError(signal!, 'dial'))
        }
        const timer = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }, delay)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    } else {
      await undefined
    }
    if (signal?.aborted) throw abortedError(signal, 'dial')
  }

  connect(fromHost: string, address: string): MemoryConnection {
    const listener = this.#listeners.get(address)
    if (listener === undefined) {
      throw new TransportError('CONNECTION_REFUSED', `nothing listens on ${address}`)
    }
    if (this.isPartitioned(fromHost, listener.host)) {
      throw new TransportError(
        'CONNECTION_REFUSED',
        `${address} is unreachable from ${fromHost} (partitioned)`,
      )
    }
    const localAddress = this.#freeAddress(fromHost)
    const dialer = new MemoryConnection(this, fromHost, localAddress, address)
    const accepted = new MemoryConnection(this, listener.host, address, localAddress)
    const link: Link = { dialer, accepted }
    dialer.attach(accepted, link)
    accepted.attach(dialer, link)
    this.#localAddresses.add(localAddress)
    this.#links.add(link)
    try {
      listener.onConnection(accepted)
    } catch (err) {
      // Like an exception in a net.Server 'connection' handler: the connection dies and the error
      // surfaces as uncaught, not as the dialer's failure.
      accepted.abort(err instanceof Error ? err : new Error(String(err)))
      queueMicrotask(() => {
        throw err
      })
    }
    return dialer
  }

  /** Called whenever an end closes; forgets the link once both have. */
  ended(link: Link): void {
    if (link.dialer.status !== 'closed' || link.accepted.status !== 'closed') return
    if (this.#links.delete(link)) this.#localAddresses.delete(link.dialer.localAddress)
  }

  #freeAddress(host: string): string {
    let port = this.#nextPort.get(host) ?? 1
    // Bounded: at most one lap around the port space.
    for (let tries = 0; tries < 65535; tries++) {
      const address = formatAddress(host, port)
      port = port === 65535 ? 1 : port + 1
      if (!this.#listeners.has(address) && !this.#localAddresses.has(address)) {
        this.#nextPort.set(host, port)
        return address
      }
    }
    throw new TransportError('ADDRESS_IN_USE', `no free port left on ${host}`)
  }
}

function pairKey(hostA: string, hostB: string): string {
  return JSON.stringify(hostA < hostB ? [hostA, hostB] : [hostB, hostA])
}
