/** Stable codes of file-transfer errors. Frontends and tests match on these, never on the text. */
export const FilesErrorCode = {
  /** A message on the files channel broke the format (docs/FILES.md); the session ends as a violation. */
  MALFORMED: 'MALFORMED',
  /** The peer is not connected, or does not run `parley/files/1`. */
  NOT_CONNECTED: 'NOT_CONNECTED',
  /** The receiver declined the offer. */
  DECLINED: 'DECLINED',
  /** Nobody answered the offer in time (or the receiver already let it expire). */
  EXPIRED: 'EXPIRED',
  /** The other side cancelled the transfer, or this side did (`cancel()`, an abort signal, `close()`). */
  CANCELLED: 'CANCELLED',
  /** The receiver has too many offers waiting or downloads running. */
  BUSY: 'BUSY',
  /** The file to send is not a regular file, cannot be read, or is too large. */
  BAD_FILE: 'BAD_FILE',
  /** The file changed on the sender's disk during the transfer. */
  FILE_CHANGED: 'FILE_CHANGED',
  /** Not enough free space in the download folder. */
  NO_SPACE: 'NO_SPACE',
  /** No source is left that can deliver the content (all gone, slow, or lying). */
  NO_SOURCES: 'NO_SOURCES',
  /** The file on disk does not match its root hash, even after refetching. */
  VERIFY_FAILED: 'VERIFY_FAILED',
  /** Reading or writing the file or the download state failed. */
  IO: 'IO',
  /**
   * The receiver asked for the file (chunks and hash list) more than `maxServedCopies` times over: the
   * transfer was stopped (the receiver gets CANCEL FAILED).
   */
  SERVE_LIMIT: 'SERVE_LIMIT',
  /** The offer was already answered. */
  ANSWERED: 'ANSWERED',
} as const
export type FilesErrorCode = (typeof FilesErrorCode)[keyof typeof FilesErrorCode]

/**
 * Why a file cannot be offered (`BAD_FILE`), so a frontend can say it in its own words without
 * reading the message: no such file, permission denied, a folder, not a regular file (a device, a
 * socket), over the chunk limit, or a read that failed (`cause` holds the system error).
 */
export type BadFileReason = 'missing' | 'denied' | 'folder' | 'not-regular' | 'too-large' | 'unreadable'

/** Any failure of the file service; `cause` holds the underlying error. */
export class FilesError extends Error {
  override readonly name = 'FilesError'
  /** Set on `BAD_FILE` only. */
  readonly reason: BadFileReason | undefined

  constructor(
    readonly code: FilesErrorCode,
    message: string,
    options?: ErrorOptions & { reason?: BadFileReason },
  ) {
    super(message, options)
    this.reason = options?.reason
  }
}

/** `BAD_FILE` for a file system call on `path` that failed with `cause`. */
export function badFileError(message: string, cause: unknown): FilesError {
  const code = (cause as { code?: unknown } | null)?.code
  const reason: BadFileReason =
    code === 'ENOENT' || code === 'ENOTDIR'
      ? 'missing'
      : code === 'EACCES' || code === 'EPERM'
        ? 'denied'
        : code === 'EISDIR'
          ? 'folder'
          : 'unreadable'
  return new FilesError('BAD_FILE', message, { cause, reason })
}
