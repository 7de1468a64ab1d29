import { createHmac, timingSafeEqual } from 'node:crypto'
import {
  type Connection,
  type ConnectionUpgrader,
  SecureChannelError,
  type SecureConnection,
  type UpgradeOptions,
  WrappedConnection,
} from '@parley/core'
import { dhtSession } from './session.js'

/** Options of {@link dhtUpgrader}. */
export interface DhtUpgraderInit {
  /**
   * A private network's secret (the peer's `networkSecret`): both ends prove they know it, bound to
   * this very HyperDHT session, before any Parley byte. Peers with different secrets (or one with and
   * one without) fail with `HANDSHAKE_FAILED`.
   */
  networkSecret?: string | Uint8Array
  /** Time allowed for the exchange of proofs. @default 10_000 ms */
  handshakeTimeout?: number
  /**
   * On the dialing end, time allowed for the remote's proof once the connection is open (at most
   * `handshakeTimeout`). The dialer's stream opens only once HyperDHT has a path, and the listener
   * sends its proof at once, so a silent stream is a dead path: failing it early lets the caller retry
   * instead of waiting out a 40 s handshake limit (see "Resolved: two processes on one loopback" in
   * docs/DHT.md).
   * @default 10_000 ms
   */
  proofTimeout?: number
  /**
   * Upgrades connections that did not come from a DHT transport (TCP, memory), e.g. the Noise
   * upgrader, when one peer uses both. Without it such connections fail with `HANDSHAKE_FAILED`.
   */
  fallback?: ConnectionUpgrader
}

/** Length of one proof: an HMAC-SHA256 tag. */
export const PROOF_BYTES = 32
const LABEL = Buffer.from('parley-dht/1 network proof ', 'ascii')
const DEFAULT_HANDSHAKE_TIMEOUT = 10_000
const DEFAULT_PROOF_TIMEOUT = 10_000

/**
 * The upgrader for connections of a {@link dhtTransport}. It does not encrypt again: HyperDHT's Noise
 * handshake already encrypted the stream and verified that the remote holds the secret key of its
 * public key, so that key, in hex, is the connection's authenticated `remotePeerId`.
 *
 * What it adds is the private network check. Each end sends, as its first 32 bytes,
 *
 *     HMAC-SHA256(key = network secret (empty without one), "parley-dht/1 network proof " ‖ role ‖ handshake hash)
 *
 * with role `initiator` or `responder`, and checks the other end's proof before anything else is
 * read. The handshake hash is unique to the session and equal on both ends, so a proof cannot be
 * replayed on another connection or reflected (the roles differ); an end without the secret cannot
 * make one. This is channel binding (RFC 5056), the same construction as Hypercore's replication
 * capability (a keyed hash of the secret stream's handshake hash).
 *
 * Connections that did not come from a DHT transport go to `fallback`.
 */
export function dhtUpgrader(init: DhtUpgraderInit = {}): ConnectionUpgrader {
  const key =
    init.networkSecret === undefined
      ? Buffer.alloc(0)
      : typeof init.networkSecret === 'string'
        ? Buffer.from(init.networkSecret, 'utf8')
        : Buffer.from(init.networkSecret)
  const timeout = init.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT
  const proofTimeout = Math.min(timeout, init.proofTimeout ?? DEFAULT_PROOF_TIMEOUT)
  return {
    upgrade(conn, options) {
      const session = dhtSession(conn)
      if (session === undefined) {
        if (init.fallback !== undefined) return init.fallback.upgrade(conn, options)
        const err = new SecureChannelError(
          'HANDSHAKE_FAILED',
          `${conn.remoteAddress} is not a DHT connection, and no fallback upgrader was given`,
        )
        conn.abort(err)
        return Promise.reject(err)
      }
      if (session.initiator !== (options.role === 'initiator')) {
        const err = new SecureChannelError(
          'HANDSHAKE_FAILED',
          `asked to upgrade as ${options.role}, but HyperDHT made this end the ${session.initiator ? 'initiator' : 'responder'}`,
        )
        conn.abort(err)
        return Promise.reject(err)
      }
      const ours = proof(key, options.role, session.handshakeHash)
      const theirs = proof(
        key,
        options.role === 'initiator' ? 'responder' : 'initiator',
        session.handshakeHash,
      )
      // The listener gets its stream before the path exists (a punch may take ~20 s): the full limit.
      const limit = options.role === 'initiator' ? proofTimeout : timeout
      return exchange(
        conn,
        ours,
        theirs,
        limit,
        options,
        (leftover) => new DhtSecureConnection(conn, session.remotePeerId, leftover),
      )
    },
  }
}

function proof(key: Uint8Array, role: UpgradeOptions['role'], handshakeHash: Uint8Array): Buffer {
  return createHmac('sha256', key).update(LABEL).update(role).update(handshakeHash).digest()
}

/**
 * Sends our proof and checks theirs; resolves with `wrap` of the bytes that followed it. Aborts `conn`
 * on failure. `wrap` runs inside the data event that completed the proof, so the connection it builds
 * listens before the next chunk: the stream may deliver several chunks in one go (the remote's HELLO
 * right behind its proof), and a chunk emitted while nobody listens is lost.
 */
function exchange(
  conn: Connection,
  ours: Buffer,
  theirs: Buffer,
  timeout: number,
  options: UpgradeOptions,
  wrap: (leftover: Uint8Array) => SecureConnection,
): Promise<SecureConnection> {
  const { signal } = options
  return new Promise<SecureConnection>((resolve, reject) => {
    const received = Buffer.alloc(PROOF_BYTES)
    let length = 0
    const finish = (err: Error | undefined, leftover?: Uint8Array) => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      conn.off('data', onData)
      conn.off('end', onEnd)
      conn.off('close', onClose)
      if (err === undefined) {
        resolve(wrap(leftover ?? new Uint8Array(0)))
      } else {
        conn.abort(err)
        reject(err)
      }
    }
    const onData = (chunk: Uint8Array) => {
      const take = Math.min(PROOF_BYTES - length, chunk.length)
      received.set(chunk.subarray(0, take), length)
      length += take
      if (length < PROOF_BYTES) return
      if (!timingSafeEqual(received, theirs)) {
        finish(
          new SecureChannelError(
            'HANDSHAKE_FAILED',
            'the remote could not prove it knows the network secret: the peers are on different network secrets',
          ),
        )
        return
      }
      finish(undefined, chunk.subarray(take))
    }
    const onEnd = () =>
      finish(
        new SecureChannelError(
          'HANDSHAKE_FAILED',
          'the remote ended the connection before proving the network secret (it may have a different one)',
        ),
      )
    const onClose = () =>
      finish(
        new SecureChannelError(
          'HANDSHAKE_FAILED',
          'the connection closed before the network secret was proven (the remote may have a different one)',
        ),
      )
    const onAbort = () => finish(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'))
    const timer = setTimeout(
      () =>
        finish(
          new SecureChannelError('HANDSHAKE_TIMEOUT', `no network proof from the remote in ${timeout} ms`),
        ),
      timeout,
    )
    timer.unref?.()
    if (signal?.aborted) return onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    conn.on('data', onData)
    conn.on('end', onEnd)
    conn.on('close', onClose)
    try {
      conn.send(ours)
    } catch (err) {
      finish(err as Error)
    }
  })
}

/** A DHT connection after the proofs: bytes pass through untouched (HyperDHT encrypts them). */
class DhtSecureConnection extends WrappedConnection implements SecureConnection {
  protected override consume(chunk: Uint8Array): Uint8Array | null {
    this.deliver(chunk)
    return null
  }

  override send(bytes: Uint8Array): boolean {
    return this.inner.send(bytes)
  }
}
