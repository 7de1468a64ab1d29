/**
 * The identity binding of the secure channel: our Ed25519 identity signs our Noise static key into
 * the handshake payload, and the remote's payload must carry a valid signature over its static key.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import sodium from 'sodium-native'
import { SecureChannelError } from './errors.js'
import type { NoiseKeyPair } from './noise-crypto.js'

const SIGNATURE_PREFIX = Buffer.from('parley-noise-static-key:', 'ascii')
const IDENTITY_VERSION = 1
export const IDENTITY_PAYLOAD_LEN = 1 + 32 + 64
const PEER_ID = /^[0-9a-f]{64}$/

/** A long-term Ed25519 identity; `peerId` must be the hex of its raw public key. */
export interface NoiseIdentity {
  peerId: string
  privateKey: KeyObject
  publicKey: KeyObject
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
export function identityPayload(identity: NoiseIdentity, staticKey: NoiseKeyPair): Buffer {
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
export function verifyIdentity(payload: Buffer, remoteStatic: Buffer | null): string {
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
