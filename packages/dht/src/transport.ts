import {
  type AbortOptions,
  type Connection,
  type Identity,
  type Listener,
  type Transport,
  TransportError,
} from '@parley/core'
import DHT, { type HostPort, type KeyPair, type NoiseSecretStream, type Server } from 'hyperdht'
import { dhtAddress, parseDhtAddress } from './address.js'
import { DhtConnection } from './connection.js'
import { identityKeyPair } from './keys.js'
import { registerNodeAccess } from './node-access.js'
import { type DhtPath, dhtSession } from './session.js'

/** A DHT node to join through: `{ host: '203.0.113.7', port: 49737 }`. */
export interface BootstrapNode {
  host: string
  port: number
}

/**
 * Which DHT to join: these bootstrap nodes (a private network, a test network), or `'public'` for the
 * public HyperDHT network. There is no default: the public network is used only when asked for.
 */
export type Bootstrap = readonly BootstrapNode[] | 'public'

/** Options of {@link dhtTransport}. */
export interface DhtTransportInit {
  /** The peer's identity: it listens on the DHT under its own key, and dials with it. */
  identity: Identity
  bootstrap: Bootstrap
  /**
   * How long `dial()` waits for HyperDHT to find the peer and open a connection (hole punching
   * included; a random-port NAT can take ~20 s) before failing with `DIAL_TIMEOUT`, in milliseconds.
   * @default 30_000
   */
  dialTimeout?: number
  /**
   * Peer id of a blind relay (a HyperDHT server running `blind-relay`). A dial whose hole punch fails
   * (two random-port NATs) is tried once more through it; the relay sees only encrypted bytes.
   * @default none: such dials fail
   */
  relayThrough?: string
  /** Local address the DHT's UDP socket binds. @default HyperDHT's: 0.0.0.0 */
  host?: string
  /** UDP port of the DHT node. @default HyperDHT's: 49737, or any free port when taken */
  port?: number
}

/** A {@link Transport} over HyperDHT. Addresses are `dht:<peer id>`. */
export interface DhtTransport extends Transport {
  /** The peer id this transport listens and dials as. */
  readonly peerId: string
  /** `dht:<peer id>`: the one address this transport listens on. */
  readonly address: string
  /**
   * How the newest open connection to `peerId` was set up (`direct`, `holepunch` or `relay`) and the
   * UDP address it runs to (the remote's NAT, or the relay), or undefined when none is open.
   */
  pathTo(peerId: string): { path: DhtPath; host: string; port: number } | undefined
  /** Leaves the DHT: stops listening, aborts every connection and closes the UDP socket. Idempotent. */
  destroy(): Promise<void>
}

const DEFAULT_DIAL_TIMEOUT = 30_000
/** Relay hints remembered from discovery, per peer id: bounded, oldest forgotten first. */
const MAX_HINTS = 1024
/** What handshakes in progress said about their path (one entry each): bounded, oldest forgotten first. */
const MAX_INBOUND = 256
/** HyperDHT's FIREWALL.OPEN: a node reachable without hole punching. */
const FIREWALL_OPEN = 1

/**
 * A {@link Transport} over HyperDHT: a peer is reachable as `dht:<its peer id>` from anywhere the DHT
 * reaches, through NATs (HyperDHT finds the peer, punches a hole, or relays).
 *
 * Every connection is already end-to-end encrypted by HyperDHT's Noise handshake, which also proved
 * that each end holds the secret key of its public key: use {@link dhtUpgrader} above it, not the
 * Noise upgrader (which would encrypt a second time).
 *
 * - `listen('dht:<own peer id>')` announces the peer on the DHT; any other key is `INVALID_ADDRESS`.
 * - `dial('dht:<peer id>')` finds and connects; nobody there is `CONNECTION_REFUSED`.
 * - A connection's addresses: the listening end is `dht:<peer id>`; the dialing end is
 *   `dht:<peer id>:<stream id>`, unique per connection like an ephemeral TCP port.
 *
 * The HyperDHT node starts on first use and lives until {@link DhtTransport.destroy}.
 */
export function dhtTransport(init: DhtTransportInit): DhtTransport {
  return new HyperDhtTransport(init)
}

class HyperDhtTransport implements DhtTransport {
  readonly name = 'dht'
  readonly peerId: string
  readonly address: string
  readonly #init: DhtTransportInit
  readonly #keyPair: KeyPair
  readonly #dialTimeout: number
  readonly #relayThrough: Buffer | undefined
  #node: Promise<DHT> | undefined
  #server: Server | undefined
  #destroyed = false
  readonly #connections = new Set<Connection>()
  readonly #dialing = new Set<NoiseSecretStream>()
  readonly #hints = new Map<string, HostPort[]>()
  /** Per dialer key, from its handshake: did it ask for a relay, is it reachable without a punch. */
  readonly #inbound = new Map<string, { relay: boolean; open: boolean }>()

  constructor(init: DhtTransportInit) {
    if (init.bootstrap !== 'public' && !Array.isArray(init.bootstrap)) {
      throw new TypeError("bootstrap must be a list of { host, port } or 'public'")
    }
    this.#init = init
    this.#keyPair = identityKeyPair(init.identity)
    this.peerId = init.identity.peerId
    this.address = dhtAddress(this.peerId)
    this.#dialTimeout = init.dialTimeout ?? DEFAULT_DIAL_TIMEOUT
    if (init.relayThrough !== undefined && !/^[0-9a-f]{64}$/.test(init.relayThrough)) {
      throw new TypeError('relayThrough must be a peer id: 64 lowercase hex characters')
    }
    this.#relayThrough = init.relayThrough === undefined ? undefined : Buffer.from(init.relayThrough, 'hex')
    registerNodeAccess(this, {
      node: (options) => this.#start(options?.signal, 'join'),
      keyPair: this.#keyPair,
      hint: (peerId, relays) => {
        if (relays === undefined || relays.length === 0) return
        this.#hints.delete(peerId)
        this.#hints.set(peerId, relays.slice(0, 3))
        if (this.#hints.size > MAX_HINTS) this.#hints.delete(this.#hints.keys().next().value!)
      },
      relayAddresses: () => this.#server?.relayAddresses ?? [],
    })
  }

  async listen(
    address: string,
    onConnection: (conn: Connection) => void,
    options: AbortOptions = {},
  ): Promise<Listener> {
    const peerId = parseDhtAddress(address)
    const { signal } = options
    if (signal?.aborted) throw aborted(signal, 'listen')
    if (peerId !== this.peerId) {
      throw new TransportError(
        'INVALID_ADDRESS',
        `cannot listen on ${address}: this transport holds the key of ${this.address} only`,
      )
    }
    if (this.#server !== undefined) throw new TransportError('ADDRESS_IN_USE', `${address} is in use`)
    const node = await this.#start(signal, 'listen')
    if (this.#server !== undefined) throw new TransportError('ADDRESS_IN_USE', `${address} is in use`)
    const firewall = (remotePublicKey: Buffer, payload: { firewall?: number; relayThrough?: unknown }) => {
      const key = remotePublicKey.toString('hex')
      this.#inbound.delete(key)
      this.#inbound.set(key, {
        relay: payload?.relayThrough != null,
        open: payload?.firewall === FIREWALL_OPEN,
      })
      if (this.#inbound.size > MAX_INBOUND) this.#inbound.delete(this.#inbound.keys().next().value!)
      return false // accept: who may talk is the peer's decision, after the handshake
    }
    const server = node.createServer({ firewall }, (stream) => {
      const key = stream.remotePublicKey.toString('hex')
      const remote = `${dhtAddress(key)}:${stream.rawStream.remoteId}`
      const seen = this.#inbound.get(key)
      this.#inbound.delete(key)
      // No punch was needed when either end is reachable as it is.
      const path: DhtPath = seen?.relay ? 'relay' : seen?.open || !node.firewalled ? 'direct' : 'holepunch'
      // A stream that fails before anyone listens must not crash the process.
      stream.on('error', () => {})
      this.#track(new DhtConnection(stream, this.address, remote, path), onConnection)
    })
    this.#server = server
    try {
      await withSignal(server.listen(this.#keyPair), signal, 'listen')
    } catch (err) {
      this.#server = undefined
      void server.close().catch(() => {})
      if (err instanceof TransportError) throw err
      throw new TransportError('INVALID_ADDRESS', `cannot listen on ${address}: ${(err as Error).message}`, {
        cause: err,
      })
    }
    let closed = false
    return {
      address: this.address,
      close: async () => {
        if (closed) return
        closed = true
        if (this.#server === server) this.#server = undefined
        // Unannounces the key; connections already accepted stay open.
        await server.close().catch(() => {})
      },
    }
  }

  dial(address: string, options: AbortOptions = {}): Promise<Connection> {
    let peerId: string
    try {
      peerId = parseDhtAddress(address)
    } catch (err) {
      return Promise.reject(err)
    }
    const { signal } = options
    if (signal?.aborted) return Promise.reject(aborted(signal, 'dial'))
    if (this.#destroyed) {
      return Promise.reject(new TransportError('CONNECTION_REFUSED', 'the DHT transport was destroyed'))
    }
    return new Promise<Connection>((resolve, reject) => {
      let stream: NoiseSecretStream | undefined
      let done = false
      const settle = (err?: TransportError) => {
        if (done) return
        done = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        detach()
        if (err !== undefined) {
          stream?.on('error', () => {})
          stream?.destroy()
          reject(err)
          return
        }
        const s = stream!
        s.on('error', () => {})
        const local = `${this.address}:${s.rawStream.id}`
        const path: DhtPath = relayed ? 'relay' : punched ? 'holepunch' : 'direct'
        resolve(this.#track(new DhtConnection(s, local, address, path)))
      }
      let relayed = false
      let punched = false
      const onOpen = () => settle()
      const onError = (err: Error) => {
        // Hyperswarm's pattern: a punch that failed is retried through the relay, once.
        if (this.#relayThrough !== undefined && !relayed && isPunchFailure(err)) {
          relayed = true
          detach()
          stream?.on('error', () => {})
          stream?.destroy()
          attempt(this.#relayThrough)
          return
        }
        settle(mapDialError(err, address))
      }
      const onClose = () =>
        settle(new TransportError('CONNECTION_REFUSED', `${address} closed the connection`))
      const onAbort = () => settle(aborted(signal!, 'dial'))
      const detach = () => {
        if (stream === undefined) return
        this.#dialing.delete(stream)
        stream.off('open', onOpen)
        stream.off('error', onError)
        stream.off('close', onClose)
      }
      let node: DHT
      const attempt = (relayThrough: Buffer | undefined) => {
        if (done) return
        const relayAddresses = this.#hints.get(peerId)
        stream = node.connect(Buffer.from(peerId, 'hex'), {
          keyPair: this.#keyPair,
          ...(relayAddresses !== undefined ? { relayAddresses } : {}),
          ...(relayThrough !== undefined ? { relayThrough } : {}),
          holepunch: () => {
            punched = true
            return true
          },
        })
        this.#dialing.add(stream)
        stream.once('open', onOpen)
        stream.once('error', onError)
        stream.once('close', onClose)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const timer = setTimeout(() => {
        settle(new TransportError('DIAL_TIMEOUT', `no connection to ${address} in ${this.#dialTimeout} ms`))
      }, this.#dialTimeout)
      timer.unref?.()
      this.#start(signal, 'dial').then(
        (started) => {
          node = started
          attempt(undefined)
        },
        (err) => settle(err instanceof TransportError ? err : mapDialError(err as Error, address)),
      )
    })
  }

  pathTo(peerId: string): { path: DhtPath; host: string; port: number } | undefined {
    let found: { path: DhtPath; host: string; port: number } | undefined
    for (const conn of this.#connections) {
      const session = dhtSession(conn)
      if (conn.status !== 'open' || session?.remotePeerId !== peerId) continue
      found = { path: session.path, host: session.remoteHost, port: session.remotePort }
    }
    return found
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return
    this.#destroyed = true
    for (const stream of this.#dialing) stream.destroy()
    for (const conn of this.#connections) conn.abort()
    const server = this.#server
    this.#server = undefined
    await server?.close().catch(() => {})
    const node = await this.#node?.catch(() => undefined)
    await node?.destroy()
  }

  #track<C extends Connection>(conn: C, onConnection?: (conn: Connection) => void): C {
    if (this.#destroyed) {
      conn.abort()
      return conn
    }
    this.#connections.add(conn)
    conn.once('close', () => this.#connections.delete(conn))
    onConnection?.(conn)
    return conn
  }

  /** Starts the HyperDHT node once and waits until it has joined the DHT. */
  #start(signal: AbortSignal | undefined, what: string): Promise<DHT> {
    if (this.#destroyed) {
      return Promise.reject(new TransportError('CONNECTION_REFUSED', 'the DHT transport was destroyed'))
    }
    if (this.#node === undefined) {
      const { bootstrap, host, port } = this.#init
      const node = new DHT({
        // Without `bootstrap` HyperDHT joins the public network; an empty list makes an isolated node.
        ...(bootstrap === 'public' ? {} : { bootstrap: bootstrap.map(({ host, port }) => ({ host, port })) }),
        ...(host !== undefined ? { host } : {}),
        ...(port !== undefined ? { port } : {}),
        keyPair: this.#keyPair,
      })
      this.#node = node.ready().then(() => node)
      this.#node.catch(() => {})
    }
    return withSignal(this.#node, signal, what)
  }
}

function withSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal === undefined) return promise
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal, what))
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

function aborted(signal: AbortSignal, what: string): TransportError {
  return new TransportError('ABORTED', `${what} aborted`, { cause: signal.reason })
}

/** A hole punch that cannot succeed without a relay. */
function isPunchFailure(err: Error): boolean {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && (code.startsWith('HOLEPUNCH_') || code === 'CANNOT_HOLEPUNCH')
}

/**
 * Whether a dial failed because no server listens under the key on the DHT (HyperDHT's
 * `PEER_NOT_FOUND`, anywhere in the chain of causes). Such keys are free to announce, unlike a server.
 */
export function isNobodyListening(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if ((e as { code?: unknown }).code === 'PEER_NOT_FOUND') return true
  }
  return false
}

/** HyperDHT's error codes: a missing peer or a failed punch is a refusal, a timeout a timeout. */
function mapDialError(err: Error, address: string): TransportError {
  const code = (err as { code?: unknown }).code
  const name = typeof code === 'string' ? code : err.message
  if (typeof code === 'string' && code.includes('TIMEOUT')) {
    return new TransportError('DIAL_TIMEOUT', `no connection to ${address} in time (${name})`, { cause: err })
  }
  if (code === 'PEER_NOT_FOUND') {
    return new TransportError('CONNECTION_REFUSED', `nobody listens on ${address} (PEER_NOT_FOUND)`, {
      cause: err,
    })
  }
  return new TransportError('CONNECTION_REFUSED', `cannot connect to ${address} (${name})`, { cause: err })
}
