import type { FileHandle } from 'node:fs/promises'
import type { FilesError } from './errors.js'
import type { leafHasher } from './hash-tree.js'
import type { PeerRef, Progress, Wire } from './wire.js'

export interface DownloadTuning {
  /** Chunks in flight per source (requested, or verified and not yet written). */
  window: number
  /** Bytes of chunks in flight over all sources (at least one chunk). */
  maxBuffered: number
  /** A source that delivers nothing for this long while asked is dropped as slow. */
  requestTimeout: number
  /** Bytes per second a source asked for data must deliver, over each `requestTimeout`, or it is slow. */
  minRate: number
  /** A download none of whose sources is reachable fails with NO_SOURCES after this long. */
  resumeTimeout: number
  /** Corrupt chunks (or a bad hash list) after which a source is dropped as lying. */
  maxStrikes: number
  progressInterval: number
  /** The verified bitmap is saved at most this often while chunks arrive. */
  saveInterval: number
}

export interface DownloadInit extends DownloadTuning {
  root: Buffer
  name: string
  size: number
  chunkSize: number
  partPath: string
  finalPath: string
  fh: FileHandle
  /** Verified chunks from an earlier run (bitmap), if resuming. */
  verified: Uint8Array | undefined
  dataDir: string | undefined
  wire: Wire
  /** Called once when the download ends (done, failed or paused). */
  settled: () => void
  /**
   * Asked when the download runs out of sources with chunks verified: whether its part file and state
   * may stay for a later offer (false: they are removed). Called once; may count it against its sources.
   */
  mayKeep?: () => boolean
}

/**
 * Where a download is: fetching chunks, re-reading the whole part file before moving it into place,
 * saved, failed, or paused (the service closed; its state is kept for a later resume).
 */
export type DownloadStatus = 'running' | 'verifying' | 'done' | 'failed' | 'paused'

/** Why a source is no longer asked: it sent corrupt data too often, stalled, or cancelled its offer. */
export type DropReason = 'lying' | 'slow' | 'cancelled'

/**
 * What a source got wrong: a chunk that does not match its leaf, a piece of the wrong length, or a hash
 * list that does not add up to the root.
 */
export type CorruptReason = 'bad-chunk' | 'bad-piece' | 'bad-hashes'

/** A source sent something that failed verification (`chunk` is -1 for a hash list). */
export interface CorruptEvent {
  readonly source: PeerRef
  readonly chunk: number
  readonly reason: CorruptReason
}

/** Events of a {@link Download}. */
export interface DownloadEvents {
  progress: [progress: Progress & { readonly sources: number }]
  /**
   * A chunk from `source` did not match its leaf (`chunk` is its index), or its hash list did not add
   * up to the root (`chunk` is -1): it is fetched again, from another source if there is one.
   */
  corrupt: [event: CorruptEvent]
  /** A source is no longer asked: it lied `maxStrikes` times, stalled, or cancelled. */
  'source:dropped': [event: { readonly source: PeerRef; readonly reason: DropReason }]
  done: [result: DownloadResult]
  failed: [error: FilesError]
}

/** A finished download: the verified file and where it was saved. */
export interface DownloadResult {
  /** Where the verified file was saved (never an existing file's path). */
  readonly path: string
  /** Root hash, hex. */
  readonly root: string
  readonly size: number
}

export interface Source {
  readonly ref: PeerRef
  id: Uint8Array
  state: 'active' | 'offline' | 'dropped'
  dropReason: DropReason | undefined
  /** Chunks asked of it and not yet complete, by index. */
  readonly inflight: Map<number, Incoming>
  /** Chunks it delivered that are verified and still being written (count against its window). */
  writing: number
  strikes: number
  /** Last time it delivered something (or was first asked): the slow-source clock. */
  lastProgress: number
  /** Since when it has been asked without a break, and what it delivered since: the trickle check. */
  askedSince: number
  askedBytes: number
  /** Chunks it delivered and we kept. */
  chunks: number
  /**
   * When it stopped being asked with its asks unanswered (it went offline, its link was replaced, it
   * offered again under a fresh id, it cancelled): its clocks stop meanwhile and go on the next time it
   * is asked, so none of those is progress. Undefined otherwise.
   */
  pausedAt: number | undefined
}

export interface Incoming {
  readonly index: number
  readonly length: number
  received: number
  readonly hasher: ReturnType<typeof leafHasher>
  /** The chunk's pieces so far (copies): written in one call once the chunk verified. */
  readonly pieces: Buffer[]
}
