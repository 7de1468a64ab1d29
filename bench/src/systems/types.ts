/**
 * What every compared system provides to the scenarios: a message channel over one connection, a
 * listener that hands out channels, and a dialer. The scenarios (scenarios.ts) are written once
 * against these interfaces; each system file adapts its library to them, nothing more.
 */

/** One message as the system's API takes it: text for Parley, bytes for the others. */
export type Payload = Uint8Array | string

/** One connection, message-framed, both ways. */
export interface Channel {
  /**
   * Sends one message. Returns false when the caller should `await ready()` before the next one
   * (backpressure, or for Parley a full window of unacknowledged sends); the message is queued anyway.
   */
  send(msg: Payload): boolean
  /** Resolves when sending may go on. Rejects when the channel failed. */
  ready(): Promise<void>
  /** Resolves when every message sent so far has left (Parley: has been acknowledged). */
  settled(): Promise<void>
  /** Called for each received message. Set it before the first message can arrive. */
  onMessage: ((msg: Payload) => void) | undefined
  /** Closes gracefully (bounded by the system's own timeouts). */
  close(): Promise<void>
}

/** The listening side. */
export interface Server {
  readonly port: number
  close(): Promise<void>
}

/** The dialing side: holds whatever client state a system keeps between connections. */
export interface Dialer {
  /**
   * Work that belongs to the client and not to the connection, done before the clock starts
   * (Parley: a fresh peer with its own identity, since a peer keeps one connection per remote).
   */
  prepare(): Promise<void>
  /** Dials, completes the system's handshake, and returns a channel ready to send. */
  dial(port: number): Promise<Channel>
  close(): Promise<void>
}

/** Options every system gets (from the orchestrator, through the worker). */
export interface SystemOptions {
  /** PEM key and certificate for TLS. */
  tls?: { key: string; cert: string }
  /** Parley: largest number of unacknowledged sends in flight on one channel. */
  window?: number
  /** Parley: largest number of unacknowledged payload bytes in flight on one channel. */
  windowBytes?: number
}

export interface System {
  /** Makes a message of exactly `bytes` bytes (ASCII) in the system's native type. */
  payload(bytes: number): Payload
  listen(onChannel: (channel: Channel) => void): Promise<Server>
  dialer(): Promise<Dialer>
  /** How many dials may run at once when opening many connections. */
  readonly dialConcurrency: number
}

export type SystemFactory = (options: SystemOptions) => Promise<System>
