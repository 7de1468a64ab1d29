import type { LegacyBridge, Peer } from '@parley/core'
import type { FileDesk } from './files/file-desk.js'
import type { GonePeers } from './gone.js'
import type { Logger } from './logger.js'
import type { Reporter } from './view/reporter.js'

/** What the menu and the line commands share: the running peer and where to say things. */
export interface App {
  readonly peer: Peer
  readonly reporter: Reporter
  readonly logger: Logger
  /** Aborted when shutdown starts; every long call takes it. */
  readonly signal: AbortSignal
  /** Starts the one graceful shutdown (idempotent) and resolves when it is done. */
  shutdown(code: number): Promise<void>
  /** The terminal or pipe we print to failed (closed, or its reader left): a graceful stop follows. */
  outputGone(err: unknown): void
  /** The bridge to legacy plain-text peers, with `--legacy`. */
  readonly legacy?: LegacyBridge
  /** Peers known to have left (see GonePeers). */
  readonly gone?: GonePeers
  /** Every name a Parley peer uses or used here (connected, known, saved with a key). */
  readonly parleyNames?: () => readonly string[]
  /** File transfer: offers, downloads, uploads. */
  readonly files?: FileDesk
  /** Holds these peers' incoming messages until the returned function runs (see Inbox). */
  readonly hold?: (peerIds: readonly string[]) => () => void
}
