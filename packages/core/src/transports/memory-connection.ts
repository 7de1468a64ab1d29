import { EventEmitter } from 'node:events'
import { TransportError } from '../errors.js'
import type { AbortOptions, Connection, ConnectionEvents, ConnectionStatus } from '../transport.js'
import { abortedError, closedOrAborted } from './abort.js'

// The two halves of an in-memory connection and the pipes between them. The network (memory.ts)
// makes them; they see it only through PipeNetwork, so the imports run one way.

/** What a pipe and its connections need of the network: its settings, partitions, and the end of a link. */
export interface PipeNetwork {
  readonly highWaterMark: number
  readonly chunking: number | undefined
  readonly delay: number
  isPartitioned(hostA: string, hostB: string): boolean
  ended(link: Link): void
}

export interface Link {
  readonly dialer: MemoryConnection
  readonly accepted: MemoryConnection
}

/** Compact a pipe's queue array once this many delivered items sit at its front. */
const COMPACT_AFTER = 1024

/** What travels through a pipe. `ready` turns true once the network delay has passed. */
type Item =
  | { kind: 'data'; bytes: Uint8Array; offset: number; ready: boolean }
  | { kind: 'end' | 'reset'; ready: boolean }

/**
 * One direction of a connection: the bytes `from` sent that `to` has not received yet.
 * Its `queued` byte count is the sender's write buffer, measured against the high-water mark.
 */
class Pipe {
  queued = 0
  /** `send()` returned false; emit 'drain' on the sender once `queued` is below the mark. */
  needDrain = false
  #items: Item[] = []
  #head = 0
  /** Bumped by clear(), so a pump interrupted by an abort inside a 'data' handler stops. */
  #epoch = 0
  #scheduled = false
  readonly #timers = new Set<ReturnType<typeof setTimeout>>()

  constructor(
    readonly network: PipeNetwork,
    readonly from: MemoryConnection,
    readonly to: MemoryConnection,
  ) {}

  push(item: Item): void {
    this.#items.push(item)
    if (item.kind === 'data') this.queued += item.bytes.byteLength
    const delay = this.network.delay
    if (delay > 0) {
      // Items are released strictly from the head, so a shorter delay set later cannot reorder them.
      const timer = setTimeout(() => {
        this.#timers.delete(timer)
        item.ready = true
        this.pump()
      }, delay)
      this.#timers.add(timer)
    } else {
      item.ready = true
      this.schedule()
    }
  }

  /** Pump on the next macrotask: never inside the caller's stack, like bytes arriving from a socket. */
  schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.pump()
    })
  }

  /** Drops everything queued and cancels pending deliveries. */
  clear(): void {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    this.#items = []
    this.#head = 0
    this.queued = 0
    this.needDrain = false
    this.#epoch++
  }

  pump(): void {
    const epoch = this.#epoch
    const { from, to, network } = this
    while (this.#epoch === epoch && this.#head < this.#items.length) {
      const item = this.#items[this.#head]!
      if (!item.ready) break
      const dropped = to.isClosed() || network.isPartitioned(from.host, to.host)
      // A reset is not subject to flow control; data and half-close wait for resume().
      if (!dropped && item.kind !== 'reset' && to.paused) break
      if (item.kind !== 'data') {
        this.#head++
        if (item.kind === 'end') {
          if (!dropped) to.receiveEnd()
          from.finSent()
        } else if (!dropped) {
          to.destroy(new TransportError('CONNECTION_RESET', 'connection reset by the remote'))
        }
        continue
      }
      const length = item.bytes.byteLength
      if (dropped) {
        this.queued -= length - item.offset
        this.#head++
        continue
      }
      const max = network.chunking ?? length
      while (item.offset < length) {
        const end = Math.min(length, item.offset + max)
        const piece = item.offset === 0 && end === length ? item.bytes : item.bytes.subarray(item.offset, end)
        this.queued -= end - item.offset
        item.offset = end
        to.emit('data', piece)
        if (this.#epoch !== epoch || to.paused || to.isClosed()) break
      }
      if (this.#epoch === epoch && item.offset === length) this.#head++
    }
    if (this.#epoch === epoch && this.#head >= COMPACT_AFTER) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    if (this.needDrain && this.queued < network.highWaterMark) {
      this.needDrain = false
      if (from.status === 'open') from.emit('drain')
    }
  }
}

export class MemoryConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly host: string
  readonly localAddress: string
  readonly remoteAddress: string
  readonly #network: PipeNetwork
  #status: ConnectionStatus = 'open'
  #paused = false
  /** Our half-close was delivered (or lost) — what TCP calls our FIN being sent. */
  #finSent = false
  #endReceived = false
  #peer!: MemoryConnection
  #link!: Link
  /** What the peer sends us. Our outbound pipe is `#peer.inbound`. */
  inbound!: Pipe
  readonly #closed: Promise<void>
  #resolveClosed!: () => void

  constructor(network: PipeNetwork, host: string, localAddress: string, remoteAddress: string) {
    super()
    this.#network = network
    this.host = host
    this.localAddress = localAddress
    this.remoteAddress = remoteAddress
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve
    })
  }

  attach(peer: MemoryConnection, link: Link): void {
    this.#peer = peer
    this.#link = link
    this.inbound = new Pipe(this.#network, peer, this)
  }

  get status(): ConnectionStatus {
    return this.#status
  }

  /** A method, not a getter: TypeScript keeps a getter's narrowing across calls that may change it. */
  isClosed(): boolean {
    return this.#status === 'closed'
  }

  get paused(): boolean {
    return this.#paused
  }

  send(bytes: Uint8Array): boolean {
    if (this.#status !== 'open') {
      throw new TransportError('CONNECTION_CLOSED', `cannot send: the connection is ${this.#status}`)
    }
    const pipe = this.#peer.inbound
    // Not copied: send() owns `bytes` (see Connection.send), so the receiver gets the same memory,
    // as a zero-copy transport would.
    if (bytes.byteLength > 0) pipe.push({ kind: 'data', bytes, offset: 0, ready: false })
    if (pipe.queued < this.#network.highWaterMark) return true
    pipe.needDrain = true
    return false
  }

  close(options: AbortOptions = {}): Promise<void> {
    const { signal } = options
    if (this.#status === 'closed') return this.#closed
    if (signal?.aborted) {
      const err = abortedError(signal, 'close')
      this.abort(err)
      return Promise.reject(err)
    }
    if (this.#status === 'open') {
      this.#status = 'closing'
      // Queued behind our data, so everything sent is delivered first.
      this.#peer.inbound.push({ kind: 'end', ready: false })
    }
    return closedOrAborted(this.#closed, signal, (err) => this.abort(err))
  }

  abort(err?: Error): void {
    if (this.#status === 'closed') return
    this.destroy(err)
    // Like a TCP RST: travels with the network's delay, and is lost across a partition.
    if (this.#peer.status !== 'closed') this.#peer.inbound.push({ kind: 'reset', ready: false })
  }

  pause(): void {
    this.#paused = true
  }

  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    this.inbound.schedule()
  }

  /** Closes this end now, dropping both directions' queues; `close` follows on a microtask. */
  destroy(err: Error | undefined): void {
    if (this.#status === 'closed') return
    this.#status = 'closed'
    this.inbound.clear()
    this.#peer.inbound.clear()
    queueMicrotask(() => this.emit('close', err))
    this.#resolveClosed()
    this.#network.ended(this.#link)
  }

  receiveEnd(): void {
    this.#endReceived = true
    this.emit('end')
    this.#maybeClosed()
  }

  finSent(): void {
    this.#finSent = true
    this.#maybeClosed()
  }

  #maybeClosed(): void {
    if (this.#status !== 'closing' || !this.#finSent || !this.#endReceived) return
    this.#status = 'closed'
    this.emit('close')
    this.#resolveClosed()
    this.#network.ended(this.#link)
  }
}
