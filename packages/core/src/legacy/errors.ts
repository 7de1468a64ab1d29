/**
 * Stable codes of {@link LegacyError}: failures of a call on the legacy bridge. Frontends and tests
 * match on these, never on message text.
 *
 * | code | meaning |
 * | --- | --- |
 * | `MESSAGE_TOO_LONG` | the encoded legacy string would exceed 1024 bytes (one legacy `recv`); it is refused, never split |
 * | `INVALID_ADDRESS` | not a usable `host:port` (or, for our own address, not an `ip:port` a legacy peer can dial back) |
 * | `INVALID_NAME` | our legacy name is empty, longer than 64 bytes, or holds whitespace or control characters |
 * | `INVALID_TEXT` | the text is empty, not well-formed Unicode, or is exactly a command (`connect`, `exit`) |
 * | `UNKNOWN_PEER` | no legacy peer has that address or name (or several share the name) |
 * | `UNREACHABLE` | the legacy peer could not be dialed or the connection broke before the string was written |
 * | `TIMEOUT` | the send did not finish within `sendTimeout` |
 * | `ABORTED` | the caller's signal aborted |
 * | `STOPPED` | the bridge was closed |
 */
export const LegacyErrorCode = {
  MESSAGE_TOO_LONG: 'MESSAGE_TOO_LONG',
  INVALID_ADDRESS: 'INVALID_ADDRESS',
  INVALID_NAME: 'INVALID_NAME',
  INVALID_TEXT: 'INVALID_TEXT',
  UNKNOWN_PEER: 'UNKNOWN_PEER',
  UNREACHABLE: 'UNREACHABLE',
  TIMEOUT: 'TIMEOUT',
  ABORTED: 'ABORTED',
  STOPPED: 'STOPPED',
} as const
export type LegacyErrorCode = (typeof LegacyErrorCode)[keyof typeof LegacyErrorCode]

/** A failed call on the legacy bridge. `cause` holds the underlying transport error, if any. */
export class LegacyError extends Error {
  override readonly name = 'LegacyError'
  constructor(
    readonly code: LegacyErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/**
 * Why an inbound legacy connection (or a connection that never said what it was) was dropped.
 * Reported by the bridge's `dropped` event; never thrown.
 *
 * | code | meaning |
 * | --- | --- |
 * | `TOO_LONG` | more than 1024 bytes: a legacy message is one `recv` of at most 1024 |
 * | `EMPTY` | the connection closed without sending a byte |
 * | `INVALID_UTF8` | the bytes are not valid UTF-8 |
 * | `MALFORMED` | not `<ip>:<port> <name> <message>` (a part is missing or the message is empty) |
 * | `INVALID_ADDRESS` | the sender address is not a dialable `ip:port` |
 * | `INVALID_NAME` | the name is longer than 64 bytes or holds control characters |
 * | `SELF` | the message claims to come from our own address |
 * | `TIMEOUT` | the sender kept the connection open, trickling bytes, past `readTimeout` |
 * | `SILENT` | the connection sent nothing within the sniff timeout, so it was neither Parley nor legacy |
 * | `TOO_MANY_CONNECTIONS` | too many legacy connections (or connections not yet identified) at once |
 */
export const LegacyDropCode = {
  TOO_LONG: 'TOO_LONG',
  EMPTY: 'EMPTY',
  INVALID_UTF8: 'INVALID_UTF8',
  MALFORMED: 'MALFORMED',
  INVALID_ADDRESS: 'INVALID_ADDRESS',
  INVALID_NAME: 'INVALID_NAME',
  SELF: 'SELF',
  TIMEOUT: 'TIMEOUT',
  SILENT: 'SILENT',
  TOO_MANY_CONNECTIONS: 'TOO_MANY_CONNECTIONS',
} as const
export type LegacyDropCode = (typeof LegacyDropCode)[keyof typeof LegacyDropCode]
