import { ProtocolError } from '@parley/protocol'

/**
 * Wire format of the membership (`parley/mesh/1`) and gossip (`parley/gossip/1`) services: opaque
 * bodies on each service's own channel, type byte first (docs/MESH.md, "Wire format"). Integers are
 * big-endian; a string is a u8 byte length then UTF-8. Every read is bound-checked before it
 * allocates, and bytes after the last field are an error, as in the protocol package.
 */

export const MeshType = {
  JOIN: 1,
  FORWARD_JOIN: 2,
  NEIGHBOR: 3,
  NEIGHBOR_REPLY: 4,
  DISCONNECT: 5,
  SHUFFLE: 6,
  SHUFFLE_REPLY: 7,
} as const

export const GossipType = { GOSSIP: 1, IHAVE: 2, GRAFT: 3, PRUNE: 4 } as const

/** Longest address in a mesh message, in UTF-8 bytes (the protocol's own address limit). */
export const MAX_ADDRESS_BYTES = 255
/** Entries in one SHUFFLE or SHUFFLE_REPLY. */
export const MAX_SHUFFLE_ENTRIES = 32
/** Largest random-walk TTL accepted. */
export const MAX_WALK_TTL = 16
/** Longest gossiped text, in UTF-8 bytes. */
export const MAX_GOSSIP_TEXT_BYTES = 16 * 1024
/** Message keys announced in one IHAVE. */
export const MAX_IHAVE_ENTRIES = 32
export const GOSSIP_ID_BYTES = 16
export const PEER_ID_BYTES = 32
export const SIGNATURE_BYTES = 64
/** Offset of the hop count in a GOSSIP body: relays patch this one byte and forward the rest as is. */
export const GOSSIP_HOPS_OFFSET = 1

/** A peer the membership service knows of: its id (hex), an address, and how old that news is. */
export interface MeshEntry {
  readonly id: string
  readonly addr: string
  /** Seconds since the sender last knew the peer to be alive (capped at 65,535). */
  readonly age: number
}

/** A membership message (HyParView: join, neighbour requests, view shuffles) on the mesh channel. */
export type MeshMessage =
  | { type: 'JOIN'; addr: string }
  | { type: 'FORWARD_JOIN'; id: string; addr: string; ttl: number }
  | { type: 'NEIGHBOR'; high: boolean; addr: string }
  | { type: 'NEIGHBOR_REPLY'; accepted: boolean }
  | { type: 'DISCONNECT' }
  | { type: 'SHUFFLE'; entries: MeshEntry[] }
  | { type: 'SHUFFLE_REPLY'; entries: MeshEntry[] }

/** A broadcast on the gossip channel, signed by its origin and relayed along the tree. */
export interface GossipMessage {
  readonly type: 'GOSSIP'
  /** Relays so far (0 from the origin). Not signed: each relay adds one. */
  readonly hops: number
  /** 16 bytes chosen by the origin, hex. */
  readonly id: string
  /** The origin's peer id (its Ed25519 public key), hex. */
  readonly origin: string
  /** When the origin sent it, ms since the epoch (signed). */
  readonly sentAt: number
  readonly text: string
  /** Ed25519 signature by `origin` over {@link gossipSigningBytes}. */
  readonly signature: Uint8Array
}

/** A gossip message's key: the origin's id for it and the origin (both hex). */
export interface GossipKey {
  readonly id: string
  readonly origin: string
}

/** Plumtree's control messages on the gossip channel (docs/MESH.md, "Gossip"). */
export type GossipControl =
  | { type: 'IHAVE'; keys: GossipKey[] }
  | { type: 'GRAFT'; id: string; origin: string }
  | { type: 'PRUNE' }

// ignoreBOM: a text may begin with U+FEFF, and a signed text must decode to exactly what was signed.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const MAX_U64_SAFE = Number.MAX_SAFE_INTEGER

class Reader {
  #at = 0
  constructor(readonly bytes: Uint8Array) {}

  #need(n: number, field: string): void {
    if (this.#at + n > this.bytes.length) {
      throw new ProtocolError('TRUNCATED', `the body ends inside ${field}`)
    }
  }
  u8(field: string): number {
    this.#need(1, field)
    return this.bytes[this.#at++]!
  }
  u16(field: string): number {
    this.#need(2, field)
    const v = (this.bytes[this.#at]! << 8) | this.bytes[this.#at + 1]!
    this.#at += 2
    return v
  }
  u64(field: string): number {
    this.#need(8, field)
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.#at, 8)
    const v = view.getBigUint64(0)
    this.#at += 8
    if (v > BigInt(MAX_U64_SAFE)) throw new ProtocolError('INVALID_FIELD', `${field} is above 2^53-1`)
    return Number(v)
  }
  raw(n: number, field: string): Uint8Array {
    this.#need(n, field)
    const v = this.bytes.subarray(this.#at, this.#at + n)
    this.#at += n
    return v
  }
  hex(n: number, field: string): string {
    return Buffer.from(this.raw(n, field)).toString('hex')
  }
  str8(field: string, max: number): string {
    const n = this.u8(field)
    if (n > max)
      throw new ProtocolError('STRING_TOO_LONG', `${field} is ${n} bytes, over the ${max}-byte limit`)
    return this.#utf8(this.raw(n, field), field)
  }
  str16(field: string, max: number): string {
    const n = this.u16(field)
    if (n > max)
      throw new ProtocolError('STRING_TOO_LONG', `${field} is ${n} bytes, over the ${max}-byte limit`)
    return this.#utf8(this.raw(n, field), field)
  }
  #utf8(bytes: Uint8Array, field: string): string {
    try {
      return utf8.decode(bytes)
    } catch (cause) {
      throw new ProtocolError('INVALID_UTF8', `${field} is not well-formed UTF-8`, { cause })
    }
  }
  end(): void {
    if (this.#at !== this.bytes.length) {
      throw new ProtocolError('TRAILING_BYTES', `${this.bytes.length - this.#at} bytes after the last field`)
    }
  }
}

class Writer {
  readonly #parts: number[] = []
  readonly #chunks: Uint8Array[] = []
  #flush(): void {
    if (this.#parts.length > 0) this.#chunks.push(Uint8Array.from(this.#parts.splice(0)))
  }
  u8(v: number): this {
    this.#parts.push(v & 0xff)
    return this
  }
  u16(v: number): this {
    this.#parts.push((v >>> 8) & 0xff, v & 0xff)
    return this
  }
  u64(v: number): this {
    const b = Buffer.alloc(8)
    b.writeBigUInt64BE(BigInt(v))
    this.#flush()
    this.#chunks.push(b)
    return this
  }
  raw(bytes: Uint8Array): this {
    this.#flush()
    this.#chunks.push(bytes)
    return this
  }
  hex(hex: string, n: number, field: string): this {
    if (hex.length !== n * 2 || !/^[0-9a-f]*$/.test(hex)) {
      throw new ProtocolError('INVALID_FIELD', `${field} is not ${n} bytes of lowercase hex`)
    }
    return this.raw(Buffer.from(hex, 'hex'))
  }
  str8(s: string, field: string, max: number): this {
    const b = Buffer.from(s, 'utf8')
    if (b.length > Math.min(max, 255)) {
      throw new ProtocolError('STRING_TOO_LONG', `${field} is ${b.length} bytes, over the ${max}-byte limit`)
    }
    return this.u8(b.length).raw(b)
  }
  str16(s: string, field: string, max: number): this {
    const b = Buffer.from(s, 'utf8')
    if (b.length > Math.min(max, 0xffff)) {
      throw new ProtocolError('STRING_TOO_LONG', `${field} is ${b.length} bytes, over the ${max}-byte limit`)
    }
    return this.u16(b.length).raw(b)
  }
  done(): Uint8Array {
    this.#flush()
    return Buffer.concat(this.#chunks)
  }
}

function writeEntries(w: Writer, entries: readonly MeshEntry[]): void {
  if (entries.length > MAX_SHUFFLE_ENTRIES) {
    throw new ProtocolError(
      'LIST_TOO_LONG',
      `${entries.length} entries, over the ${MAX_SHUFFLE_ENTRIES} limit`,
    )
  }
  w.u8(entries.length)
  for (const e of entries) {
    w.hex(e.id, PEER_ID_BYTES, 'entry id')
      .u16(Math.max(0, Math.min(0xffff, Math.floor(e.age))))
      .str8(e.addr, 'entry addr', MAX_ADDRESS_BYTES)
  }
}

function readEntries(r: Reader): MeshEntry[] {
  const n = r.u8('entry count')
  if (n > MAX_SHUFFLE_ENTRIES) {
    throw new ProtocolError('LIST_TOO_LONG', `${n} entries, over the ${MAX_SHUFFLE_ENTRIES} limit`)
  }
  const entries: MeshEntry[] = []
  for (let i = 0; i < n; i++) {
    const id = r.hex(PEER_ID_BYTES, 'entry id')
    const age = r.u16('entry age')
    const addr = r.str8('entry addr', MAX_ADDRESS_BYTES)
    entries.push({ id, addr, age })
  }
  return entries
}

/** @throws ProtocolError for a field out of its bounds */
export function encodeMesh(msg: MeshMessage): Uint8Array {
  const w = new Writer().u8(MeshType[msg.type])
  switch (msg.type) {
    case 'JOIN':
      w.str8(msg.addr, 'addr', MAX_ADDRESS_BYTES)
      break
    case 'FORWARD_JOIN':
      if (!Number.isInteger(msg.ttl) || msg.ttl < 0 || msg.ttl > MAX_WALK_TTL) {
        throw new ProtocolError('INVALID_FIELD', `ttl ${msg.ttl} is outside 0..${MAX_WALK_TTL}`)
      }
      w.hex(msg.id, PEER_ID_BYTES, 'id').str8(msg.addr, 'addr', MAX_ADDRESS_BYTES).u8(msg.ttl)
      break
    case 'NEIGHBOR':
      w.u8(msg.high ? 1 : 0).str8(msg.addr, 'addr', MAX_ADDRESS_BYTES)
      break
    case 'NEIGHBOR_REPLY':
      w.u8(msg.accepted ? 1 : 0)
      break
    case 'DISCONNECT':
      break
    case 'SHUFFLE':
    case 'SHUFFLE_REPLY':
      writeEntries(w, msg.entries)
      break
  }
  return w.done()
}

function flag(r: Reader, field: string): boolean {
  const v = r.u8(field)
  if (v > 1) throw new ProtocolError('INVALID_FIELD', `${field} is ${v}, not 0 or 1`)
  return v === 1
}

/** @throws ProtocolError for a body that is not exactly one mesh message within its bounds */
export function decodeMesh(body: Uint8Array): MeshMessage {
  if (body.length === 0) throw new ProtocolError('EMPTY_FRAME', 'an empty mesh message')
  const r = new Reader(body)
  const type = r.u8('type')
  let msg: MeshMessage
  switch (type) {
    case MeshType.JOIN:
      msg = { type: 'JOIN', addr: r.str8('addr', MAX_ADDRESS_BYTES) }
      break
    case MeshType.FORWARD_JOIN: {
      const id = r.hex(PEER_ID_BYTES, 'id')
      const addr = r.str8('addr', MAX_ADDRESS_BYTES)
      const ttl = r.u8('ttl')
      if (ttl > MAX_WALK_TTL) throw new ProtocolError('INVALID_FIELD', `ttl ${ttl} is above ${MAX_WALK_TTL}`)
      msg = { type: 'FORWARD_JOIN', id, addr, ttl }
      break
    }
    case MeshType.NEIGHBOR: {
      const high = flag(r, 'priority')
      msg = { type: 'NEIGHBOR', high, addr: r.str8('addr', MAX_ADDRESS_BYTES) }
      break
    }
    case MeshType.NEIGHBOR_REPLY:
      msg = { type: 'NEIGHBOR_REPLY', accepted: flag(r, 'accepted') }
      break
    case MeshType.DISCONNECT:
      msg = { type: 'DISCONNECT' }
      break
    case MeshType.SHUFFLE:
      msg = { type: 'SHUFFLE', entries: readEntries(r) }
      break
    case MeshType.SHUFFLE_REPLY:
      msg = { type: 'SHUFFLE_REPLY', entries: readEntries(r) }
      break
    default:
      throw new ProtocolError('UNKNOWN_TYPE', `unknown mesh message type ${type}`)
  }
  r.end()
  return msg
}

/** Domain separation: a gossip signature can never be mistaken for the handshake's identity signature. */
const GOSSIP_SIGNING_PREFIX = Buffer.from('parley/gossip/1\0', 'latin1')

/** What the origin signs: everything but the hop count (which relays change) and the signature. */
export function gossipSigningBytes(id: string, origin: string, sentAt: number, text: string): Buffer {
  const head = new Writer()
    .raw(GOSSIP_SIGNING_PREFIX)
    .hex(id, GOSSIP_ID_BYTES, 'id')
    .hex(origin, PEER_ID_BYTES, 'origin')
    .u64(sentAt)
    .str16(text, 'text', MAX_GOSSIP_TEXT_BYTES)
  return Buffer.from(head.done())
}

/** @throws ProtocolError for a field out of its bounds */
export function encodeGossip(msg: GossipMessage): Uint8Array {
  if (!Number.isInteger(msg.hops) || msg.hops < 0 || msg.hops > 255) {
    throw new ProtocolError('INVALID_FIELD', `hops ${msg.hops} is outside 0..255`)
  }
  if (msg.signature.length !== SIGNATURE_BYTES) {
    throw new ProtocolError('INVALID_FIELD', `the signature is ${msg.signature.length} bytes, not 64`)
  }
  return new Writer()
    .u8(GossipType.GOSSIP)
    .u8(msg.hops)
    .hex(msg.id, GOSSIP_ID_BYTES, 'id')
    .hex(msg.origin, PEER_ID_BYTES, 'origin')
    .u64(msg.sentAt)
    .raw(msg.signature)
    .str16(msg.text, 'text', MAX_GOSSIP_TEXT_BYTES)
    .done()
}

/** @throws ProtocolError for a body that is not exactly one GOSSIP within its bounds */
export function decodeGossip(body: Uint8Array): GossipMessage {
  if (body.length === 0) throw new ProtocolError('EMPTY_FRAME', 'an empty gossip message')
  const r = new Reader(body)
  const type = r.u8('type')
  if (type !== GossipType.GOSSIP)
    throw new ProtocolError('UNKNOWN_TYPE', `unknown gossip message type ${type}`)
  const hops = r.u8('hops')
  const id = r.hex(GOSSIP_ID_BYTES, 'id')
  const origin = r.hex(PEER_ID_BYTES, 'origin')
  const sentAt = r.u64('sentAt')
  const signature = Uint8Array.from(r.raw(SIGNATURE_BYTES, 'signature'))
  const text = r.str16('text', MAX_GOSSIP_TEXT_BYTES)
  r.end()
  return { type: 'GOSSIP', hops, id, origin, sentAt, text, signature }
}

/** @throws ProtocolError for a field out of its bounds */
export function encodeGossipControl(msg: GossipControl): Uint8Array {
  const w = new Writer().u8(GossipType[msg.type])
  switch (msg.type) {
    case 'IHAVE':
      if (msg.keys.length > MAX_IHAVE_ENTRIES) {
        throw new ProtocolError(
          'LIST_TOO_LONG',
          `${msg.keys.length} keys, over the ${MAX_IHAVE_ENTRIES} limit`,
        )
      }
      w.u8(msg.keys.length)
      for (const k of msg.keys) w.hex(k.id, GOSSIP_ID_BYTES, 'id').hex(k.origin, PEER_ID_BYTES, 'origin')
      break
    case 'GRAFT':
      w.hex(msg.id, GOSSIP_ID_BYTES, 'id').hex(msg.origin, PEER_ID_BYTES, 'origin')
      break
    case 'PRUNE':
      break
  }
  return w.done()
}

/** @throws ProtocolError for a body that is not exactly one IHAVE, GRAFT or PRUNE within its bounds */
export function decodeGossipControl(body: Uint8Array): GossipControl {
  if (body.length === 0) throw new ProtocolError('EMPTY_FRAME', 'an empty gossip message')
  const r = new Reader(body)
  const type = r.u8('type')
  let msg: GossipControl
  switch (type) {
    case GossipType.IHAVE: {
      const n = r.u8('key count')
      if (n > MAX_IHAVE_ENTRIES) {
        throw new ProtocolError('LIST_TOO_LONG', `${n} keys, over the ${MAX_IHAVE_ENTRIES} limit`)
      }
      const keys: GossipKey[] = []
      for (let i = 0; i < n; i++) {
        const id = r.hex(GOSSIP_ID_BYTES, 'id')
        keys.push({ id, origin: r.hex(PEER_ID_BYTES, 'origin') })
      }
      msg = { type: 'IHAVE', keys }
      break
    }
    case GossipType.GRAFT: {
      const id = r.hex(GOSSIP_ID_BYTES, 'id')
      msg = { type: 'GRAFT', id, origin: r.hex(PEER_ID_BYTES, 'origin') }
      break
    }
    case GossipType.PRUNE:
      msg = { type: 'PRUNE' }
      break
    default:
      throw new ProtocolError('UNKNOWN_TYPE', `unknown gossip control message type ${type}`)
  }
  r.end()
  return msg
}
