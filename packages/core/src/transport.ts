import type { EventEmitter } from 'node:events'

/** Options every async call accepts. */
export interface AbortOptions {
  signal?: AbortSignal
}

/**
 * Lifecycle of a byte stream: `open` → `closing` (our side ended, waiting for theirs) → `closed`.
 * `abort()` jumps straight to `closed`.
 */
export type ConnectionStatus = 'open' | 'closing' | 'closed'

/** Events of a {@link Connection}: `data`, `drain`, `end`, then exactly one `close`. */
export interface ConnectionEvents {
  /**
   * A chunk of bytes, in order. Chunk boundaries mean nothing. The chunk is the listener's to keep
   * (no later event reuses its memory) but not to modify: other listeners, or the sender on the
   * memory transport, may look at the same bytes.
   */
  data: [chunk: Uint8Array]
  /** The write buffer emptied after `send()` returned false. */
  drain: []
  /** The remote end finished writing (half-close). We may still send. */
  end: []
  /** Fully closed. `error` is set when it was not a clean close. Emitted exactly once. */
  close: [error?: Error]
}

/**
 * A duplex byte stream between two endpoints.
 *
 * No event is emitted in the same tick that the connection is handed out
 * (by `dial()` resolving or by the listener callback), so listeners attached then miss nothing.
 */
export interface Connection extends EventEmitter<ConnectionEvents> {
  readonly status: ConnectionStatus
  /** The other end's address, as the transport spells it (`127.0.0.1:4000`, `[::1]:4000`, `mem:3`). */
  readonly remoteAddress: string
  readonly localAddress: string
  /**
   * Optional: the remote's network host (an IP address) when `remoteAddress` does not carry one — a
   * DHT connection is addressed by key but arrives from a UDP host. Per-host limits, network groups and
   * discouragement use it; without it they use the host part of `remoteAddress`.
   */
  readonly remoteHost?: string
  /**
   * Queues bytes. Returns false once the write buffer is over its high-water mark: wait for `drain`.
   *
   * Takes ownership of `bytes`: the connection may keep a reference until they are written, or even
   * hand the very same memory to the receiver (the memory transport does), so nothing is copied on
   * the way down. The caller must not modify `bytes` afterwards; a caller that reuses its buffer
   * sends a copy (`send(buffer.slice())`). Reading `bytes` again is fine, and so is sending views of
   * one buffer that nobody modifies.
   */
  send(bytes: Uint8Array): boolean
  /** Flushes what was sent, ends our side, and resolves when both sides have ended (or the signal aborts). */
  close(options?: AbortOptions): Promise<void>
  /** Drops buffers and ends now. `close` fires with `err`. Idempotent. */
  abort(err?: Error): void
  /** Stop delivering `data` (the remote sender then sees backpressure). */
  pause(): void
  /** Delivers `data` again after {@link Connection.pause}. */
  resume(): void
  /**
   * Optional: keep reading but drop what arrives without processing it (a secure channel then decrypts
   * nothing), while `end` and `close` still fire. Used while closing on a peer that broke a limit.
   */
  discardInput?(): void
}

/** What {@link Transport.listen} returns: the bound address, and a way to stop accepting. */
export interface Listener {
  /** The bound address, with the real port when 0 was asked for. */
  readonly address: string
  /** Stops accepting. Connections already accepted stay open. Idempotent. */
  close(): Promise<void>
}

/** Moves bytes. Nothing above this interface knows whether it is TCP or memory. */
export interface Transport {
  readonly name: string
  /** @throws TransportError `ADDRESS_IN_USE`, `INVALID_ADDRESS` */
  listen(address: string, onConnection: (conn: Connection) => void, options?: AbortOptions): Promise<Listener>
  /** @throws TransportError `CONNECTION_REFUSED`, `INVALID_ADDRESS`, `ABORTED`, `DIAL_TIMEOUT` */
  dial(address: string, options?: AbortOptions): Promise<Connection>
  /** Optional: releases what the transport itself holds (a DHT node); the peer calls it once stopped. */
  close?(): Promise<void>
}
