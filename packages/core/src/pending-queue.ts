/**
 * Sends awaiting acknowledgement, by seq, oldest first. Seqs come in increasing order and leave mostly
 * from the front (a cumulative acknowledgement settles a prefix), so an array indexed by `seq - base`
 * serves: a Map cost ~100–200 ns per message here, most of it walking the holes that deletions from
 * its front leave behind.
 */
export class PendingQueue<T extends { readonly seq: number }> {
  #items: (T | undefined)[] = []
  /** Index of the oldest entry (every slot before it is empty). */
  #head = 0
  /** The seq stored at index 0. */
  #base = 0
  #size = 0

  get size(): number {
    return this.#size
  }

  /** Adds `item`, whose seq must be above every seq added before. */
  push(item: T): void {
    if (this.#size === 0) {
      // Emptied (every round trip of a request/response exchange): start over in the same array.
      this.#items.length = 0
      this.#head = 0
      this.#base = item.seq
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      // Compacted only here, never in delete(): loops over values() may delete as they go.
      this.#items.splice(0, this.#head)
      this.#base += this.#head
      this.#head = 0
    }
    const index = item.seq - this.#base
    if (index < this.#items.length) throw new RangeError(`seq ${item.seq} is not above the last one`)
    // A gap (seqs the sender gave up on before they were queued) stays as empty slots.
    while (this.#items.length < index) this.#items.push(undefined)
    this.#items.push(item)
    this.#size++
  }

  get(seq: number): T | undefined {
    const index = seq - this.#base
    return index >= this.#head && index < this.#items.length ? this.#items[index] : undefined
  }

  /** The entry with the lowest seq. */
  first(): T | undefined {
    return this.#items[this.#head]
  }

  /** Removes the entry with this seq; false when there is none. */
  delete(seq: number): boolean {
    const index = seq - this.#base
    if (index < this.#head || index >= this.#items.length || this.#items[index] === undefined) return false
    this.#items[index] = undefined
    this.#size--
    while (this.#head < this.#items.length && this.#items[this.#head] === undefined) this.#head++
    return true
  }

  clear(): void {
    this.#items = []
    this.#head = 0
    this.#size = 0
  }

  /** The entries in seq order; deleting (not adding) while iterating is allowed. */
  *values(): IterableIterator<T> {
    const items = this.#items
    for (let i = this.#head; i < items.length; i++) {
      const item = items[i]
      if (item !== undefined) yield item
    }
  }
}
