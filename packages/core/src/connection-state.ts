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

export class LinkState {
  #status: LinkStatus
  constructor(initial: 'dialing' | 'handshaking') {
    this.#status = initial
  }
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
