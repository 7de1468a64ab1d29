/** Long messages are shown folded in the chat view; `/show n` prints one whole. */

/** A message with more lines than this is folded. */
export const FOLD_LINES = 8
/** A message longer than this many characters is folded (about six lines of a wide terminal). */
export const FOLD_CHARS = 600
/** Folded messages remembered for /show; the oldest is forgotten first (bounds memory). */
export const FOLD_KEEP = 20

/**
 * Remembers the last {@link FOLD_KEEP} long messages by number and turns each into its first lines
 * plus a marker saying how to see it whole.
 */
export class FoldStore {
  readonly #kept = new Map<number, string>()
  #next = 1

  /** The text to print: unchanged when short, else its head and `… [n: …, /show n]`. */
  fold(text: string): string {
    const lines = text.split('\n')
    if (lines.length <= FOLD_LINES && text.length <= FOLD_CHARS) return text
    const n = this.#next++
    this.#kept.set(n, text)
    if (this.#kept.size > FOLD_KEEP) this.#kept.delete(this.#kept.keys().next().value as number)
    let head = lines.slice(0, 3).join('\n')
    if (head.length > 240) head = `${head.slice(0, 240)}`
    const size = Buffer.byteLength(text)
    const amount = size >= 10_240 ? `${Math.round(size / 1024)} KB` : `${text.length} characters`
    return `${head}…\n[folded #${n}: ${amount}, ${lines.length} line${lines.length === 1 ? '' : 's'} — /show ${n} shows it whole]`
  }

  /** The numbers of the folded messages still kept, oldest first. */
  numbers(): number[] {
    return [...this.#kept.keys()]
  }

  /** The whole text of folded message `n` (the latest when undefined), or undefined if forgotten. */
  get(n?: number): string | undefined {
    if (n === undefined) return [...this.#kept.values()].at(-1)
    return this.#kept.get(n)
  }
}
