import { createHash, randomBytes } from 'node:crypto'
import { TokenBucket } from './util.js'

/**
 * A handshake that got further but then stood still this long counts as having got nowhere: an honest
 * peer sends its HELLO as soon as the secure channel is up, and connections from one group that finish
 * the key exchange and then wait would otherwise always outrank an honest newcomer from that group.
 */
export const STALLED_HANDSHAKE_MS = 1_000

/**
 * One inbound handshake's hold on a slot: its network group and how far it got (0: connected; 1: the
 * secure channel is up, its HELLO is awaited).
 */
export class InboundSlot {
  #progress = 0
  #advancedAt = 0
  done = false

  constructor(
    readonly netgroup: string,
    readonly abort: () => void,
    readonly release: () => void,
  ) {}

  /** How far it got, as eviction counts it: 0 once it stood still for {@link STALLED_HANDSHAKE_MS}. */
  progress(now: number): number {
    return now - this.#advancedAt > STALLED_HANDSHAKE_MS ? 0 : this.#progress
  }

  /** The handshake got further: it is pushed out after those that did not, unless it stalls there. */
  advance(now = Date.now()): void {
    this.#progress++
    this.#advancedAt = now
  }
}

/**
 * Admission control for handshakes: a bounded number run at once, so a burst of dials cannot starve
 * the event loop with key exchanges. An inbound handshake over the bound pushes out one still in
 * progress from the network group holding the most slots (the newcomer counted) — the one that got
 * least far (one that stalled counts as not far: see STALLED_HANDSHAKE_MS), the oldest of those. A flood of half-open connections from one place thus pushes out its
 * own, never an honest peer from elsewhere that is slow to finish; outbound handshakes wait their turn.
 */
export class HandshakeSlots {
  readonly #inbound: InboundSlot[] = []
  readonly #outbound: HandshakeGate

  constructor(
    readonly maxInbound: number,
    readonly maxOutbound: number,
  ) {
    this.#outbound = new HandshakeGate(maxOutbound)
  }

  get inProgress(): number {
    return this.#inbound.length + this.#outbound.inUse
  }

  /**
   * Takes an inbound slot for a handshake from `netgroup`, aborting another (see the class) if all are
   * taken. O(slots).
   */
  admitInbound(abort: () => void, netgroup = ''): InboundSlot {
    if (this.#inbound.length >= this.maxInbound) {
      const i = this.#victim(netgroup)
      const victim = this.#inbound[i]!
      this.#inbound.splice(i, 1)
      victim.done = true
      victim.abort()
    }
    const slot: InboundSlot = new InboundSlot(netgroup, abort, () => {
      if (slot.done) return
      slot.done = true
      const i = this.#inbound.indexOf(slot)
      if (i >= 0) this.#inbound.splice(i, 1)
    })
    this.#inbound.push(slot)
    return slot
  }

  /** Index of the slot to push out for a newcomer from `newcomer`'s group. */
  #victim(newcomer: string): number {
    const counts = new Map<string, number>([[newcomer, 1]])
    for (const s of this.#inbound) counts.set(s.netgroup, (counts.get(s.netgroup) ?? 0) + 1)
    // The largest group; of equal ones, the first met in admission order (the oldest handshake's).
    let group = ''
    let most = 0
    for (const s of this.#inbound) {
      const n = counts.get(s.netgroup)!
      if (n > most) {
        most = n
        group = s.netgroup
      }
    }
    const now = Date.now()
    let victim = -1
    let least = Number.POSITIVE_INFINITY
    for (let i = 0; i < this.#inbound.length; i++) {
      const s = this.#inbound[i]!
      if (s.netgroup !== group) continue
      // Slots are in admission order: the first with the least progress is the oldest of those.
      const progress = s.progress(now)
      if (progress < least) {
        victim = i
        least = progress
      }
    }
    return victim
  }

  /** Waits for an outbound slot (or the signal). Returns the release. */
  acquireOutbound(signal: AbortSignal): Promise<() => void> {
    return this.#outbound.acquire(signal)
  }
}

/**
 * A bound on dials in their handshake at once, shared by every peer given the same gate: a process
 * that hosts many peers (a bot swarm, a simulation) has one CPU for all their key exchanges, and
 * thousands started together would each run past its handshake timeout. A dial waits for a slot
 * before it connects, so its timeout starts only once its turn comes. Create one with
 * {@link createHandshakeGate}; by default every peer of a process shares one of 64 slots.
 */
export class HandshakeGate {
  #inUse = 0
  /** Waiters in arrival order from `#head`; each returns false when it already gave up. */
  #waiting: Array<(() => boolean) | undefined> = []
  #head = 0

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) {
      throw new RangeError(`a handshake gate needs at least one slot, got ${size}`)
    }
  }

  /** Slots taken now. */
  get inUse(): number {
    return this.#inUse
  }

  /** Dials waiting for a slot now (those that gave up included until their turn passes). */
  get waiting(): number {
    return this.#waiting.length - this.#head
  }

  /**
   * Waits for a slot; returns its release (idempotent).
   * @throws the signal's reason when it aborts first
   */
  async acquire(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted()
    if (this.#inUse < this.size) {
      this.#inUse++
    } else {
      await new Promise<void>((resolve, reject) => {
        let done = false
        const onAbort = () => {
          if (done) return
          done = true
          reject(signal.reason)
        }
        const go = () => {
          if (done) return false
          done = true
          signal.removeEventListener('abort', onAbort)
          resolve()
          return true
        }
        signal.addEventListener('abort', onAbort, { once: true })
        this.#waiting.push(go)
      })
    }
    let released = false
    return () => {
      if (released) return
      released = true
      // The slot passes straight to the next waiter that has not given up.
      while (this.#head < this.#waiting.length) {
        const next = this.#waiting[this.#head]!
        this.#waiting[this.#head++] = undefined
        if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
          this.#waiting = this.#waiting.slice(this.#head)
          this.#head = 0
        }
        if (next()) return
      }
      this.#inUse--
    }
  }
}

/** The gate every peer of this process shares unless given its own (see {@link HandshakeGate}). */
export const processHandshakeGate = new HandshakeGate(64)

/** Creates a bound on dials in their handshake at once, to share between peers; see {@link HandshakeGate}. */
export function createHandshakeGate(size: number): HandshakeGate {
  return new HandshakeGate(size)
}

/** What inbound eviction looks at for one connected peer. */
export interface EvictionCandidate<T> {
  readonly value: T
  readonly netgroup: string
  readonly connectedAt: number
  /** Smallest round-trip time measured, ms (Infinity when none yet). */
  readonly rtt: number
  /** When it last delivered something we accepted (0: never). */
  readonly lastUseful: number
  /** Its network group broke a limit recently. */
  readonly discouraged: boolean
}

const PROTECT_BY_NETGROUP = 4
const PROTECT_BY_RTT = 8
const PROTECT_BY_USEFUL = 4

/**
 * Picks the inbound peer to disconnect so a newcomer can have its slot, as Bitcoin Core does: protect
 * a few peers from distinct network groups (chosen by a keyed hash the attacker cannot predict), the
 * fastest, the most recently useful and the longest connected half of the rest; of what remains,
 * evict a discouraged peer if any, else the youngest peer of the network group holding the most.
 * Returns undefined when every peer is protected (the newcomer is refused instead).
 */
export class InboundEviction {
  readonly #key = randomBytes(16)

  select<T>(candidates: readonly EvictionCandidate<T>[], maxInbound: number): T | undefined {
    let rest = [...candidates]
    // Bitcoin Core protects 4 + 8 + 4 of 125 slots; fewer slots protect proportionally fewer.
    const share = (n: number) => Math.min(n, Math.ceil(maxInbound / 16))
    const good = (c: EvictionCandidate<T>) => !c.discouraged
    rest = this.#protect(
      rest,
      share(PROTECT_BY_NETGROUP),
      (a, b) => this.#hash(a.netgroup).localeCompare(this.#hash(b.netgroup)),
      good,
      true,
    )
    rest = this.#protect(
      rest,
      share(PROTECT_BY_RTT),
      (a, b) => a.rtt - b.rtt,
      (c) => good(c) && Number.isFinite(c.rtt),
    )
    rest = this.#protect(
      rest,
      share(PROTECT_BY_USEFUL),
      (a, b) => b.lastUseful - a.lastUseful,
      (c) => good(c) && c.lastUseful > 0,
    )
    rest = this.#protect(rest, Math.floor(rest.length / 2), (a, b) => a.connectedAt - b.connectedAt, good)
    if (rest.length === 0) return undefined
    const discouraged = rest.filter((c) => c.discouraged)
    if (discouraged.length > 0) return youngest(discouraged).value
    const groups = new Map<string, EvictionCandidate<T>[]>()
    for (const c of rest) {
      const group = groups.get(c.netgroup)
      if (group) group.push(c)
      else groups.set(c.netgroup, [c])
    }
    let largest: EvictionCandidate<T>[] = []
    for (const g of groups.values()) {
      if (
        g.length > largest.length ||
        (g.length === largest.length && youngest(g).connectedAt > youngest(largest).connectedAt)
      )
        largest = g
    }
    return youngest(largest).value
  }

  /** Removes up to `n` candidates that pass `eligible`, best first by `order`. */
  #protect<T>(
    list: EvictionCandidate<T>[],
    n: number,
    order: (a: EvictionCandidate<T>, b: EvictionCandidate<T>) => number,
    eligible: (c: EvictionCandidate<T>) => boolean,
    distinctGroups = false,
  ): EvictionCandidate<T>[] {
    const sorted = list.filter(eligible).sort(order)
    const kept = new Set<EvictionCandidate<T>>()
    const groups = new Set<string>()
    for (const c of sorted) {
      if (kept.size >= n) break
      if (distinctGroups && groups.has(c.netgroup)) continue
      kept.add(c)
      groups.add(c.netgroup)
    }
    return list.filter((c) => !kept.has(c))
  }

  #hash(netgroup: string): string {
    return createHash('sha256').update(this.#key).update(netgroup).digest('hex')
  }
}

function youngest<T>(list: EvictionCandidate<T>[]): EvictionCandidate<T> {
  return list.reduce((a, b) => (b.connectedAt > a.connectedAt ? b : a))
}

/**
 * How fast each remote host may open connections: a token bucket per host, the least recently used
 * forgotten past `maxEntries` (a forgotten host starts again with a full burst, as a new one would).
 */
export class HostRates {
  readonly #buckets = new Map<string, TokenBucket>()

  constructor(
    readonly rate: { perSecond: number; burst: number },
    readonly maxEntries = 4096,
  ) {}

  /** Takes one connection of `host`'s budget; false when it has none left. */
  take(host: string): boolean {
    let bucket = this.#buckets.get(host)
    if (bucket) this.#buckets.delete(host)
    else bucket = new TokenBucket(this.rate.perSecond, this.rate.burst)
    this.#buckets.set(host, bucket)
    if (this.#buckets.size > this.maxEntries) this.#buckets.delete(this.#buckets.keys().next().value!)
    return bucket.take()
  }
}

/**
 * Network groups that broke a limit recently. Refusing a peer id costs an attacker nothing (a new key
 * is free), so punishment also lands on where it connects from: a discouraged group's peers get a
 * smaller burst and are evicted first. Honest peers in the same group still get in.
 */
export class Discouragement {
  readonly #until = new Map<string, number>()

  constructor(
    readonly duration: number,
    readonly maxEntries = 4096,
  ) {}

  add(netgroup: string): void {
    this.#until.delete(netgroup)
    this.#until.set(netgroup, Date.now() + this.duration)
    if (this.#until.size > this.maxEntries) this.#until.delete(this.#until.keys().next().value!)
  }

  has(netgroup: string): boolean {
    const until = this.#until.get(netgroup)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.#until.delete(netgroup)
    return false
  }
}
