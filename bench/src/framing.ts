/**
 * The comparison systems' framing: `[u32 BE length][payload]`, the same shape as Parley's frames.
 * This is the "well-written framer" the issue asks for, so the raw and TLS rows are a fair ceiling:
 *
 * - small frames written in one tick are copied into one batch and leave in one write;
 * - a large frame flushes the batch, then goes out as header + payload in one gathered write
 *   (cork/writev where the output supports it), without copying the payload;
 * - the reader hands out zero-copy views of the received chunk and copies only a frame that spans
 *   chunks, once, into a buffer of exactly its size.
 */

/** Bytes in a frame's length prefix. */
export const PREFIX_BYTES = 4

/** Where a {@link FrameSink} puts bytes. */
export interface FrameOutput {
  /** Writes one chunk; false when the output wants the caller to wait for {@link FrameSink.onDrain}. */
  write(chunk: Uint8Array): boolean
  /** Writes several chunks as one gathered write (cork/uncork, writev). Falls back to a copy when absent. */
  writev?(chunks: Uint8Array[]): boolean
}

/** Options of {@link FrameSink}. */
export interface FrameSinkInit {
  /** A batch is written as soon as it holds this many bytes. @default 65_536 */
  maxBatchBytes?: number
  /** Payloads at least this large skip the batch and go out header + payload. @default 16_384 */
  directBytes?: number
  /**
   * false: every frame goes out on its own, in the write that framed it — how an application uses
   * a message API such as a js-libp2p stream. @default true
   */
  coalesce?: boolean
}

/** Coalescing frame writer: frames written in one tick leave in one write. */
export class FrameSink {
  readonly #out: FrameOutput
  readonly #maxBatch: number
  readonly #direct: number
  readonly #coalesce: boolean
  /** Allocated on the first small frame and grown as needed, so an idle connection holds little. */
  #batch: Buffer | undefined
  #length = 0
  #scheduled = false
  #blocked = false

  constructor(out: FrameOutput, init: FrameSinkInit = {}) {
    this.#out = out
    this.#maxBatch = init.maxBatchBytes ?? 65_536
    this.#direct = init.directBytes ?? 16_384
    this.#coalesce = init.coalesce ?? true
  }

  /** True while the output asked us to wait: the caller should await a drain before writing more. */
  get blocked(): boolean {
    return this.#blocked
  }

  /**
   * Frames `payload`. Returns false when the caller should wait for the output to drain (the frame is
   * queued all the same).
   */
  write(payload: Uint8Array): boolean {
    const n = payload.byteLength
    if (!this.#coalesce) {
      const frame = Buffer.allocUnsafe(PREFIX_BYTES + n)
      frame.writeUInt32BE(n, 0)
      frame.set(payload, PREFIX_BYTES)
      this.#emit([frame])
      return !this.#blocked
    }
    if (n >= this.#direct) {
      this.flush()
      const header = Buffer.allocUnsafe(PREFIX_BYTES)
      header.writeUInt32BE(n, 0)
      this.#emit([header, payload])
      return !this.#blocked
    }
    const batch = this.#reserve(PREFIX_BYTES + n)
    const at = this.#length
    batch.writeUInt32BE(n, at)
    batch.set(payload, at + PREFIX_BYTES)
    this.#length = at + PREFIX_BYTES + n
    if (this.#length >= this.#maxBatch) {
      this.flush()
    } else if (!this.#scheduled) {
      this.#scheduled = true
      // A microtask, not setImmediate: the batch leaves as soon as the writing code yields, so a
      // lone ping-pong frame pays no extra event-loop turn.
      queueMicrotask(this.#runScheduled)
    }
    return !this.#blocked
  }

  /** Writes the pending batch now. */
  flush(): void {
    const length = this.#length
    if (length === 0) return
    // The output keeps a reference to queued writes, so the batch cannot be reused after it is
    // handed over: give a mostly full batch away, copy a mostly empty one out (a small copy from
    // Node's buffer pool beats a fresh 80 KiB allocation per ping-pong frame).
    const batch = this.#batch!
    let chunk: Buffer
    if (length * 2 >= batch.length) {
      chunk = batch.subarray(0, length)
      this.#batch = undefined
    } else {
      chunk = Buffer.allocUnsafe(length)
      batch.copy(chunk, 0, 0, length)
    }
    this.#length = 0
    this.#emit([chunk])
  }

  /** A batch with room for `n` more bytes (after flushing a batch that has none). */
  #reserve(n: number): Buffer {
    const limit = this.#maxBatch + PREFIX_BYTES + this.#direct
    if (this.#length + n > limit) this.flush()
    const needed = this.#length + n
    const batch = this.#batch
    if (batch !== undefined && batch.length >= needed) return batch
    let capacity = batch?.length ?? 4_096
    while (capacity < needed) capacity *= 2
    const grown = Buffer.allocUnsafe(Math.min(capacity, limit))
    if (batch !== undefined) batch.copy(grown, 0, 0, this.#length)
    this.#batch = grown
    return grown
  }

  /** Call on the output's drain event. */
  onDrain(): void {
    this.#blocked = false
  }

  #emit(chunks: Uint8Array[]): void {
    let ok: boolean
    if (chunks.length === 1) ok = this.#out.write(chunks[0]!)
    else if (this.#out.writev) ok = this.#out.writev(chunks)
    else ok = this.#out.write(Buffer.concat(chunks))
    if (!ok) this.#blocked = true
  }

  readonly #runScheduled = (): void => {
    this.#scheduled = false
    this.flush()
  }
}

/** Incremental frame parser: push chunks in any split, get payloads out. */
export class FrameReader {
  readonly #maxFrame: number
  readonly #onFrame: (payload: Uint8Array) => void
  readonly #header = Buffer.alloc(PREFIX_BYTES)
  #headerFill = 0
  /** A frame that spans chunks, allocated once its length is known. */
  #partial: Buffer | null = null
  #partialFill = 0

  /** @throws RangeError from `push` when a length prefix is 0 or above `maxFrame`. */
  constructor(onFrame: (payload: Uint8Array) => void, maxFrame = 1024 * 1024) {
    this.#onFrame = onFrame
    this.#maxFrame = maxFrame
  }

  /** Parses `chunk`; payloads are views of it when they lie inside it, so do not reuse the chunk. */
  push(chunk: Uint8Array): void {
    const n = chunk.byteLength
    let i = 0
    while (i < n) {
      const partial = this.#partial
      if (partial !== null) {
        const take = Math.min(partial.length - this.#partialFill, n - i)
        partial.set(chunk.subarray(i, i + take), this.#partialFill)
        this.#partialFill += take
        i += take
        if (this.#partialFill < partial.length) return
        this.#partial = null
        this.#onFrame(partial)
        continue
      }
      let length: number
      if (this.#headerFill === 0 && n - i >= PREFIX_BYTES) {
        length = ((chunk[i]! << 24) | (chunk[i + 1]! << 16) | (chunk[i + 2]! << 8) | chunk[i + 3]!) >>> 0
        i += PREFIX_BYTES
      } else {
        this.#header[this.#headerFill++] = chunk[i++]!
        if (this.#headerFill < PREFIX_BYTES) continue
        this.#headerFill = 0
        length = this.#header.readUInt32BE(0)
      }
      if (length === 0 || length > this.#maxFrame) {
        throw new RangeError(`frame length ${length} is outside 1…${this.#maxFrame}`)
      }
      if (n - i >= length) {
        this.#onFrame(chunk.subarray(i, i + length))
        i += length
      } else {
        const body = Buffer.allocUnsafe(length)
        body.set(chunk.subarray(i), 0)
        this.#partial = body
        this.#partialFill = n - i
        return
      }
    }
  }
}
