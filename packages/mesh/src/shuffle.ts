import { MAX_SHUFFLE_ENTRIES, type MeshEntry } from './codec.js'
import type { MeshHandler } from './mesh-handler.js'
import { jitter, type Random } from './random.js'
import type { Views } from './views.js'

/** Entries a SHUFFLE_REPLY holds at least (when we know as many). */
export const MIN_SHUFFLE_REPLY = 8

/** What the view exchange needs from the membership service. */
export interface ShuffleHost {
  readonly views: Views
  readonly random: Random
  /** Period of the exchange, jittered ±50 % (0: never). */
  readonly interval: number
  /** Period while exchanges still bring new candidates to a passive view that is not full. */
  readonly fillInterval: number
  /** An exchange not answered in this long is forgotten. */
  readonly timeout: number
  handler(id: string): MeshHandler | undefined
  /** Our id and announced address while the peer runs, else undefined. */
  self(): { id: string; addr: string } | undefined
  /** A list was merged into the passive view. */
  merged(): void
  counted(): void
}

/**
 * HyParView's view exchange (SHUFFLE / SHUFFLE_REPLY) with one random neighbour at a time: refreshes
 * the passive view, so that repair finds live candidates. Only answers to our own SHUFFLE are merged.
 */
export class Shuffler {
  /** Neighbours sent a SHUFFLE and not yet answered, with when. */
  readonly #asked = new Map<string, number>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #dueAt = 0
  /** The last exchange grew the passive view (or a neighbour came since). */
  #learning = true
  #closed = false

  constructor(readonly host: ShuffleHost) {}

  start(): void {
    this.#schedule(jitter(this.host.random, this.host.interval))
  }

  #schedule(delay: number): void {
    if (this.#closed || this.host.interval <= 0) return
    clearTimeout(this.#timer)
    this.#dueAt = Date.now() + delay
    this.#timer = setTimeout(() => {
      this.#shuffle()
      this.start()
    }, delay)
    this.#timer.unref?.()
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
  }

  forget(id: string): void {
    this.#asked.delete(id)
  }

  expire(now: number): void {
    for (const [id, at] of this.#asked) if (now - at > this.host.timeout) this.#asked.delete(id)
  }

  /**
   * A neighbour's SHUFFLE: answered (within its own rate) with as many of ours, never its own, and at
   * least {@link MIN_SHUFFLE_REPLY}: a newcomer has only itself to send, and one candidate back would
   * leave it alone if its contact, then that candidate, leave.
   */
  onShuffle(handler: MeshHandler, entries: readonly MeshEntry[]): void {
    handler.channel.spend()
    if (!handler.shuffles.take() || !handler.channel.writable) return
    this.host.counted()
    const exclude = new Set([handler.channel.peer.id, ...entries.map((e) => e.id)])
    const count = Math.max(entries.length, MIN_SHUFFLE_REPLY)
    handler.send({ type: 'SHUFFLE_REPLY', entries: this.host.views.sample(count, exclude) })
    this.#merge(entries, handler.channel.peer.id)
  }

  onReply(handler: MeshHandler, entries: readonly MeshEntry[]): void {
    // Only an answer to our own SHUFFLE is believed: an unsolicited list could fill the view with junk,
    // and it was decoded for nothing, so it costs the budget.
    if (!this.#asked.delete(handler.channel.peer.id)) {
      handler.channel.spend()
      return
    }
    this.#learning = this.#merge(entries, handler.channel.peer.id) > 0
    this.#fillSoon()
  }

  /** A new neighbour may know candidates we do not: a view that is not full asks soon. */
  neighbourUp(): void {
    this.#learning = true
    this.#fillSoon()
  }

  /**
   * A view that is still filling, and learning, is exchanged again soon rather than in a period: a
   * newcomer otherwise holds a handful of candidates for its first seconds, and one whose few
   * neighbours and contact then die together has no one left to dial (150-peer simulations, churn
   * right after formation). A reply that does not grow the view (all known, or its sender at its share) ends it.
   */
  #fillSoon(): void {
    const views = this.host.views
    if (!this.#learning || this.#asked.size > 0 || views.passive.size >= views.passiveSize) return
    const delay = jitter(this.host.random, this.host.fillInterval)
    if (Date.now() + delay < this.#dueAt) this.#schedule(delay)
  }

  #merge(entries: readonly MeshEntry[], via: string): number {
    const added = this.host.views.merge(entries, Date.now(), via)
    this.host.merged()
    return added
  }

  /**
   * Exchanges views now, unless an exchange is already waiting for its answer: for a peer short of
   * neighbours with no candidate left, which would otherwise wait for the next period (up to 15 s)
   * and be left alone meanwhile if its last neighbour goes.
   */
  shuffleNow(): void {
    if (this.#asked.size === 0) this.#shuffle()
  }

  /**
   * Exchanges views with the contact we just sent JOIN, on the same channel, before its answer: it
   * handles the JOIN first, so we are its neighbour when the SHUFFLE arrives. Waiting for the answer
   * lost the exchange whenever the contact dropped us for the next joiner meanwhile, and a newcomer
   * whose walks found no one with a dial to spare then knew only its contact (150-peer simulations:
   * alone for good once churn took that contact).
   */
  shuffleWithContact(id: string): void {
    this.#shuffle(id)
  }

  /** Sends ourselves, a few neighbours and a few candidates to a neighbour (random unless given), which answers in kind. */
  #shuffle(target = this.host.views.randomActive([])): void {
    const self = this.host.self()
    if (!self) return
    if (target === undefined) return
    const handler = this.host.handler(target)
    if (!handler?.channel.writable) return
    const entries = this.host.views.sample(7, new Set([target]))
    if (self.addr !== '') entries.unshift({ id: self.id, addr: self.addr, age: 0 })
    this.#asked.set(target, Date.now())
    handler.send({ type: 'SHUFFLE', entries: entries.slice(0, MAX_SHUFFLE_ENTRIES) })
  }
}
