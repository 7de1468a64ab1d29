import { setMaxListeners } from 'node:events'
import {
  encodeFrame,
  encodeMessage,
  Limits,
  type PeerAnnouncement,
  PROTOCOL_VERSION,
  RejectCode,
} from '@parley/protocol'
import { Acceptor } from './acceptor.js'
import { Discouragement, HandshakeSlots } from './admission.js'
import {
  type ConnectionHost,
  DUPLICATE_GOODBYE,
  type HandshakeLimit,
  type ManagerInit,
} from './connection-host.js'
import { Dialer, type DialOptions } from './dialer.js'
import type { AnnouncementPolicy } from './handshake.js'
import type { ResolvedLimits } from './limits.js'
import { Link } from './link.js'
import { LinkReader } from './link-reader.js'
import { PeerError } from './peer-errors.js'
import type { Direction, DisconnectReason, PeerInfo } from './peer-types.js'
import { SecureChannelError } from './secure/errors.js'
import type { SecureConnection } from './secure/upgrader.js'
import { Session } from './session.js'
import type { Connection } from './transport.js'
import type { Trust } from './trust.js'
import { hostKeyOf, netgroupOf, remoteHostOf, Timers, TokenBucket } from './util.js'

/**
 * Dialing and accepting: handshake admission, connection limits and inbound eviction, the
 * simultaneous-dial tie-break, reconnection after a loss, and liveness. Owns every link and session.
 */
export class ConnectionManager implements ConnectionHost {
  readonly links = new Set<Link>()
  readonly sessions = new Map<string, Session>()
  /** Peers the user dialed, by id → the address used: reconnected after a loss. */
  readonly wanted = new Map<string, string>()
  readonly timers = new Timers()
  /** Aborted when the peer finishes stopping: ends handshakes still in progress, which no link tracks yet. */
  readonly halt = new AbortController()
  readonly dialer = new Dialer(this)
  readonly acceptor = new Acceptor(this)
  readonly init: ManagerInit
  get trust(): Trust {
    return this.init.trust
  }
  readonly limits: ResolvedLimits
  readonly reader: LinkReader
  readonly slots: HandshakeSlots
  readonly discouraged: Discouragement
  /** Peer ids refused until the given time, after breaking the protocol or a limit. */
  readonly #cooling = new Map<string, number>()
  /** Raw connections per remote host, and outbound ones, counted from accept/dial to close. */
  readonly #perHost = new Map<string, number>()
  /** Outbound raw connections, from dial to close. */
  outboundCount = 0
  readonly policy: AnnouncementPolicy
  /** Redials across all peers: losing hundreds of links at once must not become a dial storm. */
  readonly #redials: TokenBucket | undefined

  constructor(init: ManagerInit) {
    this.init = init
    this.limits = init.limits
    this.slots = new HandshakeSlots(init.limits.maxInboundHandshakes, init.limits.maxOutboundHandshakes)
    this.discouraged = new Discouragement(init.limits.cooldown)
    this.policy = {
      selfId: init.selfId,
      allow: init.allow,
      deny: init.deny,
      coolingUntil: (id) => this.#cooling.get(id),
    }
    this.reader = new LinkReader({
      sessions: this.sessions,
      links: this.links,
      limits: init.limits,
      closeLink: (link) => void this.closeLink(link),
      violation: (link, err) => this.#violation(link, err),
      rejectVersion: (link, version, legacyFormat) => this.#rejectVersion(link, version, legacyFormat),
    })
    setMaxListeners(0, this.halt.signal)
    const r = init.limits.reconnect
    this.#redials = r === false ? undefined : new TokenBucket(r.perSecond, r.burst)
  }

  /** Raw connections open from `host` (inbound and outbound), or from its IPv6 /64 (see hostKeyOf). */
  connectionsFrom(host: string): number {
    return this.#perHost.get(hostKeyOf(host)) ?? 0
  }

  dial(address: string, options?: DialOptions): Promise<PeerInfo> {
    return this.dialer.dial(address, options)
  }

  accept(conn: Connection): void {
    this.acceptor.accept(conn)
  }

  get handshakesInProgress(): number {
    return this.slots.inProgress
  }

  /** Counts a raw connection against the limits until it closes. */
  count(conn: Connection, direction: Direction): void {
    const host = hostKeyOf(remoteHostOf(conn))
    this.#perHost.set(host, (this.#perHost.get(host) ?? 0) + 1)
    if (direction === 'outbound') this.outboundCount++
    conn.once('close', () => {
      const n = (this.#perHost.get(host) ?? 1) - 1
      if (n > 0) this.#perHost.set(host, n)
      else this.#perHost.delete(host)
      if (direction === 'outbound') this.outboundCount--
    })
  }

  // ---- links and sessions ---------------------------------------------------------------------

  /** Registers a fresh connection: wires its events and, for a dialer, sends HELLO. */
  track(conn: SecureConnection, direction: Direction, dialedAddress: string | undefined): Link {
    const link = new Link(conn, direction, dialedAddress, this.limits.maxFrameSize)
    const rate = this.limits.rate
    if (rate !== false) link.chunks = new TokenBucket(rate.perSecond, rate.burst)
    this.links.add(link)
    conn.on('data', (chunk) => this.reader.onData(link, chunk))
    conn.on('drain', () => {
      link.blockedSince = 0
      link.writer.resume()
      const session = link.remote && this.sessions.get(link.remote.peerId)
      if (session?.active === link) session.forEachHandler((h) => h.onDrain?.())
    })
    conn.on('end', () => {
      // The remote finished writing (e.g. it retired this link right after WELCOME); finish ours too,
      // but not before a handshake reply we are still checking has been acted on.
      if (link.state.status === 'handshaking' && !link.onHandshake) link.endedEarly = true
      else void this.closeLink(link)
    })
    conn.on('close', (err) => this.#onClose(link, err))
    if (direction === 'outbound') link.write({ type: 'HELLO', ...this.init.announcement() })
    return link
  }

  /** The handshake succeeded: attach the link to the remote peer's session, breaking ties. */
  open(link: Link, remote: PeerAnnouncement): Session {
    link.remote = remote
    link.bindChannels(
      this.init.services.map((s) => s.protocol),
      remote.capabilities,
    )
    link.state.advance('open')
    const session = this.#attach(link, remote)
    this.reader.replayEarly(link)
    if (link.endedEarly) void this.closeLink(link)
    return session
  }

  #attach(link: Link, remote: PeerAnnouncement): Session {
    this.init.events.learned(remote, link.direction, link.dialedAddress, remoteHostOf(link.conn))
    const session = this.sessions.get(remote.peerId)
    if (!session) {
      const rate = this.limits.rate
      // A peer from a group that broke limits recently starts with a quarter of the burst: a fresh key
      // buys a violator a short flood, not a full one. The rate stays: honest peers share groups with
      // violators (behind a NAT, on one host), and their pace (a tenth of the burst at once and
      // unacknowledged, 80 % of the rate; see ChatInit.pace) keeps them within this budget.
      const discouraged = rate !== false && this.discouraged.has(netgroupOf(remoteHostOf(link.conn)))
      const created = new Session(
        remote.peerId,
        link,
        discouraged && rate ? { perSecond: rate.perSecond, burst: rate.burst / 4 } : rate,
      )
      created.openServices(this.init.services)
      this.sessions.set(remote.peerId, created)
      this.init.events.opened(created)
      return created
    }
    session.links.add(link)
    if (!session.online) {
      // The replacement for a lost link (a reconnection, either side dialing) or for a retired duplicate.
      clearTimeout(session.graceTimer)
      clearTimeout(session.reconnectTimer)
      session.graceTimer = undefined
      session.reconnectTimer = undefined
      // reconnectAttempt is reset by the first frame on the new link, not here: a link the remote retires at
      // once must not restart the backoff, or the retries would never end.
      session.online = true
      this.#switchTo(session, link)
      if (session.announcedGone) {
        session.announcedGone = false
        this.init.events.resumed(session)
      }
      return session
    }
    const winner = this.#preferred(session.active, link)
    const loser = winner === link ? session.active : link
    if (winner === link) this.#switchTo(session, link)
    this.#retire(loser)
    return session
  }

  /**
   * Of two links to the same peer, the one both ends keep: the one dialed by the lower peer id;
   * if one peer dialed both, the one with the lower address pair.
   */
  #preferred(a: Link, b: Link): Link {
    const initiator = (l: Link) => (l.direction === 'outbound' ? this.init.selfId : l.remote!.peerId)
    const ia = initiator(a)
    const ib = initiator(b)
    if (ia !== ib) return ia < ib ? a : b
    return a.tieKey <= b.tieKey ? a : b
  }

  #switchTo(session: Session, link: Link): void {
    session.active = link
    session.forEachHandler((h) => h.onResume?.())
  }

  #retire(link: Link): void {
    link.write({ type: 'GOODBYE', reason: DUPLICATE_GOODBYE })
    link.goodbye = DUPLICATE_GOODBYE
    void this.closeLink(link)
  }

  async closeLink(link: Link, signal = this.timers.deadline(this.limits.stopTimeout)): Promise<void> {
    if (link.state.status === 'closed') return
    link.state.advance('closing')
    link.writer.flush()
    try {
      await link.conn.close({ signal })
    } catch {
      link.conn.abort()
    }
  }

  dropLink(link: Link): void {
    link.state.advance('closed')
    this.links.delete(link)
    this.reader.forget(link)
    link.conn.abort()
  }

  /** GOODBYE on every link of the session, then a graceful close. */
  disconnect(session: Session, reason: string, signal?: AbortSignal): Promise<void> {
    const deadline = signal ?? this.timers.deadline(this.limits.stopTimeout)
    return Promise.all(
      [...session.links].map((link) => {
        link.write({ type: 'GOODBYE', reason })
        link.closeReason = { reason: 'local', message: reason }
        return this.closeLink(link, deadline)
      }),
    ).then(() => undefined)
  }

  #onClose(link: Link, err: Error | undefined): void {
    link.state.advance('closed')
    this.links.delete(link)
    this.reader.forget(link)
    const id = link.remote?.peerId
    const session = id === undefined ? undefined : this.sessions.get(id)
    if (!session?.links.has(link)) return
    session.links.delete(link)
    if (session.active !== link) return
    const next = [...session.links].find((l) => l.state.status === 'open')
    if (next) {
      this.#switchTo(session, next)
      return
    }
    if (link.goodbye === DUPLICATE_GOODBYE && this.init.isRunning()) {
      // The other end moved to another link we have not seen open yet: wait for it, briefly.
      session.online = false
      session.graceTimer = setTimeout(() => {
        session.graceTimer = undefined
        const message = 'the replacement connection never arrived'
        const address = this.wanted.get(session.id)
        if (address === undefined || this.limits.reconnect === false || !this.init.isRunning()) {
          return this.endSession(session, 'connection-lost', message)
        }
        // It may be holding a dead link of ours that it prefers (it missed our reset, e.g. in a partition):
        // keep dialing, as after any loss, until it lets go of the dead link.
        if (!session.announcedGone) {
          session.announcedGone = true
          this.init.events.lost(session, 'connection-lost', message)
        }
        this.#scheduleReconnect(session, address)
      }, this.limits.handshakeTimeout)
      session.graceTimer.unref?.()
      return
    }
    const { reason, message } =
      link.closeReason ??
      (link.goodbye !== undefined
        ? { reason: 'goodbye' as const, message: link.goodbye }
        : {
            // A failed integrity check means tampering or a broken peer, not a network hiccup.
            reason:
              err instanceof SecureChannelError ? ('protocol-error' as const) : ('connection-lost' as const),
            message: err?.message ?? 'the connection closed',
          })
    const address = this.wanted.get(session.id)
    if (
      address !== undefined &&
      this.limits.reconnect !== false &&
      this.init.isRunning() &&
      (reason === 'connection-lost' || reason === 'timeout')
    ) {
      // Say it went away, but keep its unacknowledged messages and take new ones while we dial again.
      session.online = false
      session.announcedGone = true
      this.init.events.lost(session, reason, message)
      this.#scheduleReconnect(session, address)
      return
    }
    this.endSession(session, reason, message)
  }

  #scheduleReconnect(session: Session, address: string): void {
    const policy = this.limits.reconnect
    if (policy === false || !this.init.isRunning()) return
    const attempt = ++session.reconnectAttempt
    if (attempt > policy.maxAttempts) {
      this.endSession(
        session,
        'connection-lost',
        `gave up reconnecting to ${address} after ${policy.maxAttempts} attempts`,
      )
      return
    }
    // Exponential backoff with jitter in [50 %, 100 %], so peers that lost each other do not retry in lockstep.
    const ceiling = Math.min(policy.maxDelay, policy.initialDelay * 2 ** (attempt - 1))
    const delay = Math.round(ceiling * (0.5 + Math.random() / 2))
    this.#redialAfter(session, address, delay)
    this.init.events.reconnecting({ id: session.id, name: session.remote.name, attempt, delay })
  }

  /** Dials `address` again after `delay`, once the shared redial budget has a token (waiting jittered). */
  #redialAfter(session: Session, address: string, delay: number): void {
    session.reconnectTimer = setTimeout(() => {
      session.reconnectTimer = undefined
      if (this.sessions.get(session.id) !== session || session.online || !this.init.isRunning()) return
      const bucket = this.#redials
      if (bucket && !bucket.take()) {
        // Over the budget: not an attempt; wait one to two refill periods, jittered so waiters spread out.
        const period = 1000 / bucket.perSecond
        this.#redialAfter(session, address, Math.round(period * (1 + Math.random())))
        return
      }
      this.dialer.dial(address).catch((err: unknown) => {
        if (this.sessions.get(session.id) !== session || session.online) return
        // Another key answers there now, not the one saved: dialing again cannot reach this peer, and
        // the user must hear why, not watch the attempts go on in silence.
        if (err instanceof PeerError && err.code === 'KEY_CHANGED') {
          this.init.events.report(err)
          this.endSession(
            session,
            'connection-lost',
            `not reconnecting: ${address} answers with another key now`,
          )
          return
        }
        this.#scheduleReconnect(session, address)
      })
    }, delay)
    session.reconnectTimer.unref?.()
  }

  endSession(session: Session, reason: DisconnectReason, message: string): void {
    if (this.sessions.get(session.id) !== session) return
    clearTimeout(session.graceTimer)
    clearTimeout(session.reconnectTimer)
    session.ended = true
    this.sessions.delete(session.id)
    if (reason !== 'connection-lost' && reason !== 'timeout') this.wanted.delete(session.id)
    const error = new PeerError(
      'PEER_GONE',
      `${session.remote.name} disconnected before acknowledging (${message})`,
    )
    session.forEachHandler((h) => h.onClose(error))
    for (const l of session.links) l.conn.abort()
    this.init.events.ended(session, reason, message, error)
  }

  // ---- violations and liveness ----------------------------------------------------------------

  #violation(link: Link, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    link.closeReason = { reason: 'protocol-error', message }
    // Refused for a while by key, and its network group discouraged: a fresh key is free, an address is not.
    const id = link.remote?.peerId
    if (id !== undefined) this.#cool(id)
    this.discouraged.add(netgroupOf(remoteHostOf(link.conn)))
    this.init.events.report(
      new PeerError(
        (err as PeerError).code === 'LIMIT_EXCEEDED' ? 'LIMIT_EXCEEDED' : 'REJECTED',
        `closed the connection to ${link.conn.remoteAddress}: ${message}`,
        { cause: err },
      ),
    )
    const open = link.state.status === 'open' || link.state.status === 'closing'
    link.state.advance('closed')
    if (!open || link.conn.status !== 'open') {
      link.conn.abort(err instanceof Error ? err : undefined)
      return
    }
    // Flush the acknowledgements of what was accepted before the violation (their senders would see
    // PEER_GONE) and a GOODBYE with the reason, then close, cut short after stopTimeout.
    this.reader.readEnd(link)
    link.write({ type: 'GOODBYE', reason: clipReason(message) })
    link.writer.flush()
    // What it sends while we close costs us nothing (not even decryption), yet its end is still seen.
    // A connection that cannot discard is paused instead: its close then waits out stopTimeout.
    if (link.conn.discardInput) link.conn.discardInput()
    else link.conn.pause()
    link.conn.close({ signal: this.timers.deadline(this.limits.stopTimeout) }).catch(() => link.conn.abort())
  }

  #cool(peerId: string): void {
    this.#cooling.delete(peerId)
    this.#cooling.set(peerId, Date.now() + this.limits.cooldown)
    if (this.#cooling.size > 4096) this.#cooling.delete(this.#cooling.keys().next().value!)
  }

  /** Answers a HELLO of another version with REJECT, in the framing that version reads. */
  #rejectVersion(link: Link, version: number, legacyFormat: boolean): void {
    const reject = {
      type: 'REJECT' as const,
      code: RejectCode.INCOMPATIBLE_VERSION,
      reason: `this peer speaks protocol version ${PROTOCOL_VERSION}, not ${version}`,
    }
    if (legacyFormat) link.conn.send(encodeFrame(encodeMessage(reject)))
    else link.write(reject)
    link.closeReason = { reason: 'protocol-error', message: 'incompatible protocol version' }
    void this.closeLink(link)
    link.onHandshake = undefined
  }

  /** Pings quiet links, closes dead ones and ones whose remote stopped reading. */
  tick(now: number): void {
    for (const link of this.links) {
      if (link.state.status !== 'open') continue
      const silent = now - link.lastReceived
      if (link.blockedSince !== 0 && now - link.blockedSince >= this.limits.idleTimeout) {
        // It stopped reading what we send: its queue would otherwise grow in our memory forever.
        link.closeReason = {
          reason: 'timeout',
          message: `stopped reading for ${Math.round((now - link.blockedSince) / 1000)} s`,
        }
        link.conn.abort()
      } else if (silent >= this.limits.idleTimeout) {
        link.closeReason = { reason: 'timeout', message: `no answer for ${Math.round(silent / 1000)} s` }
        link.conn.abort()
      } else if (
        silent >= this.limits.pingInterval &&
        (link.pingNonce === 0 || now - link.pingSentAt >= this.limits.pingInterval)
      ) {
        link.pingNonce = ((Math.random() * 0xfffffffe) >>> 0) + 1
        link.pingSentAt = now
        link.write({ type: 'PING', nonce: link.pingNonce })
      }
    }
  }

  /** The signal a handshake runs under: handshakeTimeout (or `ms`), the peer halting, `outer`, or `abort()`. */
  handshakeLimit(outer?: AbortSignal, ms = this.limits.handshakeTimeout): HandshakeLimit {
    const controller = new AbortController()
    const cancel = this.timers.after(ms, () =>
      controller.abort(new PeerError('HANDSHAKE_TIMEOUT', `timed out after ${ms} ms`)),
    )
    const halt = this.halt.signal
    const onHalt = () => controller.abort(halt.reason)
    const onOuter = () => controller.abort(outer!.reason)
    halt.addEventListener('abort', onHalt, { once: true })
    outer?.addEventListener('abort', onOuter, { once: true })
    if (halt.aborted) onHalt()
    else if (outer?.aborted) onOuter()
    return {
      signal: controller.signal,
      abort: (reason) => controller.abort(reason),
      dispose: () => {
        cancel()
        halt.removeEventListener('abort', onHalt)
        outer?.removeEventListener('abort', onOuter)
      },
    }
  }
}

function clipReason(text: string): string {
  if (Buffer.byteLength(text) <= Limits.reasonBytes) return text
  let out = text.slice(0, Limits.reasonBytes)
  while (Buffer.byteLength(out) > Limits.reasonBytes) out = out.slice(0, -1)
  return out
}
