import { alloc, writeU32 } from './bytes.js'
import { assertWritten, encodedLength, writeMessage } from './encode.js'
import { ProtocolError, ProtocolErrorCode } from './errors.js'
import { CHANNEL_BYTES, CONTROL_CHANNEL, MAX_CHANNEL, type Message } from './messages.js'

// Framing: every message travels as  [u32 BE body length][body], and a body is [u8 channel][message].
// See docs/PROTOCOL.md "Framing" and "Channels". The parser is FrameDecoder (frame-decoder.ts), the
// coalescing sender FrameWriter (frame-writer.ts); this file holds what both share and the one-shot helpers.

/** Bytes in a frame's length prefix. */
export const FRAME_PREFIX_BYTES = 4

/** Default largest frame body a peer accepts: 1 MiB. Bigger prefixes fail the connection. */
export const DEFAULT_MAX_FRAME_SIZE = 1_048_576

/** Options for one framing call. */
export interface FrameOptions {
  /**
   * Channel the message travels on (u8): 0 is the session's control channel, 1… the services'
   * (PROTOCOL.md, "Channels").
   * @default 0
   */
  channel?: number
  /**
   * Refuse to build a frame whose body is larger than this; the receiver would drop the connection.
   * @default DEFAULT_MAX_FRAME_SIZE (1 MiB)
   */
  maxFrameSize?: number
}

/** Validates a maxFrameSize option (a programming error, hence RangeError, not ProtocolError). */
export function resolveMaxFrameSize(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_FRAME_SIZE
  if (!Number.isInteger(value) || value < 1 || value > 0xffff_ffff) {
    throw new RangeError(`maxFrameSize must be an integer from 1 to 4294967295, got ${value}`)
  }
  return value
}

/** Throws the ProtocolError for a body length that cannot be framed or accepted. */
export function checkFrameSize(size: number, maxFrameSize: number): void {
  if (size === 0) {
    throw new ProtocolError(ProtocolErrorCode.EMPTY_FRAME, 'frame of 0 bytes: bodies cannot be empty')
  }
  if (size > maxFrameSize) {
    throw new ProtocolError(
      ProtocolErrorCode.FRAME_TOO_LARGE,
      `frame of ${size} bytes exceeds the ${maxFrameSize}-byte limit`,
    )
  }
}

/**
 * Prefixes `body` with its u32 big-endian length. Copies the body once; when you start from a
 * message, {@link frameMessage} avoids that copy.
 *
 * @throws ProtocolError `EMPTY_FRAME` for an empty body, `FRAME_TOO_LARGE` above `maxFrameSize`.
 */
export function encodeFrame(body: Uint8Array, options?: FrameOptions): Uint8Array {
  checkFrameSize(body.byteLength, resolveMaxFrameSize(options?.maxFrameSize))
  const frame = alloc(FRAME_PREFIX_BYTES + body.byteLength)
  writeU32(frame, 0, body.byteLength)
  frame.set(body, FRAME_PREFIX_BYTES)
  return frame
}

/**
 * Encodes `msg` as a complete frame (prefix + body) in one allocation: the body is written straight
 * after the reserved prefix.
 *
 * @throws ProtocolError from {@link encodedLength} for an invalid message, or `FRAME_TOO_LARGE` when
 * the body exceeds `maxFrameSize` (possible for a PEERS message near its list limits: split it).
 * @throws RangeError for a `channel` that is not an integer from 0 to 255.
 */
export function frameMessage(msg: Message, options?: FrameOptions): Uint8Array {
  const channel = checkChannel(options?.channel ?? CONTROL_CHANNEL)
  const size = CHANNEL_BYTES + encodedLength(msg)
  checkFrameSize(size, resolveMaxFrameSize(options?.maxFrameSize))
  const frame = alloc(FRAME_PREFIX_BYTES + size)
  writeU32(frame, 0, size)
  frame[FRAME_PREFIX_BYTES] = channel
  assertWritten(writeMessage(msg, frame, FRAME_PREFIX_BYTES + CHANNEL_BYTES), frame.length)
  return frame
}

/**
 * Splits a frame body into its channel byte and the message body after it (a view, no copy).
 *
 * @throws ProtocolError `EMPTY_FRAME` when there is no message after the channel byte.
 */
export function splitChannel(body: Uint8Array): { channel: number; message: Uint8Array } {
  if (body.byteLength < 2) {
    throw new ProtocolError(ProtocolErrorCode.EMPTY_FRAME, 'frame body holds no message after its channel')
  }
  return { channel: body[0]!, message: body.subarray(CHANNEL_BYTES) }
}

/** @throws RangeError for a channel that is not an integer from 0 to 255. */
export function checkChannel(channel: number): number {
  if (!Number.isInteger(channel) || channel < 0 || channel > MAX_CHANNEL) {
    throw new RangeError(`channel must be an integer from 0 to ${MAX_CHANNEL}, got ${channel}`)
  }
  return channel
}
