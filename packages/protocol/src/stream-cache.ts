/**
 * The last two streams one direction of the codec saw, each as its hex text and as its 8 bytes read
 * as two u32 (`high`, `low`). A peer writes its own stream on every TEXT and its correspondent's on
 * every ACK_UPTO, and reads them the other way round, so a conversation alternates between two: with
 * one entry, every frame of a ping-pong checked and converted its stream again.
 *
 * An empty text marks an empty entry: it is never remembered, since a stream is 16 hex characters.
 */
export class StreamCache {
  /** The newest entry. */
  text = ''
  high = 0
  low = 0
  #otherText = ''
  #otherHigh = 0
  #otherLow = 0

  /** Makes this stream the newest; the newest before it becomes the other entry. */
  remember(text: string, high: number, low: number): void {
    this.#otherText = this.text
    this.#otherHigh = this.high
    this.#otherLow = this.low
    this.text = text
    this.high = high
    this.low = low
  }

  /** True when `text` is either entry (it is then the newest). */
  hasText(text: string): boolean {
    if (text === '') return false
    if (text === this.text) return true
    if (text !== this.#otherText) return false
    this.remember(text, this.#otherHigh, this.#otherLow)
    return true
  }

  /** The text of the entry with these bytes (it is then the newest), or undefined. */
  textOf(high: number, low: number): string | undefined {
    if (high === this.high && low === this.low && this.text !== '') return this.text
    if (high !== this.#otherHigh || low !== this.#otherLow || this.#otherText === '') return undefined
    const text = this.#otherText
    this.remember(text, high, low)
    return text
  }
}
