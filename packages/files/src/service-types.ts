import type { EventEmitter } from 'node:events'
import type { Service } from '@parley/core'
import type { Download } from './download.js'
import type { IncomingOffer } from './offer.js'
import type { OutgoingTransfer } from './outgoing.js'
import type { PeerRef } from './wire.js'

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
   * `offer.from.id`. A peer a download dropped as a source (it lied or stalled) is not accepted
   * without asking for the next 10 minutes: its offers wait for `accept()`. @default false — offers
   * wait for `accept()`
   */
  autoAccept?: boolean | ((offer: IncomingOffer) => boolean)
  /**
   * An offer of a root whose partial download is saved in `dataDir` continues at once (the user
   * accepted it before). @default true
   */
  resume?: boolean
  /**
   * A partial download saved in `dataDir` that made no progress for this long is removed (its state and
   * its part file) when the service is created. `Infinity` keeps them. @default 30 days
   */
  partExpiry?: number
  /** An unanswered offer expires after this long (on both sides). @default 60_000 ms */
  offerTimeout?: number
  /**
   * An accepted transfer waits this long for a lost receiver to come back, or for a connected one's next
   * request while it sends nothing (then it fails with CANCELLED), and a download this long for one of
   * its sources (then it fails with NO_SOURCES). @default 600_000 ms
   */
  resumeTimeout?: number
  /** Chunk size of files we offer (a power of two, 32 KiB to 16 MiB). @default 256 KiB */
  chunkSize?: number
  /** Chunks in flight per source: what a transfer can put in front of chat on a link. @default 2 */
  window?: number
  /**
   * Bytes of chunks in flight per download over all its sources (the receiver holds them until they are
   * verified and written); at least one chunk. @default 16 MiB
   */
  maxBuffered?: number
  /** A source that delivers nothing for this long while asked is dropped. @default 30_000 ms */
  requestTimeout?: number
  /**
   * Bytes per second a source must deliver while asked, measured over each `requestTimeout`; a slower
   * one is dropped as slow (a source trickling a piece now and then would otherwise keep its download
   * running forever). 0 turns the check off. @default 8 KiB/s
   */
  minRate?: number
  /** Corrupt chunks after which a source is dropped. @default 3 */
  maxStrikes?: number
  /**
   * Offers waiting for an answer, in all. When it is full, an offer from a peer holding fewer offers
   * than the peer holding the most pushes out that peer's oldest offer (declined BUSY, announced as
   * `offer:expired`); otherwise it is declined BUSY. @default 64
   */
  maxOffers?: number
  /** Offers waiting for an answer from one peer; more are declined as BUSY. @default 8 */
  maxOffersPerPeer?: number
  /** Downloads running at once. @default 8 */
  maxDownloads?: number
  /** Downloads one peer feeds (as a source) past which its offers are not auto-accepted. @default 4 */
  maxDownloadsPerPeer?: number
  /** Peers offering one root that are fetched from; more are declined as BUSY. @default 16 */
  maxSources?: number
  /**
   * How many copies of a file we offered (its bytes and hash list) one receiver may fetch per offer;
   * past it the transfer fails with SERVE_LIMIT. Reconnections and refetched chunks fit well within
   * the default; a peer asking again and again does not. @default 4
   */
  maxServedCopies?: number
  /**
   * Bytes of the download folder's file system kept free: an accept that would leave less (counting
   * what running downloads still need) fails with NO_SPACE. @default 1 GiB
   */
  minFreeSpace?: number
  /** Progress events at most this often per transfer. @default 250 ms */
  progressInterval?: number
  /** The verified bitmap is saved at most this often. @default 1_000 ms */
  saveInterval?: number
}

/** Options of {@link FileService.offer}. */
export interface OfferOptions {
  /** The name to offer. @default the file's base name */
  name?: string
  /** Aborting cancels the transfer (and the hashing before the offer). */
  signal?: AbortSignal
}

/** Events of a {@link FileService}. */
export interface FileServiceEvents {
  /** A peer offers a file: call `accept()` or `decline()`, or let it expire. */
  offer: [offer: IncomingOffer]
  /**
   * An offer nobody answered in `offerTimeout`, or one pushed out of a full inbox to make room for a
   * peer holding fewer offers (see `maxOffers`): drop it from view.
   */
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

export const DEFAULTS = {
  offerTimeout: 60_000,
  partExpiry: 30 * 24 * 3_600_000,
  resumeTimeout: 600_000,
  window: 2,
  maxBuffered: 16 * 1024 * 1024,
  requestTimeout: 30_000,
  minRate: 8 * 1024,
  maxStrikes: 3,
  maxOffers: 64,
  maxOffersPerPeer: 8,
  maxDownloads: 8,
  maxDownloadsPerPeer: 4,
  maxSources: 16,
  maxServedCopies: 4,
  minFreeSpace: 1024 * 1024 * 1024,
  progressInterval: 250,
  saveInterval: 1_000,
}
