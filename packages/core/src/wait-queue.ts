/**
 * Sends waiting for room in a window, oldest first. An application may fire hundreds of thousands of
 * `send()`s at once, so a waiting send is kept as small as it can be: a plain one (default options) is
 * its text, its size and its promise's two resolvers, one slot in each of four columns, and becomes
 * the caller's entry object only when its turn comes. That saves a third of what it holds for its
 * whole wait (its entry would be ≈ 130 of ≈ 390 bytes) and keeps entries young, so they die in the
 * scavenge after their acknowledgement instead of being promoted. Other sends (an abort signal, a
 * timeout of their own) wait as their entry, and a `sendMany()` batch as one item.
 *
 * Removal is from the head only, by index (no shift() on a long array).
 */
export class WaitQueue<E, R, X> {
  #items: (E | string | undefined)[] = []
  #bytes: number[] = []
  #resolve: (((r: R) => void) | undefined)[] = []
  #reject: (((e: X) => void) | undefined)[] = []
  #head = 0

  get length(): number {
    return this.#items.length - this.#head
  }

  pushEntry(entry: E): void {
    this.#items.push(entry)
    this.#bytes.push(0)
    this.#resolve.push(undefined)
    this.#reject.push(undefined)
  }

  pushPlain(text: string, bytes: number, resolve: (r: R) => void, reject: (e: X) => void): void {
    this.#items.push(text)
    this.#bytes.push(bytes)
    this.#resolve.push(resolve)
    this.#reject.push(reject)
  }

  /** The oldest: an entry, or a plain send's text (its other fields: {@link headBytes} and so on). */
  head(): E | string | undefined {
    return this.#items[this.#head]
  }

  get headBytes(): number {
    return this.#bytes[this.#head]!
  }

  get headResolve(): (r: R) => void {
    return this.#resolve[this.#head]!
  }

  get headReject(): (e: X) => void {
    return this.#reject[this.#head]!
  }

  /** Drops the oldest. */
  drop(): void {
    const h = this.#head++
    this.#items[h] = undefined
    this.#resolve[h] = undefined
    this.#reject[h] = undefined
    if (this.#head === this.#items.length) {
      // Emptied: start over in the same arrays.
      this.#items.length = 0
      this.#bytes.length = 0
      this.#resolve.length = 0
      this.#reject.length = 0
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#bytes = this.#bytes.slice(this.#head)
      this.#resolve = this.#resolve.slice(this.#head)
      this.#reject = this.#reject.slice(this.#head)
      this.#head = 0
    }
  }

  /** Empties the queue, calling `each` with every waiting entry or plain send's reject, oldest first. */
  drain(each: (item: E | ((e: X) => void)) => void): void {
    const items = this.#items
    const rejects = this.#reject
    const head = this.#head
    this.#items = []
    this.#bytes = []
    this.#resolve = []
    this.#reject = []
    this.#head = 0
    for (let i = head; i < items.length; i++) {
      const item = items[i]!
      each(typeof item === 'string' ? rejects[i]! : item)
    }
  }
}
