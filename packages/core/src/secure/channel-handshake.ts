/**
 * The handshake driver of the secure channel: runs the three Noise XX messages over a connection
 * (length-prefixed, fixed sizes), checks the remote identity, and hands over to the record layer.
 *
 * The dialer picks the cipher function. For ChaChaPoly its first message is the plain Noise message,
 * as before AESGCM existed; for AESGCM one cipher byte (0x02) comes before it, inside the same length
 * prefix. The listener follows that choice. Nothing else is needed to make it safe: the cipher is in
 * the protocol name that starts the handshake hash, so a byte changed, added or removed on the way
 * leaves the two sides with different hashes and the first tag fails (message 2's; on a private
 * network message 1's). A hostile dialer that asks for AESGCM only makes its own records dearer to open
 * (an OpenSSL context each; software AES on a CPU without AES instructions, which the listener accepts
 * all the same rather than refuse peers that opted in), and small records are budgeted per link (see
 * link-reader.ts; an empty one, which no budget would count, closes the connection).
 */
import type { Connection } from '../transport.js'
import { IDENTITY_PAYLOAD_LEN, verifyIdentity } from './channel-identity.js'
import { NoiseConnection } from './channel-records.js'
import { SecureChannelError } from './errors.js'
import { HandshakeState } from './noise.js'
import type { NoiseCipher } from './noise-cipher-state.js'
import { DHLEN, type NoiseKeyPair, TAGLEN } from './noise-crypto.js'
import type { SecureConnection, UpgradeOptions } from './upgrader.js'

const EMPTY = Buffer.alloc(0)

// Every handshake message has a fixed size, so a wrong length prefix is rejected before buffering.
const MESSAGE_LEN = [
  DHLEN, // -> e (empty payload, sent in clear: there is no key yet)
  DHLEN + (DHLEN + TAGLEN) + (IDENTITY_PAYLOAD_LEN + TAGLEN), // <- e, ee, s, es + payload
  DHLEN + TAGLEN + (IDENTITY_PAYLOAD_LEN + TAGLEN), // -> s, se + payload
] as const
// XXpsk0 (a private network): the first message's empty payload is encrypted under the pre-shared key.
const PSK_MESSAGE_LEN = [DHLEN + TAGLEN, MESSAGE_LEN[1], MESSAGE_LEN[2]] as const

/** The byte before the first message that asks for AESGCM; no byte means ChaChaPoly. */
const AESGCM_BYTE = 0x02

export interface HandshakeSettings {
  staticKeyPair: NoiseKeyPair
  payload: Buffer
  prologue: Buffer
  /** The network's pre-shared key (XXpsk0), or undefined for the public network (XX). */
  psk: Buffer | undefined
  handshakeTimeout: number
  maxRecordSize: number
  /** The cipher function this side uses when it dials; a listener follows the dialer's. */
  cipher: NoiseCipher
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
    const newState = (cipher: NoiseCipher) =>
      new HandshakeState({
        initiator,
        staticKeyPair: settings.staticKeyPair,
        prologue: settings.prologue,
        ...(settings.psk ? { psk: { keys: [settings.psk], positions: [0] } } : {}),
        cipher,
      })
    // The listener learns the cipher from the first message, so its state starts there.
    let state: HandshakeState | null = initiator ? newState(settings.cipher) : null
    const lengths = settings.psk ? PSK_MESSAGE_LEN : MESSAGE_LEN
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
      const message = state!.writeMessage(payload)
      // Only a dialer that picked AESGCM names its cipher, so a ChaChaPoly dialer's first message is
      // the one every earlier version sends.
      const prefix = messages === 0 && settings.cipher !== 'ChaChaPoly' ? 1 : 0
      messages++
      const framed = Buffer.allocUnsafe(2 + prefix + message.length)
      framed.writeUInt16BE(prefix + message.length, 0)
      if (prefix === 1) framed[2] = AESGCM_BYTE
      message.copy(framed, 2 + prefix)
      conn.send(framed)
    }
    const read = (framed: Buffer) => {
      let message = framed
      if (state === null) {
        let cipher: NoiseCipher = 'ChaChaPoly'
        if (framed.length === lengths[0] + 1) {
          if (framed[0] !== AESGCM_BYTE) {
            throw new SecureChannelError(
              'HANDSHAKE_FAILED',
              `the dialer asked for cipher 0x${framed[0]!.toString(16).padStart(2, '0')}, which this peer does not know`,
            )
          }
          cipher = 'AESGCM'
          message = framed.subarray(1)
        }
        state = newState(cipher)
      }
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
      resolve(
        new NoiseConnection(
          conn,
          remotePeerId,
          state.split(),
          settings.maxRecordSize,
          leftover,
          state.protocolName,
        ),
      )
    }

    const onData = (chunk: Uint8Array) => {
      if (settled) return
      buffered = buffered.length === 0 ? Buffer.from(chunk) : Buffer.concat([buffered, chunk])
      try {
        while (!settled && buffered.length >= 2) {
          const length = buffered.readUInt16BE(0)
          const expected = lengths[messages]!
          // The listener's first message may carry the dialer's cipher byte.
          const named = messages === 0 && !initiator && length === expected + 1
          if (length !== expected && !named) {
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
