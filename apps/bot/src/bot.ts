import { EventEmitter } from 'node:events'
import type { Peer, PeerError, ReceivedMessage, SendOptions, SendResult } from '@parley/core'
import { BotError } from './errors.js'

/** Counters of one bot. `sent` counts delivery attempts: a broadcast to three peers is three. */
export interface BotStats {
  sent: number
  /** Sends acknowledged by the recipient. */
  delivered: number
  /** Sends that settled without an acknowledgement (timeout, peer gone, refused, not connected, ...). */
  failed: number
  /** Messages delivered to this bot. */
  received: number
  /** Ids of every peer that was connected to this bot at some point. */
  readonly peersSeen: Set<string>
}

/**
 * Counts sends that have not settled yet, across any number of bots. A swarm shares one, so it can tell
 * when the whole network has gone quiet.
 */
export class Traffic {
  #pending = 0
  readonly #idle = new EventEmitter<{ idle: [] }>()

  /** Sends not settled yet. */
  get pending(): number {
    return this.#pending
  }

  track<T>(work: Promise<T>): Promise<T> {
    this.#pending++
    const settle = () => {
      this.#pending--
      if (this.#pending === 0) this.#idle.emit('idle')
    }
    work.then(settle, settle)
    return work
  }

  /** Resolves once no send is pending (at once if none is). */
  idle(signal?: AbortSignal): Promise<void> {
    if (this.#pending === 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = () => {
        this.#idle.off('idle', done)
        reject(new BotError('ABORTED', 'stopped while messages were in flight', { cause: signal?.reason }))
      }
      this.#idle.once('idle', done)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}

/** What a bot reports about its own sends, for frontends that print them. */
export interface BotEvents {
  sent: [target: string, text: string]
  delivered: [target: string, text: string, result: SendResult]
  failed: [target: string, text: string, error: Error]
}

/** Options of {@link createBot}. */
export interface BotInit {
  /** Shared in-flight counter. @default a counter of this bot alone */
  traffic?: Traffic
}

/** Options of {@link Bot.broadcast}. */
export interface BotBroadcastOptions extends SendOptions {
  /** Peer ids to leave out (a relay leaves out the peer a message came from). */
  except?: readonly string[]
}

/** One delivery attempt of a broadcast. */
export type BotBroadcastResult =
  | { peerId: string; name: string; ok: true; result: SendResult }
  | { peerId: string; name: string; ok: false; error: Error }

/**
 * A peer plus the counters a bot keeps. Behaviours and scripts send through the bot, never through the peer
 * directly, so that every attempt is counted exactly once and a swarm can wait for quiet.
 */
export interface Bot extends EventEmitter<BotEvents> {
  readonly peer: Peer
  readonly stats: BotStats
  readonly traffic: Traffic
  /**
   * Sends `text` to `target` (id, name, or address), counted in `stats`.
   * @throws whatever `peer.send` throws (a `PeerError`), after counting it as failed.
   */
  send(target: string, text: string, options?: SendOptions): Promise<SendResult>
  /** Sends `text` to every connected peer (but `except`), one counted send each. Never rejects. */
  broadcast(text: string, options?: BotBroadcastOptions): Promise<BotBroadcastResult[]>
  /** Stops counting (removes the listeners on the peer). The peer itself keeps running. */
  detach(): void
}

/** Wraps a peer (started or not) so its traffic is counted. */
export function createBot(peer: Peer, init: BotInit = {}): Bot {
  return new CountingBot(peer, init.traffic ?? new Traffic())
}

class CountingBot extends EventEmitter<BotEvents> implements Bot {
  readonly stats: BotStats = { sent: 0, delivered: 0, failed: 0, received: 0, peersSeen: new Set() }
  readonly #onMessage = (_: ReceivedMessage) => {
    this.stats.received++
  }
  readonly #onConnect = (info: { id: string }) => {
    this.stats.peersSeen.add(info.id)
  }

  constructor(
    readonly peer: Peer,
    readonly traffic: Traffic,
  ) {
    super()
    for (const p of peer.status === 'running' ? peer.peers().connected : []) this.stats.peersSeen.add(p.id)
    peer.on('message', this.#onMessage)
    peer.on('peer:connect', this.#onConnect)
  }

  send(target: string, text: string, options?: SendOptions): Promise<SendResult> {
    this.stats.sent++
    this.emit('sent', target, text)
    let attempt: Promise<SendResult>
    try {
      attempt = this.peer.send(target, text, options)
    } catch (err) {
      // peer.send is async today, but a synchronous throw must be counted the same way.
      attempt = Promise.reject(err)
    }
    return this.traffic.track(
      attempt.then(
        (result) => {
          this.stats.delivered++
          this.emit('delivered', target, text, result)
          return result
        },
        (error: PeerError) => {
          this.stats.failed++
          this.emit('failed', target, text, error)
          throw error
        },
      ),
    )
  }

  broadcast(text: string, options: BotBroadcastOptions = {}): Promise<BotBroadcastResult[]> {
    const { except = [], ...sendOptions } = options
    const targets = this.peer.status === 'running' ? this.peer.peers().connected : []
    return Promise.all(
      targets
        .filter((p) => !except.includes(p.id))
        .map((p) =>
          this.send(p.id, text, sendOptions).then(
            (result): BotBroadcastResult => ({ peerId: p.id, name: p.name, ok: true, result }),
            (error: Error): BotBroadcastResult => ({ peerId: p.id, name: p.name, ok: false, error }),
          ),
        ),
    )
  }

  detach(): void {
    this.peer.off('message', this.#onMessage)
    this.peer.off('peer:connect', this.#onConnect)
  }
}
