import {
  createPeer,
  type MemoryNetwork,
  type MemoryNetworkInit,
  memoryNetwork,
  memoryTransport,
  type Peer,
  type PeerEvents,
  type PeerInit,
  type ReceivedMessage,
  type Transport,
} from '@parley/core'

export interface TestNetworkInit {
  /** How many peers. Named `p0`, `p1`, … unless `names` is given. */
  size: number
  names?: string[]
  /** Options for every peer (transport and listen address are the harness's). */
  peer?: Omit<PeerInit, 'transport' | 'listen'>
  /** Per-peer overrides, by index. */
  peerInit?: (index: number) => Partial<Omit<PeerInit, 'transport'>>
  network?: MemoryNetworkInit
  /**
   * Run over this transport instead of the in-memory one (e.g. `tcpTransport()`); peers then
   * listen on `listenHost:0` and `partition` is not available.
   */
  transport?: Transport
  /** @default '127.0.0.1' */
  listenHost?: string
  /** Start every peer. @default true */
  start?: boolean
}

export interface TestNetwork {
  readonly network: MemoryNetwork
  readonly peers: Peer[]
  /** The peer named `name`. @throws when there is none */
  peer(name: string): Peer
  /** The listen address of a peer. */
  address(peer: Peer): string
  /**
   * Connects a → b and waits until both see each other.
   * @throws what `a.connect()` throws, or an Error when `b` does not see `a` connect within
   *   `options.timeout` (the connection was refused or dropped on b's side after a's handshake).
   */
  connect(a: Peer, b: Peer, options?: WaitOptions): Promise<void>
  /** Wires every peer to every other. */
  fullMesh(): Promise<void>
  /** Wires p0 to every other peer. */
  star(): Promise<void>
  /** Wires p(i) to p(i+1). */
  chain(): Promise<void>
  /** The process dies: no GOODBYE, its connections drop, the others notice. */
  kill(peer: Peer): void
  /** Bytes between the two peers vanish silently until `heal()`. */
  partition(a: Peer, b: Peer): void
  heal(): void
  /** Stops every peer that is still running. */
  stop(): Promise<void>
}

/**
 * A network of `size` peers over one in-memory network, ready for a test.
 *
 * ```ts
 * const net = await createTestNetwork({ size: 3 })
 * onTestFinished(() => net.stop())
 * await net.fullMesh()
 * ```
 */
export async function createTestNetwork(init: TestNetworkInit): Promise<TestNetwork> {
  const network = memoryNetwork(init.network)
  // One memory transport per peer: it dials from its own host, which partitions and kills match.
  const transportFor = (name: string) => init.transport ?? memoryTransport(network, { host: name })
  const names = Array.from({ length: init.size }, (_, i) => init.names?.[i] ?? `p${i}`)
  const listen = (name: string) => (init.transport ? `${init.listenHost ?? '127.0.0.1'}:0` : `${name}:0`)
  const peers = names.map((name, i) =>
    createPeer({
      name,
      ...init.peer,
      transport: transportFor(name),
      listen: listen(name),
      ...init.peerInit?.(i),
    }),
  )
  if (init.start ?? true) await Promise.all(peers.map((p) => p.start()))
  const hostOf = (p: Peer) => hostPart(address(p))
  const address = (p: Peer) => {
    const a = p.addresses[0]
    if (a === undefined) throw new Error(`${p.name} is not listening`)
    return a
  }
  const connect = async (a: Peer, b: Peer, options: WaitOptions = {}) => {
    if (b.peers().connected.some((c) => c.id === a.id)) {
      await a.connect(address(b))
      return
    }
    // Listening before dialing: b's side may finish before a.connect() resolves.
    const stop = new AbortController()
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
    const seen = waitFor(b, 'peer:connect', (info) => info.id === a.id, { ...options, signal })
    // If a.connect() throws, that is the error to surface; the wait is then dropped, not left to reject.
    seen.catch(() => {})
    try {
      await a.connect(address(b))
    } catch (err) {
      stop.abort()
      throw err
    }
    await seen.catch((cause: unknown) => {
      throw new Error(`${a.name} connected to ${b.name}, but ${b.name} never saw ${a.name} connect`, {
        cause,
      })
    })
  }
  const net: TestNetwork = {
    network,
    peers,
    peer(name) {
      const found = peers.find((p) => p.name === name)
      if (!found) throw new Error(`no peer named ${name}`)
      return found
    },
    address,
    connect,
    async fullMesh() {
      for (let i = 0; i < peers.length; i++) {
        for (let j = i + 1; j < peers.length; j++) await connect(peers[i]!, peers[j]!)
      }
    },
    async star() {
      for (let i = 1; i < peers.length; i++) await connect(peers[i]!, peers[0]!)
    },
    async chain() {
      for (let i = 0; i + 1 < peers.length; i++) await connect(peers[i]!, peers[i + 1]!)
    },
    kill(peer) {
      if (!init.transport) network.dropConnections(hostOf(peer))
      peer.destroy()
    },
    partition(a, b) {
      if (init.transport) throw new Error('partition needs the in-memory transport')
      network.partition(hostOf(a), hostOf(b))
    },
    heal() {
      network.heal()
    },
    async stop() {
      await Promise.all(peers.map((p) => p.stop()))
    },
  }
  return net
}

function hostPart(address: string): string {
  const i = address.lastIndexOf(':')
  return i < 0 ? address : address.slice(0, i)
}

export interface WaitOptions {
  /** Real-time safety net so a broken test fails instead of hanging. @default 5_000 ms */
  timeout?: number
  signal?: AbortSignal
}

/**
 * Resolves with the first `event` of `peer` whose arguments satisfy `predicate`.
 * Rejects after `timeout` (real time, so it still works under fake timers).
 */
export function waitFor<E extends keyof PeerEvents>(
  peer: Peer,
  event: E,
  predicate: (...args: PeerEvents[E]) => boolean = () => true,
  options: WaitOptions = {},
): Promise<PeerEvents[E][0]> {
  const signals = [AbortSignal.timeout(options.timeout ?? 5_000)]
  if (options.signal) signals.push(options.signal)
  const signal = AbortSignal.any(signals)
  return new Promise((resolve, reject) => {
    // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's generic listener type cannot be named here
    const listener = (...args: any[]) => {
      if (!predicate(...(args as PeerEvents[E]))) return
      cleanup()
      resolve(args[0])
    }
    const onAbort = () => {
      cleanup()
      reject(new Error(`${peer.name}: no matching '${String(event)}' event in time`))
    }
    const cleanup = () => {
      // biome-ignore lint/suspicious/noExplicitAny: see above
      peer.off(event, listener as any)
      signal.removeEventListener('abort', onAbort)
    }
    if (signal.aborted) return onAbort()
    // biome-ignore lint/suspicious/noExplicitAny: see above
    peer.on(event, listener as any)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Records every message a peer receives; `waitForCount` resolves once `n` have arrived. */
export function inbox(peer: Peer): {
  messages: ReceivedMessage[]
  texts(): string[]
  waitForCount(n: number, options?: WaitOptions): Promise<ReceivedMessage[]>
} {
  const messages: ReceivedMessage[] = []
  peer.on('message', (m) => messages.push(m))
  return {
    messages,
    texts: () => messages.map((m) => m.text),
    async waitForCount(n, options) {
      while (messages.length < n) await waitFor(peer, 'message', () => true, options)
      return messages
    },
  }
}
