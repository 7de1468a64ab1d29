/**
 * The Noise secure channel: `Noise_XX_25519_ChaChaPoly_SHA256` (on a private network
 * `Noise_XXpsk0_25519_ChaChaPoly_SHA256`, keyed by the network secret; `AESGCM` in place of
 * `ChaChaPoly` when the dialer asks for it) with each side's Ed25519 identity
 * bound to its Noise static key by a signature. The binding is libp2p's noise construction (a
 * signature over a prefixed static key in the handshake payload), with a fixed-layout payload
 * instead of protobuf.
 *
 * ```
 *  initiator                                                      responder
 *     ── [u16 32]  e ─────────────────────────────────────────────────▶
 *        (AESGCM: [u16 33]  0x02 ‖ e)
 *     ◀──────────── [u16 193]  e, ee, enc(s), es, enc(identity payload) ──
 *     ── [u16 161]  enc(s), se, enc(identity payload) ────────────────▶
 *     ◀═══ records, both ways: [u16 n+16]  ChaCha20-Poly1305(n plaintext bytes) ‖ tag ═══▶
 *        (AESGCM: AES-256-GCM in its place)
 *
 *  identity payload (97 bytes): u8 version = 1 ‖ Ed25519 public key (32) ‖
 *      Ed25519 signature (64) over "parley-noise-static-key:" ‖ the sender's Noise static public key
 *  prologue: "parley/1"
 *  private network: XXpsk0 with psk = HKDF-SHA256(networkSecret, info "parley/network-psk/1", 32 bytes);
 *      the first message then carries a 16-byte tag: [u16 48]  e, enc(empty)
 *  [u16 n]: a big-endian length prefix of n bytes
 * ```
 *
 * The static X25519 key is fresh per upgrader and only vouched for by the signature, so a peer's
 * identity is its Ed25519 key alone. On a private network the pre-shared key enters before the first
 * message (psk0), so every handshake key depends on it: a responder rejects a first message made
 * without the secret before it sends anything, and someone without the secret learns nothing about
 * who listens (with the secret only in the prologue, message 2 could be decrypted by ignoring its
 * tags, revealing the responder's identity). Both sides report `HANDSHAKE_FAILED`.
 */
import { hkdfSync, type KeyObject } from 'node:crypto'
import { type HandshakeSettings, handshake } from './channel-handshake.js'
import { identityPayload } from './channel-identity.js'
import { hasAesInstructions } from './cpu-features.js'
import type { NoiseCipher } from './noise-cipher-state.js'
import { generateKeyPair, MAX_MESSAGE_LEN, TAGLEN } from './noise-crypto.js'
import type { ConnectionUpgrader } from './upgrader.js'

/** The largest plaintext one record carries: a Noise message is at most 65535 bytes, tag included. */
export const MAX_RECORD_PLAINTEXT = MAX_MESSAGE_LEN - TAGLEN

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000
const PROLOGUE_LABEL = Buffer.from('parley/1', 'ascii')
const PSK_INFO = Buffer.from('parley/network-psk/1', 'ascii')

/** Options of {@link noiseUpgrader}. */
export interface NoiseUpgraderInit {
  /** This peer's long-term Ed25519 identity; `peerId` must be the hex of its raw public key. */
  identity: { peerId: string; privateKey: KeyObject; publicKey: KeyObject }
  /**
   * Makes a private network: only peers with the same secret complete a handshake. Any bytes,
   * including empty ones, define a network; leave it out for the public one.
   */
  networkSecret?: Uint8Array
  /** Milliseconds the whole handshake may take before `HANDSHAKE_TIMEOUT`. @default 10_000 */
  handshakeTimeout?: number
  /**
   * Largest plaintext per record, 1 … 65519. Larger sends are split. It also caps what we accept,
   * so both sides must use the same value (or the receiver the larger one). @default 65519
   */
  maxRecordSize?: number
  /**
   * The cipher this peer asks for when it dials. `'AESGCM'`: AES-256-GCM
   * (`Noise_XX_25519_AESGCM_SHA256`) when this machine has AES instructions, else ChaCha20-Poly1305.
   * In a loop it seals large records faster on AES hardware, but each record costs an OpenSSL context
   * (about 5 µs against under 1 µs) and a fresh buffer: measured, bulk moved by 0.96–1.06× and ping-pong
   * got 1.28–1.38× slower (docs/BENCHMARKS.md), so measure before choosing it. A listener follows
   * whichever cipher the dialer asks for; a listener of a version before AESGCM refuses an AESGCM
   * dialer. @default 'ChaChaPoly'
   */
  cipher?: NoiseCipher
}

/**
 * Creates an upgrader that secures connections with the Noise XX handshake and authenticates the
 * remote's Ed25519 identity (see the module comment for the wire layout).
 *
 * The returned connection encrypts each `send()` as one record when it fits (`maxRecordSize`), or
 * as consecutive records handed to the underlying connection in one `send()`. Any record that
 * fails authentication (tampered, replayed, reordered, truncated) aborts the connection: `close`
 * fires with SecureChannelError `INTEGRITY` and nothing of that record is delivered.
 *
 * @throws SecureChannelError `IDENTITY_INVALID` when the identity is inconsistent;
 *   RangeError for an out-of-range `handshakeTimeout` or `maxRecordSize`
 */
export function noiseUpgrader(init: NoiseUpgraderInit): ConnectionUpgrader {
  const handshakeTimeout = init.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT
  if (!(handshakeTimeout > 0 && Number.isFinite(handshakeTimeout))) {
    throw new RangeError(`handshakeTimeout must be a positive number of ms, got ${handshakeTimeout}`)
  }
  const maxRecordSize = init.maxRecordSize ?? MAX_RECORD_PLAINTEXT
  if (!Number.isInteger(maxRecordSize) || maxRecordSize < 1 || maxRecordSize > MAX_RECORD_PLAINTEXT) {
    throw new RangeError(
      `maxRecordSize must be an integer in 1…${MAX_RECORD_PLAINTEXT}, got ${maxRecordSize}`,
    )
  }
  const cipher = init.cipher ?? 'ChaChaPoly'
  if (cipher !== 'ChaChaPoly' && cipher !== 'AESGCM') {
    throw new RangeError(`cipher must be 'ChaChaPoly' or 'AESGCM', got ${String(cipher)}`)
  }
  const staticKeyPair = generateKeyPair()
  const payload = identityPayload(init.identity, staticKeyPair)
  const psk =
    init.networkSecret === undefined
      ? undefined
      : Buffer.from(hkdfSync('sha256', init.networkSecret, Buffer.alloc(0), PSK_INFO, 32))
  const settings: HandshakeSettings = {
    staticKeyPair,
    payload,
    prologue: PROLOGUE_LABEL,
    psk,
    handshakeTimeout,
    maxRecordSize,
    cipher: cipher === 'AESGCM' && hasAesInstructions() ? 'AESGCM' : 'ChaChaPoly',
  }
  return { upgrade: (conn, options) => handshake(conn, options, settings) }
}
