import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import sodium from 'sodium-native'
import { PeerError } from './peer-errors.js'

/** A peer's long-term Ed25519 key pair. The peer id is the raw public key in lowercase hex. */
export interface Identity {
  readonly peerId: string
  readonly publicKey: KeyObject
  readonly privateKey: KeyObject
}

const KEY_FILE = 'identity.pem'
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

function fromPrivateKey(privateKey: KeyObject): Identity {
  const publicKey = createPublicKey(privateKey)
  // JWK `x` is the raw 32-byte Ed25519 public key, base64url.
  const x = publicKey.export({ format: 'jwk' }).x
  if (x === undefined) throw new PeerError('IDENTITY_INVALID', 'the key is not an Ed25519 key')
  return { peerId: Buffer.from(x, 'base64url').toString('hex'), publicKey, privateKey }
}

/**
 * A fresh identity that lives only in memory (used when no data directory is given). The seed comes
 * from libsodium, not `generateKeyPairSync`: on Node 20 a key-generation job collected by the GC while
 * a key it made is being exported locks that key's mutex a second time, and the process hangs.
 */
export function generateIdentity(): Identity {
  // PKCS#8 of an Ed25519 seed (RFC 8410): this prefix, then the 32 bytes.
  const der = Buffer.alloc(ED25519_PKCS8_PREFIX.length + 32)
  ED25519_PKCS8_PREFIX.copy(der)
  sodium.randombytes_buf(der.subarray(ED25519_PKCS8_PREFIX.length))
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  sodium.sodium_memzero(der)
  return fromPrivateKey(privateKey)
}

/**
 * Loads `identity.pem` from `dataDir`, creating the directory and a new key (mode 0600) on first use.
 * @throws PeerError `KEY_FILE_INSECURE` when the file is readable by group or others,
 *   `IDENTITY_INVALID` when it is not an Ed25519 private key.
 */
export async function loadOrCreateIdentity(dataDir: string): Promise<Identity> {
  const path = join(dataDir, KEY_FILE)
  let pem: string
  try {
    const info = await stat(path)
    if ((info.mode & 0o077) !== 0) {
      throw new PeerError(
        'KEY_FILE_INSECURE',
        `${path} is readable by other users (mode ${(info.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
      )
    }
    pem = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    const identity = generateIdentity()
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    const out = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
    // 'wx' refuses to overwrite a key another process created in the meantime.
    await writeFile(path, out, { mode: 0o600, flag: 'wx' })
    return identity
  }
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch (cause) {
    throw new PeerError('IDENTITY_INVALID', `${path} does not hold a private key`, { cause })
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new PeerError('IDENTITY_INVALID', `${path} holds a ${key.asymmetricKeyType} key, not Ed25519`)
  }
  return fromPrivateKey(key)
}

/**
 * The short human form of a peer id: its first 16 hex characters (64 bits), grouped
 * `ab12:cd34:ef56:7890`. Long enough that grinding a key to match someone's is out of reach; show the
 * whole id where it matters.
 */
export function fingerprint(peerId: string): string {
  return `${peerId.slice(0, 4)}:${peerId.slice(4, 8)}:${peerId.slice(8, 12)}:${peerId.slice(12, 16)}`
}

/**
 * libsodium's 64-byte secret key of each identity private key, derived once; a WeakMap, so it lives
 * exactly as long as the KeyObject and nothing that logs or serialises an identity reaches it.
 */
const secretKeys = new WeakMap<KeyObject, Buffer>()

/**
 * Signs `message` with the identity's Ed25519 key (libsodium, as the secure channel does), for
 * services whose messages must carry their author's identity across relays. Prefix `message` with
 * a domain string of your own so that a signature can never be mistaken for another protocol's.
 * @throws PeerError `IDENTITY_INVALID` when the private key is not Ed25519 or not `peerId`'s
 */
export function signWithIdentity(identity: Identity, message: Uint8Array): Uint8Array {
  let secretKey = secretKeys.get(identity.privateKey)
  if (secretKey === undefined) {
    if (identity.privateKey.asymmetricKeyType !== 'ed25519') {
      throw new PeerError('IDENTITY_INVALID', 'the identity is not an Ed25519 key')
    }
    // JWK `d` is the raw 32-byte seed (RFC 8037).
    const d = identity.privateKey.export({ format: 'jwk' }).d
    if (d === undefined) throw new PeerError('IDENTITY_INVALID', 'cannot read the identity private key')
    const seed = Buffer.from(d, 'base64url')
    secretKey = Buffer.alloc(64)
    sodium.crypto_sign_seed_keypair(Buffer.alloc(32), secretKey, seed)
    sodium.sodium_memzero(seed)
    secretKeys.set(identity.privateKey, secretKey)
  }
  // The public half of libsodium's secret key is the public key the seed derives.
  if (secretKey.subarray(32).toString('hex') !== identity.peerId) {
    throw new PeerError('IDENTITY_INVALID', 'the identity private key does not match its peer id')
  }
  const signature = Buffer.alloc(64)
  sodium.crypto_sign_detached(signature, message, secretKey)
  return signature
}

/**
 * Whether `signature` is `peerId`'s (hex Ed25519 public key) over `message`, with libsodium's strict
 * verifier (non-canonical signatures and small-order keys are refused).
 */
export function verifySignature(peerId: string, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || !/^[0-9a-f]{64}$/.test(peerId)) return false
  return sodium.crypto_sign_verify_detached(signature, message, Buffer.from(peerId, 'hex'))
}
