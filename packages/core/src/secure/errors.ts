/**
 * Stable codes of secure-channel failures. Tests and frontends match on these, never on message text.
 *
 * | code | meaning |
 * | --- | --- |
 * | `HANDSHAKE_FAILED` | the Noise handshake did not complete: bad bytes, a MAC failure (often a different network secret), or the connection ended mid-handshake |
 * | `HANDSHAKE_TIMEOUT` | the handshake did not finish within `handshakeTimeout` |
 * | `INTEGRITY` | a transport record failed authentication (tampered, replayed, reordered or truncated), or was empty or too short to hold its tag |
 * | `IDENTITY_INVALID` | the remote's identity payload is malformed or its signature does not verify, or our own identity is inconsistent |
 * | `RECORD_TOO_LARGE` | a record's length prefix exceeds the configured maximum |
 */
export const SecureChannelErrorCode = {
  HANDSHAKE_FAILED: 'HANDSHAKE_FAILED',
  HANDSHAKE_TIMEOUT: 'HANDSHAKE_TIMEOUT',
  INTEGRITY: 'INTEGRITY',
  IDENTITY_INVALID: 'IDENTITY_INVALID',
  RECORD_TOO_LARGE: 'RECORD_TOO_LARGE',
} as const
export type SecureChannelErrorCode = (typeof SecureChannelErrorCode)[keyof typeof SecureChannelErrorCode]

/** A failure of the secure channel: its handshake, or the authentication of a record. */
export class SecureChannelError extends Error {
  override readonly name = 'SecureChannelError'
  constructor(
    readonly code: SecureChannelErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}
