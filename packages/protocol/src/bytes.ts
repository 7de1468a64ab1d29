// Byte helpers that run anywhere JavaScript runs (Uint8Array, TextEncoder, TextDecoder), with Node's
// Buffer as a fast path where it exists. The protocol imports no `node:` module, so bundlers for
// browsers and other runtimes take it as is; in Node the hot path keeps Buffer's speed: pooled
// allocation of small buffers (one slab shared by many 64-byte frames instead of an ArrayBuffer
// each) and native UTF-8/hex/Latin-1 conversions. Every helper gives the same bytes and strings on
// both paths (the protocol tests run on the Node path; the browser-bundle test runs the other).
//
// @internal: nothing here is exported from the package.

/** The part of Node's Buffer this module uses, reached through globalThis so no import names it. */
type NodeBytes = Uint8Array & {
  write(text: string, offset: number, encoding: 'utf8' | 'hex'): number
  toString(encoding: 'utf8' | 'hex' | 'latin1', start: number, end: number): string
}
interface NodeBufferClass {
  allocUnsafe(size: number): NodeBytes
  allocUnsafeSlow(size: number): NodeBytes
  byteLength(text: string, encoding: 'utf8'): number
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): NodeBytes
}

const NodeBuffer = (globalThis as { Buffer?: NodeBufferClass }).Buffer

// `isAscii` (SIMD, under 1 µs for 64 KB) lives only in node:buffer: Node >= 20.16 hands it out
// without an import, which bundlers would try to resolve.
const nodeIsAscii = (
  globalThis as {
    process?: { getBuiltinModule?: (id: string) => { isAscii?: (view: Uint8Array) => boolean } | undefined }
  }
).process?.getBuiltinModule?.('buffer')?.isAscii

/** Memory for one frame or body, contents undefined; small sizes come from Node's shared pool. */
export const alloc: (size: number) => Uint8Array = NodeBuffer
  ? (size) => NodeBuffer.allocUnsafe(size)
  : (size) => new Uint8Array(size)

/** Memory of its own (never a slice of a shared pool): for buffers that are kept and reused. */
export const allocSlow: (size: number) => Uint8Array = NodeBuffer
  ? (size) => NodeBuffer.allocUnsafeSlow(size)
  : (size) => new Uint8Array(size)

/** A fresh copy of `bytes`. (Not `slice()`: on a Buffer that returns a view.) */
export function copyOf(bytes: Uint8Array): Uint8Array {
  const copy = alloc(bytes.byteLength)
  copy.set(bytes)
  return copy
}

/**
 * `view` as something the Node path can call Buffer methods on (the same memory, no copy). Called
 * once per message at the codec's entry points; the helpers below take what it returns.
 */
export function native(view: Uint8Array): Uint8Array {
  if (NodeBuffer === undefined || view instanceof (NodeBuffer as unknown as new () => object)) return view
  return NodeBuffer.from(view.buffer, view.byteOffset, view.byteLength)
}

const encoder = new TextEncoder()
// ignoreBOM: keep a leading U+FEFF as part of the string. The default strips it, which would make
// decode(encode("\uFEFFx")) !== "\uFEFFx" and break the one-encoding-per-message rule.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** UTF-8 byte length of `text`; a lone surrogate counts 3 bytes (U+FFFD), as the encoder writes it. */
export const utf8ByteLength: (text: string) => number = NodeBuffer
  ? (text) => NodeBuffer.byteLength(text, 'utf8')
  : (text) => {
      let bytes = text.length
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i)
        if (c < 0x80) continue
        if (c < 0x800) {
          bytes += 1
        } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
          const next = text.charCodeAt(i + 1)
          if (next >= 0xdc00 && next <= 0xdfff) {
            // A pair: two UTF-16 units, four bytes.
            bytes += 2
            i++
          } else {
            bytes += 2
          }
        } else {
          bytes += 2
        }
      }
      return bytes
    }

/** Writes `text` as UTF-8 at `at` of a {@link native} view; returns the bytes written. */
export function writeUtf8(buf: Uint8Array, at: number, text: string): number {
  if (NodeBuffer) return (buf as NodeBytes).write(text, at, 'utf8')
  return encoder.encodeInto(text, buf.subarray(at)).written
}

/**
 * Decodes UTF-8 strictly.
 * @throws TypeError (from TextDecoder) for malformed bytes.
 */
export function decodeUtf8Strict(buf: Uint8Array, start: number, end: number): string {
  return strictUtf8.decode(buf.subarray(start, end))
}

/**
 * Decodes UTF-8 fast when the bytes are well-formed; `undefined` when they may not be (the caller
 * then decides with {@link decodeUtf8Strict}). Node's decoder is fast but lenient: it turns
 * malformed bytes into U+FFFD, so a result without one came from well-formed bytes. Elsewhere the
 * strict decoder is as fast, so there is no lenient pass.
 */
export function decodeUtf8Fast(buf: Uint8Array, start: number, end: number): string | undefined {
  if (NodeBuffer) {
    const text = (buf as NodeBytes).toString('utf8', start, end)
    return text.includes('\uFFFD') ? undefined : text
  }
  return undefined
}

/** True when every byte is below 0x80, if that can be known cheaply; `false` when it cannot. */
export function isAsciiFast(buf: Uint8Array, start: number, end: number): boolean {
  return nodeIsAscii?.(buf.subarray(start, end)) === true
}

/** Bytes known to be ASCII, as a string (Latin-1 and ASCII agree below 0x80). */
export function asciiString(buf: Uint8Array, start: number, end: number): string {
  if (NodeBuffer) return (buf as NodeBytes).toString('latin1', start, end)
  let text = ''
  for (let i = start; i < end; i++) text += String.fromCharCode(buf[i]!)
  return text
}

const HEX_DIGITS = '0123456789abcdef'
/** Byte -> two lowercase hex digits. */
const byteToHex: readonly string[] = Array.from(
  { length: 256 },
  (_, b) => HEX_DIGITS[b >> 4]! + HEX_DIGITS[b & 15]!,
)

/** Lowercase hex of `buf[start..end)`. */
export function hexString(buf: Uint8Array, start: number, end: number): string {
  if (NodeBuffer) return (buf as NodeBytes).toString('hex', start, end)
  let text = ''
  for (let i = start; i < end; i++) text += byteToHex[buf[i]!]!
  return text
}

/** Value of one lowercase hex digit's char code. */
function nibble(code: number): number {
  return code <= 0x39 ? code - 0x30 : code - 0x57
}

/** Writes `hex` (even length, lowercase digits: checked by the caller) at `at`; returns the offset after. */
export function writeHex(buf: Uint8Array, at: number, hex: string): number {
  if (NodeBuffer) return at + (buf as NodeBytes).write(hex, at, 'hex')
  for (let i = 0; i < hex.length; i += 2) {
    buf[at++] = (nibble(hex.charCodeAt(i)) << 4) | nibble(hex.charCodeAt(i + 1))
  }
  return at
}

/** Reads a big-endian u32. The caller has checked that four bytes are there. */
export function readU32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0
}

/** Writes a big-endian u32; returns the offset after it. */
export function writeU32(buf: Uint8Array, at: number, value: number): number {
  buf[at] = value >>> 24
  buf[at + 1] = value >>> 16
  buf[at + 2] = value >>> 8
  buf[at + 3] = value
  return at + 4
}
