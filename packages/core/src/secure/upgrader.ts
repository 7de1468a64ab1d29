import type { AbortOptions, Connection } from '../transport.js'

/** A connection whose remote end has been authenticated (or, for {@link plaintextUpgrader}, explicitly not). */
export interface SecureConnection extends Connection {
  /**
   * The authenticated remote peer id: 64 lowercase hex characters of its raw Ed25519 public key.
   * The empty string means "not authenticated" (only {@link plaintextUpgrader} produces it): the
   * layer above must then trust what the remote claims in its HELLO.
   */
  readonly remotePeerId: string
  /**
   * True when `send()` has encrypted or copied the bytes by the time it returns, so the caller may
   * reuse its buffer (the Noise channel); otherwise `send()` takes ownership (see `Connection.send`).
   */
  readonly sendCopies?: boolean
  /**
   * The secure channel's protocol name, e.g. `Noise_XX_25519_AESGCM_SHA256`; undefined when the
   * connection is not encrypted.
   */
  readonly protocol?: string
  /**
   * Optional: the sole `data` listener gives back a chunk it has finished reading (it keeps no view of
   * it), so the connection may reuse the memory for a later chunk. Ignored for any chunk but the
   * last one emitted, and while other `data` listeners exist.
   */
  recycle?(chunk: Uint8Array): void
}

/** Options of one {@link ConnectionUpgrader.upgrade} call. */
export interface UpgradeOptions extends AbortOptions {
  /** `initiator` for the side that dialed, `responder` for the side that accepted. */
  role: 'initiator' | 'responder'
}

/**
 * Turns a raw byte stream into a {@link SecureConnection}. The upgrader owns `conn` from the call
 * on: on any failure it aborts `conn` before rejecting.
 */
export interface ConnectionUpgrader {
  /**
   * Resolves once the connection is secured. No event of the returned connection fires in the tick
   * it is handed out, so listeners attached right after `await` miss nothing.
   * @throws SecureChannelError `HANDSHAKE_FAILED`, `HANDSHAKE_TIMEOUT`, `IDENTITY_INVALID`;
   *   or `signal.reason` when the signal aborts.
   */
  upgrade(conn: Connection, options: UpgradeOptions): Promise<SecureConnection>
}
