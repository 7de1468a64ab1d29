import { expect } from 'vitest'
import {
  encodeMessage,
  type Message,
  MessageType,
  type MessageTypeName,
  ProtocolError,
  type ProtocolErrorCode,
} from '../src/index.js'

export const PEER_A = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
export const PEER_B = '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'
export const STREAM = '0011223344556677'
export const SEQ = 42
/** STREAM then SEQ as they are on the wire: a TEXT's 16-byte id. */
export const MSG_ID = `${STREAM}000000000000002a`

/** One message of every type, with non-ASCII text, empty lists and extreme numbers mixed in. */
export const samples: Record<MessageTypeName, Message> = {
  HELLO: {
    type: 'HELLO',
    version: 1,
    peerId: PEER_A,
    name: 'alice',
    listenAddrs: ['tcp://192.168.1.20:4000', 'tcp://[::1]:4000'],
    capabilities: ['text', 'peers'],
  },
  WELCOME: {
    type: 'WELCOME',
    version: 0xffff,
    peerId: PEER_B,
    name: 'Zoë',
    listenAddrs: [],
    capabilities: [],
  },
  REJECT: { type: 'REJECT', code: 0xffff, reason: '' },
  TEXT: {
    type: 'TEXT',
    stream: STREAM,
    seq: Number.MAX_SAFE_INTEGER,
    sentAt: Number.MAX_SAFE_INTEGER,
    text: '\uFEFFhello 👋 — ☃',
  },
  ACK: { type: 'ACK', stream: STREAM, seq: SEQ, status: 255 },
  ACK_UPTO: { type: 'ACK_UPTO', stream: STREAM, seq: 1 },
  PEERS_REQUEST: { type: 'PEERS_REQUEST' },
  PEERS: {
    type: 'PEERS',
    peers: [
      { peerId: PEER_A, name: 'bob', addrs: ['tcp://10.0.0.2:4000'], lastSeen: 0 },
      { peerId: PEER_B, name: '', addrs: [], lastSeen: 1_700_000_000_000 },
    ],
  },
  PING: { type: 'PING', nonce: 0 },
  PONG: { type: 'PONG', nonce: 0xffff_ffff },
  GOODBYE: { type: 'GOODBYE', reason: 'shutting down' },
}

export const allTypes = Object.keys(MessageType) as MessageTypeName[]

export const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
export const fromHex = (hex: string): Uint8Array =>
  new Uint8Array(Buffer.from(hex.replace(/\s+/g, ''), 'hex'))

/** A v3 frame body: the channel byte, then the message body. */
export const channelBody = (channel: number, msg: Message): Uint8Array =>
  new Uint8Array(Buffer.concat([Uint8Array.of(channel), encodeMessage(msg)]))

/** Calls `fn` and returns what it threw (fails the test if it did not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}

/** Asserts that `fn` throws a ProtocolError with `code`, and returns it. */
export function expectProtocolError(fn: () => unknown, code: ProtocolErrorCode): ProtocolError {
  const err = thrown(fn)
  expect(err).toBeInstanceOf(ProtocolError)
  expect((err as ProtocolError).code).toBe(code)
  return err as ProtocolError
}
