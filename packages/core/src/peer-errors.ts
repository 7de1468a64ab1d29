/** Stable codes of errors raised by a peer. Frontends and tests match on these. */
export const PeerErrorCode = {
  NOT_RUNNING: 'NOT_RUNNING',
  ALREADY_STARTED: 'ALREADY_STARTED',
  SELF_CONNECT: 'SELF_CONNECT',
  REJECTED: 'REJECTED',
  INCOMPATIBLE_VERSION: 'INCOMPATIBLE_VERSION',
  IDENTITY_MISMATCH: 'IDENTITY_MISMATCH',
  IDENTITY_INVALID: 'IDENTITY_INVALID',
  KEY_FILE_INSECURE: 'KEY_FILE_INSECURE',
  HANDSHAKE_TIMEOUT: 'HANDSHAKE_TIMEOUT',
  HANDSHAKE_FAILED: 'HANDSHAKE_FAILED',
  UNKNOWN_PEER: 'UNKNOWN_PEER',
  NOT_CONNECTED: 'NOT_CONNECTED',
  PEER_GONE: 'PEER_GONE',
  ACK_TIMEOUT: 'ACK_TIMEOUT',
  REFUSED: 'REFUSED',
  MESSAGE_TOO_LONG: 'MESSAGE_TOO_LONG',
  INVALID_TEXT: 'INVALID_TEXT',
  QUERY_TIMEOUT: 'QUERY_TIMEOUT',
  STOPPED: 'STOPPED',
  ABORTED: 'ABORTED',
  DIAL_FAILED: 'DIAL_FAILED',
  KEY_CHANGED: 'KEY_CHANGED',
  /** A peer known by id was dialed at an address it was heard at, and another peer answered there. */
  WRONG_PEER: 'WRONG_PEER',
  DENIED: 'DENIED',
  QUEUE_FULL: 'QUEUE_FULL',
  TOO_MANY_CONNECTIONS: 'TOO_MANY_CONNECTIONS',
  /** The remote peer does not run the service (protocol) asked for. */
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  /** A remote peer went past a resource bound (memory, queue, rate); its connection was closed. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /** Our own display name cannot go on the wire: a control, separator or bidi character, or white space at an end. */
  INVALID_NAME: 'INVALID_NAME',
  /** The known-peers file is not one (corrupt, or another format): it names the file, never the key. */
  KNOWN_PEERS_INVALID: 'KNOWN_PEERS_INVALID',
  /** Saving a peer's key to the known-peers file failed (disk full, permissions). */
  KNOWN_PEERS_WRITE_FAILED: 'KNOWN_PEERS_WRITE_FAILED',
} as const
export type PeerErrorCode = (typeof PeerErrorCode)[keyof typeof PeerErrorCode]

/**
 * Codes of dial failures after which dialing the same address again cannot help (a malformed address,
 * a refusal, a key to decide on, this peer stopping): frontends that retry a dial stop at these.
 */
export const FINAL_DIAL_CODES: ReadonlySet<string> = new Set([
  'INVALID_ADDRESS',
  'SELF_CONNECT',
  'KEY_CHANGED',
  'WRONG_PEER',
  'INCOMPATIBLE_VERSION',
  'IDENTITY_MISMATCH',
  'HANDSHAKE_FAILED',
  'DENIED',
  'REJECTED',
  'NOT_RUNNING',
  'STOPPED',
  'ABORTED',
])

/** Any failure a peer reports. `cause` holds the underlying transport or protocol error. */
export class PeerError extends Error {
  override readonly name = 'PeerError'
  constructor(
    readonly code: PeerErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}
