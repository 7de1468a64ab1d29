import { hostOf, isLoopback } from '@parley/core'
import { DEAD_HOST_FAILURES, DEAD_HOST_MS, DEAD_HOSTS } from './mesh-options.js'

/**
 * Hosts where dials that hearsay led to (a walk, a candidate from an exchange) kept failing to reach
 * the peer they named: a neighbour may name fresh ids at a third party's address to have us dial it
 * for as long as it likes. At most DEAD_HOSTS are remembered, the oldest forgotten first.
 */
export class DeadHosts {
  readonly #failed = new Map<string, { count: number; at: number }>()

  /** Whether hearsay dials at `addr`'s host failed DEAD_HOST_FAILURES times in the last DEAD_HOST_MS. */
  has(addr: string, now = Date.now()): boolean {
    const key = hostKey(addr)
    const failed = this.#failed.get(key)
    if (failed === undefined) return false
    if (now - failed.at > DEAD_HOST_MS) {
      this.#failed.delete(key)
      return false
    }
    return failed.count >= DEAD_HOST_FAILURES
  }

  /** A dial hearsay led to `addr` reached the peer it named (the host is cleared), or did not. */
  dialed(addr: string, reached: boolean, now = Date.now()): void {
    const key = hostKey(addr)
    const failed = this.#failed.get(key)
    this.#failed.delete(key)
    if (reached) return
    this.#failed.set(key, { count: (failed?.count ?? 0) + 1, at: now })
    if (this.#failed.size > DEAD_HOSTS) this.#failed.delete(this.#failed.keys().next().value!)
  }

  get size(): number {
    return this.#failed.size
  }
}

/** Counted by host; on this machine by address (every local peer shares a host). */
function hostKey(addr: string): string {
  const host = hostOf(addr)
  return isLoopback(host) ? addr : host
}
