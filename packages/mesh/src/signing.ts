import type { Identity } from '@parley/core'
import { signWithIdentity, verifySignature } from '@parley/core'

/** Signs gossip with the peer's identity key, through the core (libsodium, as the secure channel). */
export interface Signer {
  readonly peerId: string
  sign(message: Uint8Array): Uint8Array
}

/** @throws PeerError IDENTITY_INVALID when the identity is not a consistent Ed25519 key pair */
export function identitySigner(identity: Identity): Signer {
  // Signing once up front checks the key pair now rather than at the first broadcast.
  signWithIdentity(identity, new Uint8Array())
  return { peerId: identity.peerId, sign: (message) => signWithIdentity(identity, message) }
}

export { verifySignature }
