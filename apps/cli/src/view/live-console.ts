import { Writable } from 'node:stream'
import { stripVTControlCharacters } from 'node:util'

/** The parts of a terminal stream the prompts and the console read. */
export interface TerminalStream extends NodeJS.WritableStream {
  isTTY?: boolean
  columns?: number
  rows?: number
}

// @inquirer/core's ScreenManager (12.0.x, pinned in pnpm-workspace.yaml) sends each screen update
// as ONE write to the prompt's output:
//
//   render:  [cursorDown(n)] [eraseLines(h)] content ['\n' bottom] [cursorUp(k)] cursorTo(col)
//   cursor:  cursorTo(col)                              (the caret moved inside the line)
//   done:    [cursorDown(n)] ('\n' | eraseLines(h)) cursorLeft cursorShow
//
// So the last render, minus its erase prefix, is exactly what is on screen now, and the cursor sits
// k rows above its last row. That is enough to take the frame off the screen, print a line where
// it was, and put the identical frame back below: the prompt's own bookkeeping (height, rows under
// the caret) stays true, and it never notices. test/live-console.test.ts fails loudly if a future
// @inquirer/core changes this format.
const ERASE_PREFIX = /^(?:\x1b\[\d+B)?(?:(?:\x1b\[2K\x1b\[1A)*\x1b\[2K\x1b\[G)?/
const CURSOR_TO = /^\x1b\[\d+G$/
const TRAILING_UP = /\x1b\[(\d+)A\x1b\[\d+G$/
const CURSOR_SHOW = '\x1b[?25h'

/**
 * Prints lines above a live @inquirer prompt without disturbing it.
 *
 * Pass `ui.context()` as the second argument of every prompt and route every asynchronous line
 * through `ui.log()`. When no prompt is showing, `log()` simply writes the line.
 *
 * ```ts
 * const ui = new LiveConsole(process.stdout)
 * peer.on('message', (m) => ui.log(`${m.from.name}: ${m.text}`))
 * const choice = await rawlist({ message: 'Choose', choices }, ui.context({ signal }))
 * ```
 */
export class LiveConsole {
  /** What the active prompt last drew, without its erase prefix; null while no prompt shows. */
  #frame: string | null = null
  /** A lone cursor move the prompt made after its last render. */
  #tail = ''

  constructor(readonly out: TerminalStream) {}

  /** Whether a prompt is on screen right now. */
  get prompting(): boolean {
    return this.#frame !== null
  }

  /**
   * The prompt context to pass to a prompt: its `output` goes through this console.
   * A new sink per prompt, because a prompt ends its output stream when it is done.
   */
  context<T extends object>(extra: T): T & { output: Writable } {
    const sink = new Writable({
      decodeStrings: false,
      write: (chunk: string | Buffer, _encoding, callback) => {
        this.#onPromptWrite(String(chunk))
        callback()
      },
      final: (callback) => {
        this.#frame = null
        this.#tail = ''
        callback()
      },
    })
    // readline and the prompt measure the terminal through these.
    for (const key of ['isTTY', 'columns', 'rows'] as const) {
      Object.defineProperty(sink, key, { get: () => this.out[key], configurable: true })
    }
    return { ...extra, output: sink }
  }

  /** Prints `text` (one or more lines) above the prompt, or plainly when none is showing. */
  log(text: string): void {
    const body = text.endsWith('\n') ? text : `${text}\n`
    const frame = this.#frame
    if (frame === null) {
      this.out.write(body)
      return
    }
    const up = Number(TRAILING_UP.exec(frame)?.[1] ?? 0)
    const rows = frame.split('\n').length
    const down = up > 0 ? `\x1b[${up}B` : ''
    const erase = `${down}${'\x1b[2K\x1b[1A'.repeat(rows - 1)}\x1b[2K\x1b[G`
    // One write, so nothing can land between the erase and the redraw. `\x1b[G` puts the cursor in
    // column 0 even where '\n' does not (Windows consoles).
    this.out.write(`${erase}${body}\x1b[G${frame}${this.#tail}`)
  }

  #onPromptWrite(s: string): void {
    if (CURSOR_TO.test(s)) {
      this.#tail = s
    } else if (s.endsWith(CURSOR_SHOW) && stripVTControlCharacters(s).trim() === '') {
      this.#frame = null
      this.#tail = ''
    } else {
      this.#frame = s.replace(ERASE_PREFIX, '')
      this.#tail = ''
    }
    this.out.write(s)
  }
}
