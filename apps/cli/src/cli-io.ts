import type { PeerInit, Transport } from '@parley/core'
import type { RetryPolicy } from './actions.js'
import type { TerminalStream } from './view/live-console.js'

/** Where signals come from: `process`, or an EventEmitter in tests. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown
  off(signal: NodeJS.Signals, listener: () => void): unknown
}

/** The world the program runs in; everything injectable so tests drive it in-process. */
export interface CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  stdout: TerminalStream
  stderr: TerminalStream
  env: Readonly<Record<string, string | undefined>>
  /** @default tcpTransport() */
  transport?: Transport
  /** @default process */
  signals?: SignalSource
  /** Forced exit on a third Ctrl+C during shutdown (the second is ignored). @default process.exit */
  exit?: (code: number) => void
  /** Extra peer settings (tests shorten timeouts). */
  peerInit?: Partial<Omit<PeerInit, 'transport' | 'identity' | 'name' | 'listen'>>
  /** Point console.* at the LiveConsole in interactive mode. @default true when stdout is process.stdout */
  captureConsole?: boolean
  /** How `--peer` is dialed again while it is not up (tests shorten it). */
  peerRetry?: RetryPolicy
  /** How long non-interactive commands wait for the `--peer` connections. @default 15 s */
  peerWait?: number
}

/** Exit codes: see `parley --help`. */
export const EXIT = {
  OK: 0,
  START_FAILED: 1,
  USAGE: 2,
  SIGHUP: 129,
  SIGINT: 130,
  SIGPIPE: 141,
  SIGTERM: 143,
} as const
