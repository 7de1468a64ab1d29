import type { PeerRecord } from '@parley/protocol'
import type { KnownPeer } from './peer-types.js'

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

  /** What an authenticated handshake told us about the peer itself. */
  learnDirect(id: string, name: string, addrs: readonly string[]): void {
    if (id === this.#init.selfId) return
    const entry = this.#entries.get(id)
    if (entry) {
      this.#unsource(entry)
      entry.name = name
      if (addrs.length > 0) entry.addrs = [...addrs]
      entry.lastSeen = Date.now()
      entry.source = 'direct'
      entry.from = undefined
      entry.gone = false
      return
    }
    this.#insert({
      id,
      name,
      addrs: [...addrs],
      lastSeen: Date.now(),
      source: 'direct',
      from: undefined,
      gone: false,
    })
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
      // Forget the least recently seen peer that is not connected, hearsay before first-hand.
      let victim: KnownEntry | undefined
      for (const k of this.#entries.values()) {
        if (connected(k.id)) continue
        if (
          !victim ||
          (k.source === 'hearsay' && victim.source === 'direct') ||
          (k.source === victim.source && k.lastSeen < victim.lastSeen)
        )
          victim = k
      }
      if (!victim || (victim.source === 'direct' && entry.source === 'hearsay')) return false
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
