import { FilesError } from './errors.js'

/**
 * The messages of `parley/files/1`, each the body of one frame on the service's channel: a type byte,
 * then fixed fields in big-endian order (docs/FILES.md, "Messages"). Decoding is strict: every length is
 * checked before it is read, every count is capped, and trailing bytes are an error.
 */
export const MessageType = {
  OFFER: 0x01,
  ACCEPT: 0x02,
  DECLINE: 0x03,
  GET_HASHES: 0x04,
  HASHES: 0x05,
  REQUEST: 0x06,
  CHUNK: 0x07,
  CANCEL: 0x08,
  DONE: 0x09,
} as const

/** Why an offer was declined or a transfer cancelled (one byte on the wire). */
export const Reason = {
  DECLINED: 1,
  EXPIRED: 2,
  BUSY: 3,
  CANCELLED: 4,
  UNKNOWN_TRANSFER: 5,
  FILE_CHANGED: 6,
  NO_SPACE: 7,
  FAILED: 8,
} as const
export type Reason = (typeof Reason)[keyof typeof Reason]
const REASONS = new Set<number>(Object.values(Reason))

/** The protocol's size and count limits; {@link decode} rejects a message past any of them. */
export const Limits = {
  /** Bytes of a transfer id (random, chosen by the sender). */
  idBytes: 16,
  /** Bytes of a root hash and of a leaf hash (SHA-256). */
  hashBytes: 32,
  /** UTF-8 bytes of an offered name. */
  nameBytes: 255,
  /** Bytes of data in one CHUNK: a chunk travels as pieces of this size (the last may be shorter). */
  pieceBytes: 32 * 1024,
  /** Chunk sizes: a power of two in this range. */
  minChunkBytes: 32 * 1024,
  maxChunkBytes: 16 * 1024 * 1024,
  /** Chunks of one file at most (so a receiver holds at most 2 MiB of leaf hashes per download). */
  maxChunks: 65_536,
  /** Leaf hashes in one HASHES. */
  hashesPerMessage: 1024,
  /** Ranges in one REQUEST, and chunks in one range. */
  rangesPerRequest: 16,
  chunksPerRange: 64,
} as const

/** Sender → receiver: offers one file, named by its Merkle root, size and chunk size. */
export interface Offer {
  type: 'OFFER'
  id: Uint8Array
  root: Uint8Array
  size: number
  chunkSize: number
  name: string
}
/** Receiver → sender: the offer is accepted; the receiver starts fetching hashes. */
export interface Accept {
  type: 'ACCEPT'
  id: Uint8Array
}
/** Receiver → sender: the offer is refused (or expired), with the reason. */
export interface Decline {
  type: 'DECLINE'
  id: Uint8Array
  reason: Reason
}
/** Receiver → sender: asks for `count` leaf hashes from leaf `start`. */
export interface GetHashes {
  type: 'GET_HASHES'
  id: Uint8Array
  start: number
  count: number
}
/** Sender → receiver: leaf hashes from leaf `start`, answering a GET_HASHES. */
export interface Hashes {
  type: 'HASHES'
  id: Uint8Array
  start: number
  /** `count` × 32 bytes, a view of the message body. */
  hashes: Uint8Array
}
/** `count` consecutive chunks from chunk `start`. */
export interface ChunkRange {
  start: number
  count: number
}
/** Receiver → sender: asks for the chunks in `ranges` (each piece verified against its leaf). */
export interface Request {
  type: 'REQUEST'
  id: Uint8Array
  ranges: ChunkRange[]
}
/** Sender → receiver: one piece (at most 32 KiB) of chunk `index`, at byte `offset` in that chunk. */
export interface Chunk {
  type: 'CHUNK'
  id: Uint8Array
  index: number
  offset: number
  /** A view of the message body: copy what you keep. */
  data: Uint8Array
}
/** Either side: ends the transfer for the peer that sends it, with the reason. */
export interface Cancel {
  type: 'CANCEL'
  id: Uint8Array
  reason: Reason
}
/** Receiver → sender: the whole file was verified and saved. */
export interface Done {
  type: 'DONE'
  id: Uint8Array
}
/** Any `parley/files/1` message, as {@link encode} takes it and {@link decode} returns it. */
export type FilesMessage = Offer | Accept | Decline | GetHashes | Hashes | Request | Chunk | Cancel | Done

const ID = Limits.idBytes
const HASH = Limits.hashBytes

function malformed(what: string): FilesError {
  return new FilesError('MALFORMED', `files: ${what}`)
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0
}

/** Whether a chunk size is one the protocol allows. */
export function validChunkSize(n: number): boolean {
  return isPowerOfTwo(n) && n >= Limits.minChunkBytes && n <= Limits.maxChunkBytes
}

/** Chunks of a file of `size` bytes. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize)
}

/** Bytes of chunk `index`. */
export function chunkLength(size: number, chunkSize: number, index: number): number {
  return Math.min(chunkSize, size - index * chunkSize)
}

function checkId(id: Uint8Array): void {
  if (id.byteLength !== ID) throw malformed(`a transfer id must be ${ID} bytes`)
}

/** Encodes a message. @throws FilesError MALFORMED for a message that breaks a bound. */
export function encode(msg: FilesMessage): Uint8Array {
  checkId(msg.id)
  switch (msg.type) {
    case 'OFFER': {
      const name = Buffer.from(msg.name, 'utf8')
      if (msg.root.byteLength !== HASH) throw malformed('a root must be 32 bytes')
      if (name.byteLength < 1 || name.byteLength > Limits.nameBytes) throw malformed('name length')
      checkOfferShape(msg.size, msg.chunkSize)
      const out = Buffer.alloc(1 + ID + HASH + 8 + 4 + 2 + name.byteLength)
      let o = head(out, MessageType.OFFER, msg.id)
      out.set(msg.root, o)
      o += HASH
      out.writeBigUInt64BE(BigInt(msg.size), o)
      out.writeUInt32BE(msg.chunkSize, o + 8)
      out.writeUInt16BE(name.byteLength, o + 12)
      out.set(name, o + 14)
      return out
    }
    case 'ACCEPT':
    case 'DONE': {
      const out = Buffer.alloc(1 + ID)
      head(out, msg.type === 'ACCEPT' ? MessageType.ACCEPT : MessageType.DONE, msg.id)
      return out
    }
    case 'DECLINE':
    case 'CANCEL': {
      if (!REASONS.has(msg.reason)) throw malformed('unknown reason')
      const out = Buffer.alloc(1 + ID + 1)
      const o = head(out, msg.type === 'DECLINE' ? MessageType.DECLINE : MessageType.CANCEL, msg.id)
      out[o] = msg.reason
      return out
    }
    case 'GET_HASHES': {
      checkHashRange(msg.start, msg.count)
      const out = Buffer.alloc(1 + ID + 6)
      const o = head(out, MessageType.GET_HASHES, msg.id)
      out.writeUInt32BE(msg.start, o)
      out.writeUInt16BE(msg.count, o + 4)
      return out
    }
    case 'HASHES': {
      const count = msg.hashes.byteLength / HASH
      if (!Number.isInteger(count)) throw malformed('hashes must be a multiple of 32 bytes')
      checkHashRange(msg.start, count)
      const out = Buffer.alloc(1 + ID + 6 + msg.hashes.byteLength)
      const o = head(out, MessageType.HASHES, msg.id)
      out.writeUInt32BE(msg.start, o)
      out.writeUInt16BE(count, o + 4)
      out.set(msg.hashes, o + 6)
      return out
    }
    case 'REQUEST': {
      const n = msg.ranges.length
      if (n < 1 || n > Limits.rangesPerRequest) throw malformed('a REQUEST holds 1 to 16 ranges')
      const out = Buffer.alloc(1 + ID + 1 + n * 6)
      let o = head(out, MessageType.REQUEST, msg.id)
      out[o++] = n
      for (const r of msg.ranges) {
        checkRange(r)
        out.writeUInt32BE(r.start, o)
        out.writeUInt16BE(r.count, o + 4)
        o += 6
      }
      return out
    }
    case 'CHUNK': {
      checkPiece(msg.index, msg.offset, msg.data.byteLength)
      const out = Buffer.allocUnsafe(1 + ID + 8 + msg.data.byteLength)
      const o = head(out, MessageType.CHUNK, msg.id)
      out.writeUInt32BE(msg.index, o)
      out.writeUInt32BE(msg.offset, o + 4)
      out.set(msg.data, o + 8)
      return out
    }
  }
}

function head(out: Buffer, type: number, id: Uint8Array): number {
  out[0] = type
  out.set(id, 1)
  return 1 + ID
}

function checkOfferShape(size: number, chunkSize: number): void {
  if (!validChunkSize(chunkSize)) throw malformed('the chunk size must be a power of two, 32 KiB to 16 MiB')
  if (!Number.isSafeInteger(size) || size < 0) throw malformed('bad size')
  if (chunkCount(size, chunkSize) > Limits.maxChunks) throw malformed('more than 65,536 chunks')
}

function checkHashRange(start: number, count: number): void {
  if (!Number.isInteger(start) || start < 0 || start >= Limits.maxChunks) throw malformed('hash start')
  if (!Number.isInteger(count) || count < 1 || count > Limits.hashesPerMessage) throw malformed('hash count')
}

function checkRange(r: ChunkRange): void {
  if (!Number.isInteger(r.start) || r.start < 0 || r.start >= Limits.maxChunks) throw malformed('range start')
  if (!Number.isInteger(r.count) || r.count < 1 || r.count > Limits.chunksPerRange) {
    throw malformed('a range holds 1 to 64 chunks')
  }
}

function checkPiece(index: number, offset: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= Limits.maxChunks) throw malformed('chunk index')
  if (!Number.isInteger(offset) || offset < 0 || offset % Limits.pieceBytes !== 0) {
    throw malformed('a piece offset is a multiple of 32 KiB')
  }
  if (offset >= Limits.maxChunkBytes) throw malformed('piece offset past the largest chunk')
  if (length < 1 || length > Limits.pieceBytes) throw malformed('a piece holds 1 to 32,768 bytes')
}

// ignoreBOM: decode what was sent; a leading U+FEFF is the sanitizer's to judge, not silently dropped.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Decodes one message body (type byte first). Views into `body` are returned for HASHES and CHUNK data.
 * @throws FilesError MALFORMED for anything that is not exactly one valid message
 */
export function decode(body: Uint8Array): FilesMessage {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  const need = (n: number) => {
    if (body.byteLength !== n) throw malformed(`message type 0x${hex2(body[0]!)} must be ${n} bytes`)
  }
  const atLeast = (n: number) => {
    if (body.byteLength < n) throw malformed(`message type 0x${hex2(body[0]!)} is truncated`)
  }
  if (body.byteLength < 1 + ID) throw malformed('a message holds at least a type and a transfer id')
  const type = body[0]!
  const id = body.slice(1, 1 + ID)
  const o = 1 + ID
  switch (type) {
    case MessageType.OFFER: {
      atLeast(o + HASH + 14)
      const root = body.slice(o, o + HASH)
      const big = view.getBigUint64(o + HASH)
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('bad size')
      const size = Number(big)
      const chunkSize = view.getUint32(o + HASH + 8)
      checkOfferShape(size, chunkSize)
      const nameLen = view.getUint16(o + HASH + 12)
      if (nameLen < 1 || nameLen > Limits.nameBytes) throw malformed('name length')
      need(o + HASH + 14 + nameLen)
      let name: string
      try {
        name = decoder.decode(body.subarray(o + HASH + 14))
      } catch {
        throw malformed('the name is not UTF-8')
      }
      return { type: 'OFFER', id, root, size, chunkSize, name }
    }
    case MessageType.ACCEPT:
      need(o)
      return { type: 'ACCEPT', id }
    case MessageType.DONE:
      need(o)
      return { type: 'DONE', id }
    case MessageType.DECLINE:
    case MessageType.CANCEL: {
      need(o + 1)
      const reason = body[o]!
      if (!REASONS.has(reason)) throw malformed(`unknown reason ${reason}`)
      return { type: type === MessageType.DECLINE ? 'DECLINE' : 'CANCEL', id, reason: reason as Reason }
    }
    case MessageType.GET_HASHES: {
      need(o + 6)
      const start = view.getUint32(o)
      const count = view.getUint16(o + 4)
      checkHashRange(start, count)
      return { type: 'GET_HASHES', id, start, count }
    }
    case MessageType.HASHES: {
      atLeast(o + 6)
      const start = view.getUint32(o)
      const count = view.getUint16(o + 4)
      checkHashRange(start, count)
      need(o + 6 + count * HASH)
      return { type: 'HASHES', id, start, hashes: body.subarray(o + 6) }
    }
    case MessageType.REQUEST: {
      atLeast(o + 1)
      const n = body[o]!
      if (n < 1 || n > Limits.rangesPerRequest) throw malformed('a REQUEST holds 1 to 16 ranges')
      need(o + 1 + n * 6)
      const ranges: ChunkRange[] = []
      for (let i = 0, p = o + 1; i < n; i++, p += 6) {
        const r = { start: view.getUint32(p), count: view.getUint16(p + 4) }
        checkRange(r)
        ranges.push(r)
      }
      return { type: 'REQUEST', id, ranges }
    }
    case MessageType.CHUNK: {
      atLeast(o + 9)
      const index = view.getUint32(o)
      const offset = view.getUint32(o + 4)
      const data = body.subarray(o + 8)
      checkPiece(index, offset, data.byteLength)
      return { type: 'CHUNK', id, index, offset, data }
    }
    default:
      throw malformed(`unknown message type 0x${hex2(type)}`)
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}
