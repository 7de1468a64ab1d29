import { Limits, type PeerRecord } from '@parley/protocol'
import type { KnownPeer } from './peer-types.js'
import { hostOf } from './util.js'

/** Where an entry's name and addresses came from. */
export type KnownSource = 'direct' | 'hearsay'

export interface KnownEntry {
  readonly id: string
  name: string
  addrs: string[]
  lastSeen: number
  /** `direct`: an authenticated handshake with the peer itself; `hearsay`: another peer's PEERS answer. */
  source: KnownSource
  /** For hearsay, the peer that told us. */
  from: string | undefined
  /** It said GOODBYE (or stayed unreachable): kept for a while, not handed out. */
  gone: boolean
  /** We dialled it at least once (the user asked, or we reconnected): never pushed out by a stranger. */
  dialled: boolean
}

/** Options of {@link PeerStore.learnDirect}. */
export interface LearnDirectOptions {
  /** We dialled it (an outbound connection), rather than it connecting to us. @default false */
  dialled?: boolean
  /** Whether a peer is connected now: a full store never forgets one for a newcomer. */
  connected?: (id: string) => boolean
}

export interface PeerStoreInit {
  selfId: string
  /** Entries kept in all. */
  maxEntries: number
  /** Hearsay entries one source may have in the store at once. */
  maxPerSource: number
  /** Hearsay not confirmed for this long is forgotten. */
  hearsayTtl: number
  /** A peer marked gone is forgotten after this long. */
  goneTtl: number
}

/**
 * What this peer knows about others: names and addresses, where each came from, when last seen.
 *
 * First-hand knowledge is never overwritten by hearsay; remote timestamps are clamped to our clock;
 * one source can place only `maxPerSource` entries, so a single hostile answer cannot fill the store
 * or steer which peers we dial. Entries expire: hearsay that nobody confirms, and peers that left.
 */
export class PeerStore {
  readonly #init: PeerStoreInit
  readonly #entries = new Map<string, KnownEntry>()
  readonly #perSource = new Map<string, number>()

  constructor(init: PeerStoreInit) {
    this.#init = init
  }

  get size(): number {
    return this.#entries.size
  }

  get(id: string): KnownEntry | undefined {
    return this.#entries.get(id)
  }

  values(): IterableIterator<KnownEntry> {
    return this.#entries.values()
  }

  /**
   * What an authenticated handshake told us about the peer itself. In a full store, a peer that
   * connected to us (a fresh key costs nothing) takes only the place of hearsay or of another peer
   * that only ever connected to us and is not connected now; with neither, it is not stored (its
   * connection is unaffected). Returns whether it is in the store.
   */
  learnDirect(id: string, name: string, addrs: readonly string[], options: LearnDirectOptions = {}): boolean {
    if (id === this.#init.selfId) return false
    const dialled = options.dialled === true
    const entry = this.#entries.get(id)
    if (entry) {
      this.#unsource(entry)
      entry.name = name
      if (addrs.length > 0) entry.addrs = [...addrs]
      entry.lastSeen = Date.now()
      entry.source = 'direct'
      entry.from = undefined
      entry.gone = false
      entry.dialled ||= dialled
      return true
    }
    return this.#insert(
      {
        id,
        name,
        addrs: [...addrs],
        lastSeen: Date.now(),
        source: 'direct',
        from: undefined,
        gone: false,
        dialled,
      },
      options.connected,
    )
  }

  /**
   * What `source` says about another peer. Returns the entry when it is new to us, else undefined.
   * Never changes a first-hand entry's name or addresses, nor another source's entry.
   */
  learnHearsay(
    source: string,
    record: PeerRecord,
    connected: (id: string) => boolean,
  ): KnownEntry | undefined {
    const id = record.peerId
    if (id === this.#init.selfId || id === source || record.addrs.length === 0) return undefined
    const lastSeen = Math.min(record.lastSeen, Date.now())
    const entry = this.#entries.get(id)
    if (entry) {
      if (entry.source === 'hearsay' && entry.from === source && !entry.gone) {
        entry.name = record.name
        entry.addrs = [...record.addrs]
        entry.lastSeen = Math.max(entry.lastSeen, lastSeen)
      }
      return undefined
    }
    if ((this.#perSource.get(source) ?? 0) >= this.#init.maxPerSource) return undefined
    const created: KnownEntry = {
      id,
      name: record.name,
      addrs: [...record.addrs],
      lastSeen,
      source: 'hearsay',
      from: source,
      gone: false,
      dialled: false,
    }
    return this.#insert(created, connected) ? created : undefined
  }

  /** The peer said goodbye or could not be reached: stop handing it out; forget it later. */
  markGone(id: string): void {
    const entry = this.#entries.get(id)
    if (entry) {
      entry.gone = true
      entry.lastSeen = Date.now()
    }
  }

  /** Still connected: keeps its entry fresh. */
  touch(id: string, at: number): void {
    const entry = this.#entries.get(id)
    if (entry) entry.lastSeen = Math.max(entry.lastSeen, at)
  }

  forget(id: string): void {
    const entry = this.#entries.get(id)
    if (!entry) return
    this.#unsource(entry)
    this.#entries.delete(id)
  }

  /** Forgets expired entries (never a connected one). */
  expire(now: number, connected: (id: string) => boolean): void {
    for (const entry of this.#entries.values()) {
      if (connected(entry.id)) continue
      const age = now - entry.lastSeen
      if (
        (entry.gone && age > this.#init.goneTtl) ||
        (entry.source === 'hearsay' && age > this.#init.hearsayTtl)
      )
        this.forget(entry.id)
    }
  }

  /**
   * Records to answer a PEERS_REQUEST: a random sample (not always the same oldest ones) of the
   * peers not gone, first-hand ones first, within `maxCount` and about `maxBytes` encoded.
   */
  sample(
    exclude: string,
    maxCount: number,
    maxBytes: number,
    lastSeenOf: (e: KnownEntry) => number,
  ): PeerRecord[] {
    const pool = [...this.#entries.values()].filter((e) => e.id !== exclude && !e.gone && e.addrs.length > 0)
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      ;[pool[i], pool[j]] = [pool[j]!, pool[i]!]
    }
    pool.sort((a, b) => Number(a.source === 'hearsay') - Number(b.source === 'hearsay'))
    const out: PeerRecord[] = []
    let bytes = 0
    for (const e of pool) {
      // A record's encoded size: id, name, last seen and the addresses with their length prefixes.
      const size =
        32 + 2 + Buffer.byteLength(e.name) + 8 + 2 + e.addrs.reduce((n, a) => n + 2 + Buffer.byteLength(a), 0)
      if (out.length >= maxCount || bytes + size > maxBytes) break
      bytes += size
      out.push({ peerId: e.id, name: e.name, addrs: e.addrs, lastSeen: lastSeenOf(e) })
    }
    return out
  }

  toKnownPeer(e: KnownEntry): KnownPeer {
    return { id: e.id, name: e.name, addrs: [...e.addrs], lastSeen: e.lastSeen, connected: false }
  }

  #insert(entry: KnownEntry, connected: (id: string) => boolean = () => false): boolean {
    if (this.#entries.size >= this.#init.maxEntries) {
      // Forget the least valuable peer that is not connected — hearsay, then peers that only ever
      // connected to us, then peers we dialled — the least recently seen of those. A newcomer only
      // takes the place of one worth less than itself or as little: hearsay of hearsay, a stranger
      // that connected to us of hearsay or another such stranger.
      const worth = rank(entry)
      let victim: KnownEntry | undefined
      for (const k of this.#entries.values()) {
        const r = rank(k)
        if (r > worth || connected(k.id)) continue
        if (!victim || r < rank(victim) || (r === rank(victim) && k.lastSeen < victim.lastSeen)) victim = k
      }
      if (!victim) return false
      this.forget(victim.id)
    }
    this.#entries.set(entry.id, entry)
    if (entry.from !== undefined) this.#perSource.set(entry.from, (this.#perSource.get(entry.from) ?? 0) + 1)
    return true
  }

  #unsource(entry: KnownEntry): void {
    if (entry.from === undefined) return
    const n = (this.#perSource.get(entry.from) ?? 1) - 1
    if (n > 0) this.#perSource.set(entry.from, n)
    else this.#perSource.delete(entry.from)
  }
}

/** How much an entry is worth keeping: hearsay 0, a peer that only connected to us 1, one we dialled 2. */
function rank(e: KnownEntry): number {
  return e.source === 'hearsay' ? 0 : e.dialled ? 2 : 1
}

/**
 * A peer's addresses in the order to try them: the one we dialed it at (verified: its key answered
 * there), then those it claims on the host its connection comes from, then its other claims. Claims
 * are hints, so only the first few are ever dialed (see connectToActive): an address list cannot
 * point us at a third party's hosts, only at the peer's own.
 */
export function reachableFirst(
  claimed: readonly string[],
  dialedAddress: string | undefined,
  host: string,
): string[] {
  const onHost = claimed.filter((a) => a !== dialedAddress && hostOf(a) === host)
  const others = claimed.filter((a) => a !== dialedAddress && hostOf(a) !== host)
  return [...(dialedAddress === undefined ? [] : [dialedAddress]), ...onHost, ...others].slice(
    0,
    Limits.addresses,
  )
}
