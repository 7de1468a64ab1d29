// The few libsodium bindings Parley uses (sodium-native ships no types of its own).
declare module 'sodium-native' {
  export const crypto_aead_chacha20poly1305_ietf_ABYTES: number
  export const crypto_aead_chacha20poly1305_ietf_NPUBBYTES: number
  export const crypto_aead_chacha20poly1305_ietf_KEYBYTES: number
  /** Writes ciphertext‖tag into `ciphertext` (message length + ABYTES); returns the bytes written. */
  export function crypto_aead_chacha20poly1305_ietf_encrypt(
    ciphertext: Uint8Array,
    message: Uint8Array,
    additionalData: Uint8Array | null,
    nsec: null,
    npub: Uint8Array,
    key: Uint8Array,
  ): number
  /** Writes the plaintext into `message`; throws when the tag does not verify. */
  export function crypto_aead_chacha20poly1305_ietf_decrypt(
    message: Uint8Array,
    nsec: null,
    ciphertext: Uint8Array,
    additionalData: Uint8Array | null,
    npub: Uint8Array,
    key: Uint8Array,
  ): number
  export function crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void
  export function crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void
  export function crypto_sign_detached(
    signature: Uint8Array,
    message: Uint8Array,
    secretKey: Uint8Array,
  ): void
  export function crypto_sign_verify_detached(
    signature: Uint8Array,
    message: Uint8Array,
    publicKey: Uint8Array,
  ): boolean
  export function randombytes_buf(buffer: Uint8Array): void
}

// SHA-256, key derivation and wiping: the Noise handshake and the identity signature.
declare module 'sodium-native' {
  export const crypto_hash_sha256_STATEBYTES: number
  /** One-shot SHA-256 of `input` into `output` (32 bytes). */
  export function crypto_hash_sha256(output: Uint8Array, input: Uint8Array): void
  export function crypto_hash_sha256_init(state: Uint8Array): void
  export function crypto_hash_sha256_update(state: Uint8Array, input: Uint8Array): void
  export function crypto_hash_sha256_final(state: Uint8Array, output: Uint8Array): void
  /** Derives the Ed25519 key pair of a 32-byte seed; `secretKey` (64 bytes) is seed ‖ public key. */
  export function crypto_sign_seed_keypair(
    publicKey: Uint8Array,
    secretKey: Uint8Array,
    seed: Uint8Array,
  ): void
  /** Overwrites `buffer` with zeros in a way the compiler cannot optimise out. */
  export function sodium_memzero(buffer: Uint8Array): void
}
