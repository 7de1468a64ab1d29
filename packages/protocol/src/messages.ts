/** Wire version spoken by this implementation. A HELLO with another version is answered with REJECT. */
export const PROTOCOL_VERSION = 1

/** Type byte of each message: the first byte of every frame body. */
export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REJECT: 0x03,
  TEXT: 0x10,
  ACK: 0x11,
  PEERS_REQUEST: 0x20,
  PEERS: 0x21,
  PING: 0x30,
  PONG: 0x31,
  GOODBYE: 0x3f,
} as const
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
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode]

/** Outcome carried by an ACK (u8). */
export const AckStatus = {
  DELIVERED: 0,
  REFUSED: 1,
} as const
export type AckStatus = (typeof AckStatus)[keyof typeof AckStatus]

/** Bounds enforced by both encode and decode. */
export const Limits = {
  /** Peer id: Ed25519 public key, 32 bytes, written as 64 lowercase hex characters in the API. */
  peerIdBytes: 32,
  /** Message id: 16 random bytes, 32 lowercase hex characters in the API. */
  messageIdBytes: 16,
  nameBytes: 64,
  addressBytes: 255,
  addresses: 16,
  capabilityBytes: 32,
  capabilities: 16,
  reasonBytes: 256,
  textBytes: 65_535,
  peers: 256,
} as const

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

export interface HelloMessage extends PeerAnnouncement {
  type: 'HELLO'
}
export interface WelcomeMessage extends PeerAnnouncement {
  type: 'WELCOME'
}
export interface RejectMessage {
  type: 'REJECT'
  code: number
  reason: string
}
export interface TextMessage {
  type: 'TEXT'
  /** 32 lowercase hex chars (16 bytes on the wire). */
  id: string
  /** Milliseconds since the Unix epoch (u64 on the wire, must be a safe integer). */
  sentAt: number
  text: string
}
export interface AckMessage {
  type: 'ACK'
  id: string
  status: number
}
export interface PeersRequestMessage {
  type: 'PEERS_REQUEST'
}
export interface PeerRecord {
  peerId: string
  name: string
  addrs: string[]
  /** Milliseconds since the Unix epoch (u64). */
  lastSeen: number
}
export interface PeersMessage {
  type: 'PEERS'
  peers: PeerRecord[]
}
export interface PingMessage {
  type: 'PING'
  /** u32 */
  nonce: number
}
export interface PongMessage {
  type: 'PONG'
  nonce: number
}
export interface GoodbyeMessage {
  type: 'GOODBYE'
  reason: string
}

export type Message =
  | HelloMessage
  | WelcomeMessage
  | RejectMessage
  | TextMessage
  | AckMessage
  | PeersRequestMessage
  | PeersMessage
  | PingMessage
  | PongMessage
  | GoodbyeMessage
