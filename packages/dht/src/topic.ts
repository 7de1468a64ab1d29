import { createHash, createHmac } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Transport } from '@parley/core'
import type { HostPort, Query } from 'hyperdht'
import { dhtAddress } from './address.js'
import { dhtNodeOf } from './node-access.js'

/** Options of {@link joinTopic}. */
export interface JoinTopicOptions {
  /**
   * A private network's secret: the topic's DHT key is then keyed by it, so only peers with the
   * secret find each other, and outsiders cannot even tell the topic is in use.
   */
  networkSecret?: string | Uint8Array
  /**
   * Peers remembered as found at once. Past it, others seen wait in a pool (1,024 at most) until a peer
   * is {@link Topic.forget}ten or has {@link Topic.failed}: its place goes at once to one of them, at
   * random. @default 64
   */
  maxPeers?: number
  /** Time between announce rounds, in milliseconds (at least 1_000). @default 60_000 */
  interval?: number
  /** Announce this peer too, not only look for others. @default true */
  announce?: boolean
}

/** Events of a joined {@link Topic}. */
export interface TopicEvents {
  /** Another peer on the topic, as a dialable `dht:<peer id>` address. Each peer once. */
  peer: [address: string]
  /** A round failed; the next one still runs. Only emitted when listened to. */
  error: [error: Error]
}

/** A joined topic: announces the peer and reports the others, until {@link Topic.leave}. */
export interface Topic extends EventEmitter<TopicEvents> {
  readonly name: string
  /** The 32-byte DHT key of the topic, in hex. */
  readonly key: string
  /** Every `dht:` address found so far (at most `maxPeers`). */
  peers(): string[]
  /**
   * Forgets a peer found earlier, so the next round reports it again if it is still on the topic (a
   * dial that failed is then tried again, once per round).
   */
  forget(address: string): void
  /**
   * A dial to a peer found here failed: forgets it, and leaves it out of the rounds for a while (a
   * minute, doubling with each failure up to half an hour). Anyone can announce any number of keys on a
   * topic for free; keys that never answer must each cost one dial, not one per round and slot, or they
   * keep every place and every dial from the peers that do answer.
   */
  failed(address: string): void
  /** Runs a round now unless one ran less than a second ago; resolves when it is over. */
  refresh(): Promise<void>
  /** Stops announcing, removes our announcement from the DHT, and ends the rounds. Idempotent. */
  leave(): Promise<void>
}

const DEFAULT_MAX_PEERS = 64
/** The first wait after a failed dial, and the longest (it doubles per failure in between). */
const FAILED_WAIT = 60_000
const FAILED_MAX_WAIT = 30 * 60_000
/** Keys with a failed dial remembered at once (the oldest is forgotten first). */
const MAX_FAILED = 4_096
/** Keys seen while every place was taken, kept to fill places freed before the next round. */
const MAX_WAITING = 1_024
const DEFAULT_INTERVAL = 60_000
const MIN_INTERVAL = 1_000
const TOPIC_LABEL = 'parley topic/1:'

/**
 * The DHT key of a topic name: SHA-256 of a label and the name, or, on a private network,
 * HMAC-SHA256 keyed by its secret.
 */
export function topicKey(name: string, networkSecret?: string | Uint8Array): Buffer {
  const data = Buffer.from(TOPIC_LABEL + name, 'utf8')
  if (networkSecret === undefined) return createHash('sha256').update(data).digest()
  return createHmac('sha256', networkSecret).update(data).digest()
}

/**
 * Joins a topic on the DHT of `transport` (made by `dhtTransport`): announces this peer under the
 * topic's key (hyperswarm style: a signed record pointing at our key and relay nodes) and looks up the
 * others, in rounds every `interval`. Every other peer found is emitted once as `peer`, at most
 * `maxPeers` at once (report failed dials with `failed()` to free places); connect to them with
 * `peer.connect(address)`. The transport should be listening, or the peers found here cannot connect
 * back.
 *
 * @throws TypeError when `transport` is not a DHT transport or the name is empty
 */
export function joinTopic(transport: Transport, name: string, options: JoinTopicOptions = {}): Topic {
  const access = dhtNodeOf(transport)
  if (access === undefined) throw new TypeError('joinTopic needs a transport made by dhtTransport()')
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > 1024) {
    throw new TypeError('a topic name is 1 to 1024 bytes of text')
  }
  return new DhtTopic(access, name, options)
}

class DhtTopic extends EventEmitter<TopicEvents> implements Topic {
  readonly name: string
  readonly key: string
  readonly #access: NonNullable<ReturnType<typeof dhtNodeOf>>
  readonly #topic: Buffer
  readonly #self: string
  readonly #maxPeers: number
  readonly #interval: number
  readonly #announce: boolean
  readonly #found = new Set<string>()
  /** Keys whose dial failed: when they may be reported again, and how many times they failed. */
  readonly #failed = new Map<string, { until: number; failures: number }>()
  /**
   * Keys seen but not reported yet, with their relay nodes. Places are filled from here at random: an
   * announcer of many keys gets places in proportion to its keys, not by being seen first, and a freed
   * place is filled without waiting a round (a minute) for one.
   */
  readonly #waiting: Array<{ id: string; relays: HostPort[] | undefined }> = []
  readonly #waitingIds = new Set<string>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #round: Promise<void> | undefined
  #query: Query | undefined
  #lastRound = 0
  #rounds = 0
  #left = false
  #announced = false

  constructor(access: NonNullable<ReturnType<typeof dhtNodeOf>>, name: string, options: JoinTopicOptions) {
    super()
    this.#access = access
    this.name = name
    this.#topic = topicKey(name, options.networkSecret)
    this.key = this.#topic.toString('hex')
    this.#self = access.keyPair.publicKey.toString('hex')
    this.#maxPeers = Math.max(1, options.maxPeers ?? DEFAULT_MAX_PEERS)
    this.#interval = Math.max(MIN_INTERVAL, options.interval ?? DEFAULT_INTERVAL)
    this.#announce = options.announce ?? true
    void this.refresh()
  }

  peers(): string[] {
    return [...this.#found].map(dhtAddress)
  }

  forget(address: string): void {
    if (!address.startsWith('dht:')) return
    this.#found.delete(address.slice(4))
    this.#fill()
  }

  failed(address: string): void {
    if (!address.startsWith('dht:')) return
    const id = address.slice(4)
    this.#found.delete(id)
    const failures = (this.#failed.get(id)?.failures ?? 0) + 1
    this.#failed.delete(id)
    const wait = Math.min(FAILED_MAX_WAIT, FAILED_WAIT * 2 ** (failures - 1))
    this.#failed.set(id, { until: Date.now() + wait, failures })
    if (this.#failed.size > MAX_FAILED) this.#failed.delete(this.#failed.keys().next().value!)
    this.#fill()
  }

  /** Whether a key failed recently enough to be left out of this round. */
  #resting(id: string, now: number): boolean {
    const f = this.#failed.get(id)
    return f !== undefined && f.until > now
  }

  refresh(): Promise<void> {
    if (this.#left) return Promise.resolve()
    if (this.#round !== undefined) return this.#round
    if (Date.now() - this.#lastRound < MIN_INTERVAL) return Promise.resolve()
    clearTimeout(this.#timer)
    this.#lastRound = Date.now()
    this.#round = this.#run()
      .catch((err: Error) => {
        if (!this.#left && this.listenerCount('error') > 0) this.emit('error', err)
      })
      .finally(() => {
        this.#round = undefined
        this.#query = undefined
        if (this.#left) return
        // Soon after joining, rounds come quickly (1, 2, 4, ... s): two peers that join at the same
        // moment may each miss the other's record in their first round.
        const delay = Math.min(this.#interval, MIN_INTERVAL * 2 ** this.#rounds++)
        this.#timer = setTimeout(() => void this.refresh(), delay)
        this.#timer.unref?.()
      })
    return this.#round
  }

  async leave(): Promise<void> {
    if (this.#left) return
    this.#left = true
    clearTimeout(this.#timer)
    this.#waiting.length = 0
    this.#waitingIds.clear()
    this.#query?.destroy()
    await this.#round
    if (!this.#announced) return
    const node = await this.#access.node().catch(() => undefined)
    if (node === undefined || node.destroyed) return
    await node.unannounce(this.#topic, this.#access.keyPair).catch(() => {})
  }

  async #run(): Promise<void> {
    const node = await this.#access.node()
    if (this.#left) return
    const query = this.#announce
      ? node.announce(this.#topic, this.#access.keyPair, this.#access.relayAddresses())
      : node.lookup(this.#topic)
    this.#query = query
    if (this.#announce) this.#announced = true
    // Bounded by the DHT: a query asks the ~20 nodes closest to the topic, each returning at most 20 peers.
    const now = Date.now()
    for await (const reply of query) {
      if (this.#left) return
      for (const peer of reply.peers ?? []) {
        const id = peer.publicKey.toString('hex')
        if (id === this.#self || this.#found.has(id) || this.#waitingIds.has(id)) continue
        if (this.#resting(id, now)) continue
        this.#wait(id, peer.relayAddresses)
      }
      this.#fill()
    }
  }

  /** Adds a key to the pool; a full pool gives up a random key for it, so no set of keys owns it. */
  #wait(id: string, relays: HostPort[] | undefined): void {
    if (this.#waiting.length < MAX_WAITING) {
      this.#waiting.push({ id, relays })
    } else {
      const at = Math.floor(Math.random() * this.#waiting.length)
      this.#waitingIds.delete(this.#waiting[at]!.id)
      this.#waiting[at] = { id, relays }
    }
    this.#waitingIds.add(id)
  }

  /** Reports keys from the pool, picked at random, while there are free places. */
  #fill(): void {
    while (!this.#left && this.#found.size < this.#maxPeers && this.#waiting.length > 0) {
      const at = Math.floor(Math.random() * this.#waiting.length)
      const { id, relays } = this.#waiting[at]!
      this.#waiting[at] = this.#waiting[this.#waiting.length - 1]!
      this.#waiting.pop()
      this.#waitingIds.delete(id)
      this.#found.add(id)
      this.#access.hint(id, relays)
      this.emit('peer', dhtAddress(id))
    }
  }
}
