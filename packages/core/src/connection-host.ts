import type { PeerAnnouncement } from '@parley/protocol'
import type { Discouragement, HandshakeGate, HandshakeSlots } from './admission.js'
import type { AnnouncementPolicy } from './handshake.js'
import type { ResolvedLimits } from './limits.js'
import type { Link } from './link.js'
import type { PeerError } from './peer-errors.js'
import type { Direction, DisconnectReason, ReconnectingEvent } from './peer-types.js'
import type { ConnectionUpgrader, SecureConnection } from './secure/upgrader.js'
import type { Service } from './services/service.js'
import type { Session } from './session.js'
import type { Connection, Transport } from './transport.js'
import type { Trust } from './trust.js'

/** GOODBYE reason that means "this connection is a duplicate; keep talking on the other one". */
export const DUPLICATE_GOODBYE = 'duplicate connection'
/** GOODBYE reason sent to an inbound peer whose slot went to a newcomer. */
export const EVICTED_GOODBYE = 'evicted to make room for a new peer'

/** What the connection manager tells the peer. */
export interface ManagerEvents {
  /**
   * A handshake completed: what the remote said about itself (first-hand), the address we dialed it at
   * (outbound), and the host its connection comes from.
   */
  learned(
    remote: PeerAnnouncement,
    direction: Direction,
    dialedAddress: string | undefined,
    host: string,
  ): void
  opened(session: Session): void
  /** A lost session is back on a new link (its disconnect had been reported). */
  resumed(session: Session): void
  /** The session's link was lost; it stays while reconnecting. */
  lost(session: Session, reason: DisconnectReason, message: string): void
  ended(session: Session, reason: DisconnectReason, message: string, error: PeerError): void
  reconnecting(event: ReconnectingEvent): void
  report(error: PeerError): void
}

export interface ManagerInit {
  transport: Transport
  upgrader: ConnectionUpgrader
  selfId: string
  services: readonly Service[]
  trust: Trust
  allow: readonly string[] | undefined
  deny: readonly string[] | undefined
  limits: ResolvedLimits
  /** Shared with other peers of the process: dials wait for one of its slots before connecting. */
  gate: HandshakeGate
  announcement: () => PeerAnnouncement
  isRunning: () => boolean
  events: ManagerEvents
}

/**
 * What the dialing and accepting sides need of the connection manager: its shared state and the
 * steps of a connection's life. The manager implements it; keeping it here keeps the imports one-way.
 */
export interface ConnectionHost {
  readonly trust: Trust
  readonly init: ManagerInit
  readonly limits: ResolvedLimits
  readonly sessions: Map<string, Session>
  readonly wanted: Map<string, string>
  readonly slots: HandshakeSlots
  readonly discouraged: Discouragement
  readonly policy: AnnouncementPolicy
  outboundCount: number
  connectionsFrom(host: string): number
  count(conn: Connection, direction: Direction): void
  track(conn: SecureConnection, direction: Direction, dialedAddress: string | undefined): Link
  open(link: Link, remote: PeerAnnouncement): Session
  closeLink(link: Link, signal?: AbortSignal): Promise<void>
  dropLink(link: Link): void
  disconnect(session: Session, reason: string, signal?: AbortSignal): Promise<void>
  endSession(session: Session, reason: DisconnectReason, message: string): void
  handshakeLimit(outer?: AbortSignal, ms?: number): HandshakeLimit
}

/** The signal a handshake runs under, and how to end it early or release it. */
export interface HandshakeLimit {
  signal: AbortSignal
  abort: (reason: Error) => void
  dispose: () => void
}
