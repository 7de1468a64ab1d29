import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { onTestFinished } from 'vitest'

/** One NDJSON line of `parley --json`. */
export type JsonEvent = { type: string } & Record<string, unknown>

/**
 * The built program in non-interactive `--json` mode: every stdout line parsed as it arrives, and
 * waits on events (woken by output, bounded by a timeout).
 */
export class JsonProgram {
  readonly proc: ChildProcessWithoutNullStreams
  readonly events: JsonEvent[] = []
  err = ''
  #partial = ''
  readonly #waiters = new Set<() => void>()

  constructor(main: string, args: string[]) {
    this.proc = spawn(process.execPath, [main, '--json', '--no-interactive', ...args], {
      env: { ...process.env, NO_COLOR: '1' },
    })
    this.proc.stdout.setEncoding('utf8').on('data', (s: string) => {
      const lines = (this.#partial + s).split('\n')
      this.#partial = lines.pop() ?? ''
      for (const line of lines) if (line.trim() !== '') this.events.push(JSON.parse(line) as JsonEvent)
      for (const w of [...this.#waiters]) w()
    })
    this.proc.stderr.setEncoding('utf8').on('data', (s: string) => {
      this.err += s
    })
    this.proc.on('exit', () => {
      for (const w of [...this.#waiters]) w()
    })
    onTestFinished(() => this.kill('SIGKILL'))
  }

  kill(signal: NodeJS.Signals): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal)
  }

  /** The first event (from index `from`) of `type` that `match` accepts; rejects after `timeout` ms or on exit. */
  waitFor(
    type: string,
    match: (e: JsonEvent) => boolean = () => true,
    { from = 0, timeout = 20_000 }: { from?: number; timeout?: number } = {},
  ): Promise<JsonEvent> {
    const find = () => this.events.slice(from).find((e) => e.type === type && match(e))
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = find()
        if (hit) {
          done()
          resolve(hit)
        } else if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          done()
          reject(new Error(`exited before a ${type} event\n${this.#shown()}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`no ${type} event within ${timeout} ms\n${this.#shown()}`))
      }, timeout)
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
      check()
    })
  }

  #shown(): string {
    const tail = this.events
      .filter((e) => e.type !== 'file:progress')
      .slice(-30)
      .map((e) => JSON.stringify(e))
    return `events:\n${tail.join('\n')}\nstderr:\n${this.err}`
  }

  line(text: string): void {
    this.proc.stdin.write(`${text}\n`)
  }

  /** Position in the event list: wait from here for what happens next. */
  mark(): number {
    return this.events.length
  }

  exited(timeout = 10_000): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null)
      return Promise.resolve(this.proc.exitCode)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still running after ${timeout} ms`)), timeout)
      this.proc.once('exit', (code) => {
        clearTimeout(timer)
        resolve(code)
      })
    })
  }
}
