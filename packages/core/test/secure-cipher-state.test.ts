import { createCipheriv, randomBytes } from 'node:crypto'
import sodium from 'sodium-native'
import { describe, expect, it } from 'vitest'
import { SecureChannelError } from '../src/secure/errors.js'
import { CipherState } from '../src/secure/noise-cipher-state.js'
import { TAGLEN } from '../src/secure/noise-crypto.js'

// Large transport records may be sealed and opened by OpenSSL instead of libsodium (see CipherState).
// Whichever runs, the bytes must be RFC 8439 ChaCha20-Poly1305 with Noise's nonce, exactly: each
// record is checked against libsodium called directly, both ways.

const SIZES = [0, 1, 64, 16 * 1024 - 1, 16 * 1024, 40_000, 65_519]

function pair() {
  const key = randomBytes(32)
  const a = new CipherState()
  const b = new CipherState()
  a.initializeKey(key)
  b.initializeKey(key)
  return { key, a, b }
}

/** Noise's 96-bit nonce for `n`: 32 zero bits, then n as a 64-bit little-endian number (spec 12.3). */
function nonceOf(n: number): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeBigUInt64LE(BigInt(n), 4)
  return nonce
}

describe('CipherState transport records', () => {
  it('seals every size exactly as libsodium does, with the nonce advancing per record', () => {
    const { key, a } = pair()
    for (const [n, size] of SIZES.entries()) {
      const plaintext = randomBytes(size)
      const out = Buffer.alloc(size + TAGLEN + 5)
      expect(a.encryptInto(plaintext, out, 3)).toBe(3 + size + TAGLEN)
      const expected = Buffer.alloc(size + TAGLEN)
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(expected, plaintext, null, null, nonceOf(n), key)
      expect(out.subarray(3, 3 + size + TAGLEN).equals(expected)).toBe(true)
    }
    expect(a.nonce).toBe(SIZES.length)
  })

  it('seals in place (the plaintext where the ciphertext goes) to the same bytes', () => {
    const { key, a } = pair()
    const plaintext = randomBytes(50_000)
    const out = Buffer.alloc(2 + plaintext.length + TAGLEN)
    out.set(plaintext, 2)
    a.encryptInto(out.subarray(2, 2 + plaintext.length), out, 2)
    const expected = Buffer.alloc(plaintext.length + TAGLEN)
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(expected, plaintext, null, null, nonceOf(0), key)
    expect(out.subarray(2).equals(expected)).toBe(true)
  })

  it('opens in place what libsodium sealed, every size', () => {
    const { key, b } = pair()
    for (const [n, size] of SIZES.entries()) {
      const plaintext = randomBytes(size)
      const record = Buffer.alloc(size + TAGLEN)
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(record, plaintext, null, null, nonceOf(n), key)
      expect(Buffer.from(b.decryptInPlace(record)).equals(plaintext)).toBe(true)
    }
  })

  it('refuses a tampered or replayed large record with INTEGRITY, without advancing the nonce', () => {
    const { a, b } = pair()
    const plaintext = randomBytes(60_000)
    const record = Buffer.alloc(plaintext.length + TAGLEN)
    a.encryptInto(plaintext, record, 0)
    for (const at of [0, 30_000, plaintext.length + 3]) {
      const bad = Buffer.from(record)
      bad[at]! ^= 1
      let error: unknown
      try {
        b.decryptInPlace(bad)
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(SecureChannelError)
      expect((error as SecureChannelError).code).toBe('INTEGRITY')
      expect(b.nonce).toBe(0)
    }
    const copy = Buffer.from(record)
    expect(Buffer.from(b.decryptInPlace(record)).equals(plaintext)).toBe(true)
    expect(() => b.decryptInPlace(copy)).toThrow(SecureChannelError) // the same record again
    expect(b.nonce).toBe(1)
  })
})

describe('CipherState with AESGCM', () => {
  /** AES-256-GCM straight from node:crypto, with Noise's AESGCM nonce: 32 zero bits, n big-endian (spec 12.4). */
  function referenceSeal(key: Buffer, n: number, plaintext: Buffer): Buffer {
    const nonce = Buffer.alloc(12)
    nonce.writeBigUInt64BE(BigInt(n), 4)
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAGLEN })
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  }

  function aesPair() {
    const key = randomBytes(32)
    const a = new CipherState('AESGCM')
    const b = new CipherState('AESGCM')
    a.initializeKey(key)
    b.initializeKey(key)
    return { key, a, b }
  }

  it('seals every size as AES-256-GCM with big-endian nonces, and opens it in place', () => {
    const { key, a, b } = aesPair()
    a.setNonce(0x1_0000_0002) // past 32 bits, where the byte order shows
    b.setNonce(0x1_0000_0002)
    for (const [i, size] of SIZES.entries()) {
      const plaintext = randomBytes(size)
      const out = Buffer.alloc(size + TAGLEN + 5)
      expect(a.encryptInto(plaintext, out, 3)).toBe(3 + size + TAGLEN)
      const sealed = out.subarray(3, 3 + size + TAGLEN)
      expect(sealed.equals(referenceSeal(key, 0x1_0000_0002 + i, plaintext))).toBe(true)
      expect(Buffer.from(b.decryptInPlace(Buffer.from(sealed))).equals(plaintext)).toBe(true)
    }
  })

  it('refuses a tampered small or large record with INTEGRITY, without advancing the nonce', () => {
    const { a, b } = aesPair()
    for (const size of [64, 60_000]) {
      const plaintext = randomBytes(size)
      const record = Buffer.alloc(size + TAGLEN)
      a.encryptInto(plaintext, record, 0)
      const bad = Buffer.from(record)
      bad[size + 3]! ^= 1
      const before = b.nonce
      const tampered = Buffer.from(bad)
      expect(() => b.decryptInPlace(bad)).toThrowError(expect.objectContaining({ code: 'INTEGRITY' }))
      expect(b.nonce).toBe(before)
      expect(bad.equals(tampered)).toBe(true) // no plaintext was written into it
      expect(Buffer.from(b.decryptInPlace(record)).equals(plaintext)).toBe(true)
    }
  })

  it('refuses a ciphertext shorter than a tag with INTEGRITY', () => {
    const { b } = aesPair()
    expect(() => b.decryptInPlace(Buffer.alloc(TAGLEN - 1))).toThrowError(
      expect.objectContaining({ code: 'INTEGRITY' }),
    )
    expect(() => b.decryptWithAd(Buffer.from('ad'), Buffer.alloc(3))).toThrowError(
      expect.objectContaining({ code: 'INTEGRITY' }),
    )
    expect(b.nonce).toBe(0)
  })
})
