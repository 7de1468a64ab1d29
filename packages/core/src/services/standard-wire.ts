import { decodeMessage, frameMessage, type Message, ProtocolError, splitChannel } from '@parley/protocol'
import { CHAT_PROTOCOL } from './chat.js'
import { PEERS_PROTOCOL } from './peer-exchange.js'

/**
 * The service protocols every Parley peer runs. Between two such peers chat is channel 1 and peer
 * exchange channel 2 (PROTOCOL.md, "Channels"): what a hand-written client, a test or a capture
 * decoder needs to speak the wire without a peer.
 */
export const STANDARD_SERVICES: readonly string[] = [CHAT_PROTOCOL, PEERS_PROTOCOL]

/** The channel a message of the standard services travels on between two standard peers. */
export function standardChannel(type: Message['type']): number {
  switch (type) {
    case 'TEXT':
    case 'ACK':
    case 'ACK_UPTO':
      return 1
    case 'PEERS_REQUEST':
    case 'PEERS':
      return 2
    default:
      return 0
  }
}

/** A whole frame for `msg` on its standard channel. */
export function frameStandard(msg: Message): Uint8Array {
  return frameMessage(msg, { channel: standardChannel(msg.type) })
}

/**
 * Decodes a frame body between standard peers, checking the message came on its own channel.
 * @throws ProtocolError for a bad body or a message on another channel
 */
export function decodeStandard(body: Uint8Array): Message {
  const { channel, message } = splitChannel(body)
  const msg = decodeMessage(message)
  if (standardChannel(msg.type) !== channel) {
    throw new ProtocolError('INVALID_FIELD', `${msg.type} arrived on channel ${channel}`)
  }
  return msg
}
