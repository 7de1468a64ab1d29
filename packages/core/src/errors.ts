/** Stable error codes of the core package. Tests and frontends match on these, never on message text. */
export const TransportErrorCode = {
  CONNECTION_REFUSED: 'CONNECTION_REFUSED',
  ADDRESS_IN_USE: 'ADDRESS_IN_USE',
  INVALID_ADDRESS: 'INVALID_ADDRESS',
  DIAL_TIMEOUT: 'DIAL_TIMEOUT',
  ABORTED: 'ABORTED',
  CONNECTION_RESET: 'CONNECTION_RESET',
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
} as const
export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode]

/** A failure moving bytes: dialing, listening, or a connection that broke. */
export class TransportError extends Error {
  override readonly name = 'TransportError'
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}
