/** Wire version spoken by this implementation. A HELLO with another version is answered with REJECT. */
export const PROTOCOL_VERSION = 3

/** Channel of the session's own messages (HELLO, WELCOME, REJECT, PING, PONG, GOODBYE). */
export const CONTROL_CHANNEL = 0
/** Highest channel number: the channel is one byte. */
export const MAX_CHANNEL = 255
/** Bytes of the channel number at the start of every frame body. */
export const CHANNEL_BYTES = 1

/** Type byte of each message: the first byte of a message body (in a frame body, after the channel byte). */
export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REJECT: 0x03,
  TEXT: 0x10,
  ACK: 0x11,
  ACK_UPTO: 0x12,
  PEERS_REQUEST: 0x20,
  PEERS: 0x21,
  PING: 0x30,
  PONG: 0x31,
  GOODBYE: 0x3f,
} as const
/** The name of a message type, as in a message's `type` field: `'HELLO'`, `'TEXT'`, … */
export type MessageTypeName = keyof typeof MessageType

/** Why a handshake was refused. Numbers cross the wire (u16). */
export const RejectCode = {
  INCOMPATIBLE_VERSION: 1,
  SELF_CONNECT: 2,
  IDENTITY_MISMATCH: 3,
  DENIED: 4,
  TOO_MANY_CONNECTIONS: 5,
  PROTOCOL_VIOLATION: 6,
  SHUTTING_DOWN: 7,
} as const
/** One of the {@link RejectCode} numbers. */
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode]

/** Outcome carried by an ACK (u8). */
export const AckStatus = {
  DELIVERED: 0,
  REFUSED: 1,
} as const
/** One of the {@link AckStatus} numbers. */
export type AckStatus = (typeof AckStatus)[keyof typeof AckStatus]

/** Bounds enforced by both encode and decode. */
export const Limits = {
  /** Peer id: Ed25519 public key, 32 bytes, written as 64 lowercase hex characters in the API. */
  peerIdBytes: 32,
  /** Message id: stream (8 bytes) + seq (u64), 32 lowercase hex characters in the API. */
  messageIdBytes: 16,
  /** A sender's stream: 8 random bytes per session, 16 lowercase hex characters in messages. */
  streamBytes: 8,
  nameBytes: 64,
  addressBytes: 255,
  addresses: 16,
  capabilityBytes: 32,
  capabilities: 16,
  reasonBytes: 256,
  textBytes: 65_535,
  peers: 256,
} as const

// Control characters (C0, DEL, C1), the line and paragraph separators, and the bidi controls: a
// display name is shown to people, and these would let it move a terminal's cursor, start a line of
// its own, or print in another order than it is stored.
const NAME_FORBIDDEN = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/
// JavaScript's \s: Unicode White_Space and U+FEFF (invisible), as PROTOCOL.md says.
const NAME_EDGE_SPACE = /^\s|\s$/

/**
 * What is wrong with a display name (HELLO, WELCOME, PEERS), or undefined when it may go on the wire:
 * no control, line-separator or bidi character, and no white space at either end (`bob ` would print
 * as `bob`). Encode and decode both enforce it, and it says nothing about the name itself, which is the
 * remote's to choose.
 */
export function displayNameProblem(name: string): string | undefined {
  if (NAME_FORBIDDEN.test(name)) return 'holds a control, line-separator or bidi character'
  if (NAME_EDGE_SPACE.test(name)) return 'starts or ends with white space'
  return undefined
}

/** Fields shared by HELLO (dialer → listener) and WELCOME (listener → dialer). */
export interface PeerAnnouncement {
  /** u16 */
  version: number
  /** 64 lowercase hex chars (32 bytes on the wire). */
  peerId: string
  name: string
  listenAddrs: string[]
  capabilities: string[]
}

/** The dialer's first message after the secure handshake: who it is, where it listens, what it speaks. */
export interface HelloMessage extends PeerAnnouncement {
  type: 'HELLO'
}
/** The listener's answer to an accepted HELLO. */
export interface WelcomeMessage extends PeerAnnouncement {
  type: 'WELCOME'
}
/** The listener's answer to a refused HELLO; `code` is one of {@link RejectCode}. The connection closes after it. */
export interface RejectMessage {
  type: 'REJECT'
  code: number
  reason: string
}
/**
 * A TEXT's id is its sender's `stream` (random per session) and `seq` (1, 2, 3… in the order sent on
 * that stream); APIs show the pair as one 32-character hex id (see {@link messageId}).
 */
export interface TextMessage {
  type: 'TEXT'
  /** 16 lowercase hex chars (8 bytes on the wire). */
  stream: string
  /** u64, 1 to 2^53 − 1. */
  seq: number
  /** Milliseconds since the Unix epoch (u64 on the wire, must be a safe integer). */
  sentAt: number
  text: string
}
/** Answers one TEXT; used for REFUSED (deliveries are normally acknowledged by ACK_UPTO). */
export interface AckMessage {
  type: 'ACK'
  stream: string
  seq: number
  status: number
}
/** Every TEXT of `stream` up to and including `seq` not answered by an ACK was delivered. */
export interface AckUpToMessage {
  type: 'ACK_UPTO'
  stream: string
  seq: number
}
/** Asks the remote peer whom it knows (peer exchange); answered by PEERS. */
export interface PeersRequestMessage {
  type: 'PEERS_REQUEST'
}
/** One peer in a PEERS answer. */
export interface PeerRecord {
  peerId: string
  name: string
  addrs: string[]
  /** Milliseconds since the Unix epoch (u64). */
  lastSeen: number
}
/** The answer to PEERS_REQUEST: at most {@link Limits}.peers records. */
export interface PeersMessage {
  type: 'PEERS'
  peers: PeerRecord[]
}
/** A keep-alive probe sent on an idle connection; answered by PONG with the same nonce. */
export interface PingMessage {
  type: 'PING'
  /** u32 */
  nonce: number
}
/** The answer to a PING, echoing its nonce. */
export interface PongMessage {
  type: 'PONG'
  nonce: number
}
/** A graceful leave: the sender closes the connection after it and is not reconnected to. */
export interface GoodbyeMessage {
  type: 'GOODBYE'
  reason: string
}

/** Any Parley message, discriminated by `type`: what {@link decodeMessage} returns and {@link encodeMessage} takes. */
export type Message =
  | HelloMessage
  | WelcomeMessage
  | RejectMessage
  | TextMessage
  | AckMessage
  | AckUpToMessage
  | PeersRequestMessage
  | PeersMessage
  | PingMessage
  | PongMessage
  | GoodbyeMessage

/** The 32-character id APIs show for a TEXT: its stream's 16 hex characters, then seq as 16 more. */
export function messageId(stream: string, seq: number): string {
  const hex = seq.toString(16)
  return stream + SIXTEEN_ZEROS.slice(hex.length) + hex
}
const SIXTEEN_ZEROS = '0000000000000000'

/** `BYTE_HEX[b]`: the byte `b` as two lowercase hex characters. */
const BYTE_HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'))

/**
 * The ids of one stream, the same strings as {@link messageId}'s, for a sender or receiver that makes
 * one per message. The stream and the seq's hex but its last byte are kept as one string, made again
 * only when that part changes (every 256 seqs in order), and the last byte comes from a table: an id
 * costs one concatenation where `messageId` makes four strings and converts a number to hex. An
 * application that holds many results at once (all its sends awaited together) holds fewer bytes,
 * and GC copies less.
 */
export class StreamIds {
  readonly stream: string
  #prefix = ''
  /** The seq's part above its last byte that `#prefix` ends with; -1: none yet. */
  #high = -1

  constructor(stream: string) {
    this.stream = stream
  }

  /** The id of this stream's message `seq`: equal to `messageId(stream, seq)`. */
  id(seq: number): string {
    const low = seq % 256
    const high = (seq - low) / 256
    if (high !== this.#high) {
      this.#high = high
      const hex = high.toString(16)
      this.#prefix = this.stream + SIXTEEN_ZEROS.slice(hex.length + 2) + hex
    }
    return this.#prefix + BYTE_HEX[low]!
  }
}
