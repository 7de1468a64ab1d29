import { EventEmitter } from 'node:events'
import { PassThrough, Writable } from 'node:stream'
import { stripVTControlCharacters } from 'node:util'
import xterm from '@xterm/headless'

/** Keyboard side of a fake terminal: bytes written here become keypresses for readline/inquirer. */
export class FakeTtyInput extends PassThrough {
  readonly isTTY: boolean
  isRaw = false
  /** Set: the terminal is gone, and switching raw mode fails as a tty stream does then (EIO, emitted). */
  hungUp = false
  constructor(tty = true) {
    super()
    this.isTTY = tty
  }
  setRawMode(mode: boolean): this {
    if (this.hungUp) {
      this.emit('error', Object.assign(new Error('setRawMode EIO'), { code: 'EIO' }))
      return this
    }
    this.isRaw = mode
    return this
  }
}

export interface CaptureInit {
  tty?: boolean
  columns?: number
  rows?: number
}

/**
 * Screen side: collects every byte. `waitFor` resolves when the output (escape codes stripped)
 * written since `from` matches — woken by writes, never by polling — or rejects after a timeout.
 */
export class Capture extends Writable {
  raw = ''
  readonly isTTY: boolean
  /** Changed by `resize()`, as a terminal window is. */
  columns: number
  readonly rows: number
  readonly #wake = new EventEmitter()

  constructor(init: CaptureInit = {}) {
    super({ decodeStrings: false })
    this.isTTY = init.tty ?? false
    this.columns = init.columns ?? 100
    this.rows = init.rows ?? 30
    this.#wake.setMaxListeners(100)
  }

  /** The window is resized: what a tty stream does on SIGWINCH. */
  resize(columns: number): void {
    this.columns = columns
    this.emit('resize')
  }

  override _write(
    chunk: string | Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.raw += String(chunk)
    this.#wake.emit('write')
    callback()
  }

  /** Output so far without escape codes. */
  get text(): string {
    return stripVTControlCharacters(this.raw)
  }

  /** A position to wait from (only what is written after it counts). */
  mark(): number {
    return this.raw.length
  }

  /** Plain-text lines written so far (for non-TTY output). */
  lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '')
  }

  waitFor(
    pattern: string | RegExp,
    options: { from?: number; timeout?: number } = {},
  ): Promise<RegExpExecArray> {
    return waitForOutput(this.#wake, 'write', () => this.raw.slice(options.from ?? 0), pattern, {
      timeout: options.timeout ?? 5_000,
      shown: () => this.text.slice(-2000),
    })
  }
}

/** What a terminal of this size shows after receiving `raw`: one string per row, trailing blanks trimmed. */
export async function renderScreen(
  raw: string,
  cols = 100,
  rows = 30,
  /** Windows resized (and their content reflowed, as xterm.js does) after `at` characters of `raw`. */
  resizes: readonly { at: number; cols: number }[] = [],
): Promise<{ lines: string[]; cursor: { x: number; y: number } }> {
  // convertEol: a real tty's line discipline turns '\n' into '\r\n' (ONLCR); injected streams have none.
  const term = new xterm.Terminal({ cols, rows, allowProposedApi: true, scrollback: 1000, convertEol: true })
  let from = 0
  for (const { at, cols } of resizes) {
    await new Promise<void>((resolve) => term.write(raw.slice(from, at), resolve))
    term.resize(cols, rows)
    from = at
  }
  await new Promise<void>((resolve) => term.write(raw.slice(from), resolve))
  const buffer = term.buffer.active
  const lines: string[] = []
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '')
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  const cursor = { x: buffer.cursorX, y: buffer.baseY + buffer.cursorY }
  term.dispose()
  return { lines, cursor }
}

/** Keys as a terminal sends them. */
export const KEY = { enter: '\r', down: '\x1b[B', up: '\x1b[A', ctrlC: '\x03', backspace: '\x7f' } as const

/**
 * Resolves with the first match of `pattern` in `read()` (escape codes stripped), re-checked whenever
 * `wake` emits `event`; rejects after `timeout` ms showing `shown()`. Shared by every output capture.
 */
export function waitForOutput(
  wake: EventEmitter,
  event: string,
  read: () => string,
  pattern: string | RegExp,
  options: { timeout: number; shown: () => string },
): Promise<RegExpExecArray> {
  const re =
    typeof pattern === 'string' ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : pattern
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = re.exec(stripVTControlCharacters(read()))
      if (!m) return
      cleanup()
      resolve(m)
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(
        new Error(
          `no output matching ${String(pattern)} within ${options.timeout} ms; got:\n${options.shown()}`,
        ),
      )
    }, options.timeout)
    const cleanup = () => {
      clearTimeout(timer)
      wake.off(event, check)
    }
    wake.on(event, check)
    check()
  })
}
