import { EventEmitter } from 'node:events'
import { type MemoryNetwork, memoryTransport } from '@parley/core'
import { onTestFinished } from 'vitest'
import { type CliIo, runCli } from '../../src/index.js'
import { Capture, FakeTtyInput } from './streams.js'

export interface CliRun {
  stdin: FakeTtyInput
  stdout: Capture
  stderr: Capture
  /** Emit 'SIGINT' / 'SIGTERM' here to signal the program. */
  signals: EventEmitter
  /** Codes passed to the forced-exit hook. */
  forcedExits: number[]
  /** Resolves with runCli's exit code. */
  exited: Promise<number>
  /**
   * Sends a signal as the OS would: with no listener left, Node's default action ends the process
   * by it; the code the shell would then see (130, 143) is recorded in `killedBy`.
   */
  kill(signal: 'SIGINT' | 'SIGTERM'): void
  killedBy: number[]
  /** Writes one line to stdin. */
  line(text: string): void
  /** The address it listens on, once the banner is out. */
  address(): Promise<string>
}

export interface CliRunInit {
  network?: MemoryNetwork
  tty?: boolean
  env?: Record<string, string>
  columns?: number
  rows?: number
  peerRetry?: CliIo['peerRetry']
  peerWait?: number
}

/**
 * Runs the CLI in-process over the harness's memory network (or TCP when no network is given),
 * with injected streams and signals. Stops it when the test ends.
 */
export function startCli(argv: string[], init: CliRunInit = {}): CliRun {
  const tty = init.tty ?? false
  const size = { columns: init.columns ?? 100, rows: init.rows ?? 30 }
  const stdin = new FakeTtyInput(tty)
  const stdout = new Capture({ tty, ...size })
  const stderr = new Capture({ tty, ...size })
  const signals = new EventEmitter()
  const forcedExits: number[] = []
  const killedBy: number[] = []
  const exited = runCli(argv, {
    stdin,
    stdout,
    stderr,
    env: { NO_COLOR: '1', ...init.env },
    ...(init.network ? { transport: memoryTransport(init.network) } : {}),
    signals,
    exit: (code) => forcedExits.push(code),
    captureConsole: false,
    // Quick timeouts keep failure paths fast; nothing here is slow on purpose.
    peerInit: { ackTimeout: 2_000, handshakeTimeout: 2_000, stopTimeout: 1_000 },
    ...(init.peerRetry ? { peerRetry: init.peerRetry } : {}),
    ...(init.peerWait !== undefined ? { peerWait: init.peerWait } : {}),
  })
  let settled = false
  void exited.finally(() => {
    settled = true
  })
  onTestFinished(async () => {
    if (!settled) {
      signals.emit('SIGTERM')
      await exited
    }
  })
  return {
    stdin,
    stdout,
    stderr,
    signals,
    forcedExits,
    exited,
    kill(signal) {
      if (!signals.emit(signal)) killedBy.push(signal === 'SIGINT' ? 130 : 143)
    },
    killedBy,
    line: (text) => void stdin.write(`${text}\n`),
    async address() {
      const m = await stdout.waitFor(/listening on\s+(\S+?),?\s/)
      return m[1]!
    },
  }
}
