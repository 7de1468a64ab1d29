import { alloc } from './bytes.js'
import { ProtocolError, ProtocolErrorCode } from './errors.js'
import { checkFrameSize, FRAME_PREFIX_BYTES, resolveMaxFrameSize } from './frame.js'
import { CHANNEL_BYTES } from './messages.js'

// The receiving side of framing: any chunking in, whole frame bodies out (PROTOCOL.md, "Framing").

/** Construction options for {@link FrameDecoder}. */
export interface FrameDecoderInit {
  /**
   * Largest body accepted, in bytes (1 to 2^32-1). A larger length prefix fails the decoder.
   * @default DEFAULT_MAX_FRAME_SIZE (1 MiB)
   */
  maxFrameSize?: number
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
  #body: Uint8Array | undefined
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
    return this.#push(chunk, undefined)
  }

  /**
   * Like {@link FrameDecoder.push}, for bodies that start with their channel byte (every frame since
   * protocol version 3): returns each body's message, a view after that byte, and appends its channel
   * to `channels` at the same index. One view per frame, where `push` and then `splitChannel` make two
   * and an object: on a receiver of small messages that is a few percent of its CPU.
   *
   * A length prefix under 2 fails the decoder with `EMPTY_FRAME` (no message after the channel), on the
   * same terms as any bad prefix: frames before it come back first.
   *
   * @throws ProtocolError as {@link FrameDecoder.push} does.
   */
  pushMessages(chunk: Uint8Array, channels: number[]): Uint8Array[] {
    // A prefix read by push(), before the stream switched to messages, was not checked for a message.
    if (this.#bodyLength >= 0 && this.#bodyLength <= CHANNEL_BYTES) this.#failEmpty()
    return this.#push(chunk, channels)
  }

  /** `channels` set: split each body into its channel (pushed there) and its message (returned). */
  #push(chunk: Uint8Array, channels: number[] | undefined): Uint8Array[] {
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
          if (channels !== undefined && length <= CHANNEL_BYTES) throw emptyFrame()
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
        if (channels === undefined) frames.push(chunk.subarray(at, at + need))
        else {
          channels.push(chunk[at]!)
          frames.push(chunk.subarray(at + CHANNEL_BYTES, at + need))
        }
        at += need
        this.#bodyLength = -1
        continue
      }
      const take = Math.min(need, available)
      this.#append(chunk, at, take)
      at += take
      if (this.#filled === this.#bodyLength) {
        const body = this.#body!
        if (channels === undefined) frames.push(body.subarray(0, this.#filled))
        else {
          channels.push(body[0]!)
          frames.push(body.subarray(CHANNEL_BYTES, this.#filled))
        }
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

  #failEmpty(): never {
    this.#fail(emptyFrame())
    throw this.#error
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
      const grown = alloc(capacity)
      if (body !== undefined && this.#filled > 0) grown.set(body.subarray(0, this.#filled))
      body = grown
      this.#body = grown
    }
    body.set(n === chunk.byteLength ? chunk : chunk.subarray(at, at + n), this.#filled)
    this.#filled = needed
  }
}

function emptyFrame(): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.EMPTY_FRAME, 'frame body holds no message after its channel')
}

/** First size of a body assembly buffer: most frames that span records are small. */
const ASSEMBLY_START_BYTES = 16 * 1024
