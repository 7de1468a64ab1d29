import { format } from 'node:util'
import { EXIT, type SignalSource } from './cli-io.js'
import type { Logger } from './logger.js'
import type { LiveConsole } from './view/live-console.js'

/** Shows the terminal cursor again (prompts hide it). */
export const SHOW_CURSOR = '\x1b[?25h'

const SIGNAL_CODES: ReadonlyArray<[NodeJS.Signals, number]> = [
  ['SIGINT', EXIT.SIGINT],
  ['SIGTERM', EXIT.SIGTERM],
  ['SIGHUP', EXIT.SIGHUP],
]

export interface SignalHandling {
  interactive: boolean
  /** Whether the graceful shutdown already began. */
  stopping: () => boolean
  shutdown: (code: number) => void
  /** A third signal during shutdown: leave at once. */
  forceExit: (code: number) => void
  /** Tells the user the shutdown goes on (the second signal). */
  note?: (text: string) => void
  /**
   * A launcher that forwards signals (pnpm, npm) makes one Ctrl+C arrive twice: the terminal sends it
   * to the whole process group, and the launcher passes its own copy on. The same signal again within
   * this many ms is taken for the same one. @default 0
   */
  repeatWindowMs?: number
  logger: Logger
}

/** Whether a package manager started us (it forwards the signals it gets): see `repeatWindowMs`. */
export function launchedByPackageManager(env: Readonly<Record<string, string | undefined>>): boolean {
  return env.npm_config_user_agent !== undefined || env.npm_lifecycle_event !== undefined
}

/**
 * SIGINT, SIGTERM and SIGHUP start the graceful shutdown. A second one while stopping is ignored
 * (Ctrl+C pressed twice by habit must not cut the GOODBYEs short); a third exits at once. Returns the undo.
 */
export function listenForSignals(signals: SignalSource, h: SignalHandling): () => void {
  const handlers: Array<[NodeJS.Signals, () => void]> = []
  let whileStopping = 0
  let last: { sig: NodeJS.Signals; at: number } | undefined
  for (const [sig, signalCode] of SIGNAL_CODES) {
    // At a terminal, Ctrl+C is the user leaving, whether it reached us as a key (raw mode) or as a
    // signal (between prompts): exit 0, as /quit does, so no package manager reports a failure.
    const code = sig === 'SIGINT' && h.interactive ? EXIT.OK : signalCode
    const handler = () => {
      const now = Date.now()
      if (last?.sig === sig && now - last.at < (h.repeatWindowMs ?? 0)) {
        h.logger.log('debug', 'the same signal again (forwarded by the launcher)', { signal: sig })
        return
      }
      last = { sig, at: now }
      if (h.stopping()) {
        whileStopping++
        if (whileStopping === 1) {
          h.logger.log('info', 'signal while stopping', { signal: sig })
          h.note?.(
            sig === 'SIGINT' && h.interactive
              ? 'still saying goodbye to every peer — Ctrl+C once more to leave at once'
              : `still stopping — ${sig} once more exits at once`,
          )
          return
        }
        // Third signal while stopping: the user means it. Leave now, cursor visible.
        h.logger.log('warn', 'forced exit', { signal: sig })
        h.forceExit(code)
        return
      }
      h.logger.log('info', 'signal', { signal: sig })
      h.shutdown(code)
    }
    // `on`, not `once`: inquirer's signal-exit re-raises the signal when it thinks it is the last
    // listener, killing the process before the GOODBYEs go out (CLI-UX.md §5, pitfall 2).
    signals.on(sig, handler)
    handlers.push([sig, handler])
  }
  return () => {
    for (const [sig, handler] of handlers.splice(0)) signals.off(sig, handler)
  }
}

/**
 * After a completed graceful stop, until the process is gone: a signal now (Ctrl+C pressed twice
 * quickly, the second landing after the stop took milliseconds) must not take Node's default action,
 * which would turn the chosen exit code (0 after Ctrl+C at a terminal) into 130. Never removed: the
 * listeners keep nothing alive, and main.ts bounds how long the process may linger.
 */
export function ignoreSignalsUntilExit(signals: SignalSource): void {
  // No logging here: the log was flushed as the stop ended, and a write now could hold the process open.
  for (const [sig] of SIGNAL_CODES) signals.on(sig, () => {})
}

/** A stray console.log from any library must not tear the prompt: route it above the prompt too. Returns the undo. */
export function captureConsole(ui: LiveConsole): () => void {
  const saved = { log: console.log, info: console.info, warn: console.warn, error: console.error }
  const toUi = (...args: unknown[]) => ui.log(format(...args))
  console.log = toUi
  console.info = toUi
  console.warn = toUi
  console.error = toUi
  return () => Object.assign(console, saved)
}
