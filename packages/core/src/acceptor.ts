import type { Message } from '@parley/protocol'
import { RejectCode } from '@parley/protocol'
import { HostRates, InboundEviction } from './admission.js'
import { type ConnectionHost, EVICTED_GOODBYE } from './connection-host.js'
import { awaitHandshake, checkAnnouncement, handshakeError } from './handshake.js'
import { PeerError } from './peer-errors.js'
import type { SecureConnection } from './secure/upgrader.js'
import type { Connection } from './transport.js'
import { hostKeyOf, isLoopback, netgroupOf, remoteHostOf } from './util.js'

/**
 * The accepting side: per-host limits, handshake admission (the oldest stalled handshake makes room),
 * HELLO → WELCOME or REJECT, and inbound eviction when every slot is taken.
 */
export class Acceptor {
  readonly #eviction = new InboundEviction()
  /** New connections per remote host (`connectRate`), made on the first connection (the limits come later). */
  #rates: HostRates | undefined

  constructor(readonly m: ConnectionHost) {}

  #hostRates(rate: { perSecond: number; burst: number }): HostRates {
    this.#rates ??= new HostRates(rate)
    return this.#rates
  }

  accept(conn: Connection): void {
    if (!this.m.init.isRunning()) {
      conn.abort()
      return
    }
    // Checked before any handshake work, so a flood costs us as little as possible. Every local peer
    // shares the loopback address, so the per-host limit would cap a one-machine swarm.
    const host = remoteHostOf(conn)
    const local = isLoopback(host)
    const key = hostKeyOf(host)
    if (!local && this.m.connectionsFrom(host) >= this.m.limits.maxPerHost) {
      conn.abort()
      this.m.init.events.report(
        new PeerError(
          'TOO_MANY_CONNECTIONS',
          `refused a connection from ${conn.remoteAddress}: already ${this.m.limits.maxPerHost} connections from ${key} (the limit)`,
        ),
      )
      return
    }
    const rate = this.m.limits.connectRate
    if (!local && rate !== false && !this.#hostRates(rate).take(key)) {
      conn.abort()
      const { perSecond, burst } = rate
      this.m.init.events.report(
        new PeerError(
          'TOO_MANY_CONNECTIONS',
          `refused a connection from ${conn.remoteAddress}: ${key} opens connections faster than ${perSecond}/s (burst ${burst})`,
        ),
      )
      return
    }
    this.m.count(conn, 'inbound')
    const limit = this.m.handshakeLimit()
    // Over the bound, a handshake from the network group holding the most slots makes room: half-open
    // sockets from one place cannot lock out newcomers from elsewhere (see HandshakeSlots).
    const slot = this.m.slots.admitInbound(
      () => limit.abort(new PeerError('HANDSHAKE_TIMEOUT', 'pushed out by newer handshakes while stalled')),
      netgroupOf(host),
    )
    const done = () => {
      slot.release()
      limit.dispose()
    }
    this.m.init.upgrader
      .upgrade(conn, { role: 'responder', signal: limit.signal })
      .then(
        (secure) => {
          slot.advance()
          return this.#acceptSecure(secure, limit.signal)
        },
        (cause) => {
          conn.abort(cause as Error)
          this.m.init.events.report(handshakeError(conn.remoteAddress, cause))
        },
      )
      .finally(done)
  }

  async #acceptSecure(secure: SecureConnection, signal: AbortSignal): Promise<void> {
    const link = this.m.track(secure, 'inbound', undefined)
    let hello: Message
    try {
      hello = await awaitHandshake(link, signal, (l) => this.m.dropLink(l))
    } catch (err) {
      this.m.init.events.report(err as PeerError)
      return
    }
    const reject = (code: number, reason: string) => {
      link.write({ type: 'REJECT', code, reason })
      link.closeReason = { reason: 'local', message: reason }
      void this.m.closeLink(link)
    }
    if (hello.type !== 'HELLO')
      return reject(RejectCode.PROTOCOL_VIOLATION, `expected HELLO, got ${hello.type}`)
    if (!this.m.init.isRunning()) return reject(RejectCode.SHUTTING_DOWN, 'peer is shutting down')
    const problem = checkAnnouncement(hello, secure, this.m.policy)
    if (problem) return reject(problem.wire, problem.message)
    if (!this.m.sessions.has(hello.peerId) && !this.#makeRoom()) {
      this.m.init.events.report(
        new PeerError(
          'TOO_MANY_CONNECTIONS',
          `refused ${secure.remoteAddress}: all ${this.m.limits.maxInbound} inbound slots hold protected peers`,
        ),
      )
      return reject(
        RejectCode.TOO_MANY_CONNECTIONS,
        `all ${this.m.limits.maxInbound} inbound slots are taken`,
      )
    }
    this.m.trust.checkInbound(hello)
    link.write({ type: 'WELCOME', ...this.m.init.announcement() })
    this.m.open(link, hello)
  }

  /** True when an inbound slot is free or was freed by evicting the least valuable inbound peer. */
  #makeRoom(): boolean {
    const inbound = [...this.m.sessions.values()].filter((s) => s.online && s.active.direction === 'inbound')
    if (inbound.length < this.m.limits.maxInbound) return true
    const victim = this.#eviction.select(
      inbound
        .filter((s) => !this.m.wanted.has(s.id))
        .map((s) => {
          const netgroup = netgroupOf(remoteHostOf(s.active.conn))
          return {
            value: s,
            netgroup,
            connectedAt: s.connectedAt,
            rtt: s.rtt,
            lastUseful: s.lastUseful,
            discouraged: this.m.discouraged.has(netgroup),
          }
        }),
      this.m.limits.maxInbound,
    )
    if (!victim) return false
    this.m.disconnect(victim, EVICTED_GOODBYE)
    // Its slot is free from now on, whether or not its close has completed.
    this.m.endSession(victim, 'local', EVICTED_GOODBYE)
    return true
  }
}
