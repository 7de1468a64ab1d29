import { Buffer, isAscii } from 'node:buffer'
import { ProtocolError, ProtocolErrorCode } from './errors.js'
import {
  CHANNEL_BYTES,
  CONTROL_CHANNEL,
  Limits,
  type Message,
  MessageType,
  type MessageTypeName,
  type PeerAnnouncement,
  type PeerRecord,
} from './messages.js'

// Message codec: one message <-> one message body (a frame body after its channel byte). Layouts are specified byte by byte in docs/PROTOCOL.md.
//
// Encoding is two passes over the message: `encodedLength` validates every field and sums the exact
// size, then `writeMessage` writes into a buffer of exactly that size. No per-field allocations.
// Decoding checks every bound (remaining bytes, string byte length, list count, u64 range) before it
// reads or allocates, and builds plain objects; the only error it throws is ProtocolError.

const U8_MAX = 0xff
const U16_MAX = 0xffff
const U32_MAX = 0xffff_ffff
const TWO_POW_32 = 0x1_0000_0000
/** High u32 of Number.MAX_SAFE_INTEGER (2^53 - 1): a u64 whose high half is above this is not a safe integer. */
const U64_SAFE_HIGH_MAX = 0x1f_ffff

const PEER_ID_HEX = /^[0-9a-f]{64}$/
const STREAM_HEX = /^[0-9a-f]{16}$/

/** Type byte -> name, for decoding. */
const typeNames: ReadonlyMap<number, MessageTypeName> = new Map(
  Object.entries(MessageType).map(([name, byte]) => [byte, name as MessageTypeName]),
)

// ignoreBOM: keep a leading U+FEFF as part of the string. The default strips it, which would make
// decode(encode("\uFEFFx")) !== "\uFEFFx" and break the one-encoding-per-message rule.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** ES2024 `String.prototype.isWellFormed` (Node >= 20); lib is ES2023, so reach it through a cast. */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed()

const hex = (n: number, width: number): string => `0x${n.toString(16).padStart(width, '0')}`

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

// A sender writes the same stream on every TEXT of a session: remember the last one checked and its bytes.
let lastStream = ''
const lastStreamBytes = Buffer.alloc(Limits.streamBytes)

function checkStream(value: unknown): void {
  if (value === lastStream) return
  checkHex(value, 'stream', STREAM_HEX, Limits.streamBytes * 2)
  lastStreamBytes.write(value as string, 'hex')
  lastStream = value as string
}

function writeStream(buf: Buffer, at: number, value: string): number {
  if (value !== lastStream) return writeHex(buf, at, value)
  lastStreamBytes.copy(buf, at)
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

// On Node 20, Buffer.byteLength of a 64 KB string takes about 11 µs and encoding it about 4 µs. So
// utf8Length encodes a long text into scratch memory and reads the length off the encoder, and an
// encode of an equal string copies those bytes (about 1 µs) instead of encoding again.
/** Texts at least this long are measured by encoding them; below, byteLength is cheaper. */
const ENCODE_TO_MEASURE_MIN = 1024
/** Longer texts cannot fit any `str` field (each UTF-16 unit is at least one byte), so are never written. */
const ENCODE_TO_MEASURE_MAX = Limits.textBytes
/** UTF-8 of {@link encodedText}; three bytes per UTF-16 unit is always room enough. Made on first use. */
let encodedScratch: Buffer | undefined
let encodedText: string | undefined
let encodedBytes = 0

/**
 * The UTF-8 byte length of `text`. The next encode of a string equal to it reuses the figure instead of
 * measuring again (once: the encode after that measures anew), and for a long text also its bytes.
 */
export function utf8Length(text: string): number {
  if (text.length >= ENCODE_TO_MEASURE_MIN && text.length <= ENCODE_TO_MEASURE_MAX) {
    encodedScratch ??= Buffer.allocUnsafeSlow(3 * ENCODE_TO_MEASURE_MAX)
    // Lone surrogates are written as U+FFFD, 3 bytes, as byteLength counts them; strSize refuses them.
    encodedBytes = encodedScratch.write(text, 0, 'utf8')
    encodedText = text
    measuredBytes = encodedBytes
  } else {
    measuredBytes = Buffer.byteLength(text, 'utf8')
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
    bytes = Buffer.byteLength(value, 'utf8')
  }
  if (bytes > max) {
    throw new ProtocolError(
      ProtocolErrorCode.STRING_TOO_LONG,
      `${field} is ${bytes} bytes of UTF-8, over the ${max}-byte limit`,
    )
  }
  // bytes === length only for pure ASCII; otherwise make sure there is no lone surrogate, which
  // UTF-8 cannot carry (Buffer would silently write U+FFFD and the round trip would change the text).
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
    strSize(msg.name, 'name', Limits.nameBytes) +
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
  checkHex(peer.peerId, 'peers[].peerId', PEER_ID_HEX, Limits.peerIdBytes * 2)
  checkUint(peer.lastSeen, 'peers[].lastSeen', Number.MAX_SAFE_INTEGER)
  return (
    Limits.peerIdBytes +
    strSize(peer.name, 'peers[].name', Limits.nameBytes) +
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
  switch (msg.type) {
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
      const type: unknown = (msg as { type: unknown }).type
      throw new ProtocolError(ProtocolErrorCode.UNKNOWN_TYPE, `unknown message type ${JSON.stringify(type)}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encode, pass 2: write. Only called on a message that encodedLength accepted, into a buffer with
// exactly enough room, so there are no checks here.

function writeU16(buf: Buffer, at: number, value: number): number {
  buf[at] = value >>> 8
  buf[at + 1] = value & 0xff
  return at + 2
}

function writeU64(buf: Buffer, at: number, value: number): number {
  // value is a safe non-negative integer: split into two u32 halves without BigInt.
  const high = Math.floor(value / TWO_POW_32)
  buf.writeUInt32BE(high, at)
  buf.writeUInt32BE(value - high * TWO_POW_32, at + 4)
  return at + 8
}

function writeStr(buf: Buffer, at: number, value: string): number {
  let bytes: number
  if (value === encodedText) {
    bytes = encodedBytes
    encodedScratch!.copy(buf, at + 2, 0, bytes)
  } else {
    bytes = value.length === 0 ? 0 : buf.write(value, at + 2, 'utf8')
  }
  writeU16(buf, at, bytes)
  return at + 2 + bytes
}

function writeStrList(buf: Buffer, at: number, list: readonly string[]): number {
  let o = writeU16(buf, at, list.length)
  for (const item of list) o = writeStr(buf, o, item)
  return o
}

function writeHex(buf: Buffer, at: number, value: string): number {
  return at + buf.write(value, at, 'hex')
}

function writeAnnouncement(buf: Buffer, at: number, msg: PeerAnnouncement): number {
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
export function writeMessage(msg: Message, buf: Buffer, at: number): number {
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
      return buf.writeUInt32BE(msg.nonce, o)
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
  const buf = Buffer.allocUnsafe(size)
  assertWritten(writeMessage(msg, buf, 0), size)
  return buf
}

/**
 * Guards the allocUnsafe buffers: a size/write mismatch (a bug, or a message mutated by a getter
 * between the two passes) would otherwise put uninitialised memory on the wire.
 *
 * @internal
 */
export function assertWritten(end: number, expected: number): void {
  if (end !== expected) {
    throw new Error(`internal: encoder wrote ${end} bytes where ${expected} were measured`)
  }
}

// ---------------------------------------------------------------------------------------------
// Decode.

let readStream = ''
let readStreamHigh = 0
let readStreamLow = 0

/** Bounds-checked cursor over one body. Every read checks the bytes left first. */
class Reader {
  pos = 1 // after the type byte
  constructor(private readonly buf: Buffer) {}

  private need(n: number, field: string): void {
    const left = this.buf.length - this.pos
    if (left < n) {
      throw new ProtocolError(
        ProtocolErrorCode.TRUNCATED,
        `body ends inside ${field}: ${n} bytes needed, ${left} left`,
      )
    }
  }

  u8(field: string): number {
    this.need(1, field)
    return this.buf[this.pos++]!
  }

  u16(field: string): number {
    this.need(2, field)
    const value = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!
    this.pos += 2
    return value
  }

  u32(field: string): number {
    this.need(4, field)
    const value = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return value
  }

  u64(field: string): number {
    this.need(8, field)
    const high = this.buf.readUInt32BE(this.pos)
    if (high > U64_SAFE_HIGH_MAX) {
      throw new ProtocolError(
        ProtocolErrorCode.INVALID_FIELD,
        `${field} is above 2^53-1, the largest integer a JavaScript number holds exactly`,
      )
    }
    const value = high * TWO_POW_32 + this.buf.readUInt32BE(this.pos + 4)
    this.pos += 8
    return value
  }

  seq(): number {
    const value = this.u64('seq')
    if (value === 0) throw new ProtocolError(ProtocolErrorCode.INVALID_FIELD, 'seq must be at least 1')
    return value
  }
  /** A stream id; a receiver reads the same few streams over and over, so the last one's text is reused. */
  stream(): string {
    this.need(Limits.streamBytes, 'stream')
    const high = this.buf.readUInt32BE(this.pos)
    const low = this.buf.readUInt32BE(this.pos + 4)
    if (high !== readStreamHigh || low !== readStreamLow || readStream === '') {
      readStream = this.buf.toString('hex', this.pos, this.pos + Limits.streamBytes)
      readStreamHigh = high
      readStreamLow = low
    }
    this.pos += Limits.streamBytes
    return readStream
  }
  hex(bytes: number, field: string): string {
    this.need(bytes, field)
    const value = this.buf.toString('hex', this.pos, this.pos + bytes)
    this.pos += bytes
    return value
  }

  str(field: string, max: number): string {
    const bytes = this.u16(field)
    // Checked before touching the bytes: the limit is the contract, not the u16 range.
    if (bytes > max) {
      throw new ProtocolError(
        ProtocolErrorCode.STRING_TOO_LONG,
        `${field} is ${bytes} bytes, over the ${max}-byte limit`,
      )
    }
    this.need(bytes, field)
    const start = this.pos
    const end = start + bytes
    this.pos = end
    return decodeUtf8(this.buf, start, end, field)
  }

  count(field: string, max: number): number {
    const count = this.u16(field)
    if (count > max) {
      throw new ProtocolError(
        ProtocolErrorCode.LIST_TOO_LONG,
        `${field} has ${count} items, over the ${max}-item limit`,
      )
    }
    return count
  }

  /** `field` names the list; `itemField` its items (constant strings: no formatting on the hot path). */
  strList(field: string, itemField: string, maxItems: number, maxBytes: number): string[] {
    const count = this.count(field, maxItems)
    const list: string[] = []
    for (let i = 0; i < count; i++) list.push(this.str(itemField, maxBytes))
    return list
  }

  get left(): number {
    return this.buf.length - this.pos
  }
}

/** Short ASCII strings (names, addresses, capabilities) skip TextDecoder: about 2x faster measured on Node 20. */
const ASCII_FAST_PATH_MAX = 32
const LATIN1_PATH_MIN = 1024

function decodeUtf8(buf: Buffer, start: number, end: number, field: string): string {
  if (end - start > ASCII_FAST_PATH_MAX) {
    // Pure ASCII (most long texts) decodes as Latin-1 to the same string, about twice as fast as
    // the UTF-8 decoder, and needs no U+FFFD scan; isAscii is SIMD (simdutf), under 1 µs for 64 KB.
    // (Short texts skip it: the view it needs costs more than it saves.)
    if (end - start >= LATIN1_PATH_MIN && isAscii(buf.subarray(start, end))) {
      return buf.toString('latin1', start, end)
    }
    // Node's decoder is fast but lenient: it turns malformed bytes into U+FFFD. Without a U+FFFD in its
    // result the bytes were well-formed; with one, the strict decoder below decides.
    const text = buf.toString('utf8', start, end)
    if (!text.includes('\uFFFD')) return text
  } else {
    let ascii = true
    for (let i = start; i < end; i++) {
      if (buf[i]! > 0x7f) {
        ascii = false
        break
      }
    }
    if (ascii) return buf.toString('latin1', start, end)
  }
  try {
    return utf8.decode(buf.subarray(start, end))
  } catch (cause) {
    throw new ProtocolError(ProtocolErrorCode.INVALID_UTF8, `${field} is not valid UTF-8`, { cause })
  }
}

function readAnnouncement(r: Reader): PeerAnnouncement {
  const version = r.u16('version')
  const peerId = r.hex(Limits.peerIdBytes, 'peerId')
  const name = r.str('name', Limits.nameBytes)
  const listenAddrs = r.strList('listenAddrs', 'listenAddrs[]', Limits.addresses, Limits.addressBytes)
  const capabilities = r.strList(
    'capabilities',
    'capabilities[]',
    Limits.capabilities,
    Limits.capabilityBytes,
  )
  return { version, peerId, name, listenAddrs, capabilities }
}

function readPeers(r: Reader): PeerRecord[] {
  const count = r.count('peers', Limits.peers)
  const peers: PeerRecord[] = []
  for (let i = 0; i < count; i++) {
    const peerId = r.hex(Limits.peerIdBytes, 'peers[].peerId')
    const name = r.str('peers[].name', Limits.nameBytes)
    const addrs = r.strList('peers[].addrs', 'peers[].addrs[]', Limits.addresses, Limits.addressBytes)
    const lastSeen = r.u64('peers[].lastSeen')
    peers.push({ peerId, name, addrs, lastSeen })
  }
  return peers
}

function readFields(type: MessageTypeName, r: Reader): Message {
  switch (type) {
    case 'HELLO':
    case 'WELCOME':
      return { type, ...readAnnouncement(r) }
    case 'REJECT': {
      const code = r.u16('code')
      return { type, code, reason: r.str('reason', Limits.reasonBytes) }
    }
    case 'TEXT': {
      const stream = r.stream()
      const seq = r.seq()
      const sentAt = r.u64('sentAt')
      return { type, stream, seq, sentAt, text: r.str('text', Limits.textBytes) }
    }
    case 'ACK': {
      const stream = r.stream()
      const seq = r.seq()
      return { type, stream, seq, status: r.u8('status') }
    }
    case 'ACK_UPTO': {
      const stream = r.stream()
      return { type, stream, seq: r.seq() }
    }
    case 'PEERS_REQUEST':
      return { type }
    case 'PEERS':
      return { type, peers: readPeers(r) }
    case 'PING':
    case 'PONG':
      return { type, nonce: r.u32('nonce') }
    case 'GOODBYE':
      return { type, reason: r.str('reason', Limits.reasonBytes) }
  }
}

/**
 * Decodes one message body (a frame body after its channel byte: see `splitChannel`) strictly: known type byte, every field within its bound, valid UTF-8,
 * nothing after the last field. Works on any Uint8Array (a view into a larger buffer is fine; no copy
 * is made). Strings and hex ids in the result are fresh values, not views.
 *
 * Unknown REJECT codes and ACK statuses are returned as numbers, not rejected: new ones may be added
 * without a version bump. HELLO/WELCOME versions are not checked here; see {@link peekHelloVersion}.
 *
 * @throws ProtocolError `EMPTY_FRAME` (empty body), `UNKNOWN_TYPE`, `TRUNCATED`, `TRAILING_BYTES`,
 * `INVALID_UTF8`, `STRING_TOO_LONG`, `LIST_TOO_LONG`, `INVALID_FIELD` (u64 above 2^53-1). Never
 * throws anything else and never returns a partly decoded message.
 */
export function decodeMessage(body: Uint8Array): Message {
  if (body.byteLength === 0) throw new ProtocolError(ProtocolErrorCode.EMPTY_FRAME, 'message body is empty')
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  const typeByte = buf[0]!
  const type = typeNames.get(typeByte)
  if (type === undefined) {
    throw new ProtocolError(ProtocolErrorCode.UNKNOWN_TYPE, `unknown message type ${hex(typeByte, 2)}`)
  }
  const r = new Reader(buf)
  const msg = readFields(type, r)
  if (r.left !== 0) {
    throw new ProtocolError(
      ProtocolErrorCode.TRAILING_BYTES,
      `${r.left} bytes follow the last field of a ${type} message`,
    )
  }
  return msg
}

/**
 * Reads the version of a HELLO or WELCOME frame body without decoding the rest, so a peer can answer a
 * HELLO from a newer version with REJECT INCOMPATIBLE_VERSION rather than fail on fields it does not
 * know. Bytes 0..2 of HELLO and WELCOME (type byte + u16 version) are frozen in every version.
 *
 * @returns the version, or `undefined` if `body` is not a HELLO/WELCOME or ends before its version.
 * Never throws.
 */
export function peekHelloVersion(body: Uint8Array): number | undefined {
  // Since version 3 a frame body starts with its channel (HELLO travels on channel 0); versions 1
  // and 2 had no channel byte. Both are recognised, so an older peer can be told why it is refused.
  // A body starting 0x01 is either a v1/v2 HELLO or a frame on channel 1: only versions 1 and 2 had
  // no channel byte, so anything else there is not an old HELLO.
  const at = body[0] === CONTROL_CHANNEL ? CHANNEL_BYTES : 0
  if (body.byteLength < at + 3) return undefined
  const type = body[at]
  if (type !== MessageType.HELLO && type !== MessageType.WELCOME) return undefined
  const version = (body[at + 1]! << 8) | body[at + 2]!
  if (at === 0 && version !== 1 && version !== 2) return undefined
  return version
}
