import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { mkdir, open, stat, statfs, unlink } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import type { Channel, Service, ServiceHandler } from '@parley/core'
import { decode, encode, type FilesMessage, type Offer, Reason } from './codec.js'
import { Download, type DownloadTuning } from './download.js'
import { FilesError } from './errors.js'
import { DEFAULT_CHUNK_SIZE, type HashedFile, hashFile } from './hash-tree.js'
import { IncomingOffer } from './offer.js'
import { OutgoingTransfer } from './outgoing.js'
import { reservePart, sanitizeName } from './sanitize.js'
import { loadState, removeState } from './state.js'
import type { PeerRef, Wire } from './wire.js'

/** Protocol name of file transfer, announced in HELLO/WELCOME. */
export const FILES_PROTOCOL = 'parley/files/1'

/** Options of {@link createFileService}. */
export interface FileServiceInit {
  /** Where accepted files go when `accept()` names no folder (and where auto-accepted ones go). */
  downloads?: string
  /**
   * Where partial downloads keep their state (the verified chunk bitmap), so they resume after a
   * restart. Without it a download resumes after a lost connection, not after a restart.
   */
  dataDir?: string
  /**
   * Accept offers without asking: `true` for every offer (into `downloads`), or a function deciding per
   * offer. Every peer is authenticated by the secure channel; to trust only some, decide by
   * `offer.from.id`. @default false — offers wait for `accept()`
   */
  autoAccept?: boolean | ((offer: IncomingOffer) => boolean)
  /**
   * An offer of a root whose partial download is saved in `dataDir` continues at once (the user
   * accepted it before). @default true
   */
  resume?: boolean
  /** An unanswered offer expires after this long (on both sides). @default 60_000 ms */
  offerTimeout?: number
  /** An accepted transfer waits this long for a lost receiver to come back. @default 600_000 ms */
  resumeTimeout?: number
  /** Chunk size of files we offer (a power of two, 32 KiB to 16 MiB). @default 256 KiB */
  chunkSize?: number
  /** Chunks in flight per source: what a transfer can put in front of chat on a link. @default 2 */
  window?: number
  /** A source that delivers nothing for this long while asked is dropped. @default 30_000 ms */
  requestTimeout?: number
  /** Corrupt chunks after which a source is dropped. @default 3 */
  maxStrikes?: number
  /** Offers waiting for an answer, in all and per peer; more are declined as BUSY. @default 64 / 16 */
  maxOffers?: number
  maxOffersPerPeer?: number
  /** Downloads running at once. @default 8 */
  maxDownloads?: number
  /** Progress events at most this often per transfer. @default 250 ms */
  progressInterval?: number
  /** The verified bitmap is saved at most this often. @default 1_000 ms */
  saveInterval?: number
}

export interface OfferOptions {
  /** The name to offer. @default the file's base name */
  name?: string
  /** Aborting cancels the transfer (and the hashing before the offer). */
  signal?: AbortSignal
}

export interface FileServiceEvents {
  /** A peer offers a file: call `accept()` or `decline()`, or let it expire. */
  offer: [offer: IncomingOffer]
  'offer:expired': [offer: IncomingOffer]
  /** Every peer offering it cancelled the offer. */
  'offer:withdrawn': [offer: IncomingOffer]
  /** A download started: accepted, auto-accepted, or resumed from the data directory. */
  download: [download: Download]
  /** A file was offered (by `offer()`). */
  transfer: [transfer: OutgoingTransfer]
}

/** File transfer as a Parley service: pass it in `createPeer({ services: [files] })`. */
export interface FileService extends Service, EventEmitter<FileServiceEvents> {
  /**
   * Hashes the file (one chunk in memory at a time) and offers it to a connected peer.
   * @throws FilesError NOT_CONNECTED (not connected, or the peer does not run files), BAD_FILE
   */
  offer(peerId: string, path: string, options?: OfferOptions): Promise<OutgoingTransfer>
  /** Offers waiting for an answer. */
  offers(): IncomingOffer[]
  /** Downloads running. */
  downloads(): Download[]
  /** Our offers and uploads not yet finished. */
  transfers(): OutgoingTransfer[]
  /** Peers connected now that run the file service. */
  peers(): PeerRef[]
  /** Saves every download's state for a later resume, stops every transfer, clears timers. Idempotent. */
  close(): Promise<void>
}

/** Creates the file service. See docs/FILES.md. */
export function createFileService(init: FileServiceInit = {}): FileService {
  return new ParleyFileService(init)
}

const DEFAULTS = {
  offerTimeout: 60_000,
  resumeTimeout: 600_000,
  window: 2,
  requestTimeout: 30_000,
  maxStrikes: 3,
  maxOffers: 64,
  maxOffersPerPeer: 16,
  maxDownloads: 8,
  progressInterval: 250,
  saveInterval: 1_000,
}

/** Hashed files kept so offering one file to several peers hashes it once. */
const HASH_CACHE = 16

class FilesHandler implements ServiceHandler {
  #waiters: (() => void)[] = []

  constructor(
    readonly service: ParleyFileService,
    readonly channel: Channel,
  ) {}

  onFrame(body: Uint8Array): void {
    this.service.onMessage(this, decode(body))
  }

  drained(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  onDrain(): void {
    this.#wake()
  }

  onResume(): void {
    this.#wake()
    this.service.resumed(this)
  }

  onClose(): void {
    this.#wake()
    this.service.closed(this)
  }
}

class ParleyFileService extends EventEmitter<FileServiceEvents> implements FileService {
  readonly protocol = FILES_PROTOCOL
  readonly #init: FileServiceInit
  readonly #tuning: DownloadTuning
  readonly #handlers = new Map<string, FilesHandler>()
  /** Our transfers, by `<receiver id>:<transfer id>`. */
  readonly #outgoing = new Map<string, OutgoingTransfer>()
  /** Pending offers by root. */
  readonly #offers = new Map<string, IncomingOffer>()
  /** Running downloads by root. */
  readonly #downloads = new Map<string, Download>()
  /** What a `<sender id>:<transfer id>` feeds: a pending offer or a download. */
  readonly #incoming = new Map<string, IncomingOffer | Download>()
  readonly #hashes = new Map<string, { key: string; file: Promise<HashedFile> }>()
  #ticker: ReturnType<typeof setInterval> | undefined
  #closed = false

  readonly #wire: Wire = {
    send: (peerId, msg) => {
      const h = this.#handlers.get(peerId)
      if (!h?.channel.online) return false
      try {
        h.channel.sendBytes(encode(msg))
        return true
      } catch {
        return false
      }
    },
    online: (peerId) => this.#handlers.get(peerId)?.channel.online === true,
    writable: (peerId) => this.#handlers.get(peerId)?.channel.writable === true,
    drained: (peerId) => this.#handlers.get(peerId)?.drained() ?? Promise.resolve(),
  }

  constructor(init: FileServiceInit) {
    super()
    this.#init = init
    this.#tuning = {
      window: init.window ?? DEFAULTS.window,
      requestTimeout: init.requestTimeout ?? DEFAULTS.requestTimeout,
      maxStrikes: init.maxStrikes ?? DEFAULTS.maxStrikes,
      progressInterval: init.progressInterval ?? DEFAULTS.progressInterval,
      saveInterval: init.saveInterval ?? DEFAULTS.saveInterval,
    }
  }

  // ---- Service --------------------------------------------------------------------------------

  open(channel: Channel): ServiceHandler {
    const handler = new FilesHandler(this, channel)
    this.#handlers.set(channel.peer.id, handler)
    // A session with a receiver came (back): offer again what it has not finished.
    queueMicrotask(() => {
      for (const t of this.#outgoing.values()) if (t.peerId === channel.peer.id) t.sendOffer()
    })
    return handler
  }

  resumed(handler: FilesHandler): void {
    const id = handler.channel.peer.id
    for (const t of this.#outgoing.values()) {
      if (t.peerId !== id) continue
      t.linkChanged(true)
      // The receiver may be a new process under the same key (it crashed and came back before our
      // session noticed): offer again, or it would never ask. A receiver that knows the offer ignores it.
      t.sendOffer()
    }
    for (const d of this.#downloads.values()) d.sourceResumed(id)
  }

  closed(handler: FilesHandler): void {
    const id = handler.channel.peer.id
    if (this.#handlers.get(id) !== handler) return
    this.#handlers.delete(id)
    for (const t of this.#outgoing.values()) if (t.peerId === id) t.linkChanged(false)
    for (const d of this.#downloads.values()) d.sourceOffline(id)
  }

  onMessage(handler: FilesHandler, msg: FilesMessage): void {
    if (this.#closed) return
    const peer = handler.channel.peer
    const key = `${peer.id}:${Buffer.from(msg.id).toString('hex')}`
    // Every message but the data we asked for costs its sender a token of its rate budget.
    if (msg.type !== 'CHUNK' && msg.type !== 'HASHES') handler.channel.spend()
    switch (msg.type) {
      case 'OFFER':
        void this.#onOffer(peer, key, msg)
        return
      case 'GET_HASHES':
      case 'REQUEST':
      case 'ACCEPT':
      case 'DECLINE':
      case 'DONE': {
        const t = this.#outgoing.get(key)
        if (t) t.onMessage(msg)
        else if (msg.type === 'GET_HASHES' || msg.type === 'REQUEST' || msg.type === 'ACCEPT') {
          // We forgot it (restarted, or it finished): the receiver should stop asking us.
          if (handler.channel.writable)
            this.#wire.send(peer.id, { type: 'CANCEL', id: msg.id, reason: Reason.UNKNOWN_TRANSFER })
        }
        return
      }
      case 'HASHES': {
        const d = this.#incoming.get(key)
        if (d instanceof Download) d.onHashes(peer.id, msg)
        return
      }
      case 'CHUNK': {
        const d = this.#incoming.get(key)
        if (d instanceof Download) d.onChunk(peer.id, msg.index, msg.offset, msg.data)
        return
      }
      case 'CANCEL': {
        this.#outgoing.get(key)?.onMessage(msg)
        const entry = this.#incoming.get(key)
        this.#incoming.delete(key)
        if (entry instanceof Download) entry.sourceCancelled(peer.id)
        else if (entry?.removeSource(peer.id) && entry.status === 'pending') {
          this.#endOffer(entry, 'withdrawn')
          this.emit('offer:withdrawn', entry)
        }
        return
      }
    }
  }

  // ---- sending --------------------------------------------------------------------------------

  async offer(peerId: string, path: string, options: OfferOptions = {}): Promise<OutgoingTransfer> {
    if (this.#closed) throw new FilesError('CANCELLED', 'the file service is closed')
    const ready = () => {
      if (!this.#wire.online(peerId)) {
        throw new FilesError(
          'NOT_CONNECTED',
          `${peerId.slice(0, 8)} is not connected or does not run file transfer`,
        )
      }
    }
    ready()
    const file = await this.#hash(resolve(path), options.signal)
    options.signal?.throwIfAborted()
    ready()
    // The wire allows 255 bytes of name: drop characters from the front, keeping the extension.
    const chars = [...(options.name ?? basename(path))]
    while (Buffer.byteLength(chars.join('')) > 255) chars.shift()
    const name = chars.join('')
    const t = new OutgoingTransfer({
      id: randomBytes(16),
      peerId,
      path: resolve(path),
      name: name || 'file',
      file,
      wire: this.#wire,
      offerTimeout: this.#init.offerTimeout ?? DEFAULTS.offerTimeout,
      resumeTimeout: this.#init.resumeTimeout ?? DEFAULTS.resumeTimeout,
      progressInterval: this.#tuning.progressInterval,
      settled: (done) => this.#outgoing.delete(`${done.peerId}:${done.id}`),
    })
    this.#outgoing.set(`${peerId}:${t.id}`, t)
    options.signal?.addEventListener('abort', () => t.cancel(), { once: true })
    t.sendOffer()
    this.emit('transfer', t)
    return t
  }

  async #hash(path: string, signal: AbortSignal | undefined): Promise<HashedFile> {
    const chunkSize = this.#init.chunkSize ?? DEFAULT_CHUNK_SIZE
    let st: Awaited<ReturnType<typeof stat>>
    try {
      st = await stat(path)
    } catch (cause) {
      throw new FilesError('BAD_FILE', `cannot open ${path}`, { cause })
    }
    const key = `${st.size}:${st.mtimeMs}:${st.ino}:${chunkSize}`
    const cached = this.#hashes.get(path)
    if (cached?.key === key) return cached.file
    const file = hashFile(path, { chunkSize, signal })
    this.#hashes.delete(path)
    if (this.#hashes.size >= HASH_CACHE) this.#hashes.delete(this.#hashes.keys().next().value!)
    this.#hashes.set(path, { key, file })
    file.catch(() => this.#hashes.delete(path))
    return file
  }

  // ---- receiving ------------------------------------------------------------------------------

  async #onOffer(from: PeerRef, key: string, msg: Offer): Promise<void> {
    const root = Buffer.from(msg.root).toString('hex')
    const known = this.#incoming.get(key)
    if (known instanceof Download) {
      known.addSource(from, msg.id)
      return
    }
    if (known) return
    const running = this.#downloads.get(root)
    if (running) {
      this.#incoming.set(key, running)
      running.addSource(from, msg.id)
      return
    }
    const pending = this.#offers.get(root)
    if (pending) {
      // Same root means same size and chunking (the root commits to both).
      this.#incoming.set(key, pending)
      pending.addSource(from, msg.id)
      return
    }
    let fromPeer = 0
    for (const o of this.#offers.values()) if (o.sources.some((s) => s.id === from.id)) fromPeer++
    const maxOffers = this.#init.maxOffers ?? DEFAULTS.maxOffers
    if (
      this.#offers.size >= maxOffers ||
      fromPeer >= (this.#init.maxOffersPerPeer ?? DEFAULTS.maxOffersPerPeer)
    ) {
      this.#wire.send(from.id, { type: 'DECLINE', id: msg.id, reason: Reason.BUSY })
      return
    }
    const timeout = this.#init.offerTimeout ?? DEFAULTS.offerTimeout
    const offer = new IncomingOffer({
      root: Buffer.from(msg.root),
      name: sanitizeName(msg.name),
      offeredName: msg.name,
      size: msg.size,
      chunkSize: msg.chunkSize,
      from,
      id: msg.id,
      expiresAt: Date.now() + timeout,
      host: { accept: (o, dir) => this.#accept(o, dir), decline: (o) => this.#decline(o) },
    })
    this.#offers.set(root, offer)
    this.#incoming.set(key, offer)
    offer.timer = setTimeout(() => this.#expire(offer), timeout)
    offer.timer.unref?.()

    if (this.#init.dataDir) {
      const saved = await loadState(this.#init.dataDir, root)
      if (saved && saved.size === msg.size && saved.chunkSize === msg.chunkSize) {
        offer.resume = saved
        const bits = Buffer.from(saved.verified, 'base64')
        for (let i = 0; i * saved.chunkSize < saved.size; i++) {
          if ((bits[i >> 3]! >> (i & 7)) & 1)
            offer.resumeBytes += Math.min(saved.chunkSize, saved.size - i * saved.chunkSize)
        }
        if (this.#init.resume !== false && offer.status === 'pending') {
          this.#accept(offer, undefined).catch(() => this.#askInstead(offer))
          return
        }
      }
    }
    if (offer.status !== 'pending' || this.#closed) return
    const auto = this.#init.autoAccept
    if (
      this.#init.downloads !== undefined &&
      (auto === true || (typeof auto === 'function' && auto(offer)))
    ) {
      this.#accept(offer, undefined).catch(() => this.#askInstead(offer))
      return
    }
    this.emit('offer', offer)
  }

  /** Accepting by itself failed (too many downloads, an I/O error): the user decides instead. */
  #askInstead(offer: IncomingOffer): void {
    if (offer.status === 'pending' && !this.#closed) this.emit('offer', offer)
  }

  async #accept(offer: IncomingOffer, dir: string | undefined): Promise<Download> {
    if (offer.status !== 'pending')
      throw new FilesError('ANSWERED', `the offer of ${offer.name} was already ${offer.status}`)
    if (this.#downloads.size >= (this.#init.maxDownloads ?? DEFAULTS.maxDownloads)) {
      throw new FilesError('BUSY', 'too many downloads are running; try again when one finishes')
    }
    offer.status = 'accepting'
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
          if (this.#init.dataDir) await removeState(this.#init.dataDir, offer.root)
          offer.resumeBytes = 0
          dir ??= resolve(finalPath, '..')
        }
      }
      if (!fh) {
        const target = dir ?? this.#init.downloads
        if (target === undefined) throw new FilesError('IO', 'no download folder: pass one to accept()')
        await mkdir(target, { recursive: true })
        await checkSpace(target, offer.size)
        ;({ finalPath, partPath } = await reservePart(target, offer.name))
        created = partPath
        fh = await open(partPath, 'r+')
      } else {
        await checkSpace(resolve(partPath!, '..'), offer.size - offer.resumeBytes)
      }
      if (this.#closed) {
        await fh.close()
        throw new FilesError('CANCELLED', 'the file service is closed')
      }
      const download = new Download({
        ...this.#tuning,
        root: offer.rootBytes,
        name: offer.name,
        size: offer.size,
        chunkSize: offer.chunkSize,
        partPath: partPath!,
        finalPath: finalPath!,
        fh,
        verified,
        dataDir: this.#init.dataDir,
        wire: this.#wire,
        settled: (d) => this.#settled(d),
      })
      this.#endOffer(offer, 'accepted')
      this.#downloads.set(offer.root, download)
      for (const s of offer.sourceEntries()) {
        this.#incoming.set(`${s.ref.id}:${Buffer.from(s.id).toString('hex')}`, download)
        download.addSource(s.ref, s.id)
      }
      this.#startTicker()
      this.emit('download', download)
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
    }
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
    this.emit('offer:expired', offer)
  }

  #endOffer(offer: IncomingOffer, status: IncomingOffer['status']): void {
    offer.status = status
    clearTimeout(offer.timer)
    if (this.#offers.get(offer.root) === offer) this.#offers.delete(offer.root)
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

  // ---- queries and lifecycle ------------------------------------------------------------------

  offers(): IncomingOffer[] {
    return [...this.#offers.values()]
  }

  downloads(): Download[] {
    return [...this.#downloads.values()]
  }

  transfers(): OutgoingTransfer[] {
    return [...this.#outgoing.values()]
  }

  peers(): PeerRef[] {
    return [...this.#handlers.values()].filter((h) => h.channel.online).map((h) => h.channel.peer)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopTicker()
    for (const t of [...this.#outgoing.values()]) t.abandon()
    for (const o of [...this.#offers.values()]) this.#endOffer(o, 'withdrawn')
    await Promise.all([...this.#downloads.values()].map((d) => d.pause()))
  }
}

/** @throws FilesError NO_SPACE when `dir`'s file system has less than `bytes` available */
async function checkSpace(dir: string, bytes: number): Promise<void> {
  let available: number
  try {
    const fs = await statfs(dir)
    available = Number(fs.bavail) * Number(fs.bsize)
  } catch {
    return // statfs is not supported everywhere; writing will fail with ENOSPC instead
  }
  if (available < bytes) {
    throw new FilesError('NO_SPACE', `${dir} has ${available} bytes free, ${bytes} are needed`)
  }
}
