import type { ConnectionHost } from './connection-host.js'
import { awaitHandshake, checkAnnouncement, handshakeError, rejectedError } from './handshake.js'
import { fingerprint } from './identity.js'
import { PeerError } from './peer-errors.js'
import type { PeerInfo } from './peer-types.js'
import type { SecureConnection } from './secure/upgrader.js'
import type { Connection } from './transport.js'

/** How to dial. */
export interface DialOptions {
  signal?: AbortSignal | undefined
  /**
   * The peer id the address was heard for: another key answering there fails with `WRONG_PEER`
   * before any session opens or the address's key is saved.
   */
  expect?: string | undefined
  /** The address came from another peer, not the user (see `ConnectOptions.steered`). */
  steered?: boolean | undefined
}

/** setTimeout's largest delay; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * The dialing side: outbound limits, a handshake slot per dial (dials wait their turn rather than
 * start thousands of key exchanges at once), HELLO → WELCOME, and trust on first use of the address.
 */
export class Dialer {
  /** Dials in flight by address, so two calls for one address share one connection. */
  readonly #dials = new Map<string, Promise<PeerInfo>>()

  constructor(readonly m: ConnectionHost) {}

  /** Dials `address` (sharing a dial already in flight) and completes the handshake. */
  dial(address: string, options?: DialOptions): Promise<PeerInfo> {
    // Shared only between callers that expect the same key: one expecting none must not get another's WRONG_PEER.
    const key = options?.expect === undefined ? address : `${address}\0${options.expect}`
    let dial = this.#dials.get(key)
    if (!dial) {
      dial = this.#dial(address, options).finally(() => this.#dials.delete(key))
      this.#dials.set(key, dial)
    }
    return dial
  }

  async #dial(address: string, options: DialOptions = {}): Promise<PeerInfo> {
    const outer = options.signal
    if (this.m.outboundCount >= this.m.limits.maxOutbound) {
      throw new PeerError(
        'TOO_MANY_CONNECTIONS',
        `already ${this.m.outboundCount} outbound connections (the limit)`,
      )
    }
    // First the peer's own outbound slot, then the process's gate: a peer dialing many addresses
    // at once must not hold gate slots (locking out every other peer) while it waits for its own.
    // Both waits are bounded together; the handshake timeout starts only once both are held.
    const gate = this.m.init.gate
    const queued = this.m.handshakeLimit(outer, Math.min(6 * this.m.limits.handshakeTimeout, MAX_TIMER_MS))
    let release: (() => void) | undefined
    let leaveGate: (() => void) | undefined
    try {
      release = await this.m.slots.acquireOutbound(queued.signal)
      leaveGate = await gate.acquire(queued.signal)
    } catch (err) {
      release?.()
      if (err instanceof PeerError && err.code !== 'HANDSHAKE_TIMEOUT') throw err
      throw new PeerError(
        'HANDSHAKE_TIMEOUT',
        `could not start a handshake with ${address} in time (${gate.waiting} dials of this process waiting their turn)`,
        { cause: err },
      )
    } finally {
      queued.dispose()
    }
    const limit = this.m.handshakeLimit(outer)
    try {
      return await this.#dialWithin(address, limit.signal, options)
    } catch (err) {
      if (err instanceof PeerError) throw err
      throw new PeerError('HANDSHAKE_TIMEOUT', `could not finish a handshake with ${address} in time`, {
        cause: err,
      })
    } finally {
      limit.dispose()
      leaveGate()
      release()
    }
  }

  async #dialWithin(address: string, signal: AbortSignal, options: DialOptions): Promise<PeerInfo> {
    const { expect } = options
    let conn: Connection
    try {
      conn = await this.m.init.transport.dial(address, { signal })
    } catch (cause) {
      throw new PeerError('DIAL_FAILED', `could not reach ${address}: ${(cause as Error).message}`, { cause })
    }
    this.m.count(conn, 'outbound')
    let secure: SecureConnection
    try {
      secure = await this.m.init.upgrader.upgrade(conn, { role: 'initiator', signal })
    } catch (cause) {
      conn.abort(cause as Error)
      throw handshakeError(address, cause)
    }
    if (!this.m.init.isRunning()) {
      secure.abort()
      throw new PeerError('STOPPED', 'this peer is stopping')
    }
    const link = this.m.track(secure, 'outbound', address)
    const reply = await awaitHandshake(link, signal, (l) => this.m.dropLink(l))
    if (reply.type === 'REJECT') {
      this.m.dropLink(link)
      throw rejectedError(address, reply.code, reply.reason)
    }
    if (reply.type !== 'WELCOME') {
      this.m.dropLink(link)
      throw new PeerError('HANDSHAKE_FAILED', `${address} answered HELLO with ${reply.type}`)
    }
    const problem = checkAnnouncement(reply, secure, this.m.policy)
    if (problem) {
      this.m.dropLink(link)
      throw new PeerError(problem.code, `${address}: ${problem.message}`)
    }
    if (expect !== undefined && reply.peerId !== expect) {
      // Unless the key saved for the address is the one expected: that is a key change, the user's to
      // decide (KEY_CHANGED, waiting in keyChanges()), not someone else at a heard-of address.
      const verdict = this.m.trust.known.check(address, reply.peerId)
      if (verdict.status !== 'mismatch' || verdict.expected !== expect) {
        this.m.dropLink(link)
        throw wrongPeer(address, expect, reply.peerId)
      }
    }
    try {
      await this.m.trust.checkDialed(address, reply, options.steered === true || expect !== undefined)
    } catch (err) {
      // The other side took the WELCOME for a session: say why it ends, rather than cut it (a reset).
      link.write({ type: 'GOODBYE', reason: 'your key is not the one saved for this address here' })
      link.closeReason = { reason: 'local', message: 'its key is not the one saved for this address' }
      void this.m.closeLink(link, AbortSignal.timeout(1_000)).finally(() => this.m.dropLink(link))
      throw err
    }
    if (link.conn.status === 'closed') {
      // The link died after a valid WELCOME, e.g. retired as a duplicate; the other link may carry the session.
      this.m.dropLink(link)
      const session = this.m.sessions.get(reply.peerId)
      if (session) return session.info()
      throw new PeerError('HANDSHAKE_FAILED', `${address} closed the connection during the handshake`)
    }
    const session = this.m.open(link, reply)
    this.m.wanted.set(session.id, address)
    return session.info()
  }
}

/** Another key answered at an address heard for `expected` (a stale or a false peer-exchange record). */
export function wrongPeer(address: string, expected: string, answered: string): PeerError {
  return new PeerError(
    'WRONG_PEER',
    `${address} answered as peer ${fingerprint(answered)}, not ${fingerprint(expected)}, whose address it was said to be`,
  )
}
