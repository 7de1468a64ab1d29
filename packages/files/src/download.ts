import { EventEmitter } from 'node:events'
import { ChunkMap } from './chunk-map.js'
import { type ChunkRange, type Hashes, Limits, Reason } from './codec.js'
import type {
  CorruptReason,
  DownloadEvents,
  DownloadInit,
  DownloadResult,
  DownloadStatus,
  DropReason,
  Incoming,
  Source,
} from './download-types.js'
import { FilesError } from './errors.js'
import { leafHasher, rootHash } from './hash-tree.js'
import { PartFile } from './part-file.js'
import { type PeerRef, ProgressMeter } from './wire.js'

export type {
  CorruptEvent,
  CorruptReason,
  DownloadEvents,
  DownloadInit,
  DownloadResult,
  DownloadStatus,
  DownloadTuning,
  DropReason,
} from './download-types.js'

/** Parts of the hash list asked of the hash source at once. */
const HASH_WINDOW = 8
const PART_MISSING = 0
const PART_ASKED = 1
const PART_IN = 2

/**
 * One download of one root from one or more sources. Chunks are asked of each active source within its
 * window, lowest missing first; every piece is written at its offset through one write queue (so writes
 * to the same range never race), every chunk's hash is checked against its leaf, and the leaves against
 * the root before any chunk is asked for. When every chunk is in, the whole part file is read back and
 * checked again before it is moved into place.
 */
export class Download extends EventEmitter<DownloadEvents> {
  /** Root hash, hex. */
  readonly root: string
  readonly name: string
  readonly size: number
  /**
   * Resolves with where the file was saved; rejects with a FilesError (CANCELLED when the service
   * closed: the part file and its state are kept for a later resume).
   */
  readonly finished: Promise<DownloadResult>
  readonly #init: DownloadInit
  readonly #n: number
  readonly #chunks: ChunkMap
  readonly #sources = new Map<string, Source>()
  #leaves: Buffer | undefined
  #leavesOk = false
  #hashSource: Source | undefined
  /** Per part of the hash list: {@link PART_MISSING}, {@link PART_ASKED} or {@link PART_IN}. */
  #hashParts: Uint8Array | undefined
  /** Whose parts `#hashParts` holds: parts of two sources are never mixed, so a liar is told apart. */
  #hashPeer: string | undefined
  #status: DownloadStatus = 'running'
  readonly #part: PartFile
  #saveTimer: ReturnType<typeof setTimeout> | undefined
  #verifyRounds = 0
  /** The read-back check running now, which a pause waits for before it closes the file. */
  #verifying: Promise<unknown> | undefined
  /** Since when no source has been reachable (undefined while one is). */
  #unreachableSince: number | undefined
  #meter: ProgressMeter
  #resolve!: (r: DownloadResult) => void
  #reject!: (e: FilesError) => void

  /** @internal The file service creates downloads when an offer is accepted or resumed. */
  constructor(init: DownloadInit) {
    super()
    this.#init = init
    this.root = init.root.toString('hex')
    this.name = init.name
    this.size = init.size
    this.#chunks = new ChunkMap(init.size, init.chunkSize, init.verified)
    this.#n = this.#chunks.n
    this.#part = new PartFile({
      fh: init.fh,
      partPath: init.partPath,
      finalPath: init.finalPath,
      root: this.root,
      name: init.name,
      size: init.size,
      chunkSize: init.chunkSize,
      dataDir: init.dataDir,
      onWriteError: (cause) => this.#fail(new FilesError('IO', `cannot write ${init.partPath}`, { cause })),
    })
    this.#meter = new ProgressMeter(init.size, init.progressInterval, this.#chunks.haveBytes)
    this.finished = new Promise<DownloadResult>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    this.finished.catch(() => {})
  }

  get status(): DownloadStatus {
    return this.#status
  }

  /** Bytes verified so far (including what an earlier run left on disk). */
  get bytes(): number {
    return this.#chunks.haveBytes
  }

  get chunkSize(): number {
    return this.#init.chunkSize
  }

  /** Chunks requested or being written, over all sources: bounded by window × sources. */
  get chunksInFlight(): number {
    let n = 0
    for (const s of this.#sources.values()) n += s.inflight.size + s.writing
    return n
  }

  get partPath(): string {
    return this.#init.partPath
  }

  /** Per source: chunks it delivered that verified, and whether it is still asked. */
  sources(): { peer: PeerRef; chunks: number; state: Source['state']; strikes: number }[] {
    return [...this.#sources.values()].map((s) => ({
      peer: s.ref,
      chunks: s.chunks,
      state: s.state,
      strikes: s.strikes,
    }))
  }

  get settled(): boolean {
    return this.#status === 'done' || this.#status === 'failed'
  }

  /** The transfer id `peerId` offered this root under, if it is (or was) a source. */
  sourceId(peerId: string): Uint8Array | undefined {
    return this.#sources.get(peerId)?.id
  }

  /** Peers that offered this root, dropped ones included. */
  get sourceCount(): number {
    return this.#sources.size
  }

  /** A peer offers this root (again): it becomes (or is again) a source, unless it was dropped. */
  addSource(ref: PeerRef, id: Uint8Array): void {
    if (this.settled) return
    this.#stoppedBySender.delete(ref.id)
    let s = this.#sources.get(ref.id)
    // A liar or a staller stays dropped; a source that cancelled may offer again (it restarted).
    if (s?.state === 'dropped' && s.dropReason !== 'cancelled') {
      this.#init.wire.send(ref.id, { type: 'DECLINE', id, reason: Reason.DECLINED })
      return
    }
    if (!s) {
      s = {
        ref,
        id,
        state: 'offline',
        dropReason: undefined,
        inflight: new Map(),
        writing: 0,
        strikes: 0,
        lastProgress: 0,
        askedSince: 0,
        askedBytes: 0,
        chunks: 0,
        pausedAt: undefined,
      }
      this.#sources.set(ref.id, s)
    }
    // The same offer repeated on a link that did not change (the sender re-offers on every new
    // connection, and we re-asked already when ours resumed): nothing to do.
    if (s.state === 'active' && Buffer.from(s.id).equals(id)) return
    // A fresh id (or an offer again after a cancel) is no progress: its clocks pause and go on when it is
    // asked again, or one that never answers could re-offer every few seconds and hold the download forever.
    this.#requeue(s)
    s.id = id
    s.state = 'active'
    s.dropReason = undefined
    this.#init.wire.send(ref.id, { type: 'ACCEPT', id })
    this.#schedule()
  }

  /** Whether `s` has something asked of it: chunks in flight, or the hash list. */
  #isAsked(s: Source): boolean {
    return s.inflight.size > 0 || s === this.#hashSource
  }

  /** `s`'s clocks go on from where they paused: the time away counts neither against it nor as progress. */
  #unpause(s: Source, now: number): void {
    if (s.pausedAt === undefined) return
    const away = now - s.pausedAt
    s.lastProgress += away
    s.askedSince += away
    s.pausedAt = undefined
  }

  /** The source's session ended or is waiting for a new connection: what it had in flight goes back. */
  sourceOffline(peerId: string): void {
    const s = this.#sources.get(peerId)
    if (s?.state !== 'active') return
    // Leaving and coming back must not restart the clocks of a source that was asked for something
    // (#requeue pauses them): one that never answers could otherwise reconnect every few seconds and hold
    // its download for good.
    this.#requeue(s)
    s.state = 'offline'
    this.#schedule()
  }

  /** The source's session came back on a new connection: it forgot our requests, so ask again. */
  sourceResumed(peerId: string): void {
    const s = this.#sources.get(peerId)
    if (!s || s.state === 'dropped') return
    // Its session may have stayed up while the link was replaced (still active): a new link is no
    // progress either (#requeue pauses its clocks).
    this.#requeue(s)
    s.state = 'active'
    this.#schedule()
  }

  /** The source cancelled (or withdrew) its offer; it may offer again, its clocks paused (see #requeue). */
  /** A source sent CANCEL: `stopped` when its user stopped the transfer (not its file or disk failing). */
  sourceCancelled(peerId: string, stopped = false): void {
    const s = this.#sources.get(peerId)
    if (!s) return
    if (stopped) this.#stoppedBySender.add(peerId)
    this.#drop(s, 'cancelled', false)
  }

  /** Sources whose user stopped the transfer (see sourceCancelled). */
  readonly #stoppedBySender = new Set<string>()

  /**
   * @internal A HASHES from `peerId`: leaf hashes we asked for, checked against the root once all are
   * in. False when it was not asked for (or repeats a part), so its sender pays for it.
   */
  onHashes(peerId: string, msg: Hashes): boolean {
    const s = this.#sources.get(peerId)
    if (!s || s !== this.#hashSource || !this.#leaves || !this.#hashParts || this.#leavesOk) return false
    const part = msg.start / Limits.hashesPerMessage
    const expected = Math.min(Limits.hashesPerMessage, this.#n - msg.start)
    if (
      !Number.isInteger(part) ||
      part >= this.#hashParts.length ||
      msg.hashes.byteLength !== expected * 32 ||
      // Only what is asked now: a repeat is no progress, and must not keep the source's timeout from firing.
      this.#hashParts[part] !== PART_ASKED
    ) {
      return false
    }
    this.#leaves.set(msg.hashes, msg.start * 32)
    this.#hashParts[part] = PART_IN
    s.lastProgress = Date.now()
    s.askedBytes += msg.hashes.byteLength
    if (!this.#hashParts.every((p) => p === PART_IN)) {
      this.#askHashes(s)
      return true
    }
    this.#hashSource = undefined
    if (rootHash(this.size, this.#init.chunkSize, this.#leaves).equals(this.#init.root)) {
      this.#leavesOk = true
      this.#schedule()
      return true
    }
    // A hash list that does not add up to the root: the source lies (the root is what the user accepted).
    this.emit('corrupt', { source: s.ref, chunk: -1, reason: 'bad-hashes' })
    this.#drop(s, 'lying', true)
    this.#schedule()
    return true
  }

  /**
   * @internal A CHUNK piece from `peerId`: written at its offset, its chunk verified once complete.
   * False when no request of ours expects it, so its sender pays for it.
   */
  onChunk(peerId: string, index: number, offset: number, data: Uint8Array): boolean {
    const s = this.#sources.get(peerId)
    const rx = s?.inflight.get(index)
    // Late pieces (the chunk was given to another source) and pieces of a request from before a
    // reconnection arrive out of order: ignored, the request in force is served from its start.
    if (!s || !rx || offset !== rx.received) return false
    if (data.byteLength !== Math.min(Limits.pieceBytes, rx.length - rx.received)) {
      this.#corrupt(s, rx, 'bad-piece')
      return true
    }
    const copy = Buffer.from(data)
    rx.hasher.update(copy)
    rx.pieces.push(copy)
    rx.received += copy.byteLength
    s.lastProgress = Date.now()
    s.askedBytes += copy.byteLength
    if (rx.received < rx.length) return true
    s.inflight.delete(index)
    const leaf = this.#leaves!.subarray(index * 32, index * 32 + 32)
    if (!rx.hasher.digest().equals(leaf)) {
      this.#corrupt(s, rx, 'bad-chunk')
      return true
    }
    this.#chunks.writing(index)
    s.writing++
    s.chunks++
    // One write per chunk, not per piece: a write is a thread-pool round trip, and on some disks a
    // small write costs as much as a large one. Only verified bytes ever reach the part file.
    void this.#part
      .write(rx.pieces, index * this.#init.chunkSize, () => this.settled)
      .then(() => {
        s.writing--
        if (this.settled || !this.#chunks.isWriting(index)) return
        this.#chunks.markHave(index)
        this.#dirty()
        this.#progress()
        if (this.#chunks.complete) void this.#complete()
        else this.#schedule()
      })
    this.#schedule()
    return true
  }

  /**
   * Drops sources that were asked and delivered nothing for `requestTimeout`, and fails the download
   * with NO_SOURCES once none of its sources has been reachable for `resumeTimeout`: a download waiting
   * for sources that never come back would hold its slot (and its part file) forever.
   */
  tick(now: number): void {
    if (this.#status !== 'running') return
    let reachable = false
    for (const s of this.#sources.values()) {
      if (s.state === 'active' && this.#init.wire.online(s.ref.id)) reachable = true
    }
    if (reachable) this.#unreachableSince = undefined
    else if (this.#unreachableSince === undefined) this.#unreachableSince = now
    else if (now - this.#unreachableSince >= this.#init.resumeTimeout) {
      this.#fail(
        new FilesError(
          'NO_SOURCES',
          `no source of ${this.name} came back within ${Math.round(this.#init.resumeTimeout / 1000)} s`,
        ),
      )
      return
    }
    for (const s of this.#sources.values()) {
      if (s.state !== 'active' || !this.#isAsked(s)) continue
      // A session waiting for a new link: its clocks stop until the link is back, as when it is offline.
      if (!this.#init.wire.online(s.ref.id)) {
        s.pausedAt ??= now
        continue
      }
      this.#unpause(s, now)
      if (now - s.lastProgress > this.#init.requestTimeout) {
        this.#drop(s, 'slow', true)
        continue
      }
      // A piece now and then resets the clock above: a source that trickles would hold its download
      // (and its slot) forever. Over each `requestTimeout` it must deliver at least `minRate`.
      const span = now - s.askedSince
      if (span < this.#init.requestTimeout) continue
      if (s.askedBytes < (this.#init.minRate * span) / 1000) this.#drop(s, 'slow', true)
      else this.#asked(s, now)
    }
    this.#schedule()
  }

  /** Starts (or resumes) fetching: the hash list first, then chunks. */
  start(): void {
    if (this.#n === 0) {
      this.#leaves = Buffer.alloc(0)
      this.#leavesOk = rootHash(0, this.#init.chunkSize, this.#leaves).equals(this.#init.root)
      if (this.#leavesOk) void this.#complete()
      else
        this.#fail(new FilesError('VERIFY_FAILED', `${this.name}: the offer's root is not an empty file's`))
      return
    }
    this.#schedule()
  }

  /** Stops, tells every source, removes the part file and the saved state. */
  async cancel(): Promise<void> {
    if (this.settled) return
    for (const s of this.#sources.values()) {
      if (s.state !== 'dropped') {
        this.#init.wire.send(s.ref.id, { type: 'CANCEL', id: s.id, reason: Reason.CANCELLED })
      }
    }
    this.#fail(new FilesError('CANCELLED', `the download of ${this.name} was cancelled`))
    await this.#part.settled()
  }

  /**
   * The service is closing: saves the verified bitmap so a later run resumes, and closes the file; with
   * no data directory nothing could resume it, so the part file is removed. A read-back check under way
   * stops first. `finished` rejects with CANCELLED, so nobody waits for a download that no longer runs.
   */
  async pause(): Promise<void> {
    if (this.settled || this.#status === 'paused') return
    this.#status = 'paused'
    clearTimeout(this.#saveTimer)
    await this.#verifying
    if (this.#init.dataDir === undefined) {
      this.#part.discard(false)
      await this.#part.settled()
    } else {
      await this.#save()
      await this.#part.close()
    }
    this.#init.settled()
    this.#reject(
      new FilesError(
        'CANCELLED',
        this.#init.dataDir === undefined
          ? `the file service closed; the partial ${this.name} was removed (there is no data directory to resume from)`
          : `the file service closed; ${this.name} resumes when offered again`,
      ),
    )
  }

  // ---- internals ------------------------------------------------------------------------------

  #corrupt(s: Source, rx: Incoming, reason: CorruptReason): void {
    s.inflight.delete(rx.index)
    this.#chunks.failed(rx.index, s.ref.id)
    this.emit('corrupt', { source: s.ref, chunk: rx.index, reason })
    s.strikes++
    if (s.strikes >= this.#init.maxStrikes) this.#drop(s, 'lying', true)
    this.#schedule()
  }

  /** What `s` was asked goes back to be asked again; if it was asked anything, its clocks pause. */
  #requeue(s: Source): void {
    if (this.#isAsked(s)) s.pausedAt ??= Date.now()
    for (const index of s.inflight.keys()) this.#chunks.missing(index)
    s.inflight.clear()
    if (this.#hashSource === s) this.#hashSource = undefined
  }

  #drop(s: Source, reason: DropReason, tell: boolean): void {
    if (s.state === 'dropped') return
    this.#requeue(s)
    if (tell) this.#init.wire.send(s.ref.id, { type: 'CANCEL', id: s.id, reason: Reason.CANCELLED })
    s.state = 'dropped'
    s.dropReason = reason
    this.emit('source:dropped', { source: s.ref, reason })
    // While the finished file is read back, sources are no longer needed: losing them all is no failure.
    const sources = [...this.#sources.values()]
    if (this.#status === 'running' && sources.every((x) => x.state === 'dropped')) {
      // Every sender said it stopped: that is their decision, not a fault found in them.
      this.#fail(
        sources.every((x) => x.dropReason === 'cancelled' && this.#stoppedBySender.has(x.ref.id))
          ? new FilesError('CANCELLED', `the sender cancelled the transfer of ${this.name}`)
          : new FilesError('NO_SOURCES', `no source is left for ${this.name}`),
        true,
      )
    }
  }

  #schedule(): void {
    if (this.#status !== 'running') return
    const active = [...this.#sources.values()].filter(
      (s) => s.state === 'active' && this.#init.wire.online(s.ref.id),
    )
    if (active.length === 0) return
    if (!this.#leavesOk) {
      this.#fetchHashes(active)
      return
    }
    const now = Date.now()
    const activeIds = active.map((s) => s.ref.id)
    // Chunks held in memory (asked for, or verified and being written), over every source: bounded by
    // `maxBuffered` bytes as well as by the window, so large chunks from many sources cannot add up
    // (16 sources × 2 × 16 MiB). One chunk is always allowed, so a download never stalls.
    const chunkSize = this.#init.chunkSize
    const budget = Math.max(1, Math.floor(this.#init.maxBuffered / chunkSize))
    let held = this.chunksInFlight
    for (const s of active) {
      const ranges: ChunkRange[] = []
      while (s.inflight.size + s.writing < this.#init.window && held < budget) {
        const index = this.#chunks.pick(s.ref.id, activeIds)
        if (index < 0) break
        if (s.inflight.size === 0) this.#asked(s, now)
        this.#chunks.requested(index)
        held++
        s.inflight.set(index, {
          index,
          length: this.#chunks.length(index),
          received: 0,
          hasher: leafHasher(),
          pieces: [],
        })
        const last = ranges.at(-1)
        if (last && last.start + last.count === index && last.count < Limits.chunksPerRange) last.count++
        else ranges.push({ start: index, count: 1 })
        if (ranges.length === Limits.rangesPerRequest) break
      }
      if (ranges.length > 0) this.#init.wire.send(s.ref.id, { type: 'REQUEST', id: s.id, ranges })
    }
  }

  /** `s` is asked from `now` on: its progress and rate clocks start, or go on if they paused. */
  #asked(s: Source, now: number): void {
    if (s.pausedAt !== undefined) {
      this.#unpause(s, now)
      return
    }
    s.lastProgress = now
    s.askedSince = now
    s.askedBytes = 0
  }

  #fetchHashes(active: Source[]): void {
    if (this.#hashSource) return
    // The first source that has not left an ask unanswered: sources that cancel and offer again by turns
    // must not keep one that would answer from ever being asked.
    const s = active.find((x) => x.pausedAt === undefined) ?? active[0]!
    this.#hashSource = s
    this.#leaves ??= Buffer.alloc(this.#n * 32)
    const parts = Math.ceil(this.#n / Limits.hashesPerMessage)
    if (this.#hashPeer !== s.ref.id || !this.#hashParts) {
      this.#hashParts = new Uint8Array(parts)
      this.#hashPeer = s.ref.id
    } else {
      // The same source again (it came back, or offered again): what it sent stands, the rest is asked anew.
      for (let p = 0; p < parts; p++) if (this.#hashParts[p] === PART_ASKED) this.#hashParts[p] = PART_MISSING
    }
    this.#asked(s, Date.now())
    this.#askHashes(s)
  }

  /**
   * Asks `s` for the missing parts of the hash list, {@link HASH_WINDOW} at a time: a source that
   * offers again and again under fresh ids gets a few requests each time, not the whole list.
   */
  #askHashes(s: Source): void {
    const parts = this.#hashParts!
    let asked = 0
    for (const p of parts) if (p === PART_ASKED) asked++
    for (let p = 0; p < parts.length && asked < HASH_WINDOW; p++) {
      if (parts[p] !== PART_MISSING) continue
      parts[p] = PART_ASKED
      asked++
      const start = p * Limits.hashesPerMessage
      const count = Math.min(Limits.hashesPerMessage, this.#n - start)
      this.#init.wire.send(s.ref.id, { type: 'GET_HASHES', id: s.id, start, count })
    }
  }

  #progress(force = false): void {
    const p = this.#meter.update(this.#chunks.haveBytes, force)
    if (!p) return
    let sources = 0
    for (const s of this.#sources.values()) if (s.state === 'active') sources++
    this.emit('progress', { ...p, sources })
  }

  #dirty(): void {
    if (!this.#init.dataDir || this.#saveTimer) return
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined
      void this.#save()
    }, this.#init.saveInterval)
    this.#saveTimer.unref?.()
  }

  /** Saves the bitmap of chunks on disk (after syncing them), one save at a time. */
  #save(): Promise<void> {
    if (this.#status === 'done' || this.#status === 'failed') return this.#part.settled()
    return this.#part.save(() => this.#chunks.bitmap())
  }

  /** Every chunk is in: read the part file back, check each chunk against its leaf, then publish. */
  async #complete(): Promise<void> {
    if (this.#status !== 'running') return
    this.#status = 'verifying'
    clearTimeout(this.#saveTimer)
    this.#saveTimer = undefined
    try {
      // A pause (the service closing) stops the check and waits for it before closing the file.
      this.#verifying = this.#part.verify(this.#leaves!, () => this.#status !== 'verifying')
      const bad = (await this.#verifying) as number[]
      this.#verifying = undefined
      if (this.#status !== 'verifying') return
      if (bad.length > 0) {
        // Changed on disk behind our back (or a write went wrong): fetch those chunks again, twice at most.
        if (++this.#verifyRounds > 2) {
          throw new FilesError('VERIFY_FAILED', `${this.name} does not match its root hash`)
        }
        for (const i of bad) this.#chunks.missing(i)
        this.#status = 'running'
        this.#schedule()
        return
      }
      const path = await this.#part.publish()
      for (const s of this.#sources.values()) {
        if (s.state !== 'dropped') this.#init.wire.send(s.ref.id, { type: 'DONE', id: s.id })
      }
      this.#status = 'done'
      this.#progress(true)
      const result = { path, root: this.root, size: this.size }
      this.#init.settled()
      this.emit('done', result)
      this.#resolve(result)
    } catch (err) {
      this.#verifying = undefined
      if ((this.#status as DownloadStatus) === 'paused') return
      this.#fail(
        err instanceof FilesError ? err : new FilesError('IO', `cannot finish ${this.name}`, { cause: err }),
      )
    }
  }

  #fail(error: FilesError, outOfSources = error.code === 'NO_SOURCES'): void {
    if (this.settled) return
    // Out of sources (gone, or every one cancelled) is not the end of the content: with a data
    // directory, what is verified is kept for a later offer of the root. Any other end (or no data
    // directory, or nothing verified) removes the part file: offers that are accepted and cancelled at
    // once must not leave files behind.
    const keep =
      outOfSources &&
      this.#init.dataDir !== undefined &&
      this.#status === 'running' &&
      this.#chunks.haveBytes > 0 &&
      this.#init.mayKeep?.() !== false
    if (keep) void this.#save()
    this.#status = 'failed'
    clearTimeout(this.#saveTimer)
    for (const s of this.#sources.values()) s.inflight.clear()
    this.#part.discard(keep)
    this.#init.settled()
    this.emit('failed', error)
    this.#reject(error)
  }

  /** Resolves when the files of a finished or failed download are closed (and removed, if failed). */
  whenClosed(): Promise<void> {
    return this.#part.settled()
  }
}
