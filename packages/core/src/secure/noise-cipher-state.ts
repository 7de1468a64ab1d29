import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto'
import sodium from 'sodium-native'
import { SecureChannelError } from './errors.js'
import { TAGLEN } from './noise-crypto.js'

/**
 * The two Noise cipher functions Parley speaks (spec 12.3 and 12.4): IETF ChaCha20-Poly1305, and
 * AES-256-GCM, which seals a cache-hot 64 KB record in about 24 µs on Node 24 with AES instructions
 * (37 µs on Node 20; 41–44 µs for fresh records) against libsodium ChaCha20-Poly1305's 48–52 µs.
 */
export type NoiseCipher = 'ChaChaPoly' | 'AESGCM'

/**
 * ChaChaPoly transport records with at least this much plaintext go through OpenSSL where that is
 * faster (see CipherState), or never (Infinity).
 */
const OPENSSL_MIN_BYTES =
  Number(process.versions.node.split('.')[0]) < 22 ? 16 * 1024 : Number.POSITIVE_INFINITY
// 2^64 - 1 is reserved by the spec; a JS number is exact up to 2^53, which no connection reaches.
const MAX_NONCE = Number.MAX_SAFE_INTEGER

/**
 * A key `k` and a 64-bit nonce `n` (spec 5.1), for one of the two cipher functions:
 *
 * - **ChaChaPoly** is IETF ChaCha20-Poly1305 from libsodium (`crypto_aead_chacha20poly1305_ietf_*`);
 *   its 96-bit nonce is 32 zero bits followed by `n` little-endian (spec 12.3). libsodium rather than
 *   `node:crypto`: `createCipheriv` builds an OpenSSL context per record, about 5 µs, where libsodium
 *   seals a 64-byte record in under 1 µs. Both directions also work in place, which the record layer
 *   uses to avoid copies. Except large transport records on Node 20: there OpenSSL's
 *   ChaCha20-Poly1305 (SIMD) seals or opens 64 KB in about 28 µs, context, output buffer and copy
 *   included, against libsodium's 48 µs (measured here). The same AEAD with the same key and nonce,
 *   so the same bytes on the wire; the tests check each implementation against the other.
 * - **AESGCM** is AES-256-GCM from OpenSSL (`node:crypto`; libsodium's binding has none); its nonce
 *   is 32 zero bits followed by `n` big-endian (spec 12.4). A context per record costs about 5 µs,
 *   and node:crypto cannot seal in place, so each record also takes a fresh output buffer.
 */
export class CipherState {
  readonly cipher: NoiseCipher
  readonly #openSslMinBytes: number
  #key: Buffer | null = null
  /** The key as OpenSSL takes it, made on the first large record. */
  #keyObject: KeyObject | null = null
  #n = 0
  // Reused for every operation: libsodium and OpenSSL read the nonce during the call only.
  #nonce: Buffer | null = null

  constructor(cipher: NoiseCipher = 'ChaChaPoly') {
    this.cipher = cipher
    this.#openSslMinBytes = cipher === 'AESGCM' ? 0 : OPENSSL_MIN_BYTES
  }

  /** InitializeKey(key): sets `k` and resets `n` to 0. */
  initializeKey(key: Uint8Array | null): void {
    // The key being replaced (a handshake key, once the next one is mixed in) is wiped, not left behind.
    // (Its KeyObject, OpenSSL's own copy, cannot be wiped from JavaScript: it goes with the garbage.)
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
    if (this.cipher === 'AESGCM') {
      nonce.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 4)
      nonce.writeUInt32BE(n >>> 0, 8)
    } else {
      nonce.writeUInt32LE(n >>> 0, 4)
      nonce.writeUInt32LE(Math.floor(n / 0x1_0000_0000), 8)
    }
    return nonce
  }

  /** EncryptWithAd(ad, plaintext): returns plaintext unchanged while there is no key. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Buffer {
    if (this.#key === null) return Buffer.from(plaintext)
    const out = Buffer.allocUnsafe(plaintext.length + TAGLEN)
    if (this.cipher === 'AESGCM') this.#sealOpenSsl(this.#key, ad, plaintext, out, 0)
    else this.#seal(this.#key, ad, plaintext, out)
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
    if (plaintext.length >= this.#openSslMinBytes) this.#sealOpenSsl(this.#key, null, plaintext, out, offset)
    else this.#seal(this.#key, null, plaintext, out.subarray(offset, end))
    return end
  }

  /** A seal through OpenSSL: every AESGCM one, and large ChaChaPoly ones (see the class comment). */
  #sealOpenSsl(
    key: Buffer,
    ad: Uint8Array | null,
    plaintext: Uint8Array,
    out: Uint8Array,
    offset: number,
  ): void {
    const nonce = this.#prepareNonce()
    this.#keyObject ??= createSecretKey(key)
    const options = { authTagLength: TAGLEN }
    const cipher =
      this.cipher === 'AESGCM'
        ? createCipheriv('aes-256-gcm', this.#keyObject, nonce, options)
        : createCipheriv('chacha20-poly1305', this.#keyObject, nonce, options)
    if (ad !== null && ad.length > 0) cipher.setAAD(ad)
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
    if (this.cipher === 'AESGCM') this.#openOpenSsl(this.#key, ad, ciphertext, out)
    else this.#open(this.#key, ad, ciphertext, out)
    return out
  }

  /**
   * Opens `ciphertext` (ciphertext || tag, empty associated data) in place: the plaintext overwrites
   * its start, and the returned view covers it. The caller must own `ciphertext`; on failure no
   * plaintext is left in it (libsodium clears the output; the OpenSSL path never writes it), `n` is
   * not advanced and nothing escapes.
   * @throws Error without a key; SecureChannelError `INTEGRITY` when authentication fails
   */
  decryptInPlace(ciphertext: Uint8Array): Uint8Array {
    if (this.#key === null) throw new Error('CipherState has no key')
    const plaintext = ciphertext.subarray(0, Math.max(0, ciphertext.length - TAGLEN))
    if (plaintext.length >= this.#openSslMinBytes) this.#openOpenSsl(this.#key, null, ciphertext, plaintext)
    else this.#open(this.#key, null, ciphertext, plaintext)
    return plaintext
  }

  /**
   * An open through OpenSSL (see #sealOpenSsl). update() hands back plaintext before final() has
   * checked the tag, into a buffer of its own: it is copied out only once the tag verified, and wiped
   * otherwise.
   */
  #openOpenSsl(key: Buffer, ad: Uint8Array | null, ciphertext: Uint8Array, out: Uint8Array): void {
    if (ciphertext.length < TAGLEN) {
      throw new SecureChannelError(
        'INTEGRITY',
        `ciphertext of ${ciphertext.length} bytes is shorter than a tag`,
      )
    }
    const nonce = this.#prepareNonce()
    this.#keyObject ??= createSecretKey(key)
    const options = { authTagLength: TAGLEN }
    const decipher =
      this.cipher === 'AESGCM'
        ? createDecipheriv('aes-256-gcm', this.#keyObject, nonce, options)
        : createDecipheriv('chacha20-poly1305', this.#keyObject, nonce, options)
    decipher.setAuthTag(ciphertext.subarray(out.length))
    if (ad !== null && ad.length > 0) decipher.setAAD(ad)
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
