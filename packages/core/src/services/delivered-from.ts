/** Senders whose dedup state is kept (least recently heard, not connected, forgotten first). */
const DEDUP_SENDERS = 1024
/** A sender heard this recently keeps its state: it may be reconnecting to re-send. */
const DEDUP_KEEP = 10 * 60_000
/** Dedup entries at most, whatever their protection (about 100 bytes each). */
const DEDUP_HARD_LIMIT = 64 * 1024
/** Senders #forgetOne looks at per call. */
const FORGET_SCAN = 64

/** Per sender: its stream and the highest seq delivered from it (and the stream before). */
export interface Seen {
  stream: string
  highest: number
  previous: string
  previousHighest: number
  touched: number
  heardAt: number
}

/**
 * Dedup state of acknowledged delivery (PROTOCOL.md, "Acknowledgements"): per sender, its stream and
 * the highest seq delivered from it, and the stream before. It outlives sessions, so a re-send after a
 * reconnect is still recognised, and it is bounded against senders that cycle cheap identities.
 */
export class DeliveredFrom {
  /** Least recently heard first. */
  readonly #seen = new Map<string, Seen>()
  #clock = 0
  /** Whether a sender has a session now (its state is then never forgotten). */
  readonly #isConnected: (peerId: string) => boolean

  constructor(isConnected: (peerId: string) => boolean) {
    this.#isConnected = isConnected
  }

  /**
   * What was delivered from `sender` on `stream` (a new stream starts over). It outlives the session, so a
   * re-send after a reconnect is still recognised. Senders are forgotten least recently heard first.
   * `now` is when the sender was heard (the read's clock).
   */
  on(sender: string, stream: string, now: number): Seen {
    let seen = this.#seen.get(sender)
    if (!seen) {
      seen = { stream, highest: 0, previous: '', previousHighest: 0, touched: 0, heardAt: 0 }
      if (this.#seen.size >= DEDUP_SENDERS) this.#forgetOne()
      this.#seen.set(sender, seen)
    } else if (seen.touched < this.#clock - DEDUP_SENDERS) {
      // Re-inserting moves the sender to the back of the LRU order; done only for senders that drifted
      // towards the front, so the per-message cost stays one Map lookup.
      this.#seen.delete(sender)
      this.#seen.set(sender, seen)
    }
    if (seen.stream !== stream) {
      // A new stream (the sender started a new session) starts over; the one before is kept, so that a
      // late re-send from it is still recognised.
      const { stream: previous, highest } = seen
      seen.highest = seen.previous === stream ? seen.previousHighest : 0
      seen.stream = stream
      seen.previous = previous
      seen.previousHighest = highest
    }
    seen.touched = ++this.#clock
    seen.heardAt = now
    return seen
  }

  /**
   * Makes room for one more sender: the least recently heard one that is neither connected nor heard
   * within DEDUP_KEEP — so cycling cheap identities cannot flush a real sender's state while it is
   * connected or reconnecting. Looks at no more than FORGET_SCAN senders: protected ones it passes go to
   * the back, so the next call looks further and the cost per new sender stays constant however many are
   * protected. Past DEDUP_HARD_LIMIT senders (all of them protected) the one at the front goes anyway:
   * after the rotation that is not strictly the least recently heard, only one not heard for a while.
   */
  #forgetOne(): void {
    const now = Date.now()
    for (let i = 0; i < FORGET_SCAN && i < this.#seen.size; i++) {
      const [sender, seen] = this.#seen.entries().next().value!
      this.#seen.delete(sender)
      if (this.#isConnected(sender) || now - seen.heardAt < DEDUP_KEEP) this.#seen.set(sender, seen)
      else return
    }
    if (this.#seen.size >= DEDUP_HARD_LIMIT) this.#seen.delete(this.#seen.keys().next().value!)
  }
}
