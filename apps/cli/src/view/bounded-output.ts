import type { TerminalStream } from './live-console.js'

/** Bytes a stream may hold unwritten before lines are dropped (see {@link boundedOutput}). */
export const MAX_PENDING_OUTPUT = 4 * 1024 * 1024

/**
 * Writes lines to `stream` while it holds at most `limit` bytes not yet taken by its reader; past that,
 * lines are dropped and counted, and `notice(count)` is written once the reader caught up (or before
 * the next line that fits). Peers
 * decide how fast lines come: a reader slower than them (a pipe read slowly, a paused terminal) would
 * otherwise grow this process's memory without bound.
 */
export function boundedOutput(
  stream: TerminalStream,
  notice: (dropped: number) => string,
  limit = MAX_PENDING_OUTPUT,
): (text: string) => void {
  let dropped = 0
  const tell = () => {
    if (dropped === 0) return
    stream.write(notice(dropped))
    dropped = 0
  }
  return (text) => {
    const pending = (stream as { writableLength?: number }).writableLength ?? 0
    if (pending > limit) {
      // Told once the reader has caught up, even if no line comes after.
      if (dropped++ === 0) stream.once('drain', tell)
      return
    }
    tell()
    stream.write(text)
  }
}
