import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PeerError } from './peer-errors.js'

/** A peer's long-term Ed25519 key pair. The peer id is the raw public key in lowercase hex. */
export interface Identity {
  readonly peerId: string
  readonly publicKey: KeyObject
  readonly privateKey: KeyObject
}

const KEY_FILE = 'identity.pem'

function fromPrivateKey(privateKey: KeyObject): Identity {
  const publicKey = createPublicKey(privateKey)
  // JWK `x` is the raw 32-byte Ed25519 public key, base64url.
  const x = publicKey.export({ format: 'jwk' }).x
  if (x === undefined) throw new PeerError('IDENTITY_INVALID', 'the key is not an Ed25519 key')
  return { peerId: Buffer.from(x, 'base64url').toString('hex'), publicKey, privateKey }
}

/** A fresh identity that lives only in memory (used when no data directory is given). */
export function generateIdentity(): Identity {
  return fromPrivateKey(generateKeyPairSync('ed25519').privateKey)
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
