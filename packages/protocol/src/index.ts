/**
 * @parley/protocol: the Parley wire format, with no I/O. Frames are `[u32 BE length][body]`; a body
 * is a channel byte and one message: a type byte, then fixed-width and length-prefixed fields. The byte-exact spec is
 * docs/PROTOCOL.md.
 *
 * @example
 * ```ts
 * import { decodeMessage, FrameDecoder, FrameWriter, ProtocolError, splitChannel } from '@parley/protocol'
 *
 * // Sending: frames written in one tick leave as one chunk.
 * const writer = new FrameWriter((chunk) => connection.send(chunk))
 * const chat = 1 // the channel both sides numbered for 'parley/chat/1' (PROTOCOL.md, "Channels")
 * writer.write({ type: 'TEXT', stream: '0011223344556677', seq: 1, sentAt: Date.now(), text: 'hi' }, chat)
 *
 * // Receiving: any chunking in, whole bodies out.
 * const decoder = new FrameDecoder({ maxFrameSize: 1_048_576 })
 * function onData(chunk: Uint8Array): void {
 *   try {
 *     for (const body of decoder.push(chunk)) {
 *       const { channel, message } = splitChannel(body)
 *       handle(channel, decodeMessage(message))
 *     }
 *     if (decoder.error) throw decoder.error
 *   } catch (err) {
 *     if (err instanceof ProtocolError) connection.abort(err) // err.code says why
 *     else throw err
 *   }
 * }
 * ```
 *
 * @packageDocumentation
 */

export { decodeMessage, peekHelloVersion } from './decode.js'
export { encodedLength, encodeMessage, utf8Length } from './encode.js'
export { ProtocolError, ProtocolErrorCode } from './errors.js'
export {
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  FRAME_PREFIX_BYTES,
  type FrameOptions,
  frameMessage,
  splitChannel,
} from './frame.js'
export { FrameDecoder, type FrameDecoderInit } from './frame-decoder.js'
export { FrameWriter, type FrameWriterInit } from './frame-writer.js'
export * from './messages.js'
