import { mkdir, open, unlink } from 'node:fs/promises'
import { resolve } from 'node:path'
import { ChunkMap } from './chunk-map.js'
import { type Hashes, type Offer, Reason } from './codec.js'
import { checkSpace } from './disk-space.js'
import { Download, type DownloadTuning } from './download.js'
import { FilesError } from './errors.js'
import { type AcceptOptions, IncomingOffer } from './offer.js'
import { reservePart, sanitizeName } from './sanitize.js'
import { DEFAULTS, type FileServiceEvents, type FileServiceInit } from './service-types.js'
import { expireStates, loadState, removeState } from './state.js'
import { type PeerRef, transferKey, type Wire } from './wire.js'

export interface InboxInit {
  options: FileServiceInit
  tuning: DownloadTuning
  wire: Wire
  emit: <K extends keyof FileServiceEvents>(event: K, ...args: FileServiceEvents[K]) => void
  /** Whether the service is closed. */
  closed: () => boolean
}

/**
 * The receiving side of the file service: offers waiting for an answer (by root), downloads running (by
 * root), and what each `<sender id>:<transfer id>` feeds. Accepting reserves the part file, checks the
 * free space and starts a download fed by every peer offering the root.
 */
export class Inbox {
  /**
   * Pending offers by content: root, size and chunk size. The root commits to both, so two offers of
   * one root that disagree on them cannot both be true; keyed by root alone, whoever offered first
   * would decide the size, and a peer that only learned the root could squat it and get the real
   * senders dropped as liars. Each claim is its own offer; the one that is false fails on its hashes.
   */
  readonly #offers = new Map<string, IncomingOffer>()
  /** Running downloads by root. */
  readonly #downloads = new Map<string, Download>()
  /**
   * Offers being accepted: each takes its download slot (and its bytes of free space) before the first
   * await, so a burst of offers cannot pass the limits while earlier accepts wait for the disk.
   */
  readonly #accepting = new Set<IncomingOffer>()
  /** What a `<sender id>:<transfer id>` feeds: a pending offer or a download. */
  readonly #incoming = new Map<string, IncomingOffer | Download>()
  readonly #opts: FileServiceInit
  readonly #tuning: DownloadTuning
  readonly #wire: Wire
  readonly #emit: InboxInit['emit']
  readonly #isClosed: () => boolean
  /**
   * Peers a download dropped as a source (lying or slow), until when: their offers are not accepted
   * without asking, or one that stalls could be accepted again at once and keep its slots (and its
   * claim on the free space) for good. Oldest forgotten first.
   */
  readonly #distrusted = new Map<string, number>()
  /** Per peer, the partial downloads it fed that were kept when they ran out of sources (see #mayKeep). */
  readonly #kept = new Map<string, number>()
  #ticker: ReturnType<typeof setInterval> | undefined
  /** Old partial downloads being removed: offers look for saved state only after it. */
  readonly #swept: Promise<void>

  constructor(init: InboxInit) {
    this.#opts = init.options
    this.#tuning = init.tuning
    this.#wire = init.wire
    this.#emit = init.emit
    this.#isClosed = init.closed
    const { dataDir } = init.options
    const expiry = init.options.partExpiry ?? DEFAULTS.partExpiry
    this.#swept =
      dataDir && Number.isFinite(expiry) ? expireStates(dataDir, expiry).catch(() => {}) : Promise.resolve()
  }

  offers(): IncomingOffer[] {
    return [...this.#offers.values()]
  }

  downloads(): Download[] {
    return [...this.#downloads.values()]
  }

  /** False when no download asked for it. */
  onHashes(peerId: string, key: string, msg: Hashes): boolean {
    const d = this.#incoming.get(key)
    return d instanceof Download && d.onHashes(peerId, msg)
  }

  /** False when no download asked for it. */
  onChunk(peerId: string, key: string, index: number, offset: number, data: Uint8Array): boolean {
    const d = this.#incoming.get(key)
    return d instanceof Download && d.onChunk(peerId, index, offset, data)
  }

  /**
   * A sender cancelled its offer or its part of a download. An offer whose sender's time for an answer
   * ran out (`reason` EXPIRED: its clock ran first) expired, as our own clock would have said.
   */
  onCancel(peerId: string, key: string, reason?: Reason): void {
    const entry = this.#incoming.get(key)
    this.#incoming.delete(key)
    if (entry instanceof Download) entry.sourceCancelled(peerId, reason === Reason.CANCELLED)
    else if (entry?.removeSource(peerId) && entry.status === 'pending') {
      const expired = reason === Reason.EXPIRED
      this.#endOffer(entry, expired ? 'expired' : 'withdrawn')
      this.#emit(expired ? 'offer:expired' : 'offer:withdrawn', entry)
    }
  }

  sourceResumed(peerId: string): void {
    for (const d of this.#downloads.values()) d.sourceResumed(peerId)
  }

  sourceOffline(peerId: string): void {
    for (const d of this.#downloads.values()) d.sourceOffline(peerId)
  }

  /** Withdraws the offers, saves every download's state and stops it. */
  async close(): Promise<void> {
    this.#stopTicker()
    await this.#swept
    for (const o of [...this.#offers.values()]) this.#endOffer(o, 'withdrawn')
    await Promise.all([...this.#downloads.values()].map((d) => d.pause()))
  }

  async onOffer(from: PeerRef, key: string, msg: Offer): Promise<void> {
    const root = Buffer.from(msg.root).toString('hex')
    const known = this.#incoming.get(key)
    if (known instanceof Download) {
      known.addSource(from, msg.id)
      return
    }
    if (known) return
    // Same content (root, size and chunking): one more source.
    const running = this.#downloads.get(root)
    const same =
      running && running.size === msg.size && running.chunkSize === msg.chunkSize
        ? running
        : this.#offers.get(contentKey(root, msg.size, msg.chunkSize))
    if (same) {
      this.#join(same, from, msg.id)
      return
    }
    const held = this.#held()
    const fromPeer = held.get(from.id) ?? 0
    const maxOffers = this.#opts.maxOffers ?? DEFAULTS.maxOffers
    if (
      fromPeer >= (this.#opts.maxOffersPerPeer ?? DEFAULTS.maxOffersPerPeer) ||
      (this.#offers.size >= maxOffers && !this.#evictFor(fromPeer, held))
    ) {
      this.#busy(from.id, msg.id)
      return
    }
    const timeout = this.#opts.offerTimeout ?? DEFAULTS.offerTimeout
    const offer = new IncomingOffer({
      root: Buffer.from(msg.root),
      name: sanitizeName(msg.name),
      offeredName: msg.name,
      size: msg.size,
      chunkSize: msg.chunkSize,
      from,
      id: msg.id,
      expiresAt: Date.now() + timeout,
      host: { accept: (o, options) => this.#accept(o, options), decline: (o) => this.#decline(o) },
    })
    this.#offers.set(contentKey(root, msg.size, msg.chunkSize), offer)
    this.#incoming.set(key, offer)
    offer.timer = setTimeout(() => this.#expire(offer), timeout)
    offer.timer.unref?.()

    if (this.#opts.dataDir) {
      // A state the sweep is removing must not be resumed from.
      await this.#swept
      const saved = await loadState(this.#opts.dataDir, root)
      if (saved && saved.size === msg.size && saved.chunkSize === msg.chunkSize) {
        offer.resume = saved
        const bits = Buffer.from(saved.verified, 'base64')
        offer.resumeBytes = new ChunkMap(saved.size, saved.chunkSize, bits).haveBytes
        // Resumed without asking, unless its sender was dropped from a download lately (see #distrusted).
        if (this.#opts.resume !== false && offer.status === 'pending' && !this.#distrusts(from.id)) {
          this.#accept(offer, {}).catch(() => this.#askInstead(offer))
          return
        }
      }
    }
    if (offer.status !== 'pending' || this.#isClosed()) return
    if (this.#autoAccepts(offer)) {
      this.#accept(offer, {}).catch(() => this.#askInstead(offer))
      return
    }
    this.#emit('offer', offer)
  }

  /**
   * Whether an offer is accepted without asking: only when `autoAccept` says so (and there is a
   * download folder), and not past `maxDownloadsPerPeer` downloads fed by its sender, so one peer
   * cannot take every download slot of a peer that accepts everything.
   */
  #autoAccepts(offer: IncomingOffer): boolean {
    const auto = this.#opts.autoAccept
    if (this.#opts.downloads === undefined || auto === undefined || auto === false) return false
    let yes: boolean
    try {
      yes = auto === true || auto(offer) === true
    } catch {
      yes = false // a throwing policy accepts nothing
    }
    if (!yes || this.#distrusts(offer.from.id)) return false
    let fed = 0
    for (const d of this.#downloads.values()) if (d.sourceId(offer.from.id)) fed++
    for (const o of this.#accepting) if (o.sourceId(offer.from.id)) fed++
    return fed < (this.#opts.maxDownloadsPerPeer ?? DEFAULTS.maxDownloadsPerPeer)
  }

  /**
   * A peer offers a root we already have an offer or a download for: it becomes one more source (up to
   * `maxSources`). Each peer has one key per root: a peer offering it again under a fresh id replaces
   * its old key, so re-offers cannot grow the map.
   */
  #join(entry: IncomingOffer | Download, from: PeerRef, id: Uint8Array): void {
    const old = entry.sourceId(from.id)
    if (old) {
      this.#incoming.delete(transferKey(from.id, old))
    } else if (entry.sourceCount >= (this.#opts.maxSources ?? DEFAULTS.maxSources)) {
      this.#busy(from.id, id)
      return
    }
    entry.addSource(from, id)
    const now = entry.sourceId(from.id)
    if (now) this.#incoming.set(transferKey(from.id, now), entry)
  }

  /** Offers waiting (or being accepted) that each peer is a source of. */
  #held(): Map<string, number> {
    const held = new Map<string, number>()
    for (const o of this.#offers.values()) {
      for (const s of o.sourceEntries()) held.set(s.ref.id, (held.get(s.ref.id) ?? 0) + 1)
    }
    return held
  }

  /**
   * The inbox is full and a peer holding `fromPeer` offers sends another: makes room by pushing out an
   * offer of the peer holding the most, when that is more than `fromPeer`. Otherwise a few identities
   * at `maxOffersPerPeer` each fill `maxOffers` and every other peer's offers are declined BUSY; this
   * way peers that hold more than others give way, so the inbox ends up shared about evenly.
   *
   * An offer whose senders all left goes first, whoever offers. Otherwise the offer pushed out is the
   * oldest pending one whose every source holds more than `fromPeer`
   * (rather than an offer another, smaller peer also makes, which would cost that peer its offer),
   * taken from the largest holders first, and from offers with one source before shared ones. Offers
   * being accepted are never pushed out (accepted ones are downloads, no longer in the inbox). Its
   * sources are declined BUSY, and `offer:expired` tells the user it is gone. False when nothing can
   * go: the new offer is declined BUSY instead, as when its sender holds the most itself.
   */
  #evictFor(fromPeer: number, held: Map<string, number>): boolean {
    let victim: IncomingOffer | undefined
    let victimHeld = fromPeer
    let victimSources = 0
    // Map order is arrival order: on a tie the earlier offer stays the victim, so the oldest goes.
    for (const o of this.#offers.values()) {
      // First an offer none of whose senders is still connected: throwaway identities that offer once
      // and leave would otherwise push out, one by one, the offers of senders waiting for an answer.
      if (o.status === 'pending' && !o.sourceEntries().some((s) => this.#wire.online(s.ref.id))) {
        victim = o
        break
      }
    }
    for (const o of victim ? [] : this.#offers.values()) {
      if (o.status !== 'pending') continue
      let least = Number.POSITIVE_INFINITY
      for (const s of o.sourceEntries()) least = Math.min(least, held.get(s.ref.id) ?? 0)
      if (least > victimHeld || (least === victimHeld && victim && o.sourceCount < victimSources)) {
        victim = o
        victimHeld = least
        victimSources = o.sourceCount
      }
    }
    if (!victim) return false
    for (const s of victim.sourceEntries()) this.#busy(s.ref.id, s.id)
    this.#endOffer(victim, 'expired')
    this.#emit('offer:expired', victim)
    return true
  }

  /** Declines as BUSY, unless the peer does not read what we send (then it learns nothing). */
  #busy(peerId: string, id: Uint8Array): void {
    if (this.#wire.writable(peerId)) this.#wire.send(peerId, { type: 'DECLINE', id, reason: Reason.BUSY })
  }

  /** Accepting by itself failed (too many downloads, an I/O error): the user decides instead. */
  #askInstead(offer: IncomingOffer): void {
    if (offer.status === 'pending' && !this.#isClosed()) this.#emit('offer', offer)
  }

  async #accept(offer: IncomingOffer, options: AcceptOptions): Promise<Download> {
    const { signal } = options
    let dir = options.dir
    if (offer.status !== 'pending')
      throw new FilesError('ANSWERED', `the offer of ${offer.name} was already ${offer.status}`)
    if (signal?.aborted) throw new FilesError('CANCELLED', `accepting ${offer.name} was aborted`)
    if (this.#downloads.size + this.#accepting.size >= (this.#opts.maxDownloads ?? DEFAULTS.maxDownloads)) {
      throw new FilesError('BUSY', 'too many downloads are running; try again when one finishes')
    }
    // One download per root (its saved state is named by the root): another offer of the root that
    // claims another size waits until this one ends (the false one fails on its hashes).
    if (this.#downloads.has(offer.root) || [...this.#accepting].some((o) => o.root === offer.root)) {
      throw new FilesError('BUSY', `${offer.name}: a download of the same root with another size is running`)
    }
    // Bytes still to be written by the other downloads and accepts: concurrent accepts must not all
    // count the same free space (part files grow as chunks arrive, nothing is preallocated).
    let pending = 0
    for (const d of this.#downloads.values()) pending += d.size - d.bytes
    for (const o of this.#accepting) pending += o.size - o.resumeBytes
    const reserve = this.#opts.minFreeSpace ?? DEFAULTS.minFreeSpace
    offer.status = 'accepting'
    this.#accepting.add(offer)
    let created: string | undefined
    try {
      let finalPath: string
      let partPath: string
      let verified: Uint8Array | undefined
      let fh: Awaited<ReturnType<typeof open>> | undefined
      const saved = offer.resume
      if (saved) {
        finalPath = saved.finalPath
        partPath = saved.partPath
        try {
          fh = await open(partPath, 'r+')
          verified = Buffer.from(saved.verified, 'base64')
        } catch {
          // The part file is gone: start over under the same name (reserved again below).
          if (this.#opts.dataDir) await removeState(this.#opts.dataDir, offer.root)
          offer.resumeBytes = 0
          dir ??= resolve(finalPath, '..')
        }
      }
      if (!fh) {
        const target = dir ?? this.#opts.downloads
        if (target === undefined) throw new FilesError('IO', 'no download folder: pass one to accept()')
        await mkdir(target, { recursive: true })
        await checkSpace(target, pending + offer.size, reserve)
        ;({ finalPath, partPath, fh } = await reservePart(target, offer.name))
        created = partPath
      } else {
        await checkSpace(resolve(partPath!, '..'), pending + offer.size - offer.resumeBytes, reserve)
      }
      if (this.#isClosed() || signal?.aborted) {
        await fh.close()
        throw new FilesError(
          'CANCELLED',
          signal?.aborted ? `accepting ${offer.name} was aborted` : 'the file service is closed',
        )
      }
      const download: Download = new Download({
        ...this.#tuning,
        root: offer.rootBytes,
        name: offer.name,
        size: offer.size,
        chunkSize: offer.chunkSize,
        partPath: partPath!,
        finalPath: finalPath!,
        fh,
        verified,
        dataDir: this.#opts.dataDir,
        wire: this.#wire,
        settled: () => this.#settled(download),
        mayKeep: () => this.#mayKeep(download),
      })
      this.#endOffer(offer, 'accepted')
      this.#downloads.set(offer.root, download)
      for (const s of offer.sourceEntries()) {
        this.#incoming.set(transferKey(s.ref.id, s.id), download)
        download.addSource(s.ref, s.id)
      }
      download.on('source:dropped', ({ source, reason }) => {
        if (reason !== 'cancelled') this.#distrust(source.id)
      })
      this.#startTicker()
      this.#emit('download', download)
      if (signal) {
        const onAbort = () => void download.cancel()
        signal.addEventListener('abort', onAbort, { once: true })
        // A long-lived signal must not keep every finished download referenced.
        download.finished.then(
          () => signal.removeEventListener('abort', onAbort),
          () => signal.removeEventListener('abort', onAbort),
        )
      }
      download.start()
      return download
    } catch (err) {
      if (created) await unlink(created).catch(() => {})
      const error =
        err instanceof FilesError ? err : new FilesError('IO', `cannot save ${offer.name}`, { cause: err })
      if (error.code === 'NO_SPACE') {
        offer.status = 'pending'
        this.#decline(offer, Reason.NO_SPACE)
      } else if (offer.status === 'accepting') {
        offer.status = 'pending'
      }
      throw error
    } finally {
      this.#accepting.delete(offer)
    }
  }

  /**
   * Whether a download out of sources may keep its partial file: not when one of its sources already
   * fed {@link MAX_KEPT_PER_PEER} kept partials since the service started. Otherwise a peer could leave
   * one partial per offer, each a chunk of a file it made, without bound (auto-accepting peers).
   */
  #mayKeep(download: Download): boolean {
    const peers = download.sources().map((s) => s.peer.id)
    if (peers.some((id) => (this.#kept.get(id) ?? 0) >= MAX_KEPT_PER_PEER)) return false
    for (const id of peers) remember(this.#kept, id, (this.#kept.get(id) ?? 0) + 1)
    return true
  }

  #distrusts(peerId: string): boolean {
    const until = this.#distrusted.get(peerId)
    if (until === undefined) return false
    if (Date.now() < until) return true
    this.#distrusted.delete(peerId)
    return false
  }

  #distrust(peerId: string): void {
    remember(this.#distrusted, peerId, Date.now() + DISTRUST_MS)
  }

  #decline(offer: IncomingOffer, reason: Reason = Reason.DECLINED): void {
    for (const s of offer.sourceEntries()) this.#wire.send(s.ref.id, { type: 'DECLINE', id: s.id, reason })
    this.#endOffer(offer, 'declined')
  }

  #expire(offer: IncomingOffer): void {
    if (offer.status !== 'pending') return
    for (const s of offer.sourceEntries()) {
      this.#wire.send(s.ref.id, { type: 'DECLINE', id: s.id, reason: Reason.EXPIRED })
    }
    this.#endOffer(offer, 'expired')
    this.#emit('offer:expired', offer)
  }

  #endOffer(offer: IncomingOffer, status: IncomingOffer['status']): void {
    offer.status = status
    clearTimeout(offer.timer)
    const content = contentKey(offer.root, offer.size, offer.chunkSize)
    if (this.#offers.get(content) === offer) this.#offers.delete(content)
    for (const [key, entry] of this.#incoming) if (entry === offer) this.#incoming.delete(key)
  }

  #settled(download: Download): void {
    if (this.#downloads.get(download.root) === download) this.#downloads.delete(download.root)
    for (const [key, entry] of this.#incoming) if (entry === download) this.#incoming.delete(key)
    if (this.#downloads.size === 0) this.#stopTicker()
  }

  #startTicker(): void {
    if (this.#ticker) return
    const every = Math.max(50, Math.min(1_000, this.#tuning.requestTimeout / 2))
    this.#ticker = setInterval(() => {
      const now = Date.now()
      for (const d of this.#downloads.values()) d.tick(now)
    }, every)
    this.#ticker.unref?.()
  }

  #stopTicker(): void {
    clearInterval(this.#ticker)
    this.#ticker = undefined
  }
}

/** How long a source a download dropped is not accepted without asking, and how many are remembered. */
const DISTRUST_MS = 10 * 60_000
/** Peers remembered, for distrust and for kept partials. */
const MAX_DISTRUSTED = 1024
/** Partial downloads one peer's offers may leave behind per run of the service. */
const MAX_KEPT_PER_PEER = 16

/** Sets `key` as the newest entry of a map of peers, forgetting the oldest past {@link MAX_DISTRUSTED}. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key)
  if (map.size >= MAX_DISTRUSTED) map.delete(map.keys().next().value!)
  map.set(key, value)
}

/** What an offer claims: its root, and the size and chunk size the root commits to. */
function contentKey(root: string, size: number, chunkSize: number): string {
  return `${root}:${size}:${chunkSize}`
}
