import type { Identity } from '@parley/core'

/** An Ed25519 key pair as HyperDHT (and libsodium) hold it. */
export interface DhtKeyPair {
  /** 32 bytes. */
  publicKey: Buffer
  /** 64 bytes: the seed, then the public key. */
  secretKey: Buffer
}

/**
 * The HyperDHT key pair of a Parley identity: the same Ed25519 key. HyperDHT, like libsodium, wants
 * the 32-byte public key and a 64-byte secret key made of the 32-byte seed followed by the public key;
 * node:crypto's JWK of an Ed25519 private key holds exactly those two halves (`d` is the seed, `x`
 * the public key). So a peer listens on the DHT under its peer id, and no second key exists.
 */
export function identityKeyPair(identity: Identity): DhtKeyPair {
  const jwk = identity.privateKey.export({ format: 'jwk' })
  if (jwk.crv !== 'Ed25519' || jwk.d === undefined || jwk.x === undefined) {
    throw new TypeError('the identity is not an Ed25519 key pair')
  }
  const seed = Buffer.from(jwk.d, 'base64url')
  const publicKey = Buffer.from(jwk.x, 'base64url')
  if (seed.length !== 32 || publicKey.length !== 32 || publicKey.toString('hex') !== identity.peerId) {
    throw new TypeError('the identity key pair is inconsistent')
  }
  return { publicKey, secretKey: Buffer.concat([seed, publicKey]) }
}
