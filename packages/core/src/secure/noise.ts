/**
 * `Noise_XX_25519_ChaChaPoly_SHA256`, as specified by the Noise Protocol Framework, revision 34
 * (https://noiseprotocol.org/noise.html). X25519 and SHA-256 (and with it HMAC and HKDF) come from
 * libsodium (sodium-native): raw 32-byte keys and one native call per operation, where node:crypto
 * needs a KeyObject, a JWK import and an OpenSSL context for each (measured here: a handshake's key
 * generation, DH, hashing and HKDF take about half the CPU).
 *
 * The objects and their methods follow the spec's section 5 one for one (CipherState,
 * SymmetricState, HandshakeState), so the code can be read side by side with it. Checked byte for
 * byte against published test vectors in `test/secure-noise-vectors.test.ts`.
 *
 * ```
 * XX:  -> e
 *      <- e, ee, s, es
 *      -> s, se
 * ```
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto'
import sodium from 'sodium-native'
import { SecureChannelError } from './errors.js'

/** The full protocol name; exactly 32 bytes, so it is used as the initial `h` unhashed (spec 5.2). */
export const PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_SHA256'
/** X25519 public key and shared secret length. */
export const DHLEN = 32
/** SHA-256 output length. */
export const HASHLEN = 32
/** Poly1305 tag length. */
export const TAGLEN = 16
/** The largest Noise message, handshake or transport (spec 3). */
export const MAX_MESSAGE_LEN = 65535

const EMPTY = Buffer.alloc(0)
/**
 * Transport records with at least this much plaintext go through OpenSSL where that is faster (see
 * CipherState), or never (Infinity).
 */
const OPENSSL_MIN_BYTES =
  Number(process.versions.node.split('.')[0]) < 22 ? 16 * 1024 : Number.POSITIVE_INFINITY
// 2^64 - 1 is reserved by the spec; a JS number is exact up to 2^53, which no connection reaches.
const MAX_NONCE = Number.MAX_SAFE_INTEGER

/**
 * An X25519 key pair as raw bytes: the 32-byte private scalar (clamped by X25519 itself, RFC 7748)
 * and the 32-byte public key. Secret: never log it or hand it out.
 */
export interface NoiseKeyPair {
  readonly privateKey: Uint8Array
  readonly publicKey: Buffer
}

/** GENERATE_KEYPAIR(): a fresh random X25519 key pair. */
export function generateKeyPair(): NoiseKeyPair {
  return keyPairFrom((privateKey) => sodium.randombytes_buf(privateKey))
}

/** An X25519 key pair from 32 raw private key bytes (copied). Meant for test vectors; real keys come from {@link generateKeyPair}. */
export function keyPairFromPrivateKey(raw: Uint8Array): NoiseKeyPair {
  if (raw.length !== DHLEN) throw new RangeError(`an X25519 private key is ${DHLEN} bytes, got ${raw.length}`)
  return keyPairFrom((privateKey) => privateKey.set(raw))
}

function keyPairFrom(fill: (privateKey: Buffer) => void): NoiseKeyPair {
  // One allocation for both halves (Buffer.alloc: never the shared pool, whose 8 KiB slab a long-lived
  // 32-byte slice would pin); publicKey is handed out and hashed, so it is a Buffer.
  const bytes = Buffer.alloc(2 * DHLEN)
  const privateKey = bytes.subarray(0, DHLEN)
  const publicKey = bytes.subarray(DHLEN)
  fill(privateKey)
  sodium.crypto_scalarmult_base(publicKey, privateKey)
  return { privateKey, publicKey }
}

/**
 * DH(key_pair, public_key). libsodium refuses a low-order public key (the result would be all
 * zeros), which the spec allows implementations to do; OpenSSL did the same.
 * @throws SecureChannelError `HANDSHAKE_FAILED` for a low-order public key
 */
function dh(keyPair: NoiseKeyPair, publicKey: Uint8Array): Buffer {
  const shared = Buffer.allocUnsafe(DHLEN)
  try {
    sodium.crypto_scalarmult(shared, keyPair.privateKey, publicKey)
  } catch (cause) {
    throw new SecureChannelError('HANDSHAKE_FAILED', 'the remote sent a low-order X25519 key', { cause })
  }
  return shared
}

// SHA-256 and HMAC-SHA256 over module-level scratch: every call below is synchronous and nothing
// else hashes in between, so it is safe, and inputs are copied into one buffer and hashed with one
// native call (sodium-native checks its arguments in JS on every call, so calls, not bytes, cost).
const SHA256_BLOCK = 64
// Big enough for the largest message this channel hashes (193 bytes) behind an HMAC pad block.
const scratch = Buffer.alloc(1024)
/** The outer HMAC input, opad ‖ inner hash: always this length, so the view is made once. */
const outerInput = scratch.subarray(0, SHA256_BLOCK + HASHLEN)
/** Where HKDF leaves key-derived bytes (pads, DH output, temp_k outputs): wiped after each HKDF. */
const hkdfResidue = scratch.subarray(0, SHA256_BLOCK + 2 * HASHLEN + 1)
const sha256State = Buffer.alloc(sodium.crypto_hash_sha256_STATEBYTES)

/** SHA-256(`prefix` bytes of scratch ‖ a ‖ b) into `out`. */
function sha256(prefix: number, a: Uint8Array, b: Uint8Array, out: Buffer): Buffer {
  const length = prefix + a.length + b.length
  if (length <= scratch.length) {
    scratch.set(a, prefix)
    scratch.set(b, prefix + a.length)
    sodium.crypto_hash_sha256(out, scratch.subarray(0, length))
  } else {
    // Only for a caller hashing a large handshake payload: stream it.
    sodium.crypto_hash_sha256_init(sha256State)
    if (prefix > 0) sodium.crypto_hash_sha256_update(sha256State, scratch.subarray(0, prefix))
    sodium.crypto_hash_sha256_update(sha256State, a)
    sodium.crypto_hash_sha256_update(sha256State, b)
    sodium.crypto_hash_sha256_final(sha256State, out)
  }
  return out
}

/** HASH(a ‖ b) into a fresh 32-byte buffer. */
function hash(a: Uint8Array, b: Uint8Array): Buffer {
  return sha256(0, a, b, Buffer.allocUnsafe(HASHLEN))
}

/** Writes the pad block, `key` (≤ 64 bytes, zero-padded) XOR `pad` (RFC 2104), at the start of scratch. */
function fillPad(key: Uint8Array, pad: number): void {
  scratch.fill(pad, 0, SHA256_BLOCK)
  for (let i = 0; i < key.length; i++) scratch[i] = key[i]! ^ pad
}

/** HMAC-HASH(key, a ‖ b) into `out` (RFC 2104). Noise's keys are HASHLEN bytes, within one block. */
function hmac(key: Uint8Array, a: Uint8Array, b: Uint8Array, out: Buffer): Buffer {
  fillPad(key, 0x36)
  // The inner hash goes straight to where the outer input wants it, after the opad block.
  const inner = outerInput.subarray(SHA256_BLOCK)
  sha256(SHA256_BLOCK, a, b, inner)
  fillPad(key, 0x5c)
  sodium.crypto_hash_sha256(out, outerInput)
  return out
}

const BYTE_1 = Buffer.from([1])
const BYTE_2 = Buffer.from([2])
const tempKey = Buffer.alloc(HASHLEN)

/** HKDF(chaining_key, input_key_material, 2) as defined in spec 4.3 (HMAC-SHA256 based). */
function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Buffer, Buffer] {
  hmac(chainingKey, inputKeyMaterial, EMPTY, tempKey)
  const output1 = hmac(tempKey, BYTE_1, EMPTY, Buffer.allocUnsafe(HASHLEN))
  const output2 = hmac(tempKey, output1, BYTE_2, Buffer.allocUnsafe(HASHLEN))
  sodium.sodium_memzero(tempKey)
  sodium.sodium_memzero(hkdfResidue)
  return [output1, output2]
}

/**
 * A key `k` and a 64-bit nonce `n` (spec 5.1). ChaChaPoly is IETF ChaCha20-Poly1305 from libsodium
 * (`crypto_aead_chacha20poly1305_ietf_*`); its 96-bit nonce is 32 zero bits followed by `n`
 * little-endian (spec 12.3).
 *
 * libsodium rather than `node:crypto`: `createCipheriv` builds an OpenSSL context per record,
 * about 5 µs on Node 20 and 15 µs on Node 24, where libsodium seals a 64-byte record in under 1 µs.
 * Both directions also work in place, which the record layer uses to avoid copies.
 *
 * Except large transport records on Node 20: there OpenSSL's ChaCha20-Poly1305 (SIMD) seals or
 * opens 64 KB in about 28 µs, context, output buffer and copy included, against libsodium's 48 µs
 * (measured here). The same AEAD with the same key and nonce, so the same bytes on the wire; the
 * tests check each implementation against the other. On Node 24 the context setup (about 15 µs)
 * eats most of that, so it stays with libsodium there (and on 22, unmeasured).
 */
export class CipherState {
  #key: Buffer | null = null
  /** The key as OpenSSL takes it, made on the first large record. */
  #keyObject: KeyObject | null = null
  #n = 0
  // Reused for every operation: libsodium and OpenSSL read the nonce during the call only.
  #nonce: Buffer | null = null

  /** InitializeKey(key): sets `k` and resets `n` to 0. */
  initializeKey(key: Uint8Array | null): void {
    // The key being replaced (a handshake key, once the next one is mixed in) is wiped, not left behind.
    if (this.#key !== null) sodium.sodium_memzero(this.#key)
    if (key === null) {
      this.#key = null
      this.#keyObject = null
    } else {
      // Key and nonce share one small allocation of their own: a copy from Node's buffer pool
      // (Buffer.from) would pin a whole 8 KiB pool slab for as long as the session lives.
      const memory = Buffer.allocUnsafeSlow(key.length + 12)
      memory.set(key)
      memory.fill(0, key.length)
      this.#key = memory.subarray(0, key.length)
      this.#nonce = memory.subarray(key.length)
      this.#keyObject = null
    }
    this.#n = 0
  }

  hasKey(): boolean {
    return this.#key !== null
  }

  /** The next nonce to be used. */
  get nonce(): number {
    return this.#n
  }

  setNonce(n: number): void {
    this.#n = n
  }

  #prepareNonce(): Buffer {
    const n = this.#n
    if (n >= MAX_NONCE)
      throw new SecureChannelError('INTEGRITY', 'nonce space exhausted; the session must end')
    const nonce = this.#nonce!
    nonce.writeUInt32LE(n >>> 0, 4)
    nonce.writeUInt32LE(Math.floor(n / 0x1_0000_0000), 8)
    return nonce
  }

  /** EncryptWithAd(ad, plaintext): returns plaintext unchanged while there is no key. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Buffer {
    if (this.#key === null) return Buffer.from(plaintext)
    const out = Buffer.allocUnsafe(plaintext.length + TAGLEN)
    this.#seal(this.#key, ad, plaintext, out)
    return out
  }

  /**
   * Encrypts `plaintext` with empty associated data into `out` at `offset` as ciphertext || tag, and
   * returns the offset just past it. The transport fast path: the record is sealed where it will be
   * sent. `plaintext` may be `out.subarray(offset, offset + plaintext.length)` (in place).
   * @throws Error without a key; SecureChannelError `INTEGRITY` when the nonces are used up
   */
  encryptInto(plaintext: Uint8Array, out: Uint8Array, offset: number): number {
    if (this.#key === null) throw new Error('CipherState has no key')
    const end = offset + plaintext.length + TAGLEN
    if (plaintext.length >= OPENSSL_MIN_BYTES) this.#sealOpenSsl(this.#key, plaintext, out, offset)
    else this.#seal(this.#key, null, plaintext, out.subarray(offset, end))
    return end
  }

  /** The same seal as #seal (empty associated data) through OpenSSL; see the class comment. */
  #sealOpenSsl(key: Buffer, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
    const nonce = this.#prepareNonce()
    this.#keyObject ??= createSecretKey(key)
    const cipher = createCipheriv('chacha20-poly1305', this.#keyObject, nonce, { authTagLength: TAGLEN })
    // update() returns a fresh buffer, so `plaintext` may overlap `out` (it is read before the copy).
    const ciphertext = cipher.update(plaintext)
    const tail = cipher.final() // empty for a stream cipher, but it completes the tag
    out.set(ciphertext, offset)
    out.set(tail, offset + ciphertext.length)
    out.set(cipher.getAuthTag(), offset + plaintext.length)
    this.#n++
  }

  #seal(key: Buffer, ad: Uint8Array | null, plaintext: Uint8Array, out: Uint8Array): void {
    const nonce = this.#prepareNonce()
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      out,
      plaintext,
      ad !== null && ad.length > 0 ? ad : null,
      null,
      nonce,
      key,
    )
    this.#n++
  }

  /**
   * DecryptWithAd(ad, ciphertext): returns ciphertext unchanged while there is no key.
   * On failure `n` is not advanced (spec 5.1) and nothing of the plaintext escapes.
   * @throws SecureChannelError `INTEGRITY` when authentication fails
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Buffer {
    if (this.#key === null) return Buffer.from(ciphertext)
    const out = Buffer.allocUnsafe(Math.max(0, ciphertext.length - TAGLEN))
    this.#open(this.#key, ad, ciphertext, out)
    return out
  }

  /**
   * Opens `ciphertext` (ciphertext || tag, empty associated data) in place: the plaintext overwrites
   * its start, and the returned view covers it. The caller must own `ciphertext`; on failure its bytes
   * are zeroed (libsodium clears the output), `n` is not advanced and nothing escapes.
   * @throws Error without a key; SecureChannelError `INTEGRITY` when authentication fails
   */
  decryptInPlace(ciphertext: Uint8Array): Uint8Array {
    if (this.#key === null) throw new Error('CipherState has no key')
    const plaintext = ciphertext.subarray(0, Math.max(0, ciphertext.length - TAGLEN))
    if (plaintext.length >= OPENSSL_MIN_BYTES) this.#openOpenSsl(this.#key, ciphertext, plaintext)
    else this.#open(this.#key, null, ciphertext, plaintext)
    return plaintext
  }

  /**
   * The same open as #open (empty associated data) through OpenSSL. update() hands back plaintext
   * before final() has checked the tag, into a buffer of its own: it is copied out only once the tag
   * verified, and wiped otherwise.
   */
  #openOpenSsl(key: Buffer, ciphertext: Uint8Array, out: Uint8Array): void {
    const nonce = this.#prepareNonce()
    this.#keyObject ??= createSecretKey(key)
    const decipher = createDecipheriv('chacha20-poly1305', this.#keyObject, nonce, { authTagLength: TAGLEN })
    decipher.setAuthTag(ciphertext.subarray(out.length))
    const plaintext = decipher.update(ciphertext.subarray(0, out.length))
    let tail: Buffer
    try {
      tail = decipher.final() // empty for a stream cipher; it checks the tag
    } catch (cause) {
      plaintext.fill(0)
      throw new SecureChannelError('INTEGRITY', 'message authentication failed', { cause })
    }
    out.set(plaintext)
    out.set(tail, plaintext.length)
    this.#n++
  }

  #open(key: Buffer, ad: Uint8Array | null, ciphertext: Uint8Array, out: Uint8Array): void {
    if (ciphertext.length < TAGLEN) {
      throw new SecureChannelError(
        'INTEGRITY',
        `ciphertext of ${ciphertext.length} bytes is shorter than a tag`,
      )
    }
    const nonce = this.#prepareNonce()
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        out,
        null,
        ciphertext,
        ad !== null && ad.length > 0 ? ad : null,
        nonce,
        key,
      )
    } catch (cause) {
      throw new SecureChannelError('INTEGRITY', 'message authentication failed', { cause })
    }
    this.#n++
  }
}

/** `ck`, `h` and a CipherState (spec 5.2). */
export class SymmetricState {
  readonly cipherState = new CipherState()
  #ck: Buffer
  #h: Buffer

  /** InitializeSymmetric(protocol_name). */
  constructor(protocolName: string) {
    const name = Buffer.from(protocolName, 'utf8')
    // Names up to HASHLEN bytes are zero-padded, longer ones hashed.
    this.#h =
      name.length <= HASHLEN ? Buffer.concat([name, Buffer.alloc(HASHLEN - name.length)]) : hash(name, EMPTY)
    this.#ck = Buffer.from(this.#h)
    this.cipherState.initializeKey(null)
  }

  /** The handshake hash `h`: after the handshake, a unique id of the session (channel binding). */
  get handshakeHash(): Buffer {
    return Buffer.from(this.#h)
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempK] = hkdf2(this.#ck, inputKeyMaterial)
    sodium.sodium_memzero(this.#ck)
    this.#ck = ck
    // HASHLEN is 32 for SHA-256, so temp_k needs no truncation.
    this.cipherState.initializeKey(tempK)
    sodium.sodium_memzero(tempK)
  }

  mixHash(data: Uint8Array): void {
    this.#h = hash(this.#h, data)
  }

  encryptAndHash(plaintext: Uint8Array): Buffer {
    const ciphertext = this.cipherState.encryptWithAd(this.#h, plaintext)
    this.mixHash(ciphertext)
    return ciphertext
  }

  /** @throws SecureChannelError `INTEGRITY` when authentication fails */
  decryptAndHash(ciphertext: Uint8Array): Buffer {
    const plaintext = this.cipherState.decryptWithAd(this.#h, ciphertext)
    this.mixHash(ciphertext)
    return plaintext
  }

  /** Split(): the initiator's sending and receiving CipherStates, in that order. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.#ck, EMPTY)
    const c1 = new CipherState()
    c1.initializeKey(k1)
    const c2 = new CipherState()
    c2.initializeKey(k2)
    // The CipherStates hold their own copies; nothing else may keep key material.
    sodium.sodium_memzero(k1)
    sodium.sodium_memzero(k2)
    sodium.sodium_memzero(this.#ck)
    return [c1, c2]
  }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss'

// The XX message patterns; XX has no pre-messages.
const XX: readonly (readonly Token[])[] = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']]

export interface HandshakeStateInit {
  /** True for the party that sends the first message. */
  initiator: boolean
  /** Our static key pair. */
  staticKeyPair: NoiseKeyPair
  /** Bound into the handshake hash; both sides must use the same bytes or the handshake fails. @default empty */
  prologue?: Uint8Array
  /** A fixed ephemeral key pair. ONLY for reproducing test vectors: reusing an ephemeral key breaks security. */
  ephemeralKeyPair?: NoiseKeyPair
}

/** The two CipherStates of an established session, oriented for this side. */
export interface TransportCiphers {
  readonly send: CipherState
  readonly receive: CipherState
}

/**
 * HandshakeState for the XX pattern (spec 5.3): feed it messages in turn with
 * {@link writeMessage}/{@link readMessage}; once {@link isComplete}, take {@link split}.
 */
export class HandshakeState {
  readonly #ss: SymmetricState
  readonly #initiator: boolean
  readonly #s: NoiseKeyPair
  #e: NoiseKeyPair | null
  /** True when `#e` was generated here (not passed in), so it is ours to wipe once used. */
  #ownsEphemeral = false
  #rs: Buffer | null = null
  #re: Buffer | null = null
  #index = 0
  #ciphers: [CipherState, CipherState] | null = null

  constructor(init: HandshakeStateInit) {
    this.#initiator = init.initiator
    this.#s = init.staticKeyPair
    this.#e = init.ephemeralKeyPair ?? null
    this.#ss = new SymmetricState(PROTOCOL_NAME)
    this.#ss.mixHash(init.prologue ?? EMPTY)
  }

  /** True once all three messages have been written or read. */
  get isComplete(): boolean {
    return this.#ciphers !== null
  }

  /** True when the next message is ours to write. */
  get isMyTurn(): boolean {
    return !this.isComplete && this.#index % 2 === (this.#initiator ? 0 : 1)
  }

  /** The remote static public key, once received. */
  get remoteStaticPublicKey(): Buffer | null {
    return this.#rs
  }

  get handshakeHash(): Buffer {
    return this.#ss.handshakeHash
  }

  #pattern(): readonly Token[] {
    const pattern = XX[this.#index]
    if (pattern === undefined) throw new Error('the handshake is already complete')
    return pattern
  }

  #dh(token: 'ee' | 'es' | 'se' | 'ss'): Buffer {
    const need = <T>(value: T | null): T => {
      if (value === null) throw new Error(`token ${token} needs a key that is not there yet`)
      return value
    }
    // es: the initiator's ephemeral with the responder's static; se the other way round.
    switch (token) {
      case 'ee':
        return dh(need(this.#e), need(this.#re))
      case 'es':
        return this.#initiator ? dh(need(this.#e), need(this.#rs)) : dh(this.#s, need(this.#re))
      case 'se':
        return this.#initiator ? dh(this.#s, need(this.#re)) : dh(need(this.#e), need(this.#rs))
      case 'ss':
        return dh(this.#s, need(this.#rs))
    }
  }

  /** MixKey(DH(...)) for a DH token; the shared secret is wiped once mixed in. */
  #mixDh(token: 'ee' | 'es' | 'se' | 'ss'): void {
    const shared = this.#dh(token)
    this.#ss.mixKey(shared)
    sodium.sodium_memzero(shared)
  }

  /** WriteMessage(payload): the next handshake message, carrying `payload`. */
  writeMessage(payload: Uint8Array): Buffer {
    if (!this.isMyTurn) throw new Error('not our turn to write a handshake message')
    const parts: Buffer[] = []
    for (const token of this.#pattern()) {
      if (token === 'e') {
        if (this.#e === null) {
          this.#e = generateKeyPair()
          this.#ownsEphemeral = true
        }
        parts.push(this.#e.publicKey)
        this.#ss.mixHash(this.#e.publicKey)
      } else if (token === 's') {
        parts.push(this.#ss.encryptAndHash(this.#s.publicKey))
      } else {
        this.#mixDh(token)
      }
    }
    parts.push(this.#ss.encryptAndHash(payload))
    const message = Buffer.concat(parts)
    if (message.length > MAX_MESSAGE_LEN) throw new RangeError('handshake message exceeds 65535 bytes')
    this.#advance()
    return message
  }

  /**
   * ReadMessage(message): processes the remote's next handshake message and returns its payload.
   * @throws SecureChannelError `HANDSHAKE_FAILED` on a short message, a bad key or a MAC failure
   */
  readMessage(message: Uint8Array): Buffer {
    if (this.isComplete || this.isMyTurn) throw new Error('not our turn to read a handshake message')
    let offset = 0
    const take = (n: number): Uint8Array => {
      if (message.length - offset < n) {
        throw new SecureChannelError(
          'HANDSHAKE_FAILED',
          `handshake message of ${message.length} bytes is too short`,
        )
      }
      const bytes = message.subarray(offset, offset + n)
      offset += n
      return bytes
    }
    try {
      for (const token of this.#pattern()) {
        if (token === 'e') {
          this.#re = Buffer.from(take(DHLEN))
          this.#ss.mixHash(this.#re)
        } else if (token === 's') {
          const bytes = take(this.#ss.cipherState.hasKey() ? DHLEN + TAGLEN : DHLEN)
          this.#rs = this.#ss.decryptAndHash(bytes)
        } else {
          this.#mixDh(token)
        }
      }
      const payload = this.#ss.decryptAndHash(message.subarray(offset))
      this.#advance()
      return payload
    } catch (cause) {
      if (cause instanceof SecureChannelError && cause.code === 'HANDSHAKE_FAILED') throw cause
      throw new SecureChannelError('HANDSHAKE_FAILED', 'handshake message rejected', { cause })
    }
  }

  #advance(): void {
    this.#index++
    if (this.#index !== XX.length) return
    this.#ciphers = this.#ss.split()
    // The ephemeral key has done its work; wiping it is what makes the session forward secret.
    if (this.#ownsEphemeral && this.#e !== null) sodium.sodium_memzero(this.#e.privateKey)
    this.#e = null
    this.#re = null
  }

  /**
   * The transport CipherStates: the initiator sends with the first from Split(), the responder with the second.
   * @throws Error before the handshake is complete
   */
  split(): TransportCiphers {
    if (this.#ciphers === null) throw new Error('the handshake is not complete')
    const [c1, c2] = this.#ciphers
    return this.#initiator ? { send: c1, receive: c2 } : { send: c2, receive: c1 }
  }
}
