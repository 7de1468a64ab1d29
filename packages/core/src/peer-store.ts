import { Limits, type PeerRecord } from '@parley/protocol'
import type { KnownPeer } from './peer-types.js'
import { canonicalHost, hostOf, netgroupOf } from './util.js'

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
  /**
   * For a peer that only ever connected to us, the network group it connected from: a fresh key costs
   * nothing, so such entries are capped per group, as hearsay is per source (see `maxPerSource`).
   */
  group: string | undefined
  /** It said GOODBYE (or stayed unreachable): kept for a while, not handed out. */
  gone: boolean
  /** We dialled it at least once (the user asked, or we reconnected): never pushed out by a stranger. */
  dialled: boolean
  /** When we first knew it (Date.now() time), first-hand from then on (firstHandNamed lists keys by it). */
  since: number
}

/** Options of {@link PeerStore.learnDirect}. */
export interface LearnDirectOptions {
  /** We dialled it (an outbound connection), rather than it connecting to us. @default false */
  dialled?: boolean
  /** Whether a peer is connected now: a full store never forgets one for a newcomer. */
  connected?: (id: string) => boolean
  /** The host its connection came from (see {@link KnownEntry.group}). */
  host?: string
}

export interface PeerStoreInit {
  selfId: string
  /** Entries kept in all. */
  maxEntries: number
  /**
   * Hearsay entries one source may have in the store at once, and entries of peers that only connected
   * to us from one network group.
   */
  maxPerSource: number
  /** Hearsay not confirmed for this long is forgotten, and so is a peer that only connected to us. */
  hearsayTtl: number
  /** A peer marked gone is forgotten after this long. */
  goneTtl: number
}

/**
 * What this peer knows about others: names and addresses, where each came from, when last seen.
 *
 * First-hand knowledge is never overwritten by hearsay; remote timestamps are clamped to our clock;
 * one source can place only `maxPerSource` entries (a peer that told us, or the network group that
 * strangers connected to us from), so a single hostile answer or host cannot fill the store or steer
 * which peers we dial. Entries expire: hearsay that nobody confirms, strangers that connected once,
 * and peers that left.
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
    const group = options.host === undefined ? undefined : `net:${netgroupOf(options.host)}`
    const connected = options.connected ?? (() => false)
    if (entry) {
      this.#unsource(entry)
      entry.name = name
      if (addrs.length > 0) entry.addrs = [...addrs]
      entry.lastSeen = Date.now()
      if (entry.source === 'hearsay') entry.since = entry.lastSeen
      entry.source = 'direct'
      entry.from = undefined
      entry.gone = false
      entry.dialled ||= dialled
      entry.group = entry.dialled ? undefined : group
      // Known before (hearsay, or from another group): it joins its group within the group's share too.
      if (entry.group !== undefined && !this.#roomInGroup(entry.group, connected, entry.id)) {
        // Not counted anywhere now (unsourced above): dropped without forget()'s accounting.
        this.#entries.delete(entry.id)
        return false
      }
      this.#count(entry)
      return true
    }
    const created: KnownEntry = {
      id,
      name,
      addrs: [...addrs],
      lastSeen: Date.now(),
      source: 'direct',
      from: undefined,
      group: dialled ? undefined : group,
      gone: false,
      dialled,
      since: Date.now(),
    }
    if (created.group !== undefined && !this.#roomInGroup(created.group, connected)) return false
    return this.#insert(created, connected)
  }

  /**
   * Whether one more stranger of `group` fits its share (`maxPerSource`), making room when it does not:
   * a newcomer takes the place of the stalest of its own group that is not connected, never another's.
   */
  #roomInGroup(group: string, connected: (id: string) => boolean, except?: string): boolean {
    if ((this.#perSource.get(group) ?? 0) < this.#init.maxPerSource) return true
    let stalest: KnownEntry | undefined
    for (const k of this.#entries.values()) {
      if (k.group !== group || k.id === except || connected(k.id)) continue
      if (!stalest || k.lastSeen < stalest.lastSeen) stalest = k
    }
    if (!stalest) return false
    this.forget(stalest.id)
    return true
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
      group: undefined,
      gone: false,
      dialled: false,
      since: Date.now(),
    }
    return this.#insert(created, connected) ? created : undefined
  }

  /** The keys known first-hand (not by hearsay) by `name`, earliest first. */
  firstHandNamed(name: string): string[] {
    const named: KnownEntry[] = []
    for (const k of this.#entries.values()) if (k.source === 'direct' && k.name === name) named.push(k)
    return named.sort((a, b) => a.since - b.since).map((k) => k.id)
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

  /**
   * Forgets expired entries (never a connected one): peers gone for `goneTtl`, and hearsay and peers
   * that only ever connected to us unseen for `hearsayTtl`. Peers we dialled stay.
   */
  expire(now: number, connected: (id: string) => boolean): void {
    for (const entry of this.#entries.values()) {
      if (connected(entry.id)) continue
      const age = now - entry.lastSeen
      if ((entry.gone && age > this.#init.goneTtl) || (!entry.dialled && age > this.#init.hearsayTtl))
        this.forget(entry.id)
    }
  }

  /**
   * Records to answer a PEERS_REQUEST: a random sample (not always the same oldest ones) of the
   * peers not gone, the ones we dialled first (we reached them there), within `maxCount` and about
   * `maxBytes` encoded. A stranger that only connected to us is not vouched for above hearsay.
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
    pool.sort((a, b) => Number(b.dialled) - Number(a.dialled))
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
    this.#count(entry)
    return true
  }

  #count(entry: KnownEntry): void {
    const key = sourceKey(entry)
    if (key !== undefined) this.#perSource.set(key, (this.#perSource.get(key) ?? 0) + 1)
  }

  #unsource(entry: KnownEntry): void {
    const key = sourceKey(entry)
    if (key === undefined) return
    const n = (this.#perSource.get(key) ?? 1) - 1
    if (n > 0) this.#perSource.set(key, n)
    else this.#perSource.delete(key)
  }
}

/**
 * Whose say-so an entry stands on, for the per-source cap and for connect-to-active's turns: the peer
 * that told us (hearsay), the network group a stranger connected from, or nobody's (we dialled it).
 */
export function sourceKey(e: KnownEntry): string | undefined {
  return e.source === 'hearsay' ? e.from : e.dialled ? undefined : e.group
}

/** How much an entry is worth keeping: hearsay 0, a peer that only connected to us 1, one we dialled 2. */
function rank(e: KnownEntry): number {
  return e.source === 'hearsay' ? 0 : e.dialled ? 2 : 1
}

/**
 * The addresses to keep of those a peer claims, in the order to try them: the one we dialed it at
 * (verified: its key answered there), then its claims on the host its connection comes from, and its
 * own `dht:` address. Claims on any other host are dropped: they are unverified, and keeping them would
 * let anyone point our dials (and the records we hand out) at a third party's hosts. Only the first
 * few are ever dialed (see connectToActive).
 */
export function reachableFirst(
  claimed: readonly string[],
  dialedAddress: string | undefined,
  host: string,
  peerId?: string,
): string[] {
  const from = canonicalHost(host)
  const own = claimed.filter(
    (a) =>
      a !== dialedAddress &&
      (canonicalHost(hostOf(a)) === from || (peerId !== undefined && a === `dht:${peerId}`)),
  )
  return [...(dialedAddress === undefined ? [] : [dialedAddress]), ...own].slice(0, Limits.addresses)
}
