import type { PeerInit } from './peer-types.js'

/** Every bound and timing of a peer, with its default filled in (docs/ARCHITECTURE.md, "Bounds"). */
export interface ResolvedLimits {
  maxFrameSize: number
  handshakeTimeout: number
  ackTimeout: number
  pingInterval: number
  idleTimeout: number
  stopTimeout: number
  maxInbound: number
  maxOutbound: number
  maxPerHost: number
  connectRate: { perSecond: number; burst: number } | false
  maxInboundHandshakes: number
  maxOutboundHandshakes: number
  /** Bytes held for one remote peer: its partial frame, early frames and our frames waiting for it to read. */
  peerMemory: number
  /** Bytes held for all remote peers together (the sum of their `peerMemory` shares). */
  totalPeerMemory: number
  rate: { perSecond: number; burst: number } | false
  sendPace: { perSecond: number; burst: number } | false
  cooldown: number
  inFlightMessages: number
  inFlightBytes: number
  waiting: number
  reconnect:
    | { initialDelay: number; maxDelay: number; maxAttempts: number; perSecond: number; burst: number }
    | false
  maxKnownPeers: number
  connectConcurrency: number
  maxDegree: number
  maxDialsPerCall: number
  transientIdleTimeout: number | false
}

export function resolveLimits(init: PeerInit): ResolvedLimits {
  const r = init.reconnect
  const maxFrameSize = init.maxFrameSize ?? 1024 * 1024
  const rate = init.rateLimit ?? { perSecond: 5_000, burst: 10_000 }
  return {
    maxFrameSize,
    handshakeTimeout: init.handshakeTimeout ?? 10_000,
    ackTimeout: init.ackTimeout ?? 10_000,
    pingInterval: init.pingInterval ?? 5_000,
    idleTimeout: init.idleTimeout ?? 15_000,
    stopTimeout: init.stopTimeout ?? 2_000,
    maxInbound: init.maxInbound ?? 256,
    maxOutbound: init.maxOutbound ?? 256,
    maxPerHost: init.maxPerHost ?? 16,
    connectRate: init.connectRate ?? { perSecond: 10, burst: 20 },
    maxInboundHandshakes: init.maxHandshakes?.inbound ?? 32,
    maxOutboundHandshakes: init.maxHandshakes?.outbound ?? 16,
    // Two frames in flight each way and a little more: an honest peer never comes near it.
    peerMemory: init.maxPeerMemory ?? 2 * maxFrameSize + 1024 * 1024,
    // Honest peers hold next to nothing each (a file transfer's chunks, a frame in flight); this only
    // stops hundreds of sessions, each within its own share, from adding up to gigabytes.
    totalPeerMemory: init.maxTotalPeerMemory ?? Math.max(64 * 1024 * 1024, 8 * maxFrameSize),
    rate,
    sendPace: init.sendPace ?? defaultPace(rate),
    cooldown: init.cooldown ?? 60_000,
    inFlightMessages: init.inFlight?.messages ?? 10_000,
    inFlightBytes: init.inFlight?.bytes ?? 8 * 1024 * 1024,
    waiting: init.inFlight?.waiting ?? 10_000,
    reconnect:
      r === false
        ? false
        : {
            initialDelay: r?.initialDelay ?? 500,
            maxDelay: r?.maxDelay ?? 30_000,
            maxAttempts: r?.maxAttempts ?? 8,
            perSecond: r?.perSecond ?? 4,
            burst: r?.burst ?? 8,
          },
    maxKnownPeers: init.maxKnownPeers ?? 1024,
    connectConcurrency: init.connectConcurrency ?? 8,
    maxDegree: positive('maxDegree', init.maxDegree ?? 32),
    maxDialsPerCall: positive('maxDialsPerCall', init.maxDialsPerCall ?? 32),
    transientIdleTimeout: init.transientIdleTimeout ?? 60_000,
  }
}

function positive(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1)
    throw new RangeError(`${name} must be a whole number of at least 1, got ${v}`)
  return v
}

/**
 * The pace of our TEXTs to each remote, assuming its `rateLimit` is ours: a margin below its rate (its
 * other services, pings, peer exchange and the mesh, spend the same budget), and a burst, which also
 * bounds our unacknowledged TEXTs, of a tenth of its burst: after a stall a remote may read a backlog and
 * a burst at once, and it gives a peer from a discouraged network group, which an honest peer may share,
 * a quarter of its burst.
 */
function defaultPace(rate: { perSecond: number; burst: number } | false): ResolvedLimits['sendPace'] {
  return rate === false ? false : { perSecond: rate.perSecond * 0.8, burst: Math.max(1, rate.burst / 10) }
}
