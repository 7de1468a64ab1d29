import type { Random } from './random.js'

/** Options, events and counters of the membership service (membership.ts). */

/** No configuration may ask for more neighbours than this (the degree bound the issue asks for). */
export const MAX_ACTIVE_SIZE = 30
export const MAX_PASSIVE_SIZE = 1024
/**
 * FORWARD_JOINs one neighbour may have us act on (promote, keep, relay): per second, and as a burst.
 * A bootstrap contact taking ~100 joins/s sends each neighbour one per join, and relays fan out; past
 * it a neighbour could launder its session budget (5,000 messages/s in core) through us into
 * walks that spend our other neighbours' budgets.
 */
export const FORWARD_JOIN_RATE = 50
export const FORWARD_JOIN_BURST = 200
/**
 * Mesh dials (promotions) in flight at once: a peer has 16 outbound handshake slots by default, and
 * walks steered at addresses that never answer must not hold the ones the user's own dials need.
 */
export const MAX_MESH_DIALS = 3
/**
 * Of those, dials for walks that ended here (FORWARD_JOIN), one per neighbour whose walk it is: one
 * slot stays for the peer's own repair, and walks steered at addresses that never answer cannot take it.
 */
export const MAX_WALK_DIALS = 2
/**
 * Walks of one neighbour that may end here in a request (dial and NEIGHBOR), per second and as a burst;
 * past it the joiner is kept as a candidate. Without it one neighbour's FORWARD_JOINs (ttl 0) made us
 * dial an address of its choosing four times a second.
 */
export const WALK_LANDING_RATE = 0.5
export const WALK_LANDING_BURST = 4
/**
 * Dials of candidates that hearsay brought (walks, exchanges) that did not reach the peer they named at
 * a host (on this machine: at that address) before such candidates there are no longer dialed, for
 * DEAD_HOST_MS: fresh ids at a third party's address would otherwise have us dial it for as long as a
 * neighbour liked. Candidates we know first-hand are still dialed.
 */
export const DEAD_HOST_FAILURES = 2
export const DEAD_HOST_MS = 600_000
/** Hosts whose dials failed, remembered at most (the oldest forgotten first). */
export const DEAD_HOSTS = 256
/** Longest wait between two rejoins of an isolated peer. */
export const REJOIN_MAX_DELAY = 60_000

/** Construction options of {@link createMesh}. */
export interface MeshInit {
  /** Neighbours kept (the active view): links gossip flows over. ~log2(N) + 1. @default 6, at most 30 */
  activeSize?: number
  /**
   * The repair timer asks candidates to become neighbours while the active view is below this; between
   * it and `activeSize` the peer only accepts requests. @default ⌈2/3 × activeSize⌉ (4 of 6)
   */
  repairBelow?: number
  /** Peers remembered as replacements (the passive view). @default 30 */
  passiveSize?: number
  /** Length of the random walk a JOIN starts (HyParView's ARWL). @default 6 */
  joinTtl?: number
  /** Walk step at which the joiner is put in the passive view (PRWL). @default 3 */
  passiveTtl?: number
  /** Period of the view exchange with a random neighbour, jittered ±50 %. @default 10_000 ms */
  shuffleInterval?: number
  /** Period of the repair check (fill the active view from the passive one), jittered. @default 1_000 ms */
  repairInterval?: number
  /**
   * How often a peer whose active view is content still asks a candidate of its passive view to be a
   * neighbour (low priority: a full candidate refuses; the asker drops a random neighbour if full),
   * jittered ±50 %. HyParView alone never merges two groups whose views are all full of each other;
   * this slow mixing does, at one dial per peer per period. 0 turns it off. @default 60_000 ms
   */
  refreshInterval?: number
  /** Dials the mesh may start per second, across all purposes. @default 4 (burst 4) */
  dialsPerSecond?: number
  /** A passive entry not refreshed for this long is forgotten. @default 600_000 ms */
  addressTtl?: number
  /** A NEIGHBOR request (dial included) not answered in this long is given up. @default 10_000 ms */
  neighborTimeout?: number
  /** Random source of every choice; pass a seeded one (see `seededRandom`) to replay a run. @default Math.random */
  random?: Random
}

/** Events of a {@link Mesh}. */
export interface MeshEvents {
  /** A peer entered the active view. */
  'neighbor:up': [id: string]
  /** A peer left the active view: `dead` when its connection was lost, `dropped` when one side made room. */
  'neighbor:down': [id: string, why: 'dead' | 'dropped']
  /** A view exchange was merged into the passive view. */
  shuffled: []
}

/** Counters, for the simulation and for diagnostics. */
export interface MeshStats {
  joins: number
  forwardJoins: number
  neighborRequests: number
  neighborRejected: number
  disconnects: number
  shuffles: number
  dials: number
  dialFailures: number
  deadNeighbors: number
  /** JOINs and NEIGHBOR requests given up unanswered. */
  timeouts: number
  /** Refresh rounds that picked a candidate to ask (see `refreshInterval`; without dial budget, none is asked). */
  refreshes: number
}

export function clampInt(v: number, min: number, max: number, name: string): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`)
  }
  return v
}
