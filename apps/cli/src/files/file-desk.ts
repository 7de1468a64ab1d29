import { basename, resolve } from 'node:path'
import {
  createFileService,
  type Download,
  type FileService,
  type IncomingOffer,
  type OutgoingTransfer,
  type Progress,
} from '@parley/files'
import { findConnected, namedLike, namesSelf } from '../find-connected.js'
import type { Logger } from '../logger.js'
import { sanitize } from '../view/format.js'
import type { Reporter } from '../view/reporter.js'
import { explainFileError } from './file-errors.js'
import type { FileListing, FilePeer, FileReport } from './file-report.js'
import { formatBytes, progressText } from './file-report.js'
import { offerId, offersNamed } from './offer-ids.js'

/** How progress shows: every event (NDJSON), on the chat view's status line, or as milestone lines. */
export type ProgressMode = 'events' | 'status' | 'milestones'

export interface FileDeskInit {
  /** Where accepted files go. */
  downloads: string
  /** Where a relative path given to `send-file` is meant from (where the user typed the command). */
  cwd: string
  /** Where partial downloads keep their state, to resume after a restart. */
  stateDir: string | undefined
  /** `--accept-files`: accept every offer without asking. */
  acceptAll: boolean
  reporter: Reporter
  logger: Logger
  /** How progress is shown; may change while running (the chat view opens and closes). */
  progress: () => ProgressMode
  /** Something on the status line changed (throttled by the desk to a few per second). */
  statusChanged?: () => void
  /** Commands in hints are written with a leading `/` (the chat view is open). @default false */
  slash?: () => boolean
}

/** The short id of a transfer: the first 8 hex digits of the root hash (offers: see `#offerId`). */
const shortId = (root: string) => root.slice(0, 8)
/** Status line redraws per second at most, whatever the number of transfers. */
const STATUS_EVERY_MS = 250
/** Percentages at which a progress line is printed where there is no status line. */
const MILESTONES = [25, 50, 75]

interface Running {
  readonly id: string
  readonly direction: 'in' | 'out'
  readonly name: string
  last: Extract<FileReport, { kind: 'progress' }> | undefined
  /** When `last` came (Date.now()). */
  lastAt: number
  milestone: number
}

/** No progress for this long: the status line says the transfer waits, rather than an old rate. */
const STALLED_MS = 5_000

/**
 * The CLI's side of file transfer: owns the file service, turns its events into report lines, and
 * runs the commands (`send-file`, `accept`, `decline`, `files`). Remote strings are passed on as
 * they are; the reporter sanitizes what it prints.
 */
export class FileDesk {
  readonly service: FileService
  readonly #init: FileDeskInit
  readonly #running = new Map<string, Running>()
  /** `send-file`s being hashed, by peer and path (one entry per command the user typed). */
  readonly #hashing = new Set<string>()
  /** Each waiting offer's number among the offers of its root (see {@link FileDesk.#offerId}). */
  readonly #seq = new WeakMap<IncomingOffer, number>()
  #statusTimer: ReturnType<typeof setTimeout> | undefined
  #stallTimer: ReturnType<typeof setTimeout> | undefined
  #lastStatus = 0
  #closed = false

  constructor(init: FileDeskInit) {
    this.#init = init
    this.service = createFileService({
      downloads: init.downloads,
      ...(init.stateDir !== undefined ? { dataDir: init.stateDir } : {}),
      autoAccept: init.acceptAll,
    })
    this.#wire()
  }

  #wire(): void {
    const { reporter, logger } = this.#init
    const s = this.service
    s.on('offer', (offer) => {
      logger.log('info', 'file offer', { from: offer.from.id, root: offer.root, size: offer.size })
      reporter.file({
        kind: 'offer',
        id: this.#offerId(offer),
        root: offer.root,
        name: offer.name,
        offeredName: offer.offeredName,
        size: offer.size,
        from: ref(offer.from),
        expiresInSeconds: Math.max(0, Math.round((offer.expiresAt - Date.now()) / 1000)),
      })
    })
    s.on('offer:expired', (offer) => this.#closedOffer(offer, 'expired'))
    s.on('offer:withdrawn', (offer) => this.#closedOffer(offer, 'withdrawn'))
    s.on('download', (d) => this.#watchDownload(d))
    s.on('transfer', (t) => this.#watchUpload(t))
  }

  #closedOffer(offer: IncomingOffer, how: 'expired' | 'withdrawn' | 'declined' | 'left'): void {
    this.#init.reporter.file({ kind: 'closed', id: this.#offerId(offer), name: offer.name, how })
  }

  #watchDownload(d: Download): void {
    const id = shortId(d.root)
    const resumed = d.bytes
    const wanted = d.name
    const key = `in:${d.root}`
    const auto = this.#init.acceptAll
    this.#running.set(key, { id, direction: 'in', name: d.name, last: undefined, lastAt: 0, milestone: 0 })
    this.#init.reporter.file({ kind: 'started', id, root: d.root, name: d.name, size: d.size, resumed, auto })
    d.on('progress', (p) => this.#progress(key, p))
    d.on('corrupt', (e) =>
      this.#init.logger.log('warn', 'file corrupt chunk', {
        root: d.root,
        from: e.source.id,
        chunk: e.chunk,
      }),
    )
    d.finished.then(
      (result) => {
        this.#ended(key)
        const saved = basename(result.path)
        this.#init.reporter.file({
          kind: 'done',
          id,
          root: result.root,
          name: saved,
          size: result.size,
          path: result.path,
          resumed,
          wanted: saved !== wanted ? wanted : undefined,
        })
        this.#init.logger.log('info', 'file saved', { root: result.root, path: result.path })
      },
      (err: unknown) => {
        this.#ended(key)
        // Our own shutdown pauses downloads to resume later: that is not a failure to report.
        if (this.#closed) return
        const why = explainFileError(err)
        if (why.code === 'CANCELLED')
          why.reason = this.#cancelledHere.has(d) ? 'you cancelled it' : 'the sender cancelled it'
        this.#init.reporter.file({ kind: 'failed', direction: 'in', id, name: d.name, ...why })
        this.#init.logger.log('warn', 'file failed', { root: d.root, err })
      },
    )
  }

  #watchUpload(t: OutgoingTransfer): void {
    const id = shortId(t.root)
    const key = `out:${t.peerId}:${t.id}`
    const to = this.#peerRef(t.peerId)
    this.#running.set(key, { id, direction: 'out', name: t.name, last: undefined, lastAt: 0, milestone: 0 })
    this.#init.reporter.file({ kind: 'offered', id, root: t.root, name: t.name, size: t.size, to })
    t.on('accepted', () => this.#init.reporter.file({ kind: 'accepted', id, name: t.name, to }))
    t.on('progress', (p) => this.#progress(key, p))
    t.finished.then(
      () => {
        this.#ended(key)
        this.#init.reporter.file({ kind: 'sent', id, root: t.root, name: t.name, size: t.size, to })
      },
      (err: unknown) => {
        this.#ended(key)
        if (this.#closed) return
        const why = explainFileError(err, { peer: to.name, path: t.path })
        // Cancelled, and not by the user here: the receiver stopped it, or never came back for the rest.
        if (why.code === 'CANCELLED')
          why.reason = this.#cancelledHere.has(t)
            ? 'you cancelled it'
            : `${sanitize(to.name)} cancelled it, or did not come back for the rest in time`
        this.#init.reporter.file({ kind: 'failed', direction: 'out', id, name: t.name, ...why })
      },
    )
  }

  #progress(key: string, p: Progress): void {
    const r = this.#running.get(key)
    if (!r || this.#closed) return
    const report = {
      kind: 'progress' as const,
      direction: r.direction,
      id: r.id,
      name: r.name,
      bytes: p.bytes,
      size: p.size,
      rate: p.bytesPerSecond,
      secondsLeft: p.secondsLeft,
    }
    r.last = report
    r.lastAt = Date.now()
    switch (this.#init.progress()) {
      case 'events':
        // The library already sends at most one per progressInterval (250 ms) per transfer.
        if (p.bytes < p.size) this.#init.reporter.file(report)
        return
      case 'status':
        this.#statusSoon()
        // Redrawn once more if nothing follows (a source gone quiet), so the line says it waits.
        clearTimeout(this.#stallTimer)
        this.#stallTimer = setTimeout(() => this.#statusSoon(), STALLED_MS)
        this.#stallTimer.unref?.()
        return
      case 'milestones': {
        const pct = p.size === 0 ? 100 : (p.bytes / p.size) * 100
        const next = MILESTONES.filter((m) => m <= pct && m > r.milestone).at(-1)
        if (next !== undefined && p.bytes < p.size) {
          r.milestone = next
          this.#init.reporter.file(report)
        }
      }
    }
  }

  #ended(key: string): void {
    this.#running.delete(key)
    if (this.#init.progress() === 'status') this.#statusSoon()
  }

  /** Redraws the status line at most every STATUS_EVERY_MS, and always once after the last change. */
  #statusSoon(): void {
    if (this.#statusTimer || !this.#init.statusChanged) return
    const wait = Math.max(0, this.#lastStatus + STATUS_EVERY_MS - Date.now())
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = undefined
      this.#lastStatus = Date.now()
      if (!this.#closed) this.#init.statusChanged?.()
    }, wait)
    this.#statusTimer.unref?.()
  }

  /** The transfers for the chat view's status line: `↓ photo.jpg 43% 12.3 MB/s 0:07 left · ↑ a.zip 5% …`. */
  statusText(): string {
    const shown = [...this.#running.values()].filter((r) => r.last !== undefined)
    if (shown.length === 0) return ''
    // One entry per transfer; the status line is one row, so past three only a count.
    const now = Date.now()
    const parts = shown.slice(0, 3).map((r) => progressText(r.last!, now - r.lastAt >= STALLED_MS))
    if (shown.length > 3) parts.push(`+${shown.length - 3} more (/files)`)
    return parts.join(' · ')
  }

  #peerRef(peerId: string): FilePeer {
    const p = this.service.peers().find((x) => x.id === peerId)
    if (p) {
      // Kept for when it has left, with transfers still listed (bounded: one name per peer, 256).
      this.#names.delete(peerId)
      this.#names.set(peerId, p.name)
      if (this.#names.size > 256) this.#names.delete(this.#names.keys().next().value!)
    }
    return { id: peerId, name: p?.name ?? this.#names.get(peerId) ?? peerId.slice(0, 8) }
  }

  /** The names of peers transfers were with, for when they are gone (see #peerRef). */
  readonly #names = new Map<string, string>()

  // ---- commands -------------------------------------------------------------------------------

  /**
   * Offers a file to a connected peer (by name, fingerprint, id prefix or address, as `/to` takes).
   * Resolves once offered (not when received: the lines say that later). Never rejects.
   */
  async sendFile(
    peer: Parameters<typeof findConnected>[0],
    target: string,
    path: string,
    signal?: AbortSignal,
  ): Promise<OutgoingTransfer | undefined> {
    const { reporter } = this.#init
    const namesakes = namedLike(peer, target)
    const to =
      namesakes.length === 1
        ? peer.peers().connected.find((p) => p.id === namesakes[0]!.id)
        : findConnected(peer, target)
    if (namesakes.length > 1) {
      reporter.problem({
        code: 'AMBIGUOUS',
        sentence: `${namesakes.length} peers are called ${target} — name one by fingerprint or id prefix`,
      })
      return undefined
    }
    if (!to) {
      const sentence = namesSelf(peer, target)
        ? `${target} is you — name the peer to send it to`
        : `no connected peer matches "${target}"`
      reporter.problem({ code: 'NOT_CONNECTED', sentence })
      return undefined
    }
    const full = resolve(this.#init.cwd, path)
    // The same file to the same peer while an offer of it is open: the receiver would take the new
    // offer as the same one (one key per peer and root), leaving the first stuck in "offered" until it
    // expires. One line instead; once the first ends, it can be sent again.
    const open = this.service
      .transfers()
      .find(
        (t) => t.peerId === to.id && t.path === full && (t.status === 'offered' || t.status === 'accepted'),
      )
    if (open) {
      const state = open.status === 'offered' ? 'offered to' : 'being sent to'
      const waiting = open.status === 'offered' ? ' and waiting for an answer' : ''
      reporter.note(
        `${sanitize(open.name)} is already ${state} ${sanitize(to.name)}${waiting} — not offered again`,
      )
      return open
    }
    // Still hashing the same file for the same peer (a large file takes a while): the same answer.
    const key = `${to.id}\0${full}`
    if (this.#hashing.has(key)) {
      reporter.note(
        `${sanitize(basename(full))} is already being offered to ${sanitize(to.name)} — not offered again`,
      )
      return undefined
    }
    this.#hashing.add(key)
    try {
      return await this.service.offer(to.id, full, signal ? { signal } : {})
    } catch (err) {
      const why = explainFileError(err, { path, peer: to.name })
      reporter.file({ kind: 'failed', direction: 'out', id: '-', name: basename(path), ...why })
      return undefined
    } finally {
      this.#hashing.delete(key)
    }
  }

  /**
   * What users type to name a waiting offer: the shortest prefix (≥ 8) no other offer's root shares.
   * Offers of one root that claim another size or chunking are separate offers (a peer can offer any
   * root): those get `-1`, `-2`, … in the order they came, a number each keeps while it waits.
   */
  #offerId(offer: IncomingOffer, waiting: readonly IncomingOffer[] = this.service.offers()): string {
    const offers = waiting.includes(offer) ? waiting : [...waiting, offer]
    const id = offerId(
      offer.root,
      offers.map((o) => o.root),
    )
    const same = offers.filter((o) => o.root === offer.root)
    const n = this.#seqOf(offer, same)
    return n > 1 || same.length > 1 ? `${id}-${n}` : id
  }

  /** The offer's number among those of its root; numbers are given in arrival order and never reused while any waits. */
  #seqOf(offer: IncomingOffer, same: readonly IncomingOffer[]): number {
    for (const o of same) {
      if (this.#seq.has(o)) continue
      let top = 0
      for (const other of same) top = Math.max(top, this.#seq.get(other) ?? 0)
      this.#seq.set(o, top + 1)
    }
    return this.#seq.get(offer) ?? 1
  }

  /**
   * The offer an id names (its whole root first, then a prefix); without one, the only offer waiting.
   * Reports when none fits.
   */
  #pick(id: string | undefined, verb: string): IncomingOffer | undefined {
    const offers = this.service.offers()
    const { reporter } = this.#init
    // `1a2b3c4d-2`: the second offer of that root (see #offerId).
    const numbered = id === undefined ? null : /^([0-9a-f]+)-(\d+)$/i.exec(id.trim())
    const hits =
      id === undefined
        ? offers
        : numbered
          ? offersNamed(offers, numbered[1]!).filter(
              (o) =>
                this.#seqOf(
                  o,
                  offers.filter((x) => x.root === o.root),
                ) === Number(numbered[2]),
            )
          : offersNamed(offers, id.trim())
    if (hits.length === 1) return hits[0]
    if (hits.length === 0) {
      reporter.problem({
        code: 'NO_OFFER',
        sentence:
          id === undefined
            ? 'no offer is waiting'
            : `no offer waiting has the id ${sanitize(id)} — ${this.#init.slash?.() ? '/' : ''}files lists them`,
      })
    } else {
      reporter.problem({
        code: 'AMBIGUOUS',
        sentence: `${hits.length} offers are waiting — ${verb} one by id: ${hits.map((o) => `${this.#offerId(o, offers)} (${sanitize(o.name)}, ${formatBytes(o.size)}, from ${sanitize(o.from.name)})`).join(', ')}`,
      })
    }
    return undefined
  }

  /** Accepts an offer into the download folder. Never rejects. */
  async accept(id: string | undefined): Promise<void> {
    const offer = this.#pick(id, 'accept')
    if (!offer) return
    try {
      await offer.accept()
    } catch (err) {
      const why = explainFileError(err, { path: this.#init.downloads })
      this.#init.reporter.file({
        kind: 'failed',
        direction: 'in',
        id: shortId(offer.root),
        name: offer.name,
        ...why,
      })
    }
  }

  /**
   * A peer said goodbye: its offers that no other connected peer also offers are dropped (declined,
   * one line each), rather than waiting to be accepted into a download nobody can feed.
   */
  senderLeft(peerId: string): void {
    if (this.#closed) return
    const online = new Set(this.service.peers().map((p) => p.id))
    const offers = this.service.offers()
    for (const offer of offers) {
      if (offer.status !== 'pending' || !offer.sources.some((s) => s.id === peerId)) continue
      if (offer.sources.some((s) => s.id !== peerId && online.has(s.id))) continue
      const id = this.#offerId(offer, offers)
      offer.decline()
      this.#init.reporter.file({ kind: 'closed', id, name: offer.name, how: 'left' })
    }
  }

  decline(id: string | undefined): void {
    const offer = this.#pick(id, 'decline')
    if (!offer) return
    offer.decline()
    this.#closedOffer(offer, 'declined')
  }

  /**
   * Stops the transfers `id` names (the id `files` lists: a prefix of the file's root), sending and
   * receiving; each says so as it ends. A receiver that quit for good would otherwise hold an upload
   * for the whole time it is waited for.
   */
  cancel(id: string): void {
    const want = id.trim().toLowerCase()
    const downloads = this.service
      .downloads()
      .filter((d) => d.status === 'running' && d.root.startsWith(want))
    const uploads = this.service.transfers().filter((t) => !t.settled && t.root.startsWith(want))
    if (want.length < 4 || !/^[0-9a-f]+$/.test(want) || downloads.length + uploads.length === 0) {
      this.#init.reporter.problem({
        code: 'NO_TRANSFER',
        sentence: `no transfer running has the id ${sanitize(id)} — ${this.#init.slash?.() ? '/' : ''}files lists them`,
      })
      return
    }
    for (const t of uploads) {
      this.#cancelledHere.add(t)
      t.cancel()
    }
    for (const d of downloads) {
      this.#cancelledHere.add(d)
      void d.cancel()
    }
  }

  /** Transfers the user cancelled here: their CANCELLED is theirs, not the other side's. */
  readonly #cancelledHere = new WeakSet<Download | OutgoingTransfer>()

  listing(): FileListing {
    const now = Date.now()
    const offers = this.service.offers()
    return {
      offers: offers.map((o) => ({
        id: this.#offerId(o, offers),
        root: o.root,
        name: o.name,
        size: o.size,
        from: ref(o.from),
        expiresInSeconds: Math.max(0, Math.round((o.expiresAt - now) / 1000)),
      })),
      downloads: this.service.downloads().map((d) => ({
        id: shortId(d.root),
        name: d.name,
        size: d.size,
        bytes: d.bytes,
        sources: d.sources().filter((s) => s.state === 'active').length,
      })),
      uploads: this.service.transfers().map((t) => ({
        id: shortId(t.root),
        name: t.name,
        size: t.size,
        to: this.#peerRef(t.peerId),
        status: t.status,
      })),
    }
  }

  list(): void {
    this.#init.reporter.files(this.listing())
  }

  /** Saves partial downloads for a later resume and stops every transfer. Call before `peer.stop()`. */
  async close(): Promise<void> {
    // Closing the service withdraws our unanswered offers; the user should hear that, not find out from the peer.
    if (!this.#closed) {
      for (const t of this.service.transfers()) {
        if (t.status !== 'offered') continue
        const to = this.#peerRef(t.peerId)
        this.#init.reporter.file({ kind: 'unoffered', id: shortId(t.root), name: t.name, to })
      }
      // And a download cut short: whether it can go on later.
      for (const d of this.service.downloads()) {
        if (d.status !== 'running') continue
        this.#init.reporter.file({
          kind: 'paused',
          id: shortId(d.root),
          name: d.name,
          bytes: d.bytes,
          size: d.size,
          resumable: this.#init.stateDir !== undefined,
        })
      }
    }
    this.#closed = true
    clearTimeout(this.#statusTimer)
    clearTimeout(this.#stallTimer)
    await this.service.close()
  }
}

const ref = (p: { id: string; name: string }): FilePeer => ({ id: p.id, name: p.name })
