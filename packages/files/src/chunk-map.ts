import { chunkCount, chunkLength } from './codec.js'

/** Per chunk: not yet here, asked of a source, verified and being written, verified on disk. */
const MISSING = 0
const REQUESTED = 1
const WRITING = 2
const HAVE = 3

/**
 * What a download knows of each chunk: missing, requested, being written or on disk, how many bytes are
 * verified, and which sources already sent a bad copy of a chunk (so it is asked of another first).
 */
export class ChunkMap {
  readonly n: number
  readonly #state: Uint8Array
  readonly #size: number
  readonly #chunkSize: number
  /** Chunks on disk, and their bytes. */
  have = 0
  haveBytes = 0
  /** No chunk below it is missing: where the next search starts. */
  #cursor = 0
  /** Sources (peer ids) that sent a bad copy of a chunk. */
  readonly #failedFrom = new Map<number, Set<string>>()

  constructor(size: number, chunkSize: number, verified: Uint8Array | undefined) {
    this.#size = size
    this.#chunkSize = chunkSize
    this.n = chunkCount(size, chunkSize)
    this.#state = new Uint8Array(this.n)
    if (verified) {
      for (let i = 0; i < this.n; i++) if ((verified[i >> 3]! >> (i & 7)) & 1) this.markHave(i)
    }
  }

  get complete(): boolean {
    return this.have === this.n
  }

  length(index: number): number {
    return chunkLength(this.#size, this.#chunkSize, index)
  }

  requested(index: number): void {
    this.#state[index] = REQUESTED
  }

  /** The chunk verified: it is being written (no longer anyone's to fetch). */
  writing(index: number): void {
    this.#state[index] = WRITING
    this.#failedFrom.delete(index)
  }

  isWriting(index: number): boolean {
    return this.#state[index] === WRITING
  }

  markHave(index: number): void {
    this.#state[index] = HAVE
    this.have++
    this.haveBytes += this.length(index)
  }

  /** Back to missing (its request was lost, or its copy was bad): asked again, lowest first. */
  missing(index: number): void {
    if (this.#state[index] === HAVE) {
      this.have--
      this.haveBytes -= this.length(index)
    }
    this.#state[index] = MISSING
    this.#cursor = Math.min(this.#cursor, index)
  }

  /** `source` sent a bad copy of chunk `index`. */
  failed(index: number, source: string): void {
    this.missing(index)
    const failed = this.#failedFrom.get(index) ?? new Set<string>()
    this.#failedFrom.set(index, failed)
    failed.add(source)
  }

  /**
   * Next missing chunk for `source`, skipping those it already sent a bad copy of while one of `others`
   * (the active sources) has not, so a chunk every source got wrong is still asked again, never stuck.
   * -1 when nothing is left to ask.
   */
  pick(source: string, others: readonly string[]): number {
    while (this.#cursor < this.n && this.#state[this.#cursor] === HAVE) this.#cursor++
    for (let i = this.#cursor; i < this.n; i++) {
      if (this.#state[i] !== MISSING) continue
      const failed = this.#failedFrom.get(i)
      if (failed?.has(source) && others.some((o) => !failed.has(o))) continue
      return i
    }
    return -1
  }

  /** Chunks on disk, one bit each (bit i of byte i >> 3, least significant first). */
  bitmap(): Uint8Array {
    const bits = new Uint8Array(Math.ceil(this.n / 8))
    for (let i = 0; i < this.n; i++) if (this.#state[i] === HAVE) bits[i >> 3]! |= 1 << (i & 7)
    return bits
  }
}
