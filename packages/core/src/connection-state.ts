/** States of one connection as the peer sees it. */
export type LinkStatus = 'dialing' | 'handshaking' | 'open' | 'closing' | 'closed'

// The only moves there are. `advance()` refuses anything else, so a closed link can never reopen
// and an unauthenticated one can never carry application messages.
const NEXT: Readonly<Record<LinkStatus, readonly LinkStatus[]>> = {
  dialing: ['handshaking', 'closed'],
  handshaking: ['open', 'closing', 'closed'],
  open: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
}

/**
 * The status of one connection with its legal moves only ({@link LinkStatus}); a peer keeps one per
 * connection. Exported for transports and tests that mirror the peer's view.
 */
export class LinkState {
  #status: LinkStatus
  constructor(initial: 'dialing' | 'handshaking') {
    this.#status = initial
  }
  /** Where the connection is now. */
  get status(): LinkStatus {
    return this.#status
  }
  /** Moves to `to` and returns true, or returns false when the move is not allowed from here. */
  advance(to: LinkStatus): boolean {
    if (!NEXT[this.#status].includes(to)) return false
    this.#status = to
    return true
  }
}
