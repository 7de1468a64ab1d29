import type { FilesMessage } from './codec.js'

/** Names a transfer: ids are chosen by senders, so they are only unique per sender. */
export function transferKey(peerId: string, id: Uint8Array): string {
  return `${peerId}:${Buffer.from(id).toString('hex')}`
}

/** A remote peer as the file service shows it. */
export interface PeerRef {
  readonly id: string
  readonly name: string
}

/**
 * What a transfer needs of the service's channels, by peer id: the seam that keeps transfers
 * testable without a session, and the import graph one-way (service → transfer, never back).
 */
export interface Wire {
  /** Sends if the peer's files channel is online; false when it is not (nothing is queued). */
  send(peerId: string, msg: FilesMessage): boolean
  online(peerId: string): boolean
  writable(peerId: string): boolean
  /** Resolves when the peer's channel drains, moves to another connection, or closes. */
  drained(peerId: string): Promise<void>
}

/** Progress of a transfer, emitted at most every `progressInterval` ms, and once at the end. */
export interface Progress {
  /** Bytes verified (receiver) or sent (sender). */
  readonly bytes: number
  readonly size: number
  /** Average rate since the transfer (or this resumption of it) started. */
  readonly bytesPerSecond: number
  /** Estimated; undefined until there is a rate. */
  readonly secondsLeft: number | undefined
}

/** Throttles progress to one report per interval, always passing the last one. */
export class ProgressMeter {
  readonly #started = Date.now()
  #last = 0
  readonly #base: number

  constructor(
    readonly size: number,
    readonly interval: number,
    base: number,
  ) {
    this.#base = base
  }

  /** The progress to report now, or undefined when the last one was too recent. */
  update(bytes: number, force = false): Progress | undefined {
    const now = Date.now()
    if (!force && bytes < this.size && now - this.#last < this.interval) return undefined
    this.#last = now
    const seconds = (now - this.#started) / 1000
    const rate = seconds > 0 ? (bytes - this.#base) / seconds : 0
    return {
      bytes,
      size: this.size,
      bytesPerSecond: rate,
      secondsLeft: rate > 0 ? (this.size - bytes) / rate : undefined,
    }
  }
}
