/**
 * `Noise_XX_25519_ChaChaPoly_SHA256` and `Noise_XX_25519_AESGCM_SHA256`, as specified by the Noise
 * Protocol Framework, revision 34
 * (https://noiseprotocol.org/noise.html). X25519 and SHA-256 (and with it HMAC and HKDF) come from
 * libsodium (sodium-native): raw 32-byte keys and one native call per operation, where node:crypto
 * needs a KeyObject, a JWK import and an OpenSSL context for each (measured here: a handshake's key
 * generation, DH, hashing and HKDF take about half the CPU).
 *
 * The objects and their methods follow the spec's section 5 one for one (CipherState,
 * SymmetricState, HandshakeState), so the code can be read side by side with it: CipherState is in
 * noise-cipher-state.ts, the primitives (spec 4) in noise-crypto.ts. Checked byte for byte against
 * published test vectors in `test/secure-noise-vectors.test.ts`.
 *
 * ```
 * XX:  -> e
 *      <- e, ee, s, es
 *      -> s, se
 * ```
 *
 * With pre-shared keys, the `psk` modifier of spec 9: `XXpsk0` puts a `psk` token before the first
 * message's tokens (`pskN`, N ≥ 1, after the N-th message's), each `psk` token mixes the next
 * pre-shared key with MixKeyAndHash, and every `e` token also does MixKey(e.public_key). Checked
 * against published XXpsk3 and XXpsk0+psk3 vectors.
 */
import sodium from 'sodium-native'
import { SecureChannelError } from './errors.js'
import { CipherState, type NoiseCipher } from './noise-cipher-state.js'
import {
  DHLEN,
  dh,
  EMPTY,
  generateKeyPair,
  HASHLEN,
  hash,
  hkdf2,
  hkdf3,
  MAX_MESSAGE_LEN,
  type NoiseKeyPair,
  TAGLEN,
} from './noise-crypto.js'

/** The full protocol name; exactly 32 bytes, so it is used as the initial `h` unhashed (spec 5.2). */
export const PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_SHA256'

/**
 * The protocol name with the psk modifiers at `positions` and the cipher function, e.g.
 * `Noise_XXpsk0_25519_ChaChaPoly_SHA256` or `Noise_XX_25519_AESGCM_SHA256`.
 */
export function protocolName(
  pskPositions: readonly number[] = [],
  cipher: NoiseCipher = 'ChaChaPoly',
): string {
  return `Noise_XX${pskPositions.map((p) => `psk${p}`).join('+')}_25519_${cipher}_SHA256`
}

/** `ck`, `h` and a CipherState (spec 5.2). */
export class SymmetricState {
  readonly cipherState: CipherState
  #ck: Buffer
  #h: Buffer

  /** InitializeSymmetric(protocol_name), for a protocol name whose cipher function is `cipher`. */
  constructor(protocolName: string, cipher: NoiseCipher = 'ChaChaPoly') {
    this.cipherState = new CipherState(cipher)
    const name = Buffer.from(protocolName, 'utf8')
    // Names up to HASHLEN bytes are zero-padded, longer ones hashed.
    this.#h =
      name.length <= HASHLEN ? Buffer.concat([name, Buffer.alloc(HASHLEN - name.length)]) : hash(name, EMPTY)
    this.#ck = Buffer.from(this.#h)
    this.cipherState.initializeKey(null)
  }

  /** The handshake hash `h`: after the handshake, a unique id of the session (channel binding). */
  get handshakeHash(): Buffer {
    return Buffer.from(this.#h)
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempK] = hkdf2(this.#ck, inputKeyMaterial)
    sodium.sodium_memzero(this.#ck)
    this.#ck = ck
    // HASHLEN is 32 for SHA-256, so temp_k needs no truncation.
    this.cipherState.initializeKey(tempK)
    sodium.sodium_memzero(tempK)
  }

  /** MixKeyAndHash(input_key_material) (spec 5.2), for a `psk` token. */
  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [ck, tempH, tempK] = hkdf3(this.#ck, inputKeyMaterial)
    sodium.sodium_memzero(this.#ck)
    this.#ck = ck
    this.mixHash(tempH)
    this.cipherState.initializeKey(tempK)
    sodium.sodium_memzero(tempK)
  }

  mixHash(data: Uint8Array): void {
    this.#h = hash(this.#h, data)
  }

  encryptAndHash(plaintext: Uint8Array): Buffer {
    const ciphertext = this.cipherState.encryptWithAd(this.#h, plaintext)
    this.mixHash(ciphertext)
    return ciphertext
  }

  /** @throws SecureChannelError `INTEGRITY` when authentication fails */
  decryptAndHash(ciphertext: Uint8Array): Buffer {
    const plaintext = this.cipherState.decryptWithAd(this.#h, ciphertext)
    this.mixHash(ciphertext)
    return plaintext
  }

  /** Split(): the initiator's sending and receiving CipherStates, in that order. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.#ck, EMPTY)
    const c1 = new CipherState(this.cipherState.cipher)
    c1.initializeKey(k1)
    const c2 = new CipherState(this.cipherState.cipher)
    c2.initializeKey(k2)
    // The CipherStates hold their own copies; nothing else may keep key material.
    sodium.sodium_memzero(k1)
    sodium.sodium_memzero(k2)
    sodium.sodium_memzero(this.#ck)
    return [c1, c2]
  }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk'

// The XX message patterns; XX has no pre-messages.
const XX: readonly (readonly Token[])[] = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']]

/** XX with `psk` tokens at the given modifier positions (spec 9.2). */
function withPsks(positions: readonly number[]): readonly (readonly Token[])[] {
  const patterns = XX.map((p) => [...p])
  for (const position of positions) {
    if (!Number.isInteger(position) || position < 0 || position > patterns.length) {
      throw new RangeError(`no psk position ${position} in a ${patterns.length}-message pattern`)
    }
    if (position === 0) patterns[0]!.unshift('psk')
    else patterns[position - 1]!.push('psk')
  }
  return patterns
}

export interface HandshakeStateInit {
  /** True for the party that sends the first message. */
  initiator: boolean
  /** Our static key pair. */
  staticKeyPair: NoiseKeyPair
  /** Bound into the handshake hash; both sides must use the same bytes or the handshake fails. @default empty */
  prologue?: Uint8Array
  /** A fixed ephemeral key pair. ONLY for reproducing test vectors: reusing an ephemeral key breaks security. */
  ephemeralKeyPair?: NoiseKeyPair
  /**
   * Pre-shared keys (32 bytes each) and the psk modifier positions they are used at, in order: e.g.
   * `{ keys: [psk], positions: [0] }` for XXpsk0. Both sides must agree. @default none: plain XX
   */
  psk?: { keys: readonly Uint8Array[]; positions: readonly number[] }
  /** The cipher function; both sides must agree. @default 'ChaChaPoly' */
  cipher?: NoiseCipher
}

/** The two CipherStates of an established session, oriented for this side. */
export interface TransportCiphers {
  readonly send: CipherState
  readonly receive: CipherState
}

/**
 * HandshakeState for the XX pattern (spec 5.3): feed it messages in turn with
 * {@link writeMessage}/{@link readMessage}; once {@link isComplete}, take {@link split}.
 */
export class HandshakeState {
  readonly #ss: SymmetricState
  /** The full protocol name, e.g. `Noise_XXpsk0_25519_AESGCM_SHA256`. */
  readonly protocolName: string
  readonly #initiator: boolean
  readonly #s: NoiseKeyPair
  #e: NoiseKeyPair | null
  /** True when `#e` was generated here (not passed in), so it is ours to wipe once used. */
  #ownsEphemeral = false
  #rs: Buffer | null = null
  #re: Buffer | null = null
  #index = 0
  #ciphers: [CipherState, CipherState] | null = null
  readonly #patterns: readonly (readonly Token[])[]
  readonly #psks: readonly Uint8Array[]
  #nextPsk = 0

  constructor(init: HandshakeStateInit) {
    this.#initiator = init.initiator
    this.#s = init.staticKeyPair
    this.#e = init.ephemeralKeyPair ?? null
    const positions = init.psk?.positions ?? []
    this.#psks = init.psk?.keys ?? []
    if (this.#psks.length !== positions.length || this.#psks.some((k) => k.length !== 32)) {
      throw new RangeError('one 32-byte pre-shared key is needed for each psk position')
    }
    this.#patterns = withPsks(positions)
    this.protocolName = protocolName(positions, init.cipher)
    this.#ss = new SymmetricState(this.protocolName, init.cipher)
    this.#ss.mixHash(init.prologue ?? EMPTY)
  }

  /** True once all three messages have been written or read. */
  get isComplete(): boolean {
    return this.#ciphers !== null
  }

  /** True when the next message is ours to write. */
  get isMyTurn(): boolean {
    return !this.isComplete && this.#index % 2 === (this.#initiator ? 0 : 1)
  }

  /** The remote static public key, once received. */
  get remoteStaticPublicKey(): Buffer | null {
    return this.#rs
  }

  get handshakeHash(): Buffer {
    return this.#ss.handshakeHash
  }

  #pattern(): readonly Token[] {
    const pattern = this.#patterns[this.#index]
    if (pattern === undefined) throw new Error('the handshake is already complete')
    return pattern
  }

  #dh(token: 'ee' | 'es' | 'se' | 'ss'): Buffer {
    const need = <T>(value: T | null): T => {
      if (value === null) throw new Error(`token ${token} needs a key that is not there yet`)
      return value
    }
    // es: the initiator's ephemeral with the responder's static; se the other way round.
    switch (token) {
      case 'ee':
        return dh(need(this.#e), need(this.#re))
      case 'es':
        return this.#initiator ? dh(need(this.#e), need(this.#rs)) : dh(this.#s, need(this.#re))
      case 'se':
        return this.#initiator ? dh(this.#s, need(this.#re)) : dh(need(this.#e), need(this.#rs))
      case 'ss':
        return dh(this.#s, need(this.#rs))
    }
  }

  /** MixKey(DH(...)) for a DH token; the shared secret is wiped once mixed in. */
  #mixDh(token: 'ee' | 'es' | 'se' | 'ss'): void {
    const shared = this.#dh(token)
    this.#ss.mixKey(shared)
    sodium.sodium_memzero(shared)
  }

  /** WriteMessage(payload): the next handshake message, carrying `payload`. */
  writeMessage(payload: Uint8Array): Buffer {
    if (!this.isMyTurn) throw new Error('not our turn to write a handshake message')
    const parts: Buffer[] = []
    for (const token of this.#pattern()) {
      if (token === 'e') {
        if (this.#e === null) {
          this.#e = generateKeyPair()
          this.#ownsEphemeral = true
        }
        parts.push(this.#e.publicKey)
        this.#ss.mixHash(this.#e.publicKey)
        if (this.#psks.length > 0) this.#ss.mixKey(this.#e.publicKey)
      } else if (token === 's') {
        parts.push(this.#ss.encryptAndHash(this.#s.publicKey))
      } else if (token === 'psk') {
        this.#ss.mixKeyAndHash(this.#psks[this.#nextPsk++]!)
      } else {
        this.#mixDh(token)
      }
    }
    parts.push(this.#ss.encryptAndHash(payload))
    const message = Buffer.concat(parts)
    if (message.length > MAX_MESSAGE_LEN) throw new RangeError('handshake message exceeds 65535 bytes')
    this.#advance()
    return message
  }

  /**
   * ReadMessage(message): processes the remote's next handshake message and returns its payload.
   * @throws SecureChannelError `HANDSHAKE_FAILED` on a short message, a bad key or a MAC failure
   */
  readMessage(message: Uint8Array): Buffer {
    if (this.isComplete || this.isMyTurn) throw new Error('not our turn to read a handshake message')
    let offset = 0
    const take = (n: number): Uint8Array => {
      if (message.length - offset < n) {
        throw new SecureChannelError(
          'HANDSHAKE_FAILED',
          `handshake message of ${message.length} bytes is too short`,
        )
      }
      const bytes = message.subarray(offset, offset + n)
      offset += n
      return bytes
    }
    try {
      for (const token of this.#pattern()) {
        if (token === 'e') {
          this.#re = Buffer.from(take(DHLEN))
          this.#ss.mixHash(this.#re)
          if (this.#psks.length > 0) this.#ss.mixKey(this.#re)
        } else if (token === 's') {
          const bytes = take(this.#ss.cipherState.hasKey() ? DHLEN + TAGLEN : DHLEN)
          this.#rs = this.#ss.decryptAndHash(bytes)
        } else if (token === 'psk') {
          this.#ss.mixKeyAndHash(this.#psks[this.#nextPsk++]!)
        } else {
          this.#mixDh(token)
        }
      }
      const payload = this.#ss.decryptAndHash(message.subarray(offset))
      this.#advance()
      return payload
    } catch (cause) {
      if (cause instanceof SecureChannelError && cause.code === 'HANDSHAKE_FAILED') throw cause
      throw new SecureChannelError('HANDSHAKE_FAILED', 'handshake message rejected', { cause })
    }
  }

  #advance(): void {
    this.#index++
    if (this.#index !== this.#patterns.length) return
    this.#ciphers = this.#ss.split()
    // The ephemeral key has done its work; wiping it is what makes the session forward secret.
    if (this.#ownsEphemeral && this.#e !== null) sodium.sodium_memzero(this.#e.privateKey)
    this.#e = null
    this.#re = null
  }

  /**
   * The transport CipherStates: the initiator sends with the first from Split(), the responder with the second.
   * @throws Error before the handshake is complete
   */
  split(): TransportCiphers {
    if (this.#ciphers === null) throw new Error('the handshake is not complete')
    const [c1, c2] = this.#ciphers
    return this.#initiator ? { send: c1, receive: c2 } : { send: c2, receive: c1 }
  }
}
