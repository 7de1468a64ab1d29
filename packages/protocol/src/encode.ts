import { alloc, allocSlow, native, utf8ByteLength, writeHex, writeU32, writeUtf8 } from './bytes.js'
import { ProtocolError, ProtocolErrorCode } from './errors.js'
import {
  displayNameProblem,
  Limits,
  type Message,
  MessageType,
  type PeerAnnouncement,
  type PeerRecord,
} from './messages.js'
import { StreamCache } from './stream-cache.js'

// Message codec, encoding: one message -> one message body (a frame body after its channel byte).
// Layouts are specified byte by byte in docs/PROTOCOL.md; decoding is in decode.ts.
//
// Encoding is two passes over the message: `encodedLength` validates every field and sums the exact
// size, then `writeMessage` writes into a buffer of exactly that size. No per-field allocations.

const U8_MAX = 0xff
const U16_MAX = 0xffff
const U32_MAX = 0xffff_ffff
const TWO_POW_32 = 0x1_0000_0000

const PEER_ID_HEX = /^[0-9a-f]{64}$/
const STREAM_HEX = /^[0-9a-f]{16}$/

/** ES2024 `String.prototype.isWellFormed` (Node >= 20); lib is ES2023, so reach it through a cast. */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed()

// ---------------------------------------------------------------------------------------------
// Encode, pass 1: validate and measure.

function invalid(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.INVALID_FIELD, message)
}

function checkUint(value: unknown, field: string, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalid(`${field} must be an integer from 0 to ${max}, got ${String(value)}`)
  }
}

/** A TEXT's sequence number: a u64 from 1 (0 is never sent, so it can mean "nothing yet"). */
function checkSeq(value: unknown): void {
  checkUint(value, 'seq', Number.MAX_SAFE_INTEGER)
  if (value === 0) throw invalid('seq must be at least 1')
}

/** The last two streams written (see StreamCache): a conversation neither checks nor converts them again. */
const streams = new StreamCache()

function checkStream(value: unknown): void {
  if (typeof value === 'string' && streams.hasText(value)) return
  checkHex(value, 'stream', STREAM_HEX, Limits.streamBytes * 2)
  const text = value as string
  streams.remember(text, Number.parseInt(text.slice(0, 8), 16), Number.parseInt(text.slice(8), 16))
}

function writeStream(buf: Uint8Array, at: number, value: string): number {
  if (value !== streams.text) return writeHex(buf, at, value)
  writeU32(buf, at, streams.high)
  writeU32(buf, at + 4, streams.low)
  return at + Limits.streamBytes
}

function checkHex(value: unknown, field: string, pattern: RegExp, chars: number): void {
  if (typeof value !== 'string' || !pattern.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value
    throw invalid(`${field} must be ${chars} lowercase hex characters, got ${shown}`)
  }
}

// Measuring a long string's UTF-8 length costs as much as encoding it (about 10 µs for 64 KB): a caller
// that measured a text with utf8Length (to check a limit) lends the result to the next encode, once.
let measuredText: string | undefined
let measuredBytes = 0

// On Node 20, measuring a 64 KB string (Buffer.byteLength) takes about 11 µs and encoding it about 4 µs. So
// utf8Length encodes a long text into scratch memory and reads the length off the encoder, and an
// encode of an equal string copies those bytes (about 1 µs) instead of encoding again.
/** Texts at least this long are measured by encoding them; below, byteLength is cheaper. */
const ENCODE_TO_MEASURE_MIN = 1024
/** Longer texts cannot fit any `str` field (each UTF-16 unit is at least one byte), so are never written. */
const ENCODE_TO_MEASURE_MAX = Limits.textBytes
/** UTF-8 of {@link encodedText}; three bytes per UTF-16 unit is always room enough. Made on first use. */
let encodedScratch: Uint8Array | undefined
let encodedText: string | undefined
let encodedBytes = 0

/**
 * The UTF-8 byte length of `text`. The next encode of a string equal to it reuses the figure instead of
 * measuring again (once: the encode after that measures anew), and for a long text also its bytes.
 */
export function utf8Length(text: string): number {
  if (text.length >= ENCODE_TO_MEASURE_MIN && text.length <= ENCODE_TO_MEASURE_MAX) {
    encodedScratch ??= allocSlow(3 * ENCODE_TO_MEASURE_MAX)
    // Lone surrogates are written as U+FFFD, 3 bytes, as utf8ByteLength counts them; strSize refuses them.
    encodedBytes = writeUtf8(encodedScratch, 0, text)
    encodedText = text
    measuredBytes = encodedBytes
  } else {
    measuredBytes = utf8ByteLength(text)
  }
  measuredText = text
  return measuredBytes
}

/** Size of a `str` field (u16 length + UTF-8 bytes); throws if it is not a string or is over `max` bytes. */
function strSize(value: unknown, field: string, max: number): number {
  if (typeof value !== 'string') throw invalid(`${field} must be a string, got ${typeof value}`)
  let bytes: number
  if (value === measuredText) {
    bytes = measuredBytes
    measuredText = undefined
  } else {
    bytes = utf8ByteLength(value)
  }
  if (bytes > max) {
    throw new ProtocolError(
      ProtocolErrorCode.STRING_TOO_LONG,
      `${field} is ${bytes} bytes of UTF-8, over the ${max}-byte limit`,
    )
  }
  // bytes === length only for pure ASCII; otherwise make sure there is no lone surrogate, which
  // UTF-8 cannot carry (the encoder would silently write U+FFFD and the round trip would change the text).
  if (bytes !== value.length && !isWellFormed(value)) {
    throw new ProtocolError(
      ProtocolErrorCode.INVALID_UTF8,
      `${field} contains a lone UTF-16 surrogate and cannot be encoded as UTF-8`,
    )
  }
  return 2 + bytes
}

function checkList(value: unknown, field: string, max: number): readonly unknown[] {
  if (!Array.isArray(value)) throw invalid(`${field} must be an array, got ${typeof value}`)
  if (value.length > max) {
    throw new ProtocolError(
      ProtocolErrorCode.LIST_TOO_LONG,
      `${field} has ${value.length} items, over the ${max}-item limit`,
    )
  }
  return value
}

/** Size of a `list<str>` field. */
function nameSize(value: unknown, field: string): number {
  const size = strSize(value, field, Limits.nameBytes)
  const problem = displayNameProblem(value as string)
  if (problem !== undefined) throw invalid(`${field} ${problem}`)
  return size
}

function strListSize(
  value: unknown,
  field: string,
  itemField: string,
  maxItems: number,
  maxBytes: number,
): number {
  const list = checkList(value, field, maxItems)
  let size = 2
  for (const item of list) size += strSize(item, itemField, maxBytes)
  return size
}

function announcementSize(msg: PeerAnnouncement): number {
  checkUint(msg.version, 'version', U16_MAX)
  checkHex(msg.peerId, 'peerId', PEER_ID_HEX, Limits.peerIdBytes * 2)
  return (
    2 +
    Limits.peerIdBytes +
    nameSize(msg.name, 'name') +
    strListSize(msg.listenAddrs, 'listenAddrs', 'listenAddrs[]', Limits.addresses, Limits.addressBytes) +
    strListSize(
      msg.capabilities,
      'capabilities',
      'capabilities[]',
      Limits.capabilities,
      Limits.capabilityBytes,
    )
  )
}

function peerRecordSize(peer: PeerRecord): number {
  if (typeof peer !== 'object' || peer === null)
    throw invalid(`peers[] must hold objects, got ${peer === null ? 'null' : typeof peer}`)
  checkHex(peer.peerId, 'peers[].peerId', PEER_ID_HEX, Limits.peerIdBytes * 2)
  checkUint(peer.lastSeen, 'peers[].lastSeen', Number.MAX_SAFE_INTEGER)
  return (
    Limits.peerIdBytes +
    nameSize(peer.name, 'peers[].name') +
    strListSize(peer.addrs, 'peers[].addrs', 'peers[].addrs[]', Limits.addresses, Limits.addressBytes) +
    8
  )
}

/**
 * Validates `msg` and returns the exact size of its encoded body in bytes (type byte included,
 * frame prefix excluded). Useful to check that a message fits a frame before building it, e.g. to
 * split a long PEERS list.
 *
 * @throws ProtocolError `UNKNOWN_TYPE`, `STRING_TOO_LONG`, `LIST_TOO_LONG`, `INVALID_UTF8` (lone
 * surrogate) or `INVALID_FIELD` (bad hex id, integer out of range, wrong field type).
 */
export function encodedLength(msg: Message): number {
  switch (msg?.type) {
    case 'HELLO':
    case 'WELCOME':
      return 1 + announcementSize(msg)
    case 'REJECT':
      checkUint(msg.code, 'code', U16_MAX)
      return 1 + 2 + strSize(msg.reason, 'reason', Limits.reasonBytes)
    case 'TEXT':
      checkStream(msg.stream)
      checkSeq(msg.seq)
      checkUint(msg.sentAt, 'sentAt', Number.MAX_SAFE_INTEGER)
      return 1 + Limits.messageIdBytes + 8 + strSize(msg.text, 'text', Limits.textBytes)
    case 'ACK':
      checkStream(msg.stream)
      checkSeq(msg.seq)
      checkUint(msg.status, 'status', U8_MAX)
      return 1 + Limits.messageIdBytes + 1
    case 'ACK_UPTO':
      checkStream(msg.stream)
      checkSeq(msg.seq)
      return 1 + Limits.messageIdBytes
    case 'PEERS_REQUEST':
      return 1
    case 'PEERS': {
      const peers = checkList(msg.peers, 'peers', Limits.peers) as readonly PeerRecord[]
      let size = 1 + 2
      for (const peer of peers) size += peerRecordSize(peer)
      return size
    }
    case 'PING':
    case 'PONG':
      checkUint(msg.nonce, 'nonce', U32_MAX)
      return 1 + 4
    case 'GOODBYE':
      return 1 + strSize(msg.reason, 'reason', Limits.reasonBytes)
    default: {
      if (typeof msg !== 'object' || msg === null)
        throw invalid(`a message must be an object, got ${msg === null ? 'null' : typeof msg}`)
      const type: unknown = (msg as { type: unknown }).type
      throw new ProtocolError(ProtocolErrorCode.UNKNOWN_TYPE, `unknown message type ${JSON.stringify(type)}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encode, pass 2: write. Only called on a message that encodedLength accepted, into a buffer with
// exactly enough room, so there are no checks here.

function writeU16(buf: Uint8Array, at: number, value: number): number {
  buf[at] = value >>> 8
  buf[at + 1] = value & 0xff
  return at + 2
}

function writeU64(buf: Uint8Array, at: number, value: number): number {
  // value is a safe non-negative integer: split into two u32 halves without BigInt.
  const high = Math.floor(value / TWO_POW_32)
  writeU32(buf, at, high)
  return writeU32(buf, at + 4, value - high * TWO_POW_32)
}

function writeStr(buf: Uint8Array, at: number, value: string): number {
  let bytes: number
  if (value === encodedText) {
    bytes = encodedBytes
    buf.set(encodedScratch!.subarray(0, bytes), at + 2)
  } else {
    bytes = value.length === 0 ? 0 : writeUtf8(buf, at + 2, value)
  }
  writeU16(buf, at, bytes)
  return at + 2 + bytes
}

function writeStrList(buf: Uint8Array, at: number, list: readonly string[]): number {
  let o = writeU16(buf, at, list.length)
  for (const item of list) o = writeStr(buf, o, item)
  return o
}

function writeAnnouncement(buf: Uint8Array, at: number, msg: PeerAnnouncement): number {
  let o = writeU16(buf, at, msg.version)
  o = writeHex(buf, o, msg.peerId)
  o = writeStr(buf, o, msg.name)
  o = writeStrList(buf, o, msg.listenAddrs)
  return writeStrList(buf, o, msg.capabilities)
}

/**
 * Writes the body of `msg` (already validated by {@link encodedLength}) at `at`; returns the offset
 * after the last byte written.
 *
 * @internal Used by the framing helpers to encode straight into a frame or batch buffer.
 */
export function writeMessage(msg: Message, into: Uint8Array, at: number): number {
  const buf = native(into)
  buf[at] = MessageType[msg.type]
  let o = at + 1
  switch (msg.type) {
    case 'HELLO':
    case 'WELCOME':
      return writeAnnouncement(buf, o, msg)
    case 'REJECT':
      return writeStr(buf, writeU16(buf, o, msg.code), msg.reason)
    case 'TEXT':
      o = writeU64(buf, writeStream(buf, o, msg.stream), msg.seq)
      return writeStr(buf, writeU64(buf, o, msg.sentAt), msg.text)
    case 'ACK':
      o = writeU64(buf, writeStream(buf, o, msg.stream), msg.seq)
      buf[o] = msg.status
      return o + 1
    case 'ACK_UPTO':
      return writeU64(buf, writeStream(buf, o, msg.stream), msg.seq)
    case 'PEERS_REQUEST':
      return o
    case 'PEERS':
      o = writeU16(buf, o, msg.peers.length)
      for (const peer of msg.peers) {
        o = writeHex(buf, o, peer.peerId)
        o = writeStr(buf, o, peer.name)
        o = writeStrList(buf, o, peer.addrs)
        o = writeU64(buf, o, peer.lastSeen)
      }
      return o
    case 'PING':
    case 'PONG':
      return writeU32(buf, o, msg.nonce)
    case 'GOODBYE':
      return writeStr(buf, o, msg.reason)
  }
}

/**
 * Encodes one message into a message body (type byte + fields; no length prefix, no channel byte). The
 * result is a fresh buffer of exactly the body's size; use `frameMessage` to get the prefix and the
 * channel byte in the same buffer.
 *
 * @throws ProtocolError when a field breaks its bound or range; see {@link encodedLength}.
 */
export function encodeMessage(msg: Message): Uint8Array {
  const size = encodedLength(msg)
  const buf = alloc(size)
  assertWritten(writeMessage(msg, buf, 0), size)
  return buf
}

/**
 * Guards the buffers allocated without zeroing: a size/write mismatch (a bug, or a message mutated by a getter
 * between the two passes) would otherwise put uninitialised memory on the wire.
 *
 * @internal
 */
export function assertWritten(end: number, expected: number): void {
  if (end !== expected) {
    throw new Error(`internal: encoder wrote ${end} bytes where ${expected} were measured`)
  }
}
