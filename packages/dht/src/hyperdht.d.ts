// The part of hyperdht 6 (and @hyperswarm/secret-stream) this package uses; the package ships no types.
declare module 'hyperdht' {
  import type { EventEmitter } from 'node:events'

  export interface KeyPair {
    publicKey: Buffer
    secretKey: Buffer
  }

  export interface HostPort {
    host: string
    port: number
  }

  /** @hyperswarm/secret-stream's NoiseSecretStream, a streamx Duplex. */
  export interface NoiseSecretStream extends EventEmitter {
    readonly isInitiator: boolean
    readonly publicKey: Buffer
    readonly remotePublicKey: Buffer
    /** Set once the Noise handshake completed; the same on both ends. */
    readonly handshakeHash: Buffer | null
    readonly rawStream: {
      readonly id: number
      readonly remoteId: number
      readonly remoteHost?: string
      readonly remotePort?: number
    }
    readonly destroyed: boolean
    write(data: Uint8Array): boolean
    end(): void
    destroy(err?: Error): void
    pause(): void
    resume(): void
  }

  export interface ServerOptions {
    /** Return true to refuse a connection from `remotePublicKey`. */
    firewall?: (remotePublicKey: Buffer, remotePayload: HandshakePayload, clientAddress: HostPort) => boolean
  }

  /** The part of a dialer's handshake payload a server's firewall hook sees that this package reads. */
  export interface HandshakePayload {
    /** The dialer's NAT: 0 unknown, 1 open (reachable without punching), 2 consistent, 3 random. */
    firewall?: number
    /** Set when the dialer asked to be relayed through a blind relay. */
    relayThrough?: { publicKey: Buffer } | null
  }

  export interface Server extends EventEmitter {
    readonly relayAddresses: HostPort[]
    listen(keyPair: KeyPair): Promise<void>
    close(): Promise<void>
  }

  export interface QueryReply {
    peers?: Array<{ publicKey: Buffer; relayAddresses?: HostPort[] }>
  }

  /** A dht-rpc query: an async iterable of replies. */
  export interface Query extends AsyncIterable<QueryReply> {
    destroy(err?: Error): void
    finished(): Promise<void>
  }

  export interface DHTOptions {
    bootstrap?: Array<HostPort | string>
    host?: string
    port?: number
    keyPair?: KeyPair
    connectionKeepAlive?: number | false
  }

  export default class DHT extends EventEmitter {
    constructor(options?: DHTOptions)
    static keyPair(seed?: Uint8Array): KeyPair
    readonly destroyed: boolean
    /** False once the node found it is reachable without hole punching. */
    readonly firewalled: boolean
    ready(): Promise<void>
    createServer(options?: ServerOptions, onConnection?: (socket: NoiseSecretStream) => void): Server
    connect(
      publicKey: Uint8Array,
      options?: {
        keyPair?: KeyPair
        relayAddresses?: HostPort[]
        relayThrough?: Uint8Array
        /** Called when a hole punch starts; return false to abort it. */
        holepunch?: () => boolean
      },
    ): NoiseSecretStream
    announce(topic: Uint8Array, keyPair: KeyPair, relayAddresses?: HostPort[]): Query
    lookup(topic: Uint8Array): Query
    unannounce(topic: Uint8Array, keyPair: KeyPair): Promise<void>
    destroy(options?: { force?: boolean }): Promise<void>
    createRawStream(options?: object): unknown
  }
}

declare module '@hyperswarm/testnet' {
  import type DHT from 'hyperdht'
  import type { HostPort } from 'hyperdht'

  interface Testnet {
    nodes: DHT[]
    bootstrap: HostPort[]
    destroy(): Promise<void>
  }
  export default function createTestnet(
    size?: number,
    options?: { host?: string; port?: number },
  ): Promise<Testnet>
}
