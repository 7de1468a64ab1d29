/**
 * The primitives under the Noise handshake (spec 4): X25519 key pairs and DH, SHA-256, HMAC and
 * HKDF, all from libsodium (see noise.ts for why not node:crypto).
 */
import sodium from 'sodium-native'
import { SecureChannelError } from './errors.js'

/** X25519 public key and shared secret length. */
export const DHLEN = 32
/** SHA-256 output length. */
export const HASHLEN = 32
/** Poly1305 tag length. */
export const TAGLEN = 16
/** The largest Noise message, handshake or transport (spec 3). */
export const MAX_MESSAGE_LEN = 65535

export const EMPTY = Buffer.alloc(0)

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
export function dh(keyPair: NoiseKeyPair, publicKey: Uint8Array): Buffer {
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
export function hash(a: Uint8Array, b: Uint8Array): Buffer {
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
export function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Buffer, Buffer] {
  hmac(chainingKey, inputKeyMaterial, EMPTY, tempKey)
  const output1 = hmac(tempKey, BYTE_1, EMPTY, Buffer.allocUnsafe(HASHLEN))
  const output2 = hmac(tempKey, output1, BYTE_2, Buffer.allocUnsafe(HASHLEN))
  sodium.sodium_memzero(tempKey)
  sodium.sodium_memzero(hkdfResidue)
  return [output1, output2]
}
