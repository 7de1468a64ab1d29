import { createInterface, type Interface } from 'node:readline'
import { stripVTControlCharacters } from 'node:util'
import { Limits } from '@parley/protocol'
import { displayWidth } from '../view/format.js'
import type { TerminalStream } from '../view/live-console.js'

export interface ChatViewInit {
  input: NodeJS.ReadableStream
  output: TerminalStream
  /** The status line's text (recomputed on every redraw; cut to the terminal's width). */
  /** The status line for a window of `width` columns (it is cut to fit, if it does not). */
  status: (width: number) => string
  /** The input line's prompt, e.g. `[everyone] › `. */
  prompt: () => string
  /** Tab completion in readline's shape: candidates and the fragment they replace. */
  complete: (line: string) => [string[], string]
  /** Styles the status line (reverse video on a colour terminal). */
  styleStatus?: (text: string) => string
  /** The terminal failed under readline (it was closed): nothing more can be read or shown. */
  onError?: (err: Error) => void
}

/** Longest input line kept in readline's history. */
const HISTORY_SIZE = 200

/**
 * The bottom of the screen in the chat view: a status line, then an input line that is always
 * ready. Everything else is printed above the status line with {@link ChatView.log}:
 *
 * ```
 * 12:00:01 bob: hello            ← log() lines scroll up here
 * ── alice · 127.0.0.1:4000 · …  ← status line, redrawn on every log()
 * [everyone] › half-typed text   ← node:readline owns this line (history, editing, Tab)
 * ```
 *
 * log() moves the cursor from inside the input line up to the status line, clears to the end of the
 * screen, prints the text, the status line and the input line again with the cursor where it was:
 * typed text is never garbled and no keystroke is lost, because readline keeps its state.
 */
export class ChatView {
  readonly rl: Interface
  #closed = false
  readonly #out: TerminalStream

  constructor(readonly init: ChatViewInit) {
    this.#out = init.output
    const theirs = new Set(init.output.listeners?.('resize') ?? [])
    this.rl = createInterface({
      input: init.input,
      output: init.output,
      terminal: true,
      historySize: HISTORY_SIZE,
      removeHistoryDuplicates: true,
      tabSize: 2,
      completer: (line: string) => this.#complete(line),
    })
    // readline redraws its line on a resize from the row it was on before the terminal reflowed it,
    // leaving a copy of its first row; the view redraws status and input itself (see #onResize).
    for (const l of init.output.listeners?.('resize') ?? []) {
      if (!theirs.has(l)) init.output.off?.('resize', l as (...args: unknown[]) => void)
    }
    this.rl.on('close', () => {
      // Closed by readline itself (Ctrl+D, end of input): the cursor is still on the input line.
      if (!this.#closed) this.#out.write('\n')
      this.#closed = true
    })
    // Registered before anyone else's 'line' listener, so the screen is tidy before they print.
    this.rl.on('line', (line: string) => this.#entered(line))
    // Back from Ctrl+Z (`fg`): readline paused its input when stopped and leaves resuming to us; until
    // then every key, Ctrl+C included, would wait unread.
    this.rl.on('SIGCONT', () => {
      this.rl.resume()
      this.refresh()
    })
    // The terminal is gone (its window closed, an SSH session dropped): readline fails to leave raw
    // mode (EIO) as it closes. The owner stops gracefully instead of the error ending the process.
    this.rl.on('error', (err: Error) => {
      this.#closed = true
      init.onError?.(err)
    })
    init.output.on?.('resize', this.#onResize)
    // After readline's own listener (added by createInterface), so it sees the line as readline left it.
    init.input.on('keypress', this.#trackRows)
  }

  /** Draws the status and input lines for the first time. */
  start(): void {
    this.#out.write(`${this.#statusLine()}\n`)
    this.rl.setPrompt(this.init.prompt())
    this.rl.prompt()
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Prints `text` (one or more lines) above the status line, keeping what is typed. */
  log(text: string): void {
    const body = text.endsWith('\n') ? text.slice(0, -1) : text
    if (this.#closed) {
      this.#out.write(`${body}\n`)
      return
    }
    this.#redraw(body)
  }

  /** Redraws the status line and the prompt (the conversation or the peers changed). */
  refresh(): void {
    if (!this.#closed) this.#redraw(undefined)
  }

  /** Stops reading; the status line stays as the last thing on screen. */
  close(): void {
    this.init.output.off?.('resize', this.#onResize)
    this.init.input.off('keypress', this.#trackRows)
    if (this.#closed) return
    // Leave the cursor on a fresh line under the input line, so what follows starts clean.
    this.#out.write('\n')
    this.#closed = true
    this.rl.close()
  }

  #redraw(body: string | undefined): void {
    // The cursor's row inside the (possibly wrapped) input line, counted from the prompt's first row.
    const { rows } = this.rl.getCursorPos()
    const up = rows + 1
    const text = body === undefined ? '' : `${body.replace(/\n/g, '\r\n')}\r\n`
    this.#out.write(`\x1b[${up}A\r\x1b[J${text}${this.#statusLine()}\r\n`)
    // The cursor is now at the start of the prompt's first row; tell readline so, then let it draw
    // the prompt and the line and put the cursor back where it was (prevRows is the row it starts
    // from: public on Interface in Node 20 and 24, though not documented).
    ;(this.rl as unknown as { prevRows: number }).prevRows = 0
    this.rl.setPrompt(this.init.prompt())
    this.rl.prompt(true)
  }

  /**
   * Enter moved the cursor below the input line and readline draws no new prompt: take the typed
   * line and the status line off the screen (what was sent shows up as its own line), redraw both.
   */
  #entered(line: string): void {
    if (this.#closed) return
    const columns = Math.max(1, this.#out.columns || 80)
    // Past a message's limit (in bytes) the line is refused anyway: count its characters as one column
    // each rather than measure it (the text segmenter takes most of a minute past 65,536 characters).
    const typed = Buffer.byteLength(line) > Limits.textBytes ? line.length : displayWidth(line)
    const width = displayWidth(stripVTControlCharacters(this.rl.getPrompt())) + typed
    const rows = Math.floor(Math.max(0, width - 1) / columns) + 1
    this.#out.write(`\x1b[${rows + 1}A\r\x1b[J${this.#statusLine()}\r\n`)
    ;(this.rl as unknown as { prevRows: number }).prevRows = 0
    this.rl.setPrompt(this.init.prompt())
    this.rl.prompt()
  }

  #statusLine(): string {
    const width = Math.max(10, (this.#out.columns || 80) - 1)
    const plain = stripVTControlCharacters(this.init.status(width))
    // Cut to one row, so "up one row" always reaches it (wide characters count twice).
    const cut = cutToWidth(plain, width)
    this.#statusWidth = displayWidth(cut)
    return this.init.styleStatus ? this.init.styleStatus(cut) : cut
  }

  /**
   * readline's own list of candidates is drawn below the input line, where log() would not erase
   * it; so more than one candidate is listed above instead, and readline gets the common prefix.
   */
  #complete(line: string): [string[], string] {
    const [hits, fragment] = this.init.complete(line)
    if (hits.length <= 1) return [hits, fragment]
    const prefix = commonPrefix(hits)
    if (prefix.length > fragment.length) return [[prefix], fragment]
    // Tab again on the same line: the list is on screen already.
    if (line === this.#listedFor) return [[], fragment]
    this.#listedFor = line
    queueMicrotask(() => this.log(hits.map((h) => h.trim()).join('   ')))
    return [[], fragment]
  }

  /** The line whose candidates were last listed (see #complete). */
  #listedFor: string | undefined

  /**
   * The window changed width, and the terminal reflowed what it shows (as most do): the status line
   * and the input line now take the rows their widths need at the new width, and the cursor is where
   * it was in the input. Up from it to the status line's first row, and both are drawn again.
   */
  readonly #onResize = () => {
    if (this.#closed) return
    const columns = Math.max(1, this.#out.columns || 80)
    const rl = this.rl as unknown as { line: string; cursor: number; prevRows: number }
    const typed = rl.line.slice(0, rl.cursor)
    // Past a message's limit the line is refused anyway: a column per character (see #entered).
    const typedWidth = Buffer.byteLength(typed) > Limits.textBytes ? typed.length : displayWidth(typed)
    const before = displayWidth(stripVTControlCharacters(this.rl.getPrompt())) + typedWidth
    const statusRows = Math.max(1, Math.ceil(this.#statusWidth / columns))
    const up = statusRows + Math.floor(before / columns)
    this.#out.write(`\x1b[${up}A\r\x1b[J${this.#statusLine()}\r\n`)
    rl.prevRows = 0
    this.rl.setPrompt(this.init.prompt())
    this.rl.prompt(true)
  }

  /** Columns the status line took when last drawn. */
  #statusWidth = 0

  /**
   * node:readline writes a chunk typed at the end of the line (a paste, or keys a multiplexer sends
   * together) as it is, without noting the row the line wrapped to (`prevRows`); its next redraw (an
   * edit inside the line) then starts from the wrong row and leaves a copy of the first one. So the
   * row is checked after each chunk of keys (once: measuring a long line is not free), and the line
   * redrawn from the right row when readline lost it.
   */
  readonly #trackRows = (_text: string | undefined, key: { ctrl?: boolean; name?: string } | undefined) => {
    // Ctrl+L: readline cleared the screen and drew the input line at its top; the status line goes above.
    if (key?.ctrl && key.name === 'l') this.refresh()
    if (this.#rowsCheckQueued) return
    this.#rowsCheckQueued = true
    queueMicrotask(this.#checkRows)
  }

  #rowsCheckQueued = false

  readonly #checkRows = () => {
    this.#rowsCheckQueued = false
    const rl = this.rl as unknown as { prevRows: number; cursor: number; line: string; _refreshLine(): void }
    if (this.#closed || rl.cursor !== rl.line.length) return
    const { rows, cols } = this.rl.getCursorPos()
    // A line that fills its last row leaves the terminal's cursor there, waiting to wrap.
    const actual = cols === 0 && rows > 0 ? rows - 1 : rows
    if (rl.prevRows === actual) return
    rl.prevRows = actual
    rl._refreshLine()
  }
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' })

/**
 * `text` cut (with …) to at most `width` columns. Not padded: a status line as wide as the window
 * would wrap in two when the window narrows (terminals reflow it), and the redraw that follows would
 * reach only its second row, leaving a stale copy of the first.
 */
export function cutToWidth(text: string, width: number): string {
  const full = displayWidth(text)
  if (full <= width) return text
  let out = ''
  let used = 0
  for (const { segment } of graphemes.segment(text)) {
    const w = displayWidth(segment)
    if (used + w > width - 1) break
    out += segment
    used += w
  }
  return `${out}…`
}

function commonPrefix(words: readonly string[]): string {
  let prefix = words[0] ?? ''
  for (const w of words) {
    let i = 0
    while (i < prefix.length && i < w.length && prefix[i]?.toLowerCase() === w[i]?.toLowerCase()) i++
    prefix = prefix.slice(0, i)
  }
  return prefix
}
