/**
 * The bounded state Plumtree keeps beside the seen-cache (docs/MESH.md, "Gossip"): the messages we
 * may be asked to re-send (GRAFT), and the messages announced to us (IHAVE) that we have not
 * received yet, each with the neighbours that announced it and when to ask for it.
 */

/**
 * Recently relayed messages, to answer a GRAFT: bounded by count, bytes and age. Each is kept under
 * the session it came from ('' for our own), and room is made from the session holding the most
 * (messages, or bytes when over the byte bound), oldest first: one session sending messages of fresh
 * origins, each within its own rate, would otherwise flush everyone else's and switch off recovery.
 */
export class MessageStore {
  /** Every message, oldest first (the order they expire in). */
  readonly #bodies = new Map<string, { body: Uint8Array; at: number; source: string }>()
  /** Each session's messages, oldest first, and their bytes. */
  readonly #sources = new Map<string, { keys: Set<string>; bytes: number }>()
  #bytes = 0

  constructor(
    readonly maxMessages: number,
    readonly maxBytes: number,
    readonly ttl: number,
  ) {}

  get size(): number {
    return this.#bodies.size
  }

  /** Keeps `body` under `source`, the session it came from ('' for our own). */
  put(key: string, body: Uint8Array, now: number, source = ''): void {
    if (this.maxMessages === 0 || body.length > this.maxBytes || this.#bodies.has(key)) return
    this.#bodies.set(key, { body, at: now, source })
    let share = this.#sources.get(source)
    if (!share) {
      share = { keys: new Set(), bytes: 0 }
      this.#sources.set(source, share)
    }
    share.keys.add(key)
    share.bytes += body.length
    this.#bytes += body.length
    while (this.#bodies.size > this.maxMessages) this.#evictFrom((s) => s.keys.size)
    while (this.#bytes > this.maxBytes) this.#evictFrom((s) => s.bytes)
  }

  get(key: string, now: number): Uint8Array | undefined {
    // Insertion order is age order: drop what expired from the front first.
    for (const [k, e] of this.#bodies) {
      if (now - e.at <= this.ttl) break
      this.#delete(k)
    }
    return this.#bodies.get(key)?.body
  }

  /** Drops the oldest message of the session that holds the most by `measure`. */
  #evictFrom(measure: (share: { keys: Set<string>; bytes: number }) => number): void {
    let largest: { keys: Set<string>; bytes: number } | undefined
    for (const share of this.#sources.values())
      if (!largest || measure(share) > measure(largest)) largest = share
    const oldest = largest?.keys.values().next().value
    if (oldest !== undefined) this.#delete(oldest)
  }

  #delete(key: string): void {
    const e = this.#bodies.get(key)
    if (!e) return
    this.#bodies.delete(key)
    this.#bytes -= e.body.length
    const share = this.#sources.get(e.source)!
    share.keys.delete(key)
    share.bytes -= e.body.length
    if (share.keys.size === 0) this.#sources.delete(e.source)
  }
}

/** A message announced but not received: who announced it, and when to ask the next of them. */
interface Missing {
  /** Peer ids, in the order their IHAVE arrived (the first is asked first, as in the paper). */
  readonly announcers: string[]
  /** The neighbour whose share of the table the entry counts against (its creator, or who took it on). */
  creator: string
  deadline: number
}

/** Announcers remembered per missing message: past the degree bound, more add nothing. */
const MAX_ANNOUNCERS = 8

/**
 * Messages announced and not received. Bounded in total and per neighbour (a neighbour announcing
 * ids that do not exist fills at most its share), one timer for all of them.
 */
export class MissingTable {
  readonly #entries = new Map<string, Missing>()
  /** Entries each neighbour created (its share of the table). */
  readonly #shares = new Map<string, number>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #timerAt = Number.POSITIVE_INFINITY

  constructor(
    readonly maxEntries: number,
    readonly maxPerNeighbour: number,
    /** Called for each entry whose deadline passed; returns the next deadline, or undefined to drop it. */
    readonly expire: (key: string, announcers: string[], now: number) => number | undefined,
  ) {}

  get size(): number {
    return this.#entries.size
  }

  has(key: string): boolean {
    return this.#entries.has(key)
  }

  /**
   * Records `from`'s announcement of `key`; returns false when `from`'s share is full, or the table is
   * and no announcer holds more of it than `from` would.
   */
  announce(key: string, from: string, deadline: number): boolean {
    const entry = this.#entries.get(key)
    if (entry) {
      if (entry.announcers.length < MAX_ANNOUNCERS && !entry.announcers.includes(from)) {
        entry.announcers.push(from)
      }
      return true
    }
    const share = this.#shares.get(from) ?? 0
    if (share >= this.maxPerNeighbour) return false
    if (this.#entries.size >= this.maxEntries && !this.#makeRoom(share + 1)) return false
    this.#entries.set(key, { announcers: [from], creator: from, deadline })
    this.#shares.set(from, share + 1)
    this.#arm(deadline)
    return true
  }

  /** The message arrived (or is no longer wanted). */
  delete(key: string): void {
    const entry = this.#entries.get(key)
    if (!entry) return
    this.#entries.delete(key)
    const share = (this.#shares.get(entry.creator) ?? 1) - 1
    if (share <= 0) this.#shares.delete(entry.creator)
    else this.#shares.set(entry.creator, share)
  }

  /**
   * `id`'s session ended: each entry it created counts against another announcer with room in its
   * share, or goes. Otherwise identities taking turns in one neighbour slot each created a full share,
   * re-announced the earlier keys to keep them, and together filled the table.
   */
  leave(id: string): void {
    for (const [key, entry] of this.#entries) {
      // Gone: never asked, and never an heir (its share no longer counts).
      const i = entry.announcers.indexOf(id)
      if (i >= 0) entry.announcers.splice(i, 1)
      if (entry.creator !== id) continue
      const heir = entry.announcers.find((a) => (this.#shares.get(a) ?? 0) < this.maxPerNeighbour)
      if (heir === undefined) {
        this.#entries.delete(key)
        continue
      }
      entry.creator = heir
      this.#shares.set(heir, (this.#shares.get(heir) ?? 0) + 1)
    }
    this.#shares.delete(id)
  }

  /**
   * Full: drops the oldest entry the largest share's holder created, if that share is larger than
   * `share`. Several neighbours announcing ids that never come (each within its share) would otherwise
   * fill the table, and every honest announcement after them would be refused. Whoever else announced
   * the entry since does not protect it: neighbours re-announcing each other's invented ids made every
   * entry look vouched for.
   */
  #makeRoom(share: number): boolean {
    let top: string | undefined
    let most = share
    for (const [id, n] of this.#shares) {
      if (n > most) {
        top = id
        most = n
      }
    }
    if (top === undefined) return false
    for (const [key, entry] of this.#entries) {
      if (entry.creator === top) {
        this.delete(key)
        return true
      }
    }
    return false
  }

  close(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
  }

  #arm(deadline: number): void {
    if (this.#timer !== undefined && this.#timerAt <= deadline) return
    clearTimeout(this.#timer)
    this.#timerAt = deadline
    this.#timer = setTimeout(this.#fire, Math.max(1, deadline - Date.now()))
    this.#timer.unref?.()
  }

  readonly #fire = (): void => {
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const now = Date.now()
    let next = Number.POSITIVE_INFINITY
    for (const [key, entry] of [...this.#entries]) {
      if (entry.deadline > now) {
        next = Math.min(next, entry.deadline)
        continue
      }
      const deadline = this.expire(key, entry.announcers, now)
      if (deadline === undefined || !this.#entries.has(key)) {
        this.delete(key)
        continue
      }
      entry.deadline = deadline
      next = Math.min(next, deadline)
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next)
  }
}

/**
 * Keys of messages delivered, each with its send time, to drop copies. When full it forgets the key
 * sent longest ago (not the one heard longest ago) and raises its horizon to that time: a message sent
 * at or before the horizon may have been forgotten, so it is refused as stale rather than delivered
 * twice. Callers pass a send time no later than the present, so messages dated into the future (within
 * the allowed skew) cannot raise the horizon past the present and make every later message stale.
 */
export class SeenCache {
  readonly #sentAt = new Map<string, number>()
  /** A binary min-heap of [sentAt, key], parallel to the map. */
  readonly #heap: [number, string][] = []
  /** Messages sent at or before this (ms) may have been forgotten. */
  horizon = Number.NEGATIVE_INFINITY

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#sentAt.size
  }

  has(key: string): boolean {
    return this.#sentAt.has(key)
  }

  add(key: string, sentAt: number): void {
    if (this.#sentAt.has(key)) return
    this.#sentAt.set(key, sentAt)
    const heap = this.#heap
    let i = heap.push([sentAt, key]) - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]![0] <= sentAt) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = [sentAt, key]
    // Added first, so a key sent before all the others is itself the one forgotten.
    while (this.#sentAt.size > this.capacity) this.#forgetEarliest()
  }

  #forgetEarliest(): void {
    const heap = this.#heap
    const [sentAt, key] = heap[0]!
    this.#sentAt.delete(key)
    if (sentAt > this.horizon) this.horizon = sentAt
    const last = heap.pop()!
    if (heap.length === 0) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && heap[right]![0] < heap[left]![0] ? right : left
      if (heap[child]![0] >= last[0]) break
      heap[i] = heap[child]!
      i = child
    }
    heap[i] = last
  }
}
