import {
  type ConnectionUpgrader,
  type Identity,
  noiseUpgrader,
  type Peer,
  type Transport,
  tcpTransport,
} from '@parley/core'
import { parseDhtAddress } from './address.js'
import { routingTransport } from './routing-transport.js'
import { joinTopic, type Topic } from './topic.js'
import {
  type Bootstrap,
  type BootstrapNode,
  type DhtTransport,
  dhtTransport,
  isNobodyListening,
} from './transport.js'
import { dhtUpgrader } from './upgrader.js'

/** The DHT flags of a command line, as a parser hands them over. */
export interface DhtFlags {
  /** `--dht`: use the public HyperDHT network. */
  dht?: boolean
  /** `--bootstrap host:port`, repeatable: join the DHT through these nodes instead of the public ones. */
  bootstrap?: readonly string[]
  /** `--join <topic>`, repeatable: announce on the topic and connect to the peers on it. */
  join?: readonly string[]
  /** `--relay <peer id>`: a blind relay for peers whose NATs defeat hole punching. */
  relay?: string
}

/** What the flags ask for: which DHT, and which topics. */
export interface DhtOptions {
  bootstrap: Bootstrap
  join: string[]
  /** Peer id of a blind relay, tried when a hole punch fails. */
  relay?: string
}

/** A DHT flag that cannot be used; its message is one sentence for the user. */
export class DhtOptionsError extends Error {
  override readonly name = 'DhtOptionsError'
}

const MAX_BOOTSTRAP = 16
const MAX_TOPICS = 8
const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+)):([0-9]{1,5})$/

/** Parses one `--bootstrap` value, `host:port` (an IPv6 host in brackets). @throws DhtOptionsError */
export function parseBootstrap(value: string): BootstrapNode {
  const match = HOST_PORT.exec(value)
  const port = Number(match?.[3])
  if (match === null || !(port >= 1 && port <= 65535)) {
    throw new DhtOptionsError(
      `--bootstrap ${JSON.stringify(value)} is not host:port (for example 203.0.113.7:49737)`,
    )
  }
  return { host: match[1] ?? match[2]!, port }
}

/**
 * The DHT options of a command line, or undefined when it asks for no DHT.
 *
 * - `--bootstrap host:port` (repeatable) joins the DHT reachable through those nodes;
 * - `--dht` alone joins the public HyperDHT network (never without it);
 * - `--join <topic>` (repeatable) needs one of the two.
 *
 * @throws DhtOptionsError with a one-sentence message for the user
 */
export function dhtOptions(flags: DhtFlags): DhtOptions | undefined {
  const bootstrap = flags.bootstrap ?? []
  const join = [...new Set(flags.join ?? [])]
  if (bootstrap.length > MAX_BOOTSTRAP) {
    throw new DhtOptionsError(`at most ${MAX_BOOTSTRAP} --bootstrap nodes can be given`)
  }
  if (join.length > MAX_TOPICS) throw new DhtOptionsError(`at most ${MAX_TOPICS} --join topics can be given`)
  for (const topic of join) {
    if (topic.length === 0 || Buffer.byteLength(topic) > 1024) {
      throw new DhtOptionsError('a --join topic is 1 to 1024 bytes of text')
    }
  }
  const relay = flags.relay
  if (relay !== undefined && !/^[0-9a-f]{64}$/.test(relay)) {
    throw new DhtOptionsError('--relay takes a peer id: 64 lowercase hex characters')
  }
  const extra = relay !== undefined ? { relay } : {}
  if (bootstrap.length > 0) return { bootstrap: bootstrap.map(parseBootstrap), join, ...extra }
  if (flags.dht === true) return { bootstrap: 'public', join, ...extra }
  if (join.length > 0 || relay !== undefined) {
    const flag = join.length > 0 ? '--join' : '--relay'
    throw new DhtOptionsError(`${flag} needs the DHT: add --dht (the public DHT) or --bootstrap host:port`)
  }
  return undefined
}

/** What {@link dhtNetworking} needs. */
export interface DhtNetworkingInit {
  identity: Identity
  options: DhtOptions
  /** The peer's network secret, if any: checked on DHT connections and keying the topics. */
  networkSecret?: string | Uint8Array
  /** Passed to the network-proof exchange and the Noise upgrader. @default 10_000 ms */
  handshakeTimeout?: number
  /** Carries every address that is not `dht:`. @default tcpTransport() */
  other?: Transport
}

/** The pieces of a peer that speaks DHT, for `createPeer` and around it. */
export interface DhtNetworking {
  /** `dht:` addresses over HyperDHT, anything else over `other` (TCP). For `PeerInit.transport`. */
  readonly transport: Transport
  /** HyperDHT's authentication for DHT connections, Noise for the others. For `PeerInit.upgrader`. */
  readonly upgrader: ConnectionUpgrader
  /** `dht:<peer id>`: for `PeerInit.listen`. */
  readonly listen: string
  readonly dht: DhtTransport
  /** After `peer.start()`: joins the topics of the options and connects to every peer found on them. */
  join(peer: Peer, onError?: (err: Error) => void): Topic[]
  /** After `peer.stop()`: leaves the topics and the DHT. */
  close(): Promise<void>
}

/**
 * The `handshakeTimeout` a peer on the DHT needs at least, in milliseconds. The peer's handshake limit
 * also covers the transport's dial, and HyperDHT may take ~20 s to punch through a random-port NAT
 * (the transport's own dial timeout is 30 s).
 */
export const DHT_HANDSHAKE_TIMEOUT = 40_000

/** Dials to topic peers running at once. */
const CONNECT_CONCURRENCY = 4
/**
 * How long the peer with the greater id waits before dialing a topic peer itself. Both ends find each
 * other on the topic; if both dialed, two punches would run at once, and HyperDHT allows one
 * random-port punch per node every 20 s: the second fails, and with a relay it would be relayed.
 */
const DIAL_DEFER = 15_000

/**
 * Everything a frontend needs to put a peer on the DHT, from parsed {@link dhtOptions}:
 *
 * ```ts
 * const options = dhtOptions({ dht, bootstrap, join })  // from the command line
 * const net = dhtNetworking({ identity, options, networkSecret })
 * const peer = createPeer({ identity, networkSecret, transport: net.transport, upgrader: net.upgrader, listen: net.listen })
 * await peer.start()
 * net.join(peer)
 * // ...
 * await peer.stop()
 * await net.close()
 * ```
 */
export function dhtNetworking(init: DhtNetworkingInit): DhtNetworking {
  const { bootstrap, relay } = init.options
  const dht = dhtTransport({
    identity: init.identity,
    bootstrap,
    ...(relay !== undefined ? { relayThrough: relay } : {}),
  })
  const secret =
    typeof init.networkSecret === 'string' ? Buffer.from(init.networkSecret, 'utf8') : init.networkSecret
  const handshakeTimeout = init.handshakeTimeout ?? 10_000
  const fallback = noiseUpgrader({
    identity: init.identity,
    handshakeTimeout,
    ...(secret !== undefined ? { networkSecret: secret } : {}),
  })
  const upgrader = dhtUpgrader({
    handshakeTimeout,
    fallback,
    ...(secret !== undefined ? { networkSecret: secret } : {}),
  })
  const topics: Topic[] = []
  return {
    transport: routingTransport(dht, init.other ?? tcpTransport()),
    upgrader,
    listen: dht.address,
    dht,
    join(peer, onError) {
      for (const name of init.options.join) {
        const topic = joinTopic(dht, name, secret !== undefined ? { networkSecret: secret } : {})
        topic.on('peer', topicConnector(peer, topic, onError))
        if (onError !== undefined) topic.on('error', onError)
        topics.push(topic)
      }
      return [...topics]
    },
    async close() {
      await Promise.all(topics.splice(0).map((topic) => topic.leave()))
      await dht.destroy()
    },
  }
}

/** Sessions past which topic peers are no longer dialed (the topic's default `maxPeers`). */
const TOPIC_MAX_CONNECTED = 64
/** A topic peer is dialed at most once in this long (a round's default interval). */
const TOPIC_REDIAL_GAP = 60_000
/**
 * After a failed dial, it may be tried again this much sooner: a punch through a random-port NAT
 * fails now and then, and HyperDHT allows one random punch per 20 s.
 */
const TOPIC_RETRY_AFTER_FAILURE = 20_000

/**
 * Connects to each topic peer not connected yet, a few at a time. A reported peer holds one of the
 * topic's places (`maxPeers`) until its dial is over: then it is forgotten, so peers that come and go
 * never use up the places (the next round reports one still there again, and a connected one is skipped).
 * @internal exported for tests
 */
export function topicConnector(
  peer: Pick<Peer, 'status' | 'peers' | 'connect' | 'id'>,
  topic: Pick<Topic, 'forget' | 'failed'>,
  onError?: (err: Error) => void,
): (address: string) => void {
  const queue: string[] = []
  let running = 0
  /** When each topic peer was last dialed: one the rounds report again is not dialed again for a while. */
  const dialedAt = new Map<string, number>()
  const next = () => {
    while (running < CONNECT_CONCURRENCY && queue.length > 0) {
      const address = queue.shift()!
      const id = parseDhtAddress(address)
      const connected = peer.peers().connected
      const last = dialedAt.get(id)
      if (
        peer.status !== 'running' ||
        connected.some((p) => p.id === id) ||
        // Enough peers already (the topic's places bounded this before they were freed after each dial).
        connected.length >= TOPIC_MAX_CONNECTED ||
        // Dialed lately: it may be reconnecting on its own, or has just failed.
        (last !== undefined && Date.now() - last < TOPIC_REDIAL_GAP)
      ) {
        // On a microtask: forgetting fills the place at once, which reports the next peer through here.
        queueMicrotask(() => topic.forget(address))
        continue
      }
      running++
      dialedAt.delete(id)
      dialedAt.set(id, Date.now())
      if (dialedAt.size > 1_024) dialedAt.delete(dialedAt.keys().next().value!)
      peer
        .connect(address)
        .then(
          () => topic.forget(address),
          (err: Error) => {
            // Tried again after TOPIC_RETRY_AFTER_FAILURE, not the whole gap.
            if (dialedAt.has(id)) dialedAt.set(id, Date.now() - TOPIC_REDIAL_GAP + TOPIC_RETRY_AFTER_FAILURE)
            // A key nobody listens under is free to announce: it rests, so each costs one dial, not one a
            // round. Any other failure (a dead path, a full peer) is tried again next round, as a server
            // behind the key costs whoever runs it.
            if (isNobodyListening(err)) topic.failed(address)
            else topic.forget(address)
            onError?.(err)
          },
        )
        .finally(() => {
          running--
          next()
        })
    }
  }
  return (address) => {
    // Bounded by the topic's maxPeers: a peer is reported again only after its dial is over.
    if (parseDhtAddress(address) < peer.id) {
      setTimeout(() => {
        queue.push(address)
        next()
      }, DIAL_DEFER).unref?.()
      return
    }
    queue.push(address)
    next()
  }
}
