import type { Connection } from '@parley/core'

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
