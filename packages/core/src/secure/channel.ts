/**
 * The Noise secure channel: `Noise_XX_25519_ChaChaPoly_SHA256` with each side's Ed25519 identity
 * bound to its Noise static key by a signature. The binding is libp2p's noise construction (a
 * signature over a prefixed static key in the handshake payload), with a fixed-layout payload
 * instead of protobuf.
 *
 * ```
 *  initiator                                                      responder
 *     ── [u16 32]  e ─────────────────────────────────────────────────▶
 *     ◀──────────── [u16 193]  e, ee, enc(s), es, enc(identity payload) ──
 *     ── [u16 161]  enc(s), se, enc(identity payload) ────────────────▶
 *     ◀═══ records, both ways: [u16 n+16]  ChaCha20-Poly1305(n plaintext bytes) ‖ tag ═══▶
 *
 *  identity payload (97 bytes): u8 version = 1 ‖ Ed25519 public key (32) ‖
 *      Ed25519 signature (64) over "parley-noise-static-key:" ‖ the sender's Noise static public key
 *  prologue: "parley/1" ‖ SHA-256(networkSecret), or just "parley/1" without a secret
 *  [u16 n]: a big-endian length prefix of n bytes
 * ```
 *
 * The static X25519 key is fresh per upgrader and only vouched for by the signature, so a peer's
 * identity is its Ed25519 key alone. A different network secret changes the prologue, which is
 * hashed into every handshake MAC: the initiator's check of message 2 fails, it aborts, and the
 * responder sees the connection end mid-handshake. Both report `HANDSHAKE_FAILED`.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto'
import sodium from 'sodium-native'
import { isSendBuffer, releaseSendBuffer, SEND_BUFFER_BYTES, takeSendBuffer } from '../send-buffers.js'
import type { Connection } from '../transport.js'
import { SecureChannelError } from './errors.js'
import {
  type CipherState,
  DHLEN,
  generateKeyPair,
  HandshakeState,
  MAX_MESSAGE_LEN,
  type NoiseKeyPair,
  TAGLEN,
  type TransportCiphers,
} from './noise.js'
import type { ConnectionUpgrader, SecureConnection, UpgradeOptions } from './upgrader.js'
import { WrappedConnection } from './wrapped-connection.js'

/** The largest plaintext one record carries: a Noise message is at most 65535 bytes, tag included. */
export const MAX_RECORD_PLAINTEXT = MAX_MESSAGE_LEN - TAGLEN

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000
/** Records at least this large are sealed into recycled memory. */
const RECYCLE_MIN_BYTES = 16 * 1024
const PROLOGUE_LABEL = Buffer.from('parley/1', 'ascii')
const SIGNATURE_PREFIX = Buffer.from('parley-noise-static-key:', 'ascii')
const IDENTITY_VERSION = 1
const IDENTITY_PAYLOAD_LEN = 1 + 32 + 64
const EMPTY = Buffer.alloc(0)
const PEER_ID = /^[0-9a-f]{64}$/

// Every handshake message has a fixed size, so a wrong length prefix is rejected before buffering.
const MESSAGE_LEN = [
  DHLEN, // -> e (empty payload, sent in clear: there is no key yet)
  DHLEN + (DHLEN + TAGLEN) + (IDENTITY_PAYLOAD_LEN + TAGLEN), // <- e, ee, s, es + payload
  DHLEN + TAGLEN + (IDENTITY_PAYLOAD_LEN + TAGLEN), // -> s, se + payload
] as const

/** Options of {@link noiseUpgrader}. */
export interface NoiseUpgraderInit {
  /** This peer's long-term Ed25519 identity; `peerId` must be the hex of its raw public key. */
  identity: { peerId: string; privateKey: KeyObject; publicKey: KeyObject }
  /**
   * Makes a private network: only peers with the same secret complete a handshake. Any bytes,
   * including empty ones, define a network; leave it out for the public one.
   */
  networkSecret?: Uint8Array
  /** Milliseconds the whole handshake may take before `HANDSHAKE_TIMEOUT`. @default 10_000 */
  handshakeTimeout?: number
  /**
   * Largest plaintext per record, 1 … 65519. Larger sends are split. It also caps what we accept,
   * so both sides must use the same value (or the receiver the larger one). @default 65519
   */
  maxRecordSize?: number
}

function rawEd25519(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SecureChannelError(
      'IDENTITY_INVALID',
      `the identity is a ${key.asymmetricKeyType} key, not Ed25519`,
    )
  }
  const publicKey = key.type === 'public' ? key : createPublicKey(key)
  const x = publicKey.export({ format: 'jwk' }).x
  if (x === undefined) throw new SecureChannelError('IDENTITY_INVALID', 'cannot read the identity public key')
  return Buffer.from(x, 'base64url')
}

/**
 * libsodium's Ed25519 secret key (seed ‖ public key, 64 bytes) for each identity private key,
 * derived once. A WeakMap, so it lives exactly as long as the KeyObject, and nothing that logs or
 * serialises an identity can reach it.
 */
const signingKeys = new WeakMap<KeyObject, Buffer>()

/**
 * The libsodium secret key of `privateKey`, checked against `publicKey` (raw bytes).
 * @throws SecureChannelError `IDENTITY_INVALID` when it is not an Ed25519 private key or does not
 *   belong to `publicKey`
 */
function signingKey(privateKey: KeyObject, publicKey: Buffer): Buffer {
  let secretKey = signingKeys.get(privateKey)
  if (secretKey === undefined) {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
      throw new SecureChannelError('IDENTITY_INVALID', 'identity.privateKey is not an Ed25519 private key')
    }
    // JWK `d` is the raw 32-byte seed (RFC 8037); libsodium expands it as RFC 8032 does.
    const d = privateKey.export({ format: 'jwk' }).d
    if (d === undefined)
      throw new SecureChannelError('IDENTITY_INVALID', 'cannot read the identity private key')
    const seed = Buffer.from(d, 'base64url')
    const derivedPublicKey = Buffer.alloc(32)
    secretKey = Buffer.alloc(64)
    sodium.crypto_sign_seed_keypair(derivedPublicKey, secretKey, seed)
    sodium.sodium_memzero(seed)
    signingKeys.set(privateKey, secretKey)
  }
  // The public half of libsodium's secret key is the public key the seed derives.
  if (!secretKey.subarray(32).equals(publicKey)) {
    throw new SecureChannelError('IDENTITY_INVALID', 'identity.privateKey does not match identity.publicKey')
  }
  return secretKey
}

/** Our identity payload, signed once per upgrader; checks that the identity is self-consistent. */
function identityPayload(identity: NoiseUpgraderInit['identity'], staticKey: NoiseKeyPair): Buffer {
  const publicKey = rawEd25519(identity.publicKey)
  if (!PEER_ID.test(identity.peerId) || publicKey.toString('hex') !== identity.peerId) {
    throw new SecureChannelError('IDENTITY_INVALID', 'identity.peerId is not the hex of identity.publicKey')
  }
  const secretKey = signingKey(identity.privateKey, publicKey)
  const payload = Buffer.alloc(IDENTITY_PAYLOAD_LEN)
  payload[0] = IDENTITY_VERSION
  payload.set(publicKey, 1)
  sodium.crypto_sign_detached(
    payload.subarray(33),
    Buffer.concat([SIGNATURE_PREFIX, staticKey.publicKey]),
    secretKey,
  )
  return payload
}

/**
 * Checks the remote's identity payload against the static key the handshake authenticated.
 * libsodium is the stricter verifier (it also refuses non-canonical and small-order keys); honest
 * signatures verify the same as with node:crypto, which the tests check.
 * @returns the remote peer id
 * @throws SecureChannelError `IDENTITY_INVALID`
 */
function verifyIdentity(payload: Buffer, remoteStatic: Buffer | null): string {
  if (payload.length !== IDENTITY_PAYLOAD_LEN || payload[0] !== IDENTITY_VERSION || remoteStatic === null) {
    throw new SecureChannelError(
      'IDENTITY_INVALID',
      `malformed identity payload (${payload.length} bytes, version ${payload[0]})`,
    )
  }
  const publicKey = payload.subarray(1, 33)
  const signature = payload.subarray(33)
  if (
    !sodium.crypto_sign_verify_detached(signature, Buffer.concat([SIGNATURE_PREFIX, remoteStatic]), publicKey)
  ) {
    throw new SecureChannelError(
      'IDENTITY_INVALID',
      'the remote identity signature does not cover its Noise key',
    )
  }
  return publicKey.toString('hex')
}

/**
 * Creates an upgrader that secures connections with the Noise XX handshake and authenticates the
 * remote's Ed25519 identity (see the module comment for the wire layout).
 *
 * The returned connection encrypts each `send()` as one record when it fits (`maxRecordSize`), or
 * as consecutive records handed to the underlying connection in one `send()`. Any record that
 * fails authentication (tampered, replayed, reordered, truncated) aborts the connection: `close`
 * fires with SecureChannelError `INTEGRITY` and nothing of that record is delivered.
 *
 * @throws SecureChannelError `IDENTITY_INVALID` when the identity is inconsistent;
 *   RangeError for an out-of-range `handshakeTimeout` or `maxRecordSize`
 */
export function noiseUpgrader(init: NoiseUpgraderInit): ConnectionUpgrader {
  const handshakeTimeout = init.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT
  if (!(handshakeTimeout > 0 && Number.isFinite(handshakeTimeout))) {
    throw new RangeError(`handshakeTimeout must be a positive number of ms, got ${handshakeTimeout}`)
  }
  const maxRecordSize = init.maxRecordSize ?? MAX_RECORD_PLAINTEXT
  if (!Number.isInteger(maxRecordSize) || maxRecordSize < 1 || maxRecordSize > MAX_RECORD_PLAINTEXT) {
    throw new RangeError(
      `maxRecordSize must be an integer in 1…${MAX_RECORD_PLAINTEXT}, got ${maxRecordSize}`,
    )
  }
  const staticKeyPair = generateKeyPair()
  const payload = identityPayload(init.identity, staticKeyPair)
  const prologue =
    init.networkSecret === undefined
      ? PROLOGUE_LABEL
      : Buffer.concat([PROLOGUE_LABEL, createHash('sha256').update(init.networkSecret).digest()])
  const settings: HandshakeSettings = { staticKeyPair, payload, prologue, handshakeTimeout, maxRecordSize }
  return { upgrade: (conn, options) => handshake(conn, options, settings) }
}

interface HandshakeSettings {
  staticKeyPair: NoiseKeyPair
  payload: Buffer
  prologue: Buffer
  handshakeTimeout: number
  maxRecordSize: number
}

function handshakeError(err: unknown): Error {
  if (!(err instanceof SecureChannelError)) {
    return new SecureChannelError('HANDSHAKE_FAILED', 'the secure handshake failed', { cause: err })
  }
  if (
    err.code === 'HANDSHAKE_FAILED' &&
    err.cause instanceof SecureChannelError &&
    err.cause.code === 'INTEGRITY'
  ) {
    return new SecureChannelError(
      'HANDSHAKE_FAILED',
      'the secure handshake failed its authentication check: the peers may be on different network secrets',
      { cause: err },
    )
  }
  return err
}

function handshake(
  conn: Connection,
  options: UpgradeOptions,
  settings: HandshakeSettings,
): Promise<SecureConnection> {
  return new Promise<SecureConnection>((resolve, reject) => {
    const initiator = options.role === 'initiator'
    const { signal } = options
    const state = new HandshakeState({
      initiator,
      staticKeyPair: settings.staticKeyPair,
      prologue: settings.prologue,
    })
    let messages = 0 // handshake messages written or read so far
    let buffered: Buffer = EMPTY
    let settled = false

    const cleanup = () => {
      clearTimeout(timer)
      conn.off('data', onData)
      conn.off('end', onEnd)
      conn.off('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const fail = (err: unknown, abortWith?: Error) => {
      if (settled) return
      settled = true
      cleanup()
      conn.abort(abortWith ?? (err instanceof Error ? err : undefined))
      reject(err)
    }
    const write = (payload: Uint8Array) => {
      const message = state.writeMessage(payload)
      messages++
      const framed = Buffer.allocUnsafe(2 + message.length)
      framed.writeUInt16BE(message.length, 0)
      message.copy(framed, 2)
      conn.send(framed)
    }
    const read = (message: Buffer) => {
      const payload = state.readMessage(message)
      messages++
      if (messages === 1) {
        // -> e: we send no payload in the first message (it would travel in clear), so accept none.
        if (payload.length !== 0)
          throw new SecureChannelError('HANDSHAKE_FAILED', 'unexpected first-message payload')
        write(settings.payload)
        return
      }
      const remotePeerId = verifyIdentity(payload, state.remoteStaticPublicKey)
      if (initiator) write(settings.payload)
      settled = true
      cleanup()
      const leftover = buffered
      buffered = EMPTY
      resolve(new NoiseConnection(conn, remotePeerId, state.split(), settings.maxRecordSize, leftover))
    }

    const onData = (chunk: Uint8Array) => {
      if (settled) return
      buffered = buffered.length === 0 ? Buffer.from(chunk) : Buffer.concat([buffered, chunk])
      try {
        while (!settled && buffered.length >= 2) {
          const length = buffered.readUInt16BE(0)
          const expected = MESSAGE_LEN[messages]
          if (length !== expected) {
            throw new SecureChannelError(
              'HANDSHAKE_FAILED',
              `expected a ${expected}-byte handshake message but the length prefix says ${length}: the remote is not speaking Parley's secure channel`,
            )
          }
          if (buffered.length < 2 + length) return
          const message = buffered.subarray(2, 2 + length)
          buffered = buffered.subarray(2 + length)
          read(message)
        }
      } catch (err) {
        fail(handshakeError(err))
      }
    }
    const onEnd = () => {
      fail(
        new SecureChannelError(
          'HANDSHAKE_FAILED',
          'the remote ended the connection during the secure handshake (it may have rejected it, e.g. a different network secret)',
        ),
      )
    }
    const onClose = (error?: Error) => {
      fail(
        new SecureChannelError(
          'HANDSHAKE_FAILED',
          'the connection closed during the secure handshake (the remote may have rejected it, e.g. a different network secret)',
          { cause: error },
        ),
      )
    }
    const onAbort = () => {
      const reason: unknown = signal?.reason
      fail(reason, reason instanceof Error ? reason : undefined)
    }

    const timer = setTimeout(() => {
      fail(
        new SecureChannelError(
          'HANDSHAKE_TIMEOUT',
          `the secure handshake did not finish within ${settings.handshakeTimeout} ms`,
        ),
      )
    }, settings.handshakeTimeout)
    timer.unref?.()

    if (signal?.aborted) return onAbort()
    if (conn.status !== 'open') {
      return fail(
        new SecureChannelError('HANDSHAKE_FAILED', `cannot secure a connection that is ${conn.status}`),
      )
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    conn.on('data', onData)
    conn.on('end', onEnd)
    conn.on('close', onClose)
    if (initiator) {
      try {
        write(EMPTY)
      } catch (err) {
        fail(handshakeError(err))
      }
    }
  })
}

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
class NoiseConnection extends WrappedConnection {
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
      if (this.isDead) return null
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
