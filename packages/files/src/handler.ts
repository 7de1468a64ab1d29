import type { Channel, ServiceHandler } from '@parley/core'
import { decode, type FilesMessage } from './codec.js'

/** What a channel's handler reports to the service (kept apart so the handler does not import it). */
export interface HandlerHost {
  onMessage(handler: FilesHandler, msg: FilesMessage): void
  resumed(handler: FilesHandler): void
  closed(handler: FilesHandler): void
}

/** The file service on one session's channel: decodes frames, and wakes senders waiting for a drain. */
export class FilesHandler implements ServiceHandler {
  #waiters: (() => void)[] = []

  constructor(
    readonly host: HandlerHost,
    readonly channel: Channel,
  ) {}

  onFrame(body: Uint8Array): void {
    this.host.onMessage(this, decode(body))
  }

  /** Resolves when the channel drains, moves to another connection, or closes. */
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
    this.host.resumed(this)
  }

  onClose(): void {
    this.#wake()
    this.host.closed(this)
  }
}
