/**
 * Every way a frame or a message body can violate the wire format. Tests and callers match on these
 * codes, never on message text. None of them crosses the wire: a peer that hits one closes the
 * connection (optionally after sending REJECT PROTOCOL_VIOLATION or GOODBYE).
 */
export const ProtocolErrorCode = {
  /** A frame's length prefix is above the receiver's maximum frame size (or a sender tried to frame such a body). */
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  /** A frame's length prefix is 0, a frame body has no message after its channel byte, or a message body is empty. */
  EMPTY_FRAME: 'EMPTY_FRAME',
  /** A message body ends in the middle of a field. */
  TRUNCATED: 'TRUNCATED',
  /** The type byte of a body is not a known MessageType (or encode got an unknown `type`). */
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  /** Bytes remain after the last field of a message. */
  TRAILING_BYTES: 'TRAILING_BYTES',
  /** A string field is not well-formed UTF-8 (decode) or not well-formed UTF-16 (encode). */
  INVALID_UTF8: 'INVALID_UTF8',
  /** A string field is longer, in UTF-8 bytes, than its limit in `Limits`. */
  STRING_TOO_LONG: 'STRING_TOO_LONG',
  /** A list field has more items than its limit in `Limits`. */
  LIST_TOO_LONG: 'LIST_TOO_LONG',
  /** A field value is out of range: a u64 above 2^53-1, a bad hex id, a number that does not fit its width. */
  INVALID_FIELD: 'INVALID_FIELD',
} as const
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode]

/**
 * The only error thrown by the codec and the frame decoder for bad input.
 *
 * @example
 * ```ts
 * try {
 *   decodeMessage(body)
 * } catch (err) {
 *   if (err instanceof ProtocolError && err.code === ProtocolErrorCode.TRUNCATED) { ... }
 * }
 * ```
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError'
  /** Stable machine-readable reason; see {@link ProtocolErrorCode}. */
  readonly code: ProtocolErrorCode

  /**
   * @param code - what went wrong
   * @param message - one sentence naming the field and the bound, e.g. "name is 70 bytes, over the 64-byte limit"
   * @param options - `cause`: the underlying error, if any
   */
  constructor(code: ProtocolErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}
