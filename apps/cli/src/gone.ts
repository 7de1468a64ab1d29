/** Peers remembered as gone at once; the oldest is forgotten first (bounds memory). */
const MAX_GONE = 1_024
/** A peer gone this long is left out of the peers list altogether. */
export const FORGET_AFTER_MS = 10 * 60_000

/**
 * Peers that said goodbye (or stayed unreachable) this session. Core still passes them around in
 * peer exchange and dials them on "connect to all"; the CLI marks them gone in the peers list,
 * leaves them out after {@link FORGET_AFTER_MS}, and sums up failed dials to them in one line.
 */
export class GonePeers {
  readonly #since = new Map<string, number>()

  constructor(readonly now: () => number = Date.now) {}

  mark(id: string): void {
    this.#since.delete(id)
    if (this.#since.size >= MAX_GONE) this.#since.delete(this.#since.keys().next().value as string)
    this.#since.set(id, this.now())
  }

  /** It is back (connected again). */
  back(id: string): void {
    this.#since.delete(id)
  }

  /** When it went, or undefined when it is not known to be gone. */
  since(id: string): number | undefined {
    return this.#since.get(id)
  }

  /** Gone so long that it is no longer listed. */
  forgotten(id: string): boolean {
    const at = this.#since.get(id)
    return at !== undefined && this.now() - at >= FORGET_AFTER_MS
  }
}
