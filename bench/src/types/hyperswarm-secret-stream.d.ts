// The package ships no types; this declares the part of its API the bench uses.
declare module '@hyperswarm/secret-stream' {
  import type { Duplex } from 'node:stream'

  export interface KeyPair {
    publicKey: Buffer
    secretKey: Buffer
  }

  export interface SecretStreamOptions {
    keyPair?: KeyPair
  }

  /** A streamx Duplex: one `write` is one encrypted message, one `data` event one decrypted message. */
  export default class SecretStream {
    constructor(isInitiator: boolean, rawStream?: Duplex, options?: SecretStreamOptions)
    static keyPair(seed?: Buffer): KeyPair
    /** Resolves true once the handshake is done, false if the stream was destroyed first. */
    readonly opened: Promise<boolean>
    readonly rawStream: Duplex
    write(data: Uint8Array): boolean
    end(): void
    destroy(err?: Error): void
    on(event: 'data', listener: (data: Buffer) => void): this
    on(event: 'drain' | 'close' | 'end', listener: () => void): this
    on(event: 'error', listener: (err: Error) => void): this
    once(event: 'close', listener: () => void): this
  }
}
