import type { Connection } from '@parley/core'

/**
 * How a DHT connection reached the other end: `direct` (one end was reachable without punching, or
 * both sit on one LAN), `holepunch` (both behind NATs, a hole was punched), `relay` (through a blind
 * relay: both NATs pick random ports).
 */
export type DhtPath = 'direct' | 'holepunch' | 'relay'

/** What HyperDHT's handshake established for one connection; read by the DHT upgrader. */
export interface DhtSession {
  /** The remote's Ed25519 public key in hex, as HyperDHT's Noise handshake verified it. */
  readonly remotePeerId: string
  /** Noise handshake hash: unique to this session, equal on both ends. */
  readonly handshakeHash: Uint8Array
  /** True for the end that dialed. */
  readonly initiator: boolean
  /**
   * The UDP address of the other end as this end sees it when the connection opened: the remote's NAT
   * for a direct (hole-punched) connection, a relay for a relayed one. Empty when unknown.
   */
  readonly remoteHost: string
  readonly remotePort: number
  /** How the connection was set up, as this end saw it. */
  readonly path: DhtPath
}

const sessions = new WeakMap<Connection, DhtSession>()

/** Called by the DHT transport for each connection it hands out. */
export function registerSession(conn: Connection, session: DhtSession): void {
  sessions.set(conn, session)
}

/** The HyperDHT session under `conn`, or undefined when `conn` did not come from a DHT transport. */
export function dhtSession(conn: Connection): DhtSession | undefined {
  return sessions.get(conn)
}
