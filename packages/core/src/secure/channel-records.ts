import { isSendBuffer, releaseSendBuffer, SEND_BUFFER_BYTES, takeSendBuffer } from '../send-buffers.js'
import type { Connection } from '../transport.js'
import { SecureChannelError } from './errors.js'
import type { TransportCiphers } from './noise.js'
import type { CipherState } from './noise-cipher-state.js'
import { TAGLEN } from './noise-crypto.js'
import { WrappedConnection } from './wrapped-connection.js'

/** Records at least this large are sealed into recycled memory. */
const RECYCLE_MIN_BYTES = 16 * 1024
const EMPTY = Buffer.alloc(0)

/**
 * Records on the wire: u16 BE length ‖ ciphertext ‖ tag, length = plaintext + 16 ≤ 65535.
 * Receiving is a streaming parser: any chunking, at most one partial record buffered, records
 * opened in order with the next nonce (so replays and reorders fail authentication).
 *
 * Copies: a send is sealed straight into the buffer handed to the connection below (which owns it,
 * so it is not copied again). A small record that lies within one received chunk is opened into a
 * fresh buffer of its plaintext size; a large one (16 KiB or more), or one that spans chunks, is
 * copied or assembled once and opened in place. Either way the plaintext delivered is the
 * listener's to keep, unless it gives it back with {@link NoiseConnection.recycle}: large records
 * are received into recycled memory (see send-buffers.ts), so a listener that is done with a chunk
 * by the time its `data` event returns (the peer, once it has decoded the frames) saves the next
 * record a fresh 64 KiB allocation. Between records nothing is held.
 */
export class NoiseConnection extends WrappedConnection {
  readonly sendCopies = true
  readonly #send: CipherState
  readonly #receive: CipherState
  readonly #maxPlaintext: number
  /** The first byte of a length prefix split across chunks, or -1. */
  #headerHigh = -1
  #record: Buffer | null = null // a record split across chunks, allocated once its length is known
  #recordFill = 0
  /** The last plaintext delivered in recycled memory, and that memory, until given back. */
  #lent: Uint8Array | null = null
  #lentMemory: Buffer | null = null

  constructor(
    inner: Connection,
    remotePeerId: string,
    ciphers: TransportCiphers,
    maxPlaintext: number,
    leftover: Uint8Array,
    /** The Noise protocol name the handshake ran, e.g. `Noise_XX_25519_ChaChaPoly_SHA256`. */
    readonly protocol: string,
  ) {
    super(inner, remotePeerId, leftover)
    this.#send = ciphers.send
    this.#receive = ciphers.receive
    this.#maxPlaintext = maxPlaintext
  }

  /**
   * Encrypts `bytes` as one record (or, beyond `maxRecordSize`, several) in one underlying send.
   * `bytes` is only read, and given back at once if it is recycled memory (see send-buffers.ts); the
   * sealed records go to the connection below, which owns them.
   */
  override send(bytes: Uint8Array): boolean {
    const total = bytes.length
    if (total === 0) return true
    const max = this.#maxPlaintext
    const records = Math.ceil(total / max)
    const size = total + records * (2 + TAGLEN)
    // Large single records go out in recycled memory (see send-buffers.ts); small ones come from
    // Node's buffer pool anyway, and multi-record batches are rare.
    const out =
      size >= RECYCLE_MIN_BYTES && size <= SEND_BUFFER_BYTES ? takeSendBuffer(size) : Buffer.allocUnsafe(size)
    let offset = 0
    for (let start = 0; start < total; start += max) {
      const end = Math.min(start + max, total)
      const length = end - start + TAGLEN
      out[offset] = length >>> 8
      out[offset + 1] = length & 0xff
      offset = this.#send.encryptInto(bytes.subarray(start, end), out, offset + 2)
    }
    // We own `bytes` and are done reading it: recycled memory (the peer's large frames) goes back now.
    releaseSendBuffer(bytes)
    return this.inner.send(out)
  }

  protected override consume(chunk: Uint8Array): Uint8Array | null {
    const n = chunk.length
    let i = 0
    while (i < n) {
      if (this.isDead || this.isDiscarding) return null
      if (this.isPaused) return chunk.subarray(i)
      const partial = this.#record
      if (partial !== null) {
        const take = Math.min(partial.length - this.#recordFill, n - i)
        partial.set(take === n - i && i === 0 ? chunk : chunk.subarray(i, i + take), this.#recordFill)
        this.#recordFill += take
        i += take
        if (this.#recordFill < partial.length) return null
        this.#record = null
        this.#openInPlace(partial)
        continue
      }
      let length: number
      if (this.#headerHigh >= 0) {
        length = (this.#headerHigh << 8) | chunk[i++]!
        this.#headerHigh = -1
      } else if (n - i >= 2) {
        length = (chunk[i]! << 8) | chunk[i + 1]!
        i += 2
      } else {
        this.#headerHigh = chunk[i++]!
        continue
      }
      if (!this.#checkLength(length)) return null
      if (n - i >= length) {
        if (length >= RECYCLE_MIN_BYTES) {
          // Large and whole in this chunk: copy it into recycled memory (hot, unlike a fresh buffer,
          // which costs page faults) and open it there.
          const record = takeSendBuffer(length)
          record.set(chunk.subarray(i, i + length))
          this.#openInPlace(record)
        } else {
          // Small and whole: open it straight from the chunk into its plaintext buffer.
          this.#open(chunk.subarray(i, i + length))
        }
        i += length
      } else {
        // Spans chunks: assemble it (the one copy), then open it in place. Large ones in recycled
        // memory; small ones in allocUnsafeSlow: a record's plaintext is delivered as a view of
        // this buffer, and a view of Node's shared pool would keep the whole pool slab alive for as
        // long as the listener keeps it.
        this.#record = length >= RECYCLE_MIN_BYTES ? takeSendBuffer(length) : Buffer.allocUnsafeSlow(length)
        this.#record.set(i === 0 ? chunk : chunk.subarray(i), 0)
        this.#recordFill = n - i
        i = n
      }
    }
    return null
  }

  /**
   * Gives back the memory of `chunk`, the last `data` chunk emitted, once its listener has read all it
   * needs (it must keep no view of it). Only honoured while there is exactly one `data` listener,
   * which is then the only reader; for any other chunk, or a chunk given back already, a no-op.
   */
  recycle(chunk: Uint8Array): void {
    if (chunk !== this.#lent || this.listenerCount('data') !== 1) return
    const memory = this.#lentMemory!
    this.#lent = null
    this.#lentMemory = null
    releaseSendBuffer(memory)
  }

  protected override beforeEnd(): boolean {
    if (this.#record === null && this.#headerHigh < 0) return true
    this.fail(new SecureChannelError('INTEGRITY', 'the stream ended inside a record (truncated)'))
    return false
  }

  #checkLength(length: number): boolean {
    if (length < TAGLEN) {
      this.fail(
        new SecureChannelError('INTEGRITY', `a ${length}-byte record cannot hold its authentication tag`),
      )
      return false
    }
    // No peer sends an empty record (send() skips empty writes), and one would cost us an open while
    // delivering nothing, so no per-link budget would ever count it.
    if (length === TAGLEN) {
      this.fail(new SecureChannelError('INTEGRITY', 'an empty record (a tag and no plaintext)'))
      return false
    }
    if (length > this.#maxPlaintext + TAGLEN) {
      this.fail(
        new SecureChannelError(
          'RECORD_TOO_LARGE',
          `a ${length}-byte record exceeds the ${this.#maxPlaintext + TAGLEN}-byte limit (maxRecordSize differs between the peers?)`,
        ),
      )
      return false
    }
    return true
  }

  #open(record: Uint8Array): void {
    let plaintext: Uint8Array
    try {
      plaintext = this.#receive.decryptWithAd(EMPTY, record)
    } catch (cause) {
      this.#authFailed(cause)
      return
    }
    this.deliver(plaintext)
  }

  /** Opens a record we assembled ourselves: the plaintext overwrites the ciphertext, no new buffer. */
  #openInPlace(record: Buffer): void {
    let plaintext: Uint8Array
    try {
      plaintext = this.#receive.decryptInPlace(record)
    } catch (cause) {
      releaseSendBuffer(record)
      this.#authFailed(cause)
      return
    }
    if (isSendBuffer(record)) {
      this.#lent = plaintext
      this.#lentMemory = record
    }
    this.deliver(plaintext)
  }

  #authFailed(cause: unknown): void {
    this.fail(
      new SecureChannelError(
        'INTEGRITY',
        'a record failed authentication (tampered, replayed or reordered)',
        {
          cause,
        },
      ),
    )
  }
}
