import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { stripVTControlCharacters } from 'node:util'
import { renderScreen, waitForOutput } from './streams.js'

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/**
 * The built program in a real pseudo-terminal, through util-linux `script -qfec` (no native addon):
 * keys go in on stdin, the terminal's bytes come out on stdout, and `script -e` exits with the
 * program's exit code. POSIX only.
 */
export class PtyProgram {
  readonly proc: ChildProcess
  raw = ''
  readonly #wake = new EventEmitter()

  constructor(
    script: string,
    args: string[],
    readonly cols = 100,
    readonly rows = 30,
  ) {
    // `exec` so node is script's direct child (its pid is needed to send SIGTERM to it alone).
    const command = `stty cols ${cols} rows ${rows}; exec ${quote(process.execPath)} ${[script, ...args].map(quote).join(' ')}`
    this.proc = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { ...process.env, NO_COLOR: '1', TERM: 'xterm-256color' },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.#wake.setMaxListeners(50)
    const onData = (chunk: Buffer) => {
      this.raw += chunk.toString('utf8')
      this.#wake.emit('data')
    }
    this.proc.stdout?.on('data', onData)
    this.proc.stderr?.on('data', onData)
  }

  get text(): string {
    return stripVTControlCharacters(this.raw)
  }

  mark(): number {
    return this.raw.length
  }

  /** Resolves when the output written since `from` matches; woken by output, bounded by `timeout`. */
  waitFor(
    pattern: RegExp | string,
    options: { from?: number; timeout?: number } = {},
  ): Promise<RegExpExecArray> {
    return waitForOutput(this.#wake, 'data', () => this.raw.slice(options.from ?? 0), pattern, {
      timeout: options.timeout ?? 10_000,
      shown: () => this.text.slice(-3000),
    })
  }

  /** Types `keys`, then waits for `expected` to appear after them. */
  async keys(keys: string, expected: RegExp | string): Promise<RegExpExecArray> {
    const from = this.mark()
    this.proc.stdin?.write(keys)
    return this.waitFor(expected, { from })
  }

  screen(): Promise<{ lines: string[]; cursor: { x: number; y: number } }> {
    return renderScreen(this.raw, this.cols, this.rows)
  }

  /** The program's pid (script's only child). */
  childPid(): number {
    const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(this.proc.pid)], { encoding: 'utf8' })
    const pid = Number(out.trim().split(/\s+/)[0])
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no child of script ${this.proc.pid}: ${out}`)
    return pid
  }

  /** The exit code, within `timeout`. */
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

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        process.kill(this.childPid(), 'SIGKILL')
      } catch {
        // already gone
      }
      this.proc.kill('SIGKILL')
    }
  }
}
