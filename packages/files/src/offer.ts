import type { Download } from './download.js'
import { FilesError } from './errors.js'
import type { DownloadState } from './state.js'
import type { PeerRef } from './wire.js'

/** Where an incoming offer is: unanswered, being accepted, accepted, declined, expired, or withdrawn by every source. */
export type OfferStatus = 'pending' | 'accepting' | 'accepted' | 'declined' | 'expired' | 'withdrawn'

/** What accepting needs from the service (kept apart so the offer does not import the service). */
export interface OfferHost {
  accept(offer: IncomingOffer, options: AcceptOptions): Promise<Download>
  decline(offer: IncomingOffer): void
}

/** Options of {@link IncomingOffer.accept}. */
export interface AcceptOptions {
  /** Where the file goes. @default the service's `downloads` */
  dir?: string
  /** Aborting cancels the download (its part file is removed), or the accepting if it has not started. */
  signal?: AbortSignal
}

export interface OfferInit {
  root: Buffer
  name: string
  offeredName: string
  size: number
  chunkSize: number
  from: PeerRef
  id: Uint8Array
  expiresAt: number
  host: OfferHost
}

/**
 * A file offered to us, waiting for an answer. Offers of the same root from several peers are one
 * offer with several sources (accepting it fetches from all of them).
 */
export class IncomingOffer {
  /** Root hash, hex: what the file is, whoever offers it. */
  readonly root: string
  readonly rootBytes: Buffer
  /** The name it will be saved under (sanitized; a number is added if the name is taken). */
  readonly name: string
  /** The name exactly as offered (for display with care: it may hold anything). */
  readonly offeredName: string
  readonly size: number
  readonly chunkSize: number
  /** The first peer that offered it. */
  readonly from: PeerRef
  readonly receivedAt = Date.now()
  /** When an unanswered offer expires (ms since the epoch). */
  readonly expiresAt: number
  /** @internal Saved state of an earlier, unfinished download of this root: accepting continues it. */
  resume: DownloadState | undefined
  /** Bytes already verified on disk when resuming. */
  resumeBytes = 0
  status: OfferStatus = 'pending'
  timer: ReturnType<typeof setTimeout> | undefined
  readonly #sources = new Map<string, { ref: PeerRef; id: Uint8Array }>()
  readonly #host: OfferHost

  /** @internal The file service creates offers as OFFER messages arrive. */
  constructor(init: OfferInit) {
    this.root = init.root.toString('hex')
    this.rootBytes = init.root
    this.name = init.name
    this.offeredName = init.offeredName
    this.size = init.size
    this.chunkSize = init.chunkSize
    this.from = init.from
    this.expiresAt = init.expiresAt
    this.#host = init.host
    this.#sources.set(init.from.id, { ref: init.from, id: init.id })
  }

  /** Every peer offering this root. */
  get sources(): PeerRef[] {
    return [...this.#sources.values()].map((s) => s.ref)
  }

  /** @internal Every source with the transfer id it offered this root under. */
  sourceEntries(): { ref: PeerRef; id: Uint8Array }[] {
    return [...this.#sources.values()]
  }

  /** The transfer id `peerId` offered this root under, if it is a source. */
  sourceId(peerId: string): Uint8Array | undefined {
    return this.#sources.get(peerId)?.id
  }

  get sourceCount(): number {
    return this.#sources.size
  }

  /** @internal Another peer offers the same root: it becomes a source too (or updates its transfer id). */
  addSource(ref: PeerRef, id: Uint8Array): void {
    this.#sources.set(ref.id, { ref, id })
  }

  /** Removes a source that withdrew; true when none is left. */
  removeSource(peerId: string): boolean {
    this.#sources.delete(peerId)
    return this.#sources.size === 0
  }

  /**
   * Accepts: the file is fetched into `dir` (default: the service's `downloads`), as
   * `<name>.parley-part` until verified, then renamed to a name that does not exist yet. Takes the
   * folder, or `{ dir, signal }`.
   * @throws FilesError ANSWERED (already answered), NO_SPACE, BUSY (too many downloads), CANCELLED (the
   * signal aborted), IO
   */
  accept(options: string | AcceptOptions = {}): Promise<Download> {
    if (this.status !== 'pending') {
      return Promise.reject(
        new FilesError('ANSWERED', `the offer of ${this.name} was already ${this.status}`),
      )
    }
    return this.#host.accept(this, typeof options === 'string' ? { dir: options } : options)
  }

  /** Declines: every source is told. Does nothing when already answered. */
  decline(): void {
    if (this.status === 'pending') this.#host.decline(this)
  }
}
