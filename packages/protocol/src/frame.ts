import { Buffer } from 'node:buffer'
import { assertWritten, encodedLength, writeMessage } from './codec.js'
import { ProtocolError, ProtocolErrorCode } from './errors.js'
import { CHANNEL_BYTES, CONTROL_CHANNEL, MAX_CHANNEL, type Message } from './messages.js'

// Framing: every message travels as  [u32 BE body length][body], and a body is [u8 channel][message].
// See docs/PROTOCOL.md "Framing" and "Channels".

/** Bytes in a frame's length prefix. */
export const FRAME_PREFIX_BYTES = 4

/** Default largest frame body a peer accepts: 1 MiB. Bigger prefixes fail the connection. */
export const DEFAULT_MAX_FRAME_SIZE = 1_048_576

/** Options for one framing call. */
export interface FrameOptions {
  /**
   * Channel the message travels on (u8): 0 is the session's control channel, 1… the services'
   * (PROTOCOL.md, "Channels").
   * @default 0
   */
  channel?: number
  /**
   * Refuse to build a frame whose body is larger than this; the receiver would drop the connection.
   * @default DEFAULT_MAX_FRAME_SIZE (1 MiB)
   */
  maxFrameSize?: number
}

/** Construction options for {@link FrameDecoder}. */
export interface FrameDecoderInit {
  /**
   * Largest body accepted, in bytes (1 to 2^32-1). A larger length prefix fails the decoder.
   * @default DEFAULT_MAX_FRAME_SIZE (1 MiB)
   */
  maxFrameSize?: number
}

/** Validates a maxFrameSize option (a programming error, hence RangeError, not ProtocolError). */
function resolveMaxFrameSize(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_FRAME_SIZE
  if (!Number.isInteger(value) || value < 1 || value > 0xffff_ffff) {
    throw new RangeError(`maxFrameSize must be an integer from 1 to 4294967295, got ${value}`)
  }
  return value
}

/** Throws the ProtocolError for a body length that cannot be framed or accepted. */
function checkFrameSize(size: number, maxFrameSize: number): void {
  if (size === 0) {
    throw new ProtocolError(ProtocolErrorCode.EMPTY_FRAME, 'frame of 0 bytes: bodies cannot be empty')
  }
  if (size > maxFrameSize) {
    throw new ProtocolError(
      ProtocolErrorCode.FRAME_TOO_LARGE,
      `frame of ${size} bytes exceeds the ${maxFrameSize}-byte limit`,
    )
  }
}

/**
 * Prefixes `body` with its u32 big-endian length. Copies the body once; when you start from a
 * message, {@link frameMessage} avoids that copy.
 *
 * @throws ProtocolError `EMPTY_FRAME` for an empty body, `FRAME_TOO_LARGE` above `maxFrameSize`.
 */
export function encodeFrame(body: Uint8Array, options?: FrameOptions): Uint8Array {
  checkFrameSize(body.byteLength, resolveMaxFrameSize(options?.maxFrameSize))
  const frame = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + body.byteLength)
  frame.writeUInt32BE(body.byteLength, 0)
  frame.set(body, FRAME_PREFIX_BYTES)
  return frame
}

/**
 * Encodes `msg` as a complete frame (prefix + body) in one allocation: the body is written straight
 * after the reserved prefix.
 *
 * @throws ProtocolError from {@link encodedLength} for an invalid message, or `FRAME_TOO_LARGE` when
 * the body exceeds `maxFrameSize` (possible for a PEERS message near its list limits: split it).
 * @throws RangeError for a `channel` that is not an integer from 0 to 255.
 */
export function frameMessage(msg: Message, options?: FrameOptions): Uint8Array {
  const channel = checkChannel(options?.channel ?? CONTROL_CHANNEL)
  const size = CHANNEL_BYTES + encodedLength(msg)
  checkFrameSize(size, resolveMaxFrameSize(options?.maxFrameSize))
  const frame = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + size)
  frame.writeUInt32BE(size, 0)
  frame[FRAME_PREFIX_BYTES] = channel
  assertWritten(writeMessage(msg, frame, FRAME_PREFIX_BYTES + CHANNEL_BYTES), frame.length)
  return frame
}

/**
 * Splits a frame body into its channel byte and the message body after it (a view, no copy).
 *
 * @throws ProtocolError `EMPTY_FRAME` when there is no message after the channel byte.
 */
export function splitChannel(body: Uint8Array): { channel: number; message: Uint8Array } {
  if (body.byteLength < 2) {
    throw new ProtocolError(ProtocolErrorCode.EMPTY_FRAME, 'frame body holds no message after its channel')
  }
  return { channel: body[0]!, message: body.subarray(CHANNEL_BYTES) }
}

function checkChannel(channel: number): number {
  if (!Number.isInteger(channel) || channel < 0 || channel > MAX_CHANNEL) {
    throw new RangeError(`channel must be an integer from 0 to ${MAX_CHANNEL}, got ${channel}`)
  }
  return channel
}

/**
 * Incremental frame parser for one byte stream: push chunks as they arrive, get complete bodies back.
 *
 * Chunking does not matter (one byte at a time, many frames per chunk, a prefix split across
 * chunks). A body that lies inside one chunk is returned as a zero-copy view of that chunk, valid
 * until the caller lets go of the chunk. A body spanning chunks is assembled in a buffer of the
 * decoder's own as its bytes arrive (one copy), so the decoder never keeps a pushed chunk: what it
 * holds is at most twice the bytes received of the frame in progress plus 16 KiB, whatever the
 * chunk sizes ({@link FrameDecoder.heldBytes}). A peer announcing a large frame and sending it a
 * byte at a time costs memory in proportion to what it sent, not to what it announced, and not a
 * chunk object per byte.
 *
 * The length prefix is checked on its own, before any body byte is buffered: 0 fails with
 * `EMPTY_FRAME`, above `maxFrameSize` with `FRAME_TOO_LARGE`, and nothing is allocated for it.
 *
 * Failure is final, and frames that came before the violation are never lost:
 * - if the violation is reached before any frame completed in this `push`, `push` throws it;
 * - otherwise `push` returns the frames that precede it, {@link FrameDecoder.error} is set, and the
 *   next `push` (or {@link FrameDecoder.end}) throws it.
 *
 * In both cases buffered bytes are released and every later call throws the same error.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder()
 * socket.on('data', (chunk) => {
 *   try {
 *     for (const body of decoder.push(chunk)) handle(splitChannel(body))
 *   } catch (err) {
 *     return socket.destroy(err as Error)
 *   }
 *   if (decoder.error) socket.destroy(decoder.error)
 * })
 * ```
 */
export class FrameDecoder {
  /** Largest body accepted, in bytes. */
  readonly maxFrameSize: number

  /** Prefix bytes read so far (0–3 between pushes), accumulated big-endian into `#prefix`. */
  #prefixRead = 0
  #prefix = 0
  /** Body length from the current prefix, or -1 while the prefix is still being read. */
  #bodyLength = -1
  /** The body being assembled across chunks, and how much of it is filled. */
  #body: Buffer | undefined
  #filled = 0
  #error: ProtocolError | undefined

  /** @throws RangeError if `maxFrameSize` is not an integer from 1 to 2^32-1. */
  constructor(init?: FrameDecoderInit) {
    this.maxFrameSize = resolveMaxFrameSize(init?.maxFrameSize)
  }

  /**
   * Bytes received but not yet returned: a partial prefix, or the body bytes of the frame in
   * progress (its prefix is consumed once read and no longer counted).
   */
  get buffered(): number {
    return this.#bodyLength < 0 ? this.#prefixRead : this.#filled
  }

  /** Memory this decoder holds between pushes, in bytes: the capacity of its assembly buffer. */
  get heldBytes(): number {
    return this.#body?.length ?? 0
  }

  /** The violation that failed this decoder, if any. Set once, never cleared. */
  get error(): ProtocolError | undefined {
    return this.#error
  }

  /**
   * Adds `chunk` to the stream and returns every body it completes, in order.
   *
   * @throws ProtocolError `FRAME_TOO_LARGE` or `EMPTY_FRAME` for a bad length prefix when no frame
   * precedes it in this call, or the stored {@link FrameDecoder.error} if the decoder already failed.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#error) throw this.#error
    const frames: Uint8Array[] = []
    const end = chunk.byteLength
    let at = 0
    while (at < end) {
      if (this.#bodyLength < 0) {
        // Fast path: a whole prefix in this chunk.
        if (this.#prefixRead === 0 && end - at >= FRAME_PREFIX_BYTES) {
          this.#prefix =
            ((chunk[at]! << 24) | (chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!) >>> 0
          this.#prefixRead = FRAME_PREFIX_BYTES
          at += FRAME_PREFIX_BYTES
        } else {
          while (this.#prefixRead < FRAME_PREFIX_BYTES && at < end) {
            this.#prefix = this.#prefix * 256 + chunk[at++]!
            this.#prefixRead++
          }
          if (this.#prefixRead < FRAME_PREFIX_BYTES) break
        }
        const length = this.#prefix
        this.#prefix = 0
        this.#prefixRead = 0
        try {
          checkFrameSize(length, this.maxFrameSize)
        } catch (err) {
          this.#fail(err as ProtocolError)
          if (frames.length === 0) throw err
          return frames
        }
        this.#bodyLength = length
        this.#filled = 0
        // Nothing of the body in this chunk: start no assembly, so the next chunk's body can be a view.
        if (at === end) break
      }
      const need = this.#bodyLength - this.#filled
      const available = end - at
      if (this.#body === undefined && available >= need) {
        // The whole body is in this chunk: a view, no copy.
        frames.push(chunk.subarray(at, at + need))
        at += need
        this.#bodyLength = -1
        continue
      }
      const take = Math.min(need, available)
      this.#append(chunk, at, take)
      at += take
      if (this.#filled === this.#bodyLength) {
        frames.push(this.#body!.subarray(0, this.#filled))
        this.#body = undefined
        this.#filled = 0
        this.#bodyLength = -1
      }
    }
    return frames
  }

  /**
   * Call when the stream ends.
   *
   * @throws the stored {@link FrameDecoder.error}, or ProtocolError `TRUNCATED` if the stream stopped
   * inside a frame.
   */
  end(): void {
    if (this.#error) throw this.#error
    const buffered = this.buffered
    if (buffered > 0 || this.#bodyLength >= 0) {
      const what = this.#bodyLength < 0 ? 'a length prefix' : `a ${this.#bodyLength}-byte frame`
      this.#fail(
        new ProtocolError(
          ProtocolErrorCode.TRUNCATED,
          `stream ended inside ${what}, with ${buffered} bytes unread`,
        ),
      )
      throw this.#error
    }
  }

  #fail(err: ProtocolError): void {
    this.#error = err
    this.#body = undefined
    this.#filled = 0
    this.#prefixRead = 0
    this.#bodyLength = -1
  }

  /**
   * Copies `n` bytes of `chunk` into the assembly buffer, growing it geometrically up to the body
   * length, so memory follows the bytes that actually arrived.
   */
  #append(chunk: Uint8Array, at: number, n: number): void {
    const needed = this.#filled + n
    let body = this.#body
    if (body === undefined || body.length < needed) {
      const capacity = Math.min(this.#bodyLength, Math.max(needed * 2, ASSEMBLY_START_BYTES))
      const grown = Buffer.allocUnsafe(capacity)
      if (body !== undefined && this.#filled > 0) body.copy(grown, 0, 0, this.#filled)
      body = grown
      this.#body = grown
    }
    body.set(n === chunk.byteLength ? chunk : chunk.subarray(at, at + n), this.#filled)
    this.#filled = needed
  }
}

/** First size of a body assembly buffer: most frames that span records are small. */
const ASSEMBLY_START_BYTES = 16 * 1024

// ---------------------------------------------------------------------------------------------
// Sending side: the coalescing writer.

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
   * Memory for a frame that skips the batch (8 KiB or more): returns a Buffer of exactly `size`
   * bytes, contents undefined, that goes to the sink like any chunk. Inject one to send large frames
   * in recycled memory (the sink's owner can tell them apart and give them back once read); a fresh
   * 64 KiB buffer costs page faults and external-memory GC pressure on every message.
   * @default Buffer.allocUnsafe
   */
  allocate?: (size: number) => Buffer
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
const spareBatches: Buffer[] = []

/**
 * A batch buffer of INITIAL_CAPACITY bytes. Writers take one when a batch starts and put it back
 * once its bytes were copied out at flush, so an idle writer holds no buffer (an idle link costs no
 * 16 KiB) while busy writers still reuse buffers instead of allocating one per tick.
 */
function takeBatch(): Buffer {
  return spareBatches.pop() ?? Buffer.allocUnsafeSlow(INITIAL_CAPACITY)
}

function returnBatch(batch: Buffer): void {
  // Grown batches are kept too (up to the default batch limit), so busy writers stop growing by copying.
  if (batch.length <= DEFAULT_MAX_BATCH_BYTES && spareBatches.length < MAX_SPARE_BATCHES)
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
  readonly #allocate: (size: number) => Buffer
  readonly #backpressure: boolean
  /** Batch being filled; `undefined` after its ownership went to the sink. */
  #batch: Buffer | undefined
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
    this.#allocate = init?.allocate ?? Buffer.allocUnsafe
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
      this.#hold(channel, Buffer.from(body), size)
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
      frame.writeUInt32BE(size, 0)
      frame[FRAME_PREFIX_BYTES] = channel
      assertWritten(writeMessage(msg, frame, FRAME_PREFIX_BYTES + CHANNEL_BYTES), frameBytes)
      this.#flushBatch()
      this.#send(frame)
      return
    }
    const at = this.#reserve(frameBytes)
    const batch = this.#batch!
    batch.writeUInt32BE(size, at)
    batch[at + FRAME_PREFIX_BYTES] = channel
    assertWritten(writeMessage(msg, batch, at + FRAME_PREFIX_BYTES + CHANNEL_BYTES), at + frameBytes)
    this.#appended()
  }

  #frameBody(body: Uint8Array, channel: number): void {
    const frameBytes = FRAME_PREFIX_BYTES + CHANNEL_BYTES + body.byteLength
    if (this.#isDirect(frameBytes)) {
      const frame = this.#allocate(frameBytes)
      frame.writeUInt32BE(CHANNEL_BYTES + body.byteLength, 0)
      frame[FRAME_PREFIX_BYTES] = channel
      frame.set(body, FRAME_PREFIX_BYTES + CHANNEL_BYTES)
      this.#flushBatch()
      this.#send(frame)
      return
    }
    const at = this.#reserve(frameBytes)
    const batch = this.#batch!
    batch.writeUInt32BE(CHANNEL_BYTES + body.byteLength, at)
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
    let chunk: Buffer
    if (length * 2 >= batch.length) {
      // Mostly full: give the buffer away rather than copy it.
      chunk = batch.subarray(0, length)
    } else {
      // Mostly empty: copy out the few bytes (small copies come from Node's buffer pool) and put the
      // buffer back for the next batch, of this writer or another.
      chunk = Buffer.allocUnsafe(length)
      batch.copy(chunk, 0, 0, length)
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
      batch = takeBatch()
      this.#batch = batch
    }
    if (batch.length < needed) {
      let capacity = batch.length
      while (capacity < needed) capacity *= 2
      const grown = Buffer.allocUnsafeSlow(capacity)
      if (this.#length > 0) batch.copy(grown, 0, 0, this.#length)
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
