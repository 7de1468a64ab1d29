import type { ReceivedMessage } from '@parley/core'

/** Messages held back at most while sends are waiting for their acknowledgement (bounds memory). */
const MAX_HELD = 1_000

/**
 * Keeps "✔ you → bob: hi" before bob's answer on screen. Bob acknowledges before he answers, but
 * both frames can arrive in one read: core then emits his message synchronously, while our send's
 * promise resolves a microtask later. So while a send to a peer is waiting, that peer's messages
 * are held and shown right after the delivery line (or the failure). Held only as long as the send
 * waits (bounded by the ack timeout), and never more than {@link MAX_HELD} messages.
 */
export class Inbox {
  readonly #held = new Map<string, number>()
  readonly #queue: ReceivedMessage[] = []

  constructor(readonly show: (m: ReceivedMessage) => void) {}

  deliver(m: ReceivedMessage): void {
    if ((this.#held.get(m.from.id) ?? 0) === 0) {
      this.show(m)
      return
    }
    // Full: show what is held, in order, rather than let this one pass the others.
    if (this.#queue.length >= MAX_HELD) for (const held of this.#queue.splice(0)) this.show(held)
    this.#queue.push(m)
  }

  /** Holds messages from these peers until the returned function is called (once is enough). */
  hold(peerIds: readonly string[]): () => void {
    for (const id of peerIds) this.#held.set(id, (this.#held.get(id) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      for (const id of peerIds) {
        const n = (this.#held.get(id) ?? 1) - 1
        if (n <= 0) this.#held.delete(id)
        else this.#held.set(id, n)
      }
      this.#flush()
    }
  }

  #flush(): void {
    const keep: ReceivedMessage[] = []
    for (const m of this.#queue.splice(0)) {
      if (this.#held.has(m.from.id)) keep.push(m)
      else this.show(m)
    }
    this.#queue.push(...keep)
  }
}
