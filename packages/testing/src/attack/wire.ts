import { decodeMessage, encodeMessage, type HelloMessage, type Message } from '@parley/protocol'

/**
 * The wire version an attacker speaks. 2: frame = u32 BE length ‖ type byte ‖ fields. 3: every frame
 * body starts with a channel byte (0 = the session's control channel), then the same message.
 */
export type WireVersion = 2 | 3

/** The control channel of wire version 3: HELLO, WELCOME, REJECT, PING, PONG, GOODBYE. */
export const CONTROL_CHANNEL = 0
/** Service protocol names a wire-3 peer announces in HELLO's capabilities. */
export const CHAT_PROTOCOL = 'parley/chat/1'
export const PEERS_PROTOCOL = 'parley/peers/1'
/**
 * Service channels are numbered 1, 2, … over the protocol names both sides announce, sorted by byte
 * order: with both services on both sides, chat is 1 and peer exchange is 2.
 */
export const CHAT_CHANNEL = 1
export const PEERS_CHANNEL = 2

/** The channel a message travels on under wire version 3 when both sides run chat and peer exchange. */
export function channelOf(type: Message['type']): number {
  switch (type) {
    case 'TEXT':
    case 'ACK':
    case 'ACK_UPTO':
      return CHAT_CHANNEL
    case 'PEERS_REQUEST':
    case 'PEERS':
      return PEERS_CHANNEL
    default:
      return CONTROL_CHANNEL
  }
}

/** The frame body of `msg` (no length prefix): wire 2 ignores `channel`. */
export function bodyFor(wire: WireVersion, msg: Message, channel = channelOf(msg.type)): Uint8Array {
  const inner = encodeMessage(msg)
  if (wire === 2) return inner
  const body = new Uint8Array(1 + inner.length)
  body[0] = channel
  body.set(inner, 1)
  return body
}

/** A whole frame: u32 BE body length ‖ body. */
export function frameFor(wire: WireVersion, msg: Message, channel?: number): Uint8Array {
  return prefixed(bodyFor(wire, msg, channel))
}

/** `body` with its u32 BE length prefix. */
export function prefixed(body: Uint8Array): Uint8Array {
  const frame = Buffer.allocUnsafe(4 + body.length)
  frame.writeUInt32BE(body.length, 0)
  frame.set(body, 4)
  return frame
}

/** `count` copies of one frame back to back: one send, many requests. */
export function repeatFrame(wire: WireVersion, msg: Message, count: number): Uint8Array {
  const frame = frameFor(wire, msg)
  const out = Buffer.allocUnsafe(frame.length * count)
  for (let i = 0; i < count; i++) out.set(frame, i * frame.length)
  return out
}

/** Reads a received body. Anything this harness cannot decode comes back as `undefined`. */
export function decodeBody(
  wire: WireVersion,
  body: Uint8Array,
): { channel: number; msg: Message } | undefined {
  try {
    if (wire === 2) return { channel: CONTROL_CHANNEL, msg: decodeMessage(body) }
    if (body.length < 2) return undefined
    return { channel: body[0]!, msg: decodeMessage(body.subarray(1)) }
  } catch {
    return undefined
  }
}

/** The HELLO a wire-`wire` peer sends: version, and under wire 3 the services it runs. */
export function helloFor(
  wire: WireVersion,
  peerId: string,
  options: { name?: string; listenAddrs?: string[] } = {},
): HelloMessage {
  return {
    type: 'HELLO',
    version: wire,
    peerId,
    name: options.name ?? 'attacker',
    listenAddrs: options.listenAddrs ?? [],
    capabilities: wire === 3 ? [CHAT_PROTOCOL, PEERS_PROTOCOL] : [],
  }
}

/**
 * A legal address of exactly `bytes` (≤ 255) characters: a DNS name of long labels and a port, so a
 * peer that checks address syntax still takes it. `salt` makes each one distinct.
 */
export function longAddress(salt: number, bytes = 255): string {
  const port = `:${4000 + (salt % 60000)}`
  const chars = `x${salt.toString(36)}`.padEnd(bytes - port.length, 'a').split('')
  // Labels of at most 62 characters (DNS allows 63); never a dot at either end.
  for (let i = 62; i < chars.length - 1; i += 63) chars[i] = '.'
  return chars.join('') + port
}

/** The wire version attack tests speak: `PARLEY_ATTACK_WIRE=2` runs them against a wire-2 peer. @default 3 */
export function attackWire(): WireVersion {
  return process.env.PARLEY_ATTACK_WIRE === '2' ? 2 : 3
}
