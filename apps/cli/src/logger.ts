import { constants } from 'node:fs'
import { appendFile } from 'node:fs/promises'
import { LOG_LEVELS, type LogLevel } from './options.js'

/** A tiny structured logger: NDJSON lines appended to a file, in order. Never writes to the screen. */
export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void
  /** Waits for every line queued so far to reach the file. */
  flush(): Promise<void>
}

/** A logger that drops everything (no --log-file). */
export const silentLogger: Logger = {
  log() {},
  flush: () => Promise.resolve(),
}

/**
 * The first line is appended without waiting: a named pipe with no reader fails at once (and logging
 * stops) instead of holding the write, and with it the exit that waits for the log, for good. Later
 * lines wait as usual, so a reader that is merely slow (a pipe, `/dev/stdout`) loses nothing.
 */
const APPEND_NO_WAIT = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK

/**
 * Appends `{"time","level","event",...fields}` lines to `path`. Writes are chained so lines keep
 * their order; the first failure is reported once through `onError` and logging stops.
 */
export function fileLogger(path: string, level: LogLevel, onError: (err: unknown) => void): Logger {
  const threshold = LOG_LEVELS.indexOf(level)
  let chain: Promise<void> = Promise.resolve()
  let broken = false
  let first = true
  return {
    log(lvl, event, fields = {}) {
      if (broken || LOG_LEVELS.indexOf(lvl) > threshold) return
      const line = `${JSON.stringify({ time: new Date().toISOString(), level: lvl, event, ...fields }, replacer)}\n`
      const flag = first ? APPEND_NO_WAIT : 'a'
      first = false
      chain = chain.then(() =>
        appendFile(path, line, { mode: 0o600, flag }).catch((err: unknown) => {
          if (!broken) onError(err)
          broken = true
        }),
      )
    },
    flush: () => chain,
  }
}

/** Errors become `{name, code, message, stack}`; everything else as JSON would have it. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return {
      name: value.name,
      code: (value as { code?: unknown }).code,
      message: value.message,
      stack: value.stack,
    }
  }
  return value
}
