import {
  type ConnectionUpgrader,
  createPeer,
  generateIdentity,
  type Identity,
  noiseUpgrader,
  type Peer,
  plaintextUpgrader,
  tcpTransport,
} from '@parley/core'
import type { Channel, Dialer, Payload, System, SystemFactory, SystemOptions } from './types.js'

/**
 * Parley through its public API: `createPeer`, `send` (resolves on the ACK), the `message` event.
 * Encrypted: the Noise XX upgrader; plaintext: `plaintextUpgrader()` (bench only, to show the cost
 * of security). Everything else is the peer's defaults.
 */
export const createParleySystem: SystemFactory = async (options) => makeSystem(options, 'noise')

export const createParleyPlaintextSystem: SystemFactory = async (options) => makeSystem(options, 'plaintext')

/** Noise with `cipher: 'AESGCM'`: AES-256-GCM where the CPU has AES instructions. */
export const createParleyAesGcmSystem: SystemFactory = async (options) => makeSystem(options, 'aesgcm')

type Kind = 'noise' | 'aesgcm' | 'plaintext'

// 2,000 in flight keeps the pipe full (cumulative ACKs come back once per read) while the pending sends
// still die young: with 10,000 they outlived scavenges and the sender spent a third of its time in GC.
const DEFAULT_WINDOW = 2_000
const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024

function upgraderFor(kind: Kind, identity: Identity): ConnectionUpgrader {
  if (kind === 'plaintext') return plaintextUpgrader()
  return noiseUpgrader({ identity, ...(kind === 'aesgcm' ? { cipher: 'AESGCM' } : {}) })
}

function newPeer(kind: Kind, name: string, listen: string | false): Peer {
  const identity = generateIdentity()
  return createPeer({
    transport: tcpTransport(),
    identity,
    name,
    listen,
    upgrader: upgraderFor(kind, identity),
    // Protection against abusive peers, not part of the data path: the inbound rate limit (5,000
    // msg/s by default) would cut the sender off, and the memory scenario holds 500 inbound peers.
    rateLimit: false,
    maxInbound: 100_000,
  })
}

/**
 * A channel to one remote peer. `send` keeps a bounded window of unacknowledged sends: `send()`
 * resolves on the ACK, so waiting for each would measure round trips, not throughput.
 */
class ParleyChannel implements Channel {
  onMessage: ((msg: Payload) => void) | undefined
  readonly #peer: Peer
  readonly #remote: string
  readonly #window: number
  readonly #windowBytes: number
  readonly #onClose: () => Promise<void>
  #inflight = 0
  #inflightBytes = 0
  #failure: Error | undefined
  #waiter: { resolve: () => void; reject: (err: Error) => void; all: boolean } | undefined

  constructor(peer: Peer, remote: string, options: SystemOptions, onClose: () => Promise<void>) {
    this.#peer = peer
    this.#remote = remote
    this.#window = options.window ?? DEFAULT_WINDOW
    this.#windowBytes = options.windowBytes ?? DEFAULT_WINDOW_BYTES
    this.#onClose = onClose
  }

  send(msg: Payload): boolean {
    if (this.#failure) throw this.#failure
    const text = msg as string
    const bytes = text.length
    this.#inflight++
    this.#inflightBytes += bytes
    this.#peer.send(this.#remote, text).then(
      () => this.#acked(bytes),
      (err: Error) => this.#failed(err),
    )
    return !this.#full()
  }

  #full(): boolean {
    return this.#inflight >= this.#window || this.#inflightBytes >= this.#windowBytes
  }

  #acked(bytes: number): void {
    this.#inflight--
    this.#inflightBytes -= bytes
    const w = this.#waiter
    if (w === undefined) return
    // Refill at half the window, not at every ACK: one wake-up per batch of acknowledgements.
    const go = w.all
      ? this.#inflight === 0
      : this.#inflight <= this.#window / 2 && this.#inflightBytes <= this.#windowBytes / 2
    if (go) {
      this.#waiter = undefined
      w.resolve()
    }
  }

  #failed(err: Error): void {
    this.#inflight--
    this.#failure ??= err
    const w = this.#waiter
    this.#waiter = undefined
    w?.reject(err)
  }

  ready(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure)
    if (!this.#full()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject, all: false }
    })
  }

  settled(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure)
    if (this.#inflight === 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject, all: true }
    })
  }

  deliver(text: string): void {
    this.onMessage?.(text)
  }

  fail(err: Error): void {
    this.#failure ??= err
    const w = this.#waiter
    this.#waiter = undefined
    w?.reject(err)
  }

  close(): Promise<void> {
    return this.#onClose()
  }
}

function makeSystem(options: SystemOptions, kind: Kind): System {
  return {
    dialConcurrency: 16,
    payload: (bytes) => 'x'.repeat(bytes),
    async listen(onChannel) {
      const peer = newPeer(kind, 'bench-server', '127.0.0.1:0')
      const channels = new Map<string, ParleyChannel>()
      peer.on('peer:connect', (info) => {
        const channel = new ParleyChannel(peer, info.id, options, () => peer.disconnect(info.id))
        channels.set(info.id, channel)
        onChannel(channel)
      })
      peer.on('peer:disconnect', ({ peer: info, message }) => {
        channels.get(info.id)?.fail(new Error(`peer disconnected: ${message}`))
        channels.delete(info.id)
      })
      peer.on('message', (m) => channels.get(m.from.id)?.deliver(m.text))
      // Failed inbound handshakes and bad frames end up here; the bench only must not crash on them.
      peer.on('error', () => {})
      await peer.start()
      const address = peer.addresses[0]
      if (address === undefined) throw new Error('the Parley server has no address')
      return { port: Number(address.slice(address.lastIndexOf(':') + 1)), close: () => peer.stop() }
    },
    async dialer(): Promise<Dialer> {
      // A peer keeps one connection per remote peer, so every connection gets its own client peer,
      // made and started in prepare(), before the clock starts; dial() takes the oldest prepared one.
      const prepared: Peer[] = []
      const peers = new Set<Peer>()
      const prepare = async () => {
        const peer = newPeer(kind, `bench-client-${peers.size}`, false)
        peer.on('error', () => {})
        peers.add(peer)
        await peer.start()
        prepared.push(peer)
      }
      return {
        prepare,
        async dial(port) {
          if (prepared.length === 0) await prepare()
          const peer = prepared.shift()!
          const info = await peer.connect(`127.0.0.1:${port}`)
          const channel = new ParleyChannel(peer, info.id, options, async () => {
            peers.delete(peer)
            await peer.stop()
          })
          peer.on('message', (m) => channel.deliver(m.text))
          peer.on('peer:disconnect', ({ message }) =>
            channel.fail(new Error(`peer disconnected: ${message}`)),
          )
          return channel
        },
        async close() {
          await Promise.all([...peers].map((p) => p.stop()))
          peers.clear()
        },
      }
    },
  }
}
