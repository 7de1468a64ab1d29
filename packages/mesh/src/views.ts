import { hostOf, isLoopback, netgroupOf } from '@parley/core'
import type { MeshEntry } from './codec.js'
import { pick, type Random, sample } from './random.js'

/** A replacement candidate in the passive view. */
export interface PassiveEntry {
  addr: string
  /** When it was last known alive (ms, our clock). */
  at: number
  /** When a promotion was last tried (ms), for backoff. */
  triedAt: number
  /**
   * Who vouched for it: only a `firsthand` candidate (a former neighbour, a peer that refused our
   * request) is promoted as one we chose, protected from eviction; hearsay is anyone's say-so.
   */
  source: AddressSource
  /** The neighbour whose hearsay brought it ('' when first-hand): each one holds a bounded share. */
  via: string
}

/**
 * Who vouches for an address: `firsthand` (the peer's own handshake, a neighbour we drop or that drops
 * us, a refusal to our own request) may re-point a known id; `hearsay` (SHUFFLE entries, FORWARD_JOIN
 * walks: any neighbour can say anything about a third peer) may only add ids or refresh their age.
 */
export type AddressSource = 'firsthand' | 'hearsay'

/** Addresses of former neighbours kept to rejoin through. */
const RECENT_ADDRESSES = 8

/**
 * HyParView's two views: the active view (neighbours: peer id → address, each one a session) and the
 * passive view (candidates to replace them, bounded, with their age). Only bookkeeping: sessions and
 * messages are the membership service's (membership.ts).
 */
export class Views {
  readonly active = new Map<string, string>()
  /**
   * Neighbours we chose ourselves (the contact we joined through, candidates of our passive view that
   * accepted our request): an inbound request evicts them last (see membership.ts `#victim`).
   */
  readonly outbound = new Set<string>()
  /** When each neighbour became one (Date.now() time): see membership.ts `#victim`. */
  readonly since = new Map<string, number>()
  readonly passive = new Map<string, PassiveEntry>()
  /** Addresses of the last few neighbours: an isolated peer rejoins through them too (its contacts may be gone). */
  readonly recent: string[] = []

  constructor(
    readonly passiveSize: number,
    readonly addressTtl: number,
    readonly random: Random,
    readonly self: () => string | undefined,
    /** Whether hearsay from `via` naming `addr` may be believed at all (see Mesh.#believable). */
    readonly believable: (addr: string, via: string) => boolean = () => true,
  ) {}

  /**
   * Keeps `id` as a candidate, or refreshes it. Hearsay never re-points a known id: it only refreshes
   * the entry's age when it names the same address (else one SHUFFLE could aim every candidate we have
   * at addresses its sender chose). `via` is the neighbour whose hearsay it is: one holds at most a
   * third of the view, and its newer entries replace its own older ones, so that one neighbour's
   * walks and exchanges cannot fill the view with addresses of its choosing (repair then dials only
   * those). A full view makes room from the source that holds the most (see #evict).
   */
  addPassive(id: string, addr: string, at: number, source: AddressSource, via = ''): void {
    if (this.passiveSize === 0 || addr === '' || id === this.self() || this.active.has(id)) return
    if (source === 'hearsay' && !this.believable(addr, via)) return
    const existing = this.passive.get(id)
    if (existing) {
      if (source === 'hearsay' && addr !== existing.addr) return
      if (source === 'firsthand') {
        // Hearsay made first-hand (it refused our request) joins its network's share like a newcomer.
        if (existing.source !== 'firsthand') this.#roomInGroup(groupOf(addr))
        existing.addr = addr
        existing.source = 'firsthand'
        existing.via = ''
      }
      if (at > existing.at) existing.at = at
      return
    }
    if (Date.now() - at > this.addressTtl) return
    // One peer listens at an address: a second id there is a lie or stale. Hearsay never adds one
    // (fresh ids at one address that never answers were each dialed in turn); a first-hand source
    // displaces hearsay there (else hearsay could squat an honest peer's address) but not another
    // first-hand entry (a handshake only claims its listen addresses). A dial settles it (#forget).
    const there = this.#idAt(addr)
    if (there !== undefined) {
      if (source === 'hearsay' || this.passive.get(there)!.source === 'firsthand') return
      this.passive.delete(there)
    }
    if (source === 'firsthand') via = ''
    // One network's first-hand entries (its identities joined and left) hold a third at most, as one
    // neighbour's hearsay does: repair and refresh promote first-hand entries as chosen.
    const share = via === '' ? this.#idsInGroup(groupOf(addr)) : this.#idsVia(via)
    if (share.length >= this.#shareCap) {
      this.passive.delete(share[pick(this.random, share.length)]!)
    } else if (this.passive.size >= this.passiveSize) {
      this.#evict()
    }
    this.passive.set(id, { addr, at, triedAt: 0, source, via })
  }

  /** A third of the view: what one neighbour's hearsay, or one network's first-hand entries, may hold. */
  get #shareCap(): number {
    return Math.ceil(this.passiveSize / 3)
  }

  /** Makes room for one more first-hand entry in `group` when its share is full. */
  #roomInGroup(group: string | undefined): void {
    const share = this.#idsInGroup(group)
    if (share.length >= this.#shareCap) this.passive.delete(share[pick(this.random, share.length)]!)
  }

  /** Entries of a view exchange with neighbour `via`, their age counted back from `now`; how much the view grew. */
  merge(entries: readonly MeshEntry[], now: number, via: string): number {
    const before = this.passive.size
    for (const e of entries) this.addPassive(e.id, e.addr, now - e.age * 1000, 'hearsay', via)
    return this.passive.size - before
  }

  #idAt(addr: string): string | undefined {
    for (const [id, e] of this.passive) if (e.addr === addr) return id
    return undefined
  }

  /** First-hand entries whose addresses are in `group` (none for undefined: loopback, or no group). */
  #idsInGroup(group: string | undefined): string[] {
    const ids: string[] = []
    if (group === undefined) return ids
    for (const [id, e] of this.passive)
      if (e.source === 'firsthand' && groupOf(e.addr) === group) ids.push(id)
    return ids
  }

  #idsVia(via: string): string[] {
    const ids: string[] = []
    for (const [id, e] of this.passive) if (e.via === via) ids.push(id)
    return ids
  }

  /**
   * Forgets a random entry of the largest source. The hearsay of neighbours we no longer have counts
   * as one source (fresh identities taking turns as a neighbour would otherwise each bring a share);
   * first-hand entries count by network group (they are the candidates repair may protect, and one
   * network's identities are one operator's), each on loopback as a source of its own.
   */
  #evict(): void {
    const sources = new Map<string, string[]>()
    for (const [id, e] of this.passive) {
      const key = e.source === 'firsthand' ? `=${groupOf(e.addr) ?? id}` : this.active.has(e.via) ? e.via : ''
      const ids = sources.get(key)
      if (ids) ids.push(id)
      else sources.set(key, [id])
    }
    let largest = 0
    for (const ids of sources.values()) largest = Math.max(largest, ids.length)
    const victims: string[] = []
    for (const ids of sources.values()) if (ids.length === largest) victims.push(...ids)
    this.passive.delete(victims[pick(this.random, victims.length)]!)
  }

  /** Takes `id` out of the active view; its address, if it was there. */
  removeActive(id: string): string | undefined {
    const addr = this.active.get(id)
    this.active.delete(id)
    this.outbound.delete(id)
    this.since.delete(id)
    return addr
  }

  /** Forgets candidates not refreshed within the address TTL. */
  expire(now: number): void {
    for (const [id, e] of this.passive) if (now - e.at > this.addressTtl) this.passive.delete(id)
  }

  rememberRecent(addr: string): void {
    if (addr === '' || this.recent.includes(addr)) return
    this.recent.push(addr)
    if (this.recent.length > RECENT_ADDRESSES) this.recent.shift()
  }

  passiveEntries(now: number): MeshEntry[] {
    return [...this.passive].map(([id, e]) => ({ id, addr: e.addr, age: ageSeconds(now, e.at) }))
  }

  /** Up to `n` entries from both views (never those in `exclude`), passive ones with their age. */
  sample(n: number, exclude: Set<string>): MeshEntry[] {
    const now = Date.now()
    const out: MeshEntry[] = []
    const active = [...this.active].filter(([id, addr]) => !exclude.has(id) && addr !== '')
    for (const [id, addr] of sample(this.random, active, Math.ceil(n / 2))) out.push({ id, addr, age: 0 })
    const passive = [...this.passive].filter(([id]) => !exclude.has(id))
    for (const [id, e] of sample(this.random, passive, n - out.length)) {
      out.push({ id, addr: e.addr, age: ageSeconds(now, e.at) })
    }
    return out
  }

  randomActive(exclude: readonly string[]): string | undefined {
    const ids = [...this.active.keys()].filter((id) => !exclude.includes(id))
    return ids.length === 0 ? undefined : ids[pick(this.random, ids.length)]
  }
}

function ageSeconds(now: number, at: number): number {
  return Math.max(0, Math.min(0xffff, Math.floor((now - at) / 1000)))
}

/** The network group of an address's host (see core's netgroupOf); undefined on loopback, exempt. */
function groupOf(addr: string): string | undefined {
  const host = hostOf(addr)
  return isLoopback(host) ? undefined : netgroupOf(host)
}
