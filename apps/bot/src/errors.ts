/** Stable codes of errors raised by the bot package. The CLI maps them to exit codes; tests match on them. */
export const BotErrorCode = {
  /** Bad flags or arguments (exit code 2). */
  USAGE: 'USAGE',
  /** The script file could not be read (exit code 2). */
  SCRIPT_UNREADABLE: 'SCRIPT_UNREADABLE',
  /** The script is not valid JSON/YAML or does not follow the script format (exit code 2). */
  SCRIPT_INVALID: 'SCRIPT_INVALID',
  /** An `assert` step found the network not as expected (exit code 1). */
  ASSERTION_FAILED: 'ASSERTION_FAILED',
  /** A wait or a step ran out of time. */
  TIMEOUT: 'TIMEOUT',
  /** The caller's signal aborted the work. */
  ABORTED: 'ABORTED',
} as const
export type BotErrorCode = (typeof BotErrorCode)[keyof typeof BotErrorCode]

/** Any failure the bot package reports. `cause` holds the underlying peer or transport error. */
export class BotError extends Error {
  override readonly name: string = 'BotError'
  constructor(
    readonly code: BotErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/**
 * A script that does not follow the format. `problems` holds every problem found, each a sentence that
 * names the file, the line (when known) and the field path: `hello.yaml line 7: steps[2].send.to is required`.
 */
export class ScriptValidationError extends BotError {
  override readonly name = 'ScriptValidationError'
  constructor(readonly problems: readonly string[]) {
    const first = problems[0] ?? 'the script is invalid'
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''
    super('SCRIPT_INVALID', `${first}${more}`)
  }
}

/**
 * One sentence a user can act on, for any error the bot meets: peer and transport errors keep their own
 * message (they already name the peer or address), a few common codes get a hint.
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err as { code?: unknown }).code
  if (code === 'ADDRESS_IN_USE')
    return `${stripPeriod(err.message)} — pick another port with --port (0 picks a free one)`
  if (code === 'EADDRINUSE')
    return 'the address is already in use — pick another port with --port (0 picks a free one)'
  return stripPeriod(err.message)
}

function stripPeriod(s: string): string {
  return s.endsWith('.') ? s.slice(0, -1) : s
}
