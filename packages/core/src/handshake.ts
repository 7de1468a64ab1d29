import {
  CONTROL_CHANNEL,
  decodeMessage,
  type Message,
  MessageType,
  type PeerAnnouncement,
  ProtocolError,
  RejectCode,
  splitChannel,
} from '@parley/protocol'
import { fingerprint } from './identity.js'
import type { Link } from './link.js'
import { PeerError, type PeerErrorCode } from './peer-errors.js'
import type { SecureConnection } from './secure/upgrader.js'

/** Why a handshake is refused: the local error code, the wire code, and a sentence. */
export interface Refusal {
  code: PeerErrorCode
  wire: number
  message: string
}

export interface AnnouncementPolicy {
  selfId: string
  allow: readonly string[] | undefined
  deny: readonly string[] | undefined
  /** Until when a peer id is refused after a violation. */
  coolingUntil(peerId: string): number | undefined
}

/** Checks a HELLO or WELCOME against the authenticated key and the local policy. */
export function checkAnnouncement(
  a: PeerAnnouncement,
  secure: SecureConnection,
  policy: AnnouncementPolicy,
): Refusal | undefined {
  if (a.peerId === policy.selfId) {
    return { code: 'SELF_CONNECT', wire: RejectCode.SELF_CONNECT, message: 'a peer cannot connect to itself' }
  }
  // With a secure channel, the id in HELLO must be the key the handshake authenticated.
  if (secure.remotePeerId !== '' && secure.remotePeerId !== a.peerId) {
    return {
      code: 'IDENTITY_MISMATCH',
      wire: RejectCode.IDENTITY_MISMATCH,
      message: `claimed peer id ${fingerprint(a.peerId)} but authenticated as ${fingerprint(secure.remotePeerId)}`,
    }
  }
  const until = policy.coolingUntil(a.peerId)
  if (until !== undefined && until > Date.now()) {
    const seconds = Math.ceil((until - Date.now()) / 1000)
    return {
      code: 'DENIED',
      wire: RejectCode.DENIED,
      message: `peer ${fingerprint(a.peerId)} is cooling down for ${seconds} s`,
    }
  }
  const { allow, deny } = policy
  if (deny?.includes(a.peerId) || (allow !== undefined && !allow.includes(a.peerId))) {
    return {
      code: 'DENIED',
      wire: RejectCode.DENIED,
      message: `peer ${fingerprint(a.peerId)} is not allowed`,
    }
  }
  return undefined
}

/** The local error for a REJECT received in answer to our HELLO. */
export function rejectedError(address: string, code: number, reason: string): PeerError {
  const local: PeerErrorCode =
    code === RejectCode.SELF_CONNECT
      ? 'SELF_CONNECT'
      : code === RejectCode.INCOMPATIBLE_VERSION
        ? 'INCOMPATIBLE_VERSION'
        : code === RejectCode.IDENTITY_MISMATCH
          ? 'IDENTITY_MISMATCH'
          : code === RejectCode.DENIED
            ? 'DENIED'
            : code === RejectCode.TOO_MANY_CONNECTIONS
              ? 'TOO_MANY_CONNECTIONS'
              : 'REJECTED'
  return new PeerError(local, `${address} refused the connection: ${reason}`)
}

export function handshakeError(address: string, cause: unknown): PeerError {
  const c = (cause as { code?: string }).code
  const code = c === 'HANDSHAKE_TIMEOUT' || c === 'STOPPED' ? c : 'HANDSHAKE_FAILED'
  return new PeerError(code, `secure handshake with ${address} failed: ${(cause as Error).message}`, {
    cause,
  })
}

/** Decodes a handshake frame body, which must be on the control channel. */
export function decodeHandshake(body: Uint8Array): Message {
  // Only channel 0 is open during the handshake, so a body starting 0x03 is a REJECT from a version 1 or
  // 2 peer, which has no channel byte (it could not read our HELLO): say so rather than fail on it.
  if (body[0] === MessageType.REJECT) {
    const old = decodeMessage(body)
    if (old.type === 'REJECT') {
      return {
        type: 'REJECT',
        code: RejectCode.INCOMPATIBLE_VERSION,
        reason: `it speaks an older Parley protocol (version 1 or 2): ${old.reason}`,
      }
    }
  }
  const { channel, message } = splitChannel(body)
  if (channel !== CONTROL_CHANNEL)
    throw new ProtocolError('INVALID_FIELD', `a frame on channel ${channel} before the handshake finished`)
  return decodeMessage(message)
}

/** Resolves with the first message of the handshake (WELCOME/REJECT for a dialer, HELLO for a listener). */
export function awaitHandshake(
  link: Link,
  signal: AbortSignal,
  drop: (link: Link) => void,
): Promise<Message> {
  return new Promise<Message>((resolve, reject) => {
    const fail = (err: PeerError) => {
      link.onHandshake = undefined
      signal.removeEventListener('abort', onAbort)
      link.conn.off('close', onClose)
      drop(link)
      reject(err)
    }
    const onAbort = () =>
      fail(new PeerError('HANDSHAKE_TIMEOUT', `no handshake from ${link.conn.remoteAddress} in time`))
    const onClose = () =>
      fail(
        new PeerError(
          'HANDSHAKE_FAILED',
          `${link.conn.remoteAddress} closed the connection during the handshake`,
        ),
      )
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    link.conn.once('close', onClose)
    link.onHandshake = (msg) => {
      link.onHandshake = undefined
      signal.removeEventListener('abort', onAbort)
      link.conn.off('close', onClose)
      resolve(msg)
    }
  })
}
