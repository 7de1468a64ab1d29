/**
 * The handshake driver of the secure channel: runs the three Noise XX messages over a connection
 * (length-prefixed, fixed sizes), checks the remote identity, and hands over to the record layer.
 */
import type { Connection } from '../transport.js'
import { IDENTITY_PAYLOAD_LEN, verifyIdentity } from './channel-identity.js'
import { NoiseConnection } from './channel-records.js'
import { SecureChannelError } from './errors.js'
import { HandshakeState } from './noise.js'
import { DHLEN, type NoiseKeyPair, TAGLEN } from './noise-crypto.js'
import type { SecureConnection, UpgradeOptions } from './upgrader.js'

const EMPTY = Buffer.alloc(0)

// Every handshake message has a fixed size, so a wrong length prefix is rejected before buffering.
const MESSAGE_LEN = [
  DHLEN, // -> e (empty payload, sent in clear: there is no key yet)
  DHLEN + (DHLEN + TAGLEN) + (IDENTITY_PAYLOAD_LEN + TAGLEN), // <- e, ee, s, es + payload
  DHLEN + TAGLEN + (IDENTITY_PAYLOAD_LEN + TAGLEN), // -> s, se + payload
] as const

export interface HandshakeSettings {
  staticKeyPair: NoiseKeyPair
  payload: Buffer
  prologue: Buffer
  handshakeTimeout: number
  maxRecordSize: number
}

function handshakeError(err: unknown): Error {
  if (!(err instanceof SecureChannelError)) {
    return new SecureChannelError('HANDSHAKE_FAILED', 'the secure handshake failed', { cause: err })
  }
  if (
    err.code === 'HANDSHAKE_FAILED' &&
    err.cause instanceof SecureChannelError &&
    err.cause.code === 'INTEGRITY'
  ) {
    return new SecureChannelError(
      'HANDSHAKE_FAILED',
      'the secure handshake failed its authentication check: the peers may be on different network secrets',
      { cause: err },
    )
  }
  return err
}

export function handshake(
  conn: Connection,
  options: UpgradeOptions,
  settings: HandshakeSettings,
): Promise<SecureConnection> {
  return new Promise<SecureConnection>((resolve, reject) => {
    const initiator = options.role === 'initiator'
    const { signal } = options
    const state = new HandshakeState({
      initiator,
      staticKeyPair: settings.staticKeyPair,
      prologue: settings.prologue,
    })
    let messages = 0 // handshake messages written or read so far
    let buffered: Buffer = EMPTY
    let settled = false

    const cleanup = () => {
      clearTimeout(timer)
      conn.off('data', onData)
      conn.off('end', onEnd)
      conn.off('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const fail = (err: unknown, abortWith?: Error) => {
      if (settled) return
      settled = true
      cleanup()
      conn.abort(abortWith ?? (err instanceof Error ? err : undefined))
      reject(err)
    }
    const write = (payload: Uint8Array) => {
      const message = state.writeMessage(payload)
      messages++
      const framed = Buffer.allocUnsafe(2 + message.length)
      framed.writeUInt16BE(message.length, 0)
      message.copy(framed, 2)
      conn.send(framed)
    }
    const read = (message: Buffer) => {
      const payload = state.readMessage(message)
      messages++
      if (messages === 1) {
        // -> e: we send no payload in the first message (it would travel in clear), so accept none.
        if (payload.length !== 0)
          throw new SecureChannelError('HANDSHAKE_FAILED', 'unexpected first-message payload')
        write(settings.payload)
        return
      }
      const remotePeerId = verifyIdentity(payload, state.remoteStaticPublicKey)
      if (initiator) write(settings.payload)
      settled = true
      cleanup()
      const leftover = buffered
      buffered = EMPTY
      resolve(new NoiseConnection(conn, remotePeerId, state.split(), settings.maxRecordSize, leftover))
    }

    const onData = (chunk: Uint8Array) => {
      if (settled) return
      buffered = buffered.length === 0 ? Buffer.from(chunk) : Buffer.concat([buffered, chunk])
      try {
        while (!settled && buffered.length >= 2) {
          const length = buffered.readUInt16BE(0)
          const expected = MESSAGE_LEN[messages]
          if (length !== expected) {
            throw new SecureChannelError(
              'HANDSHAKE_FAILED',
              `expected a ${expected}-byte handshake message but the length prefix says ${length}: the remote is not speaking Parley's secure channel`,
            )
          }
          if (buffered.length < 2 + length) return
          const message = buffered.subarray(2, 2 + length)
          buffered = buffered.subarray(2 + length)
          read(message)
        }
      } catch (err) {
        fail(handshakeError(err))
      }
    }
    const onEnd = () => {
      fail(
        new SecureChannelError(
          'HANDSHAKE_FAILED',
          'the remote ended the connection during the secure handshake (it may have rejected it, e.g. a different network secret)',
        ),
      )
    }
    const onClose = (error?: Error) => {
      fail(
        new SecureChannelError(
          'HANDSHAKE_FAILED',
          'the connection closed during the secure handshake (the remote may have rejected it, e.g. a different network secret)',
          { cause: error },
        ),
      )
    }
    const onAbort = () => {
      const reason: unknown = signal?.reason
      fail(reason, reason instanceof Error ? reason : undefined)
    }

    const timer = setTimeout(() => {
      fail(
        new SecureChannelError(
          'HANDSHAKE_TIMEOUT',
          `the secure handshake did not finish within ${settings.handshakeTimeout} ms`,
        ),
      )
    }, settings.handshakeTimeout)
    timer.unref?.()

    if (signal?.aborted) return onAbort()
    if (conn.status !== 'open') {
      return fail(
        new SecureChannelError('HANDSHAKE_FAILED', `cannot secure a connection that is ${conn.status}`),
      )
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    conn.on('data', onData)
    conn.on('end', onEnd)
    conn.on('close', onClose)
    if (initiator) {
      try {
        write(EMPTY)
      } catch (err) {
        fail(handshakeError(err))
      }
    }
  })
}
