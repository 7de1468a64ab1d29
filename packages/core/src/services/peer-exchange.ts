import { decodeMessage, type PeerRecord, ProtocolError } from '@parley/protocol'
import { PeerError } from '../peer-errors.js'
import type { KnownEntry, PeerStore } from '../peer-store.js'
import type { KnownPeer } from '../peer-types.js'
import { TokenBucket } from '../util.js'
import type { Channel, Service, ServiceHandler } from './service.js'

/** Protocol name of peer exchange. */
export const PEERS_PROTOCOL = 'parley/peers/1'

/** Our own queries awaiting an answer from one peer. */
const MAX_PENDING_QUERIES = 8
/** Records in one answer. */
const MAX_PEERS_PER_ANSWER = 128
/** Requests one peer may make: a burst, then one a second. Past it they go unanswered. */
const REQUEST_BURST = 8
const REQUESTS_PER_SECOND = 1
/** Unanswered requests in a row that make a peer a violator: no honest peer asks this often. */
const MAX_IGNORED = 64

export interface PeerExchangeInit {
  store: PeerStore
  maxFrameSize: number
  isConnected: (id: string) => boolean
  lastSeenOf: (entry: KnownEntry) => number
  onDiscovered: (peer: KnownPeer) => void
}

interface Query {
  resolve: (p: PeerRecord[]) => void
  reject: (e: PeerError) => void
}

/**
 * Peer exchange: answers PEERS_REQUEST from the peer store, and merges answers to our own requests
 * into it as hearsay. Requests are answered only while the asker reads what we send and within its
 * request budget, so a peer that floods requests and never reads gets nothing and costs nothing.
 */
export class PeerExchangeService implements Service {
  readonly protocol = PEERS_PROTOCOL
  readonly #init: PeerExchangeInit

  constructor(init: PeerExchangeInit) {
    this.#init = init
  }

  open(channel: Channel): PeerExchangeHandler {
    return new PeerExchangeHandler(channel, this.#init)
  }
}

export class PeerExchangeHandler implements ServiceHandler {
  readonly #queries: Query[] = []
  readonly #requests = new TokenBucket(REQUESTS_PER_SECOND, REQUEST_BURST)
  #ignored = 0

  constructor(
    readonly channel: Channel,
    readonly init: PeerExchangeInit,
  ) {}

  onFrame(body: Uint8Array): void {
    const msg = decodeMessage(body)
    switch (msg.type) {
      case 'PEERS_REQUEST': {
        // No answer to a peer that is not reading, or past its budget: requests wait for backpressure.
        if (!this.channel.writable || !this.#requests.take()) {
          if (++this.#ignored > MAX_IGNORED) {
            throw new PeerError(
              'LIMIT_EXCEEDED',
              `sent more than ${MAX_IGNORED} peer requests it could not be answered`,
            )
          }
          return
        }
        this.#ignored = 0
        const records = this.init.store.sample(
          this.channel.peer.id,
          MAX_PEERS_PER_ANSWER,
          // Half a frame: the answer always fits, whatever the names and addresses.
          Math.floor(this.init.maxFrameSize / 2),
          this.init.lastSeenOf,
        )
        this.channel.send({ type: 'PEERS', peers: records })
        return
      }
      case 'PEERS': {
        // Only answers are believed: an unsolicited list could fill our known peers with junk.
        const query = this.#queries.shift()
        // Unasked (or answered after the query timed out): decoded for nothing, so it costs the budget.
        if (!query) {
          this.channel.spend()
          return
        }
        const source = this.channel.peer.id
        for (const r of msg.peers) {
          const created = this.init.store.learnHearsay(source, r, this.init.isConnected)
          if (created) this.init.onDiscovered({ ...this.init.store.toKnownPeer(created), connected: false })
        }
        query.resolve(msg.peers)
        return
      }
      default:
        throw new ProtocolError('INVALID_FIELD', `unexpected ${msg.type} on the peer-exchange channel`)
    }
  }

  /** Asks the remote whom it knows; resolves with its answer. */
  query(timeout: number): Promise<PeerRecord[]> {
    if (this.#queries.length >= MAX_PENDING_QUERIES) {
      return Promise.reject(
        new PeerError(
          'REFUSED',
          `already waiting on ${MAX_PENDING_QUERIES} answers from ${this.channel.peer.name}`,
        ),
      )
    }
    return new Promise<PeerRecord[]>((resolve, reject) => {
      const entry: Query = {
        resolve: (r) => {
          clearTimeout(timer)
          resolve(r)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      }
      const timer = setTimeout(() => {
        const i = this.#queries.indexOf(entry)
        // Leave a placeholder so a late PEERS answers this slot, not the next query.
        if (i >= 0) this.#queries[i] = { resolve: () => {}, reject: () => {} }
        reject(
          new PeerError('QUERY_TIMEOUT', `${this.channel.peer.name} did not answer the peer query in time`),
        )
      }, timeout)
      timer.unref?.()
      this.#queries.push(entry)
      try {
        this.channel.send({ type: 'PEERS_REQUEST' })
      } catch (err) {
        this.#queries.pop()
        entry.reject(err as PeerError)
      }
    })
  }

  onClose(error: PeerError): void {
    for (const q of this.#queries.splice(0)) q.reject(error)
  }
}
