import { EventEmitter } from 'node:events'
import type { AbortOptions, Connection, ConnectionEvents, ConnectionStatus } from '../transport.js'
import type { SecureConnection } from './upgrader.js'

type InboxItem =
  | { kind: 'data'; chunk: Uint8Array }
  | { kind: 'end' }
  | { kind: 'close'; error: Error | undefined }

/**
 * A FIFO with O(1) shift. Array#shift is O(n) on long arrays, and the inbox can hold thousands of
 * chunks (a transport feeding single bytes while the connection is gated or paused).
 */
class Inbox {
  #items: (InboxItem | undefined)[] = []
  #head = 0

  peek(): InboxItem | undefined {
    return this.#items[this.#head]
  }

  push(item: InboxItem): void {
    this.#items.push(item)
  }

  shift(): void {
    this.#items[this.#head++] = undefined
    if (this.#head === this.#items.length) this.clear()
  }

  unshift(item: InboxItem): void {
    if (this.#head > 0) this.#items[--this.#head] = item
    else this.#items.unshift(item)
  }

  clear(): void {
    this.#items.length = 0
    this.#head = 0
  }
}

/** Bytes a connection in discard mode reads and drops before it stops reading altogether. */
const DISCARD_LIMIT = 64 * 1024

/**
 * The shared half of every upgraded connection: forwards the lifecycle (status, addresses, drain,
 * end, close, pause/resume, close/abort) to the connection underneath, and feeds its bytes, in
 * order, to {@link consume}. Subclasses only transform bytes.
 *
 * Events of the underlying connection are held in an inbox until the first tick after the upgrade
 * resolved (see the constructor), and `data` is held while paused; `end` and `close` keep their
 * place behind held data, and a `close` with an error jumps the queue (held data is then dropped).
 */
export abstract class WrappedConnection extends EventEmitter<ConnectionEvents> implements SecureConnection {
  readonly remotePeerId: string
  protected readonly inner: Connection
  readonly #inbox = new Inbox()
  #gated = true
  #paused = false
  #pumping = false
  #drainPending = false
  #closed = false
  #discarding = false
  #discarded = 0
  #failure: Error | null = null

  /**
   * @param leftover bytes that arrived after the last handshake message, in the same chunk; they are
   *   consumed before anything else.
   */
  constructor(inner: Connection, remotePeerId: string, leftover?: Uint8Array) {
    super()
    this.inner = inner
    this.remotePeerId = remotePeerId
    if (leftover !== undefined && leftover.length > 0) this.#inbox.push({ kind: 'data', chunk: leftover })
    inner.on('data', this.#onData)
    inner.on('end', this.#onEnd)
    inner.on('close', this.#onClose)
    inner.on('drain', this.#onDrain)
    // "No event in the tick the connection is handed out." The upgrade promise resolves now, and the
    // code awaiting it (however many async functions deep) runs as a chain of microtasks. A
    // microtask that schedules a nextTick lets that whole chain run first, whether we were called
    // from I/O, a microtask or a nextTick (Node runs ticks only after draining microtasks, and
    // microtasks only after the tick queue drains). Neither is faked by vi.useFakeTimers(), unlike
    // setImmediate, so tests with fake timers still see data flow.
    queueMicrotask(() => process.nextTick(this.#open))
  }

  get status(): ConnectionStatus {
    return this.inner.status
  }

  get remoteAddress(): string {
    return this.inner.remoteAddress
  }

  get remoteHost(): string | undefined {
    return this.inner.remoteHost
  }

  get localAddress(): string {
    return this.inner.localAddress
  }

  abstract send(bytes: Uint8Array): boolean

  close(options?: AbortOptions): Promise<void> {
    return this.inner.close(options)
  }

  abort(err?: Error): void {
    this.inner.abort(err)
  }

  pause(): void {
    this.#paused = true
    this.inner.pause()
  }

  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    this.inner.resume()
    // Held data is delivered on a later tick, never from inside resume().
    process.nextTick(this.#pump)
  }

  /**
   * Reads on but drops what arrives, untransformed (nothing is decrypted), and ends when the remote
   * ends: for a connection closing on a peer that broke the rules, whose further bytes must cost us
   * nothing while its `end` must still be seen for the close to finish. A peer that keeps sending past
   * DISCARD_LIMIT bytes is paused instead (reading a flood costs CPU too); its close then waits out its
   * deadline.
   */
  discardInput(): void {
    this.#discarding = true
    this.#discarded = 0
    if (this.#paused) this.resume()
  }

  /**
   * Transforms one chunk of underlying bytes, emitting results through {@link deliver}. Returns the
   * unconsumed tail when it stopped because the connection was paused, else null.
   */
  protected abstract consume(chunk: Uint8Array): Uint8Array | null

  /** Called before `end` is emitted; return false to swallow it (after calling {@link fail}). */
  protected beforeEnd(): boolean {
    return true
  }

  protected get isPaused(): boolean {
    return this.#paused
  }

  /** True once {@link discardInput} was called: stop transforming the chunk at hand. */
  protected get isDiscarding(): boolean {
    return this.#discarding
  }

  /** True once {@link fail} was called or `close` was emitted: stop producing data. */
  protected get isDead(): boolean {
    return this.#failure !== null || this.#closed
  }

  /** Emits one transformed chunk as `data` to the reader above (empty chunks are skipped). */
  protected deliver(chunk: Uint8Array): void {
    if (chunk.length > 0) this.emit('data', chunk)
  }

  /** Drops everything held and aborts the underlying connection; `close` then fires with `err`. */
  protected fail(err: Error): void {
    if (this.isDead) return
    this.#failure = err
    this.#inbox.clear()
    this.inner.abort(err)
  }

  readonly #open = (): void => {
    this.#gated = false
    if (this.#drainPending && !this.#closed) {
      this.#drainPending = false
      this.emit('drain')
    }
    this.#pump()
  }

  readonly #onData = (chunk: Uint8Array): void => {
    if (this.isDead) return
    if (this.#discarding) {
      this.#discarded += chunk.length
      if (this.#discarded > DISCARD_LIMIT) this.inner.pause()
      return
    }
    if (this.#gated || this.#pumping || this.#paused || this.#inbox.peek() !== undefined) {
      this.#inbox.push({ kind: 'data', chunk })
      this.#pump()
      return
    }
    // Nothing is held, so this chunk is next: consume it without an inbox item (one allocation less
    // per read). consume() may re-enter (a listener that pauses or aborts); whatever arrives meanwhile
    // waits in the inbox behind the unconsumed tail, and the pump takes it from there, in order.
    this.#pumping = true
    try {
      const rest = this.consume(chunk)
      if (rest !== null && !this.isDead) this.#inbox.unshift({ kind: 'data', chunk: rest })
    } finally {
      this.#pumping = false
    }
    if (this.#inbox.peek() !== undefined) this.#pump()
  }

  readonly #onEnd = (): void => {
    if (this.isDead) return
    this.#inbox.push({ kind: 'end' })
    this.#pump()
  }

  readonly #onClose = (error?: Error): void => {
    if (this.#closed) return
    const err = this.#failure ?? error
    if (err !== undefined) this.#inbox.clear()
    this.#inbox.push({ kind: 'close', error: err })
    this.#pump()
  }

  readonly #onDrain = (): void => {
    if (this.#closed) return
    if (this.#gated) this.#drainPending = true
    else this.emit('drain')
  }

  readonly #pump = (): void => {
    if (this.#gated || this.#pumping) return
    this.#pumping = true
    try {
      for (let item = this.#inbox.peek(); item !== undefined && !this.#closed; item = this.#inbox.peek()) {
        if (item.kind === 'data' && (this.#paused || this.#failure !== null)) break
        this.#inbox.shift()
        if (item.kind === 'data') {
          if (this.#discarding) continue
          const rest = this.consume(item.chunk)
          if (rest !== null && !this.isDead) this.#inbox.unshift({ kind: 'data', chunk: rest })
        } else if (item.kind === 'end') {
          // A discarded stream may stop inside a record: that is no longer worth a failure.
          if (this.#failure === null && (this.#discarding || this.beforeEnd())) this.emit('end')
        } else {
          this.#closed = true
          this.#inbox.clear()
          this.emit('close', this.#failure ?? item.error)
        }
      }
    } finally {
      this.#pumping = false
    }
  }
}
