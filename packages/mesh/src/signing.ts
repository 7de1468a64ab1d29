import type { Identity } from '@parley/core'
import { PeerError } from '@parley/core'
import sodium from 'sodium-native'

/**
 * Ed25519 signatures for gossip, with libsodium as the secure channel uses it (secure/channel.ts): the
 * identity's seed expanded once into libsodium's 64-byte secret key, and the strict verifier that
 * refuses non-canonical signatures and small-order keys.
 */
export interface Signer {
  readonly peerId: string
  sign(message: Uint8Array): Uint8Array
}

/** @throws PeerError IDENTITY_INVALID when the identity is not a consistent Ed25519 key pair */
export function identitySigner(identity: Identity): Signer {
  if (identity.privateKey.asymmetricKeyType !== 'ed25519') {
    throw new PeerError('IDENTITY_INVALID', 'the identity is not an Ed25519 key')
  }
  // JWK `d` is the raw 32-byte seed (RFC 8037).
  const d = identity.privateKey.export({ format: 'jwk' }).d
  if (d === undefined) throw new PeerError('IDENTITY_INVALID', 'cannot read the identity private key')
  const seed = Buffer.from(d, 'base64url')
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
  sodium.sodium_memzero(seed)
  if (publicKey.toString('hex') !== identity.peerId) {
    throw new PeerError('IDENTITY_INVALID', 'the identity private key does not match its peer id')
  }
  return {
    peerId: identity.peerId,
    sign(message) {
      const signature = Buffer.alloc(64)
      sodium.crypto_sign_detached(signature, message, secretKey)
      return signature
    },
  }
}

/** Whether `signature` is `peerId`'s (hex public key) over `message`. */
export function verifySignature(peerId: string, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || peerId.length !== 64) return false
  return sodium.crypto_sign_verify_detached(signature, message, Buffer.from(peerId, 'hex'))
}
