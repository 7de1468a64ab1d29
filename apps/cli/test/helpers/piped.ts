import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { onTestFinished } from 'vitest'
import { waitForOutput } from './streams.js'

/** The built program with plain pipes for stdin/stdout/stderr (what a script or `|` gives it). */
export class PipedProgram {
  readonly proc: ChildProcessWithoutNullStreams
  out = ''
  err = ''

  constructor(main: string, args: string[]) {
    this.proc = spawn(process.execPath, [main, ...args], { env: { ...process.env, NO_COLOR: '1' } })
    this.proc.stdout.setEncoding('utf8').on('data', (s: string) => {
      this.out += s
    })
    this.proc.stderr.setEncoding('utf8').on('data', (s: string) => {
      this.err += s
    })
    onTestFinished(() => {
      if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL')
    })
  }

  /** Resolves when stdout (from `from`) matches; woken by output, bounded by `timeout`. */
  waitFor(re: RegExp, from = 0, timeout = 10_000): Promise<RegExpExecArray> {
    return waitForOutput(this.proc.stdout, 'data', () => this.out.slice(from), re, {
      timeout,
      shown: () => `stdout:\n${this.out}\nstderr:\n${this.err}`,
    })
  }

  line(text: string): void {
    this.proc.stdin.write(`${text}\n`)
  }

  exitCode(timeout = 10_000): Promise<number | null> {
    // Check first: 'exit' will not fire again for a process that already exited.
    if (this.proc.exitCode !== null) return Promise.resolve(this.proc.exitCode)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still running after ${timeout} ms`)), timeout)
      this.proc.once('exit', (code) => {
        clearTimeout(timer)
        resolve(code)
      })
    })
  }
}
