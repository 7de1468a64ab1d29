import { type Peer, PeerError, type SendResult } from '@parley/core'

/**
 * A small seeded random source (mulberry32) for chaos schedules: the same seed gives the same
 * schedule, so a failure can be replayed. Not for cryptography.
 */
export interface Random {
  readonly seed: number
  /** A float in [0, 1). */
  next(): number
  /** An integer in [0, max). */
  int(max: number): number
  /** An integer in [min, max]. */
  between(min: number, max: number): number
  /** True with probability `p`. */
  chance(p: number): boolean
  /** One of `items`. @throws RangeError when `items` is empty */
  pick<T>(items: readonly T[]): T
  /** `n` distinct items of `items` (all of them if there are fewer). */
  sample<T>(items: readonly T[], n: number): T[]
}

/** Creates a {@link Random} from a 32-bit seed. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  const int = (max: number) => Math.floor(next() * max)
  return {
    seed: seed >>> 0,
    next,
    int,
    between: (min, max) => min + int(max - min + 1),
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('cannot pick from an empty list')
      return items[int(items.length)]!
    },
    sample<T>(items: readonly T[], n: number): T[] {
      const pool = [...items]
      for (let i = pool.length - 1; i > 0; i--) {
        const j = int(i + 1)
        ;[pool[i], pool[j]] = [pool[j]!, pool[i]!]
      }
      return pool.slice(0, n)
    },
  }
}

/**
 * The seed of this run: `PARLEY_CHAOS_SEED` when set (to replay a failure), otherwise a fresh one.
 * Print it with any failure.
 */
export function chaosSeed(value: string | undefined = process.env.PARLEY_CHAOS_SEED): number {
  if (value !== undefined && value !== '') {
    const seed = Number(value)
    if (!Number.isInteger(seed)) throw new RangeError(`PARLEY_CHAOS_SEED must be an integer, got ${value}`)
    return seed >>> 0
  }
  return (Math.random() * 4_294_967_296) >>> 0
}

/** What a {@link DeliveryLedger} found. A run is healthy when every list is empty and `unsettled` is 0. */
export interface DeliveryReport {
  sent: number
  acked: number
  /** Failed sends by PeerError code. */
  failed: Record<string, number>
  /** Sends that have neither resolved nor rejected. */
  unsettled: number
  /** A message id the application of one receiver (one incarnation of a peer) saw more than once. */
  duplicates: Array<{ receiver: string; id: string; count: number }>
  /** Acknowledged sends that no incarnation of the receiver ever handed to its application. */
  ackedNotDelivered: Array<{ id: string; to: string }>
  /** Rejections that were not a PeerError (a send must fail with a reason). */
  untyped: unknown[]
}

/**
 * Bookkeeping of every send and every delivery in a test, to check the delivery promises at the end:
 * every send settles, acked means delivered, nothing is delivered twice.
 *
 * ```ts
 * const ledger = deliveryLedger()
 * for (const p of net.peers) ledger.watch(p)
 * ledger.track(a.id, b.id, a.send(b.id, 'hi'))
 * // ... faults ...
 * expect(ledger.report()).toMatchObject({ unsettled: 0, duplicates: [], ackedNotDelivered: [], untyped: [] })
 * ```
 */
export interface DeliveryLedger {
  /** Follows a send until it settles. */
  track(from: string, to: string, sent: Promise<SendResult>): void
  /**
   * Records what `peer` hands its application. `incarnation` tells restarts of the same identity
   * apart: a restarted process starts with an empty dedup window, so duplicates are counted per
   * incarnation. @default the peer's id
   */
  watch(peer: Peer, incarnation?: string): void
  /** Sends not settled yet. */
  readonly unsettled: number
  report(): DeliveryReport
}

export function deliveryLedger(): DeliveryLedger {
  let sent = 0
  let unsettled = 0
  const acked: Array<{ id: string; to: string }> = []
  const failed: Record<string, number> = {}
  const untyped: unknown[] = []
  /** incarnation → message id → times delivered */
  const delivered = new Map<string, Map<string, number>>()
  /** peer id → message ids delivered to any of its incarnations */
  const deliveredTo = new Map<string, Set<string>>()
  return {
    track(_from, to, promise) {
      sent++
      unsettled++
      promise.then(
        (result) => {
          unsettled--
          acked.push({ id: result.id, to })
        },
        (err: unknown) => {
          unsettled--
          if (err instanceof PeerError) failed[err.code] = (failed[err.code] ?? 0) + 1
          else untyped.push(err)
        },
      )
    },
    watch(peer, incarnation = peer.id) {
      const counts = new Map<string, number>()
      delivered.set(incarnation, counts)
      const all = deliveredTo.get(peer.id) ?? new Set<string>()
      deliveredTo.set(peer.id, all)
      peer.on('message', (m) => {
        counts.set(m.id, (counts.get(m.id) ?? 0) + 1)
        all.add(m.id)
      })
    },
    get unsettled() {
      return unsettled
    },
    report() {
      const duplicates: DeliveryReport['duplicates'] = []
      for (const [receiver, counts] of delivered) {
        for (const [id, count] of counts) if (count > 1) duplicates.push({ receiver, id, count })
      }
      const ackedNotDelivered = acked.filter((a) => !deliveredTo.get(a.to)?.has(a.id))
      return {
        sent,
        acked: acked.length,
        failed: { ...failed },
        unsettled,
        duplicates,
        ackedNotDelivered,
        untyped,
      }
    },
  }
}
