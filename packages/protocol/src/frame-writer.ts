import { alloc, allocSlow, copyOf, writeU32 } from './bytes.js'
import { assertWritten, encodedLength, writeMessage } from './encode.js'
import { ProtocolError, ProtocolErrorCode } from './errors.js'
import { checkChannel, checkFrameSize, FRAME_PREFIX_BYTES, resolveMaxFrameSize } from './frame.js'
import { CHANNEL_BYTES, CONTROL_CHANNEL, type Message } from './messages.js'

// The sending side of framing: the coalescing, per-channel fair writer.
//
// Why coalesce: measured here, one transport write per 64-byte frame is 24x slower than coalesced
// writes, and the secure channel encrypts one batch as one record (one MAC, one header per batch
// instead of per frame). So frames written in the same tick leave as one chunk.

/** Construction options for {@link FrameWriter}. */
export interface FrameWriterInit {
  /**
   * Runs the deferred flush. Inject one for deterministic tests (e.g. collect `fn` and call it).
   * @default setImmediate when defined, else queueMicrotask
   */
  schedule?: (fn: () => void) => void
  /**
   * A batch is flushed synchronously rather than grow past this many bytes; a batch is larger only
   * when it is one frame that alone is larger.
   * @default 262144 (256 KiB)
   */
  maxBatchBytes?: number
  /**
   * Largest frame body this writer will produce; larger messages throw FRAME_TOO_LARGE in `write`.
   * @default DEFAULT_MAX_FRAME_SIZE (1 MiB)
   */
  maxFrameSize?: number
  /**
   * The sink is done with each chunk when it returns (it encrypted or copied it): the writer then lends
   * it its batch buffer and reuses that buffer, rather than handing it over or copying out of it.
   * @default false: the sink owns each chunk
   */
  lend?: boolean
  /**
   * Memory for a frame that skips the batch (8 KiB or more): returns a Uint8Array (in Node, a Buffer
   * is one) of exactly `size`
   * bytes, contents undefined, that goes to the sink like any chunk. Inject one to send large frames
   * in recycled memory (the sink's owner can tell them apart and give them back once read); a fresh
   * 64 KiB buffer costs page faults and external-memory GC pressure on every message.
   * @default Buffer.allocUnsafe in Node, else `new Uint8Array(size)`
   */
  allocate?: (size: number) => Uint8Array
  /**
   * Honour the sink's backpressure: when `sink` returns `false`, hold later frames (as messages, not
   * yet encoded) until {@link FrameWriter.resume}. Only for a sink whose owner calls `resume()` on
   * `drain`; without it, the sink's return value is ignored.
   * @default false
   */
  backpressure?: boolean
}

const DEFAULT_MAX_BATCH_BYTES = 256 * 1024
/** Batch buffer size when a batch starts; doubles as frames arrive. */
const INITIAL_CAPACITY = 16 * 1024
/**
 * A frame at least this large bypasses the batch: it is encoded into a buffer of its own size and
 * handed to the sink at once (after whatever was pending). Copying it into a batch would only cost a
 * copy, and alone it maps onto whole records below (one record per frame up to 64 KiB), so the
 * receiver gets it back as a view instead of reassembling it.
 */
const DIRECT_FRAME_BYTES = INITIAL_CAPACITY / 2
/** Batch buffers kept for reuse, process-wide (see {@link takeBatch}). */
const MAX_SPARE_BATCHES = 8
const spareBatches: Uint8Array[] = []
/**
 * A batch started when no spare is left: a slice of Node's shared pool, not memory of its own.
 * Thousands of links writing in one tick (a large mesh) would otherwise each allocate 16 KiB and
 * drop it at the flush: measured as 22 % of CPU at 3,000 peers in one process, most of it GC.
 */
const SMALL_BATCH = 1024

/**
 * A batch buffer: a spare of INITIAL_CAPACITY bytes or more if one is free, else a small pooled one.
 * Writers put spares back once their bytes were copied out at flush, so an idle writer holds no
 * buffer (an idle link costs no 16 KiB) while busy writers still reuse buffers instead of
 * allocating one per tick.
 */
function takeBatch(needed: number): Uint8Array {
  return spareBatches.pop() ?? alloc(Math.max(SMALL_BATCH, needed))
}

function returnBatch(batch: Uint8Array): void {
  // Grown batches are kept too (up to the default batch limit), so busy writers stop growing by
  // copying; small pooled ones are not (a spare is for a writer that fills it).
  if (
    batch.length >= INITIAL_CAPACITY &&
    batch.length <= DEFAULT_MAX_BATCH_BYTES &&
    spareBatches.length < MAX_SPARE_BATCHES
  )
    spareBatches.push(batch)
}

/** What one channel has held while the sink is blocked; `head` is the next item to frame. */
interface HeldQueue {
  readonly channel: number
  readonly items: (Message | Uint8Array)[]
  readonly sizes: number[]
  head: number
  bytes: number
}

const defaultSchedule = (fn: () => void): void => {
  if (typeof setImmediate === 'function') setImmediate(fn)
  else queueMicrotask(fn)
}

/**
 * Coalescing frame writer: frames written in the same tick reach `sink` as one chunk.
 *
 * The first write after a flush schedules one flush; until it runs, later writes are framed
 * straight into the same batch buffer (no allocation per frame). A flush hands `sink` one chunk
 * holding every pending frame in write order. A frame of 8 KiB or more skips the batch: the pending
 * batch is flushed and the frame follows at once, as a chunk of its own (the same as a frame larger
 * than `maxBatchBytes`). `sink` owns every chunk (it may keep it, e.g. pass it to
 * `Connection.send`; the writer never touches it again) and must not throw: an exception from it
 * propagates to whoever triggered the flush (`write`, `flush`, `resume`, or the scheduler).
 *
 * Backpressure (opt in with `backpressure: true`): when `sink` returns `false` (as `Connection.send`
 * does over its high-water mark), the writer holds what is written next as messages, checked but not encoded, until
 * {@link FrameWriter.resume} (call it on the connection's `drain`). So bulk sends wait as small
 * objects instead of as encoded (and, below, encrypted) 64 KiB buffers queued in the socket, and
 * the memory under those buffers is recycled while still hot.
 *
 * Between flushes an idle writer holds no buffer: batch buffers are shared through a small
 * process-wide pool.
 *
 * Call {@link FrameWriter.flush} before closing the connection so nothing pending or held is lost.
 *
 * @example
 * ```ts
 * const writer = new FrameWriter((chunk) => socket.write(chunk), { backpressure: true })
 * socket.on('drain', () => writer.resume())
 * writer.write({ type: 'PING', nonce: 1 })
 * writer.write({ type: 'PEERS_REQUEST' }, 2) // channel 2 (peers); same tick: both leave in one socket.write
 * ```
 */
export class FrameWriter {
  readonly #sink: (chunk: Uint8Array) => unknown
  readonly #schedule: (fn: () => void) => void
  readonly #maxBatchBytes: number
  readonly #maxFrameSize: number
  readonly #lend: boolean
  readonly #allocate: (size: number) => Uint8Array
  readonly #backpressure: boolean
  /** Batch being filled; `undefined` after its ownership went to the sink. */
  #batch: Uint8Array | undefined
  #length = 0
  #scheduled = false
  /** The sink returned false and `resume()` has not been called since. */
  #blocked = false
  /**
   * Written while blocked, one queue per channel with something held, in round-robin order: messages
   * (with their measured body size) or copied bodies.
   */
  #queues: HeldQueue[] = []
  readonly #queueOf = new Map<number, HeldQueue>()
  /** Index in `#queues` of the channel whose frame goes next. */
  #turn = 0
  #heldCount = 0
  #heldBytes = 0
  #releasing = false

  /**
   * @param sink - receives each chunk; usually the secure channel or `connection.send`. With
   *   `backpressure`, returning `false` holds further frames until {@link FrameWriter.resume}.
   * @throws RangeError for a `maxBatchBytes` that is not a positive integer or a bad `maxFrameSize`.
   */
  constructor(sink: (chunk: Uint8Array) => unknown, init?: FrameWriterInit) {
    this.#sink = sink
    this.#schedule = init?.schedule ?? defaultSchedule
    const maxBatchBytes = init?.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
    if (!Number.isInteger(maxBatchBytes) || maxBatchBytes < 1) {
      throw new RangeError(`maxBatchBytes must be a positive integer, got ${maxBatchBytes}`)
    }
    this.#maxBatchBytes = maxBatchBytes
    this.#maxFrameSize = resolveMaxFrameSize(init?.maxFrameSize)
    this.#lend = init?.lend ?? false
    this.#allocate = init?.allocate ?? alloc
    this.#backpressure = init?.backpressure ?? false
  }

  /** Bytes framed but not yet handed to the sink (held messages are not framed yet). */
  get pendingBytes(): number {
    return this.#length
  }

  /** Messages and bodies written while the sink was blocked, waiting for {@link FrameWriter.resume}. */
  get heldFrames(): number {
    return this.#heldCount
  }

  /** Frame bytes (prefix included) held while the sink is blocked, on every channel. */
  get heldBytes(): number {
    return this.#heldBytes
  }

  /** Frame bytes held for one channel while the sink is blocked. */
  heldBytesOf(channel: number): number {
    return this.#queueOf.get(channel)?.bytes ?? 0
  }

  /** The sink refused more bytes and has not drained since (only with `backpressure`). */
  get blocked(): boolean {
    return this.#blocked
  }

  /**
   * Frames `msg` on `channel` (default: the control channel) into the pending batch, or holds it while
   * the sink is blocked.
   *
   * @throws ProtocolError for an invalid message (see `encodedLength`) or `FRAME_TOO_LARGE`; nothing is
   * queued in that case.
   */
  write(msg: Message, channel = CONTROL_CHANNEL): void {
    checkChannel(channel)
    const size = CHANNEL_BYTES + encodedLength(msg)
    checkFrameSize(size, this.#maxFrameSize)
    // GOODBYE ends the stream: whatever was written before it goes first, whichever channel it is on.
    if (msg.type === 'GOODBYE' && this.#heldCount > 0) this.#release(true)
    if (this.#blocked || this.#heldCount > 0) {
      this.#hold(channel, msg, size)
      return
    }
    this.#frame(msg, size, channel)
  }

  /**
   * Frames an already encoded message body on `channel` into the pending batch: the writer adds the
   * channel byte, and the bytes are copied.
   *
   * @throws ProtocolError `EMPTY_FRAME` or `FRAME_TOO_LARGE`; nothing is queued in that case.
   */
  writeBody(body: Uint8Array, channel = CONTROL_CHANNEL): void {
    checkChannel(channel)
    if (body.byteLength === 0) {
      throw new ProtocolError(ProtocolErrorCode.EMPTY_FRAME, 'a message body cannot be empty')
    }
    const size = CHANNEL_BYTES + body.byteLength
    checkFrameSize(size, this.#maxFrameSize)
    if (this.#blocked || this.#heldCount > 0) {
      this.#hold(channel, copyOf(body), size)
      return
    }
    this.#frameBody(body, channel)
  }

  #hold(channel: number, item: Message | Uint8Array, size: number): void {
    let queue = this.#queueOf.get(channel)
    if (queue === undefined) {
      queue = { channel, items: [], sizes: [], head: 0, bytes: 0 }
      this.#queueOf.set(channel, queue)
      this.#queues.push(queue)
    }
    queue.items.push(item)
    queue.sizes.push(size)
    queue.bytes += FRAME_PREFIX_BYTES + size
    this.#heldCount++
    this.#heldBytes += FRAME_PREFIX_BYTES + size
  }

  /**
   * Hands every held and pending frame to the sink now, whether or not it is blocked; pending frames
   * go as one chunk. Does nothing when nothing is pending or held.
   */
  flush(): void {
    if (this.#heldCount > 0) this.#release(true)
    this.#flushBatch()
  }

  /**
   * Hands the pending batch to the sink now rather than at the deferred flush. Unlike
   * {@link FrameWriter.flush}, frames held while the sink is blocked stay held.
   */
  flushPending(): void {
    this.#flushBatch()
  }

  /**
   * The sink can take more (the connection emitted `drain`): frames what was held, in order, until
   * the sink blocks again. Does nothing when not blocked.
   */
  resume(): void {
    if (!this.#blocked) return
    this.#blocked = false
    // From inside #release (a sink that drains synchronously), its loop carries on by itself.
    if (!this.#releasing) this.#release(false)
  }

  /**
   * Frames held messages one channel at a time, round robin, so a channel with a long queue (a bulk
   * transfer) delays another's next frame by at most one of its own frames.
   */
  #release(force: boolean): void {
    this.#releasing = true
    try {
      while (this.#heldCount > 0 && (force || !this.#blocked)) {
        if (this.#turn >= this.#queues.length) this.#turn = 0
        const queue = this.#queues[this.#turn]!
        const i = queue.head++
        const item = queue.items[i]!
        const size = queue.sizes[i]!
        queue.items[i] = undefined as unknown as Message
        queue.bytes -= FRAME_PREFIX_BYTES + size
        this.#heldCount--
        this.#heldBytes -= FRAME_PREFIX_BYTES + size
        if (queue.head === queue.items.length) {
          this.#queues.splice(this.#turn, 1)
          this.#queueOf.delete(queue.channel)
        } else {
          this.#turn++
        }
        if (item instanceof Uint8Array) this.#frameBody(item, queue.channel)
        else this.#frame(item, size, queue.channel)
      }
    } finally {
      this.#releasing = false
    }
  }

  #frame(msg: Message, size: number, channel: number): void {
    const frameBytes = FRAME_PREFIX_BYTES + size
    if (this.#isDirect(frameBytes)) {
      const frame = this.#allocate(frameBytes)
      writeU32(frame, 0, size)
      frame[FRAME_PREFIX_BYTES] = channel
      assertWritten(writeMessage(msg, frame, FRAME_PREFIX_BYTES + CHANNEL_BYTES), frameBytes)
      this.#flushBatch()
      this.#send(frame)
      return
    }
    const at = this.#reserve(frameBytes)
    const batch = this.#batch!
    writeU32(batch, at, size)
    batch[at + FRAME_PREFIX_BYTES] = channel
    assertWritten(writeMessage(msg, batch, at + FRAME_PREFIX_BYTES + CHANNEL_BYTES), at + frameBytes)
    this.#appended()
  }

  #frameBody(body: Uint8Array, channel: number): void {
    const frameBytes = FRAME_PREFIX_BYTES + CHANNEL_BYTES + body.byteLength
    if (this.#isDirect(frameBytes)) {
      const frame = this.#allocate(frameBytes)
      writeU32(frame, 0, CHANNEL_BYTES + body.byteLength)
      frame[FRAME_PREFIX_BYTES] = channel
      frame.set(body, FRAME_PREFIX_BYTES + CHANNEL_BYTES)
      this.#flushBatch()
      this.#send(frame)
      return
    }
    const at = this.#reserve(frameBytes)
    const batch = this.#batch!
    writeU32(batch, at, CHANNEL_BYTES + body.byteLength)
    batch[at + FRAME_PREFIX_BYTES] = channel
    batch.set(body, at + FRAME_PREFIX_BYTES + CHANNEL_BYTES)
    this.#appended()
  }

  #send(chunk: Uint8Array): void {
    if (this.#sink(chunk) === false && this.#backpressure) this.#blocked = true
  }

  #flushBatch(): void {
    const length = this.#length
    if (length === 0) return
    const batch = this.#batch!
    this.#length = 0
    this.#batch = undefined
    if (this.#lend) {
      this.#send(batch.subarray(0, length))
      returnBatch(batch)
      return
    }
    let chunk: Uint8Array
    if (length * 2 >= batch.length || batch.length < INITIAL_CAPACITY) {
      // Mostly full, or a small pooled slice: give the buffer away rather than copy it.
      chunk = batch.subarray(0, length)
    } else {
      // Mostly empty: copy out the few bytes (small copies come from Node's buffer pool) and put the
      // buffer back for the next batch, of this writer or another.
      chunk = alloc(length)
      chunk.set(batch.subarray(0, length))
      returnBatch(batch)
    }
    this.#send(chunk)
  }

  #isDirect(frameBytes: number): boolean {
    return frameBytes >= DIRECT_FRAME_BYTES || frameBytes > this.#maxBatchBytes
  }

  /** Makes room for `n` more bytes, flushing first if they would push the batch past maxBatchBytes. */
  #reserve(n: number): number {
    if (this.#length > 0 && this.#length + n > this.#maxBatchBytes) this.#flushBatch()
    const needed = this.#length + n
    let batch = this.#batch
    if (batch === undefined) {
      batch = takeBatch(needed)
      this.#batch = batch
    }
    if (batch.length < needed) {
      // A small batch that fills up grows straight to a spare's size: a busy writer then reuses it.
      let capacity = Math.max(batch.length, INITIAL_CAPACITY)
      while (capacity < needed) capacity *= 2
      const grown = allocSlow(capacity)
      if (this.#length > 0) grown.set(batch.subarray(0, this.#length))
      returnBatch(batch)
      this.#batch = grown
    }
    const at = this.#length
    this.#length = needed
    return at
  }

  #appended(): void {
    if (this.#length >= this.#maxBatchBytes) {
      this.#flushBatch()
      return
    }
    if (!this.#scheduled) {
      this.#scheduled = true
      this.#schedule(this.#runScheduled)
    }
  }

  readonly #runScheduled = (): void => {
    this.#scheduled = false
    this.#flushBatch()
  }
}
