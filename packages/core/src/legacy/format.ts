/**
 * The legacy plain-text wire format of the original course peers, parsed strictly.
 *
 * ```
 *  one TCP connection per message: connect, write one UTF-8 string, close
 *
 *  "127.0.0.1:5001 alice hello there"
 *   └─ ip:port ──┘ └name┘ └─ text ──┘     ≤ 1024 bytes in all (one recv of the original)
 *
 *  text "connect" / "exit" (any case, the whole text) are commands, anything else is chat
 * ```
 */
import { isIPv6 } from 'node:net'
import { parseAddress } from '../transports/address.js'
import { type LegacyDropCode, LegacyError } from './errors.js'

/** The most bytes one legacy message may take: the original reads each message with one `recv(1024)`. */
export const LEGACY_MAX_MESSAGE_BYTES = 1024
/** The most UTF-8 bytes of a legacy name (the same bound as a Parley name). */
export const LEGACY_MAX_NAME_BYTES = 64

/** What a legacy string says: a chat message, or one of the two commands. */
export type LegacyKind = 'chat' | 'connect' | 'exit'

/** A legacy string, parsed. `address` is normalized (IPv6 lowercase, in brackets). */
export interface LegacyParsed {
  readonly kind: LegacyKind
  /** The sender's listening address, as it claims it (unverifiable). */
  readonly address: string
  readonly name: string
  /** The message text; for a command, the text as sent (any case). */
  readonly text: string
}

/** The outcome of {@link parseLegacyMessage}: never throws, so bad input is reported, not crashed on. */
export type LegacyParseResult =
  | { readonly ok: true; readonly message: LegacyParsed }
  | { readonly ok: false; readonly code: LegacyDropCode; readonly reason: string }

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])'
/** Dotted decimal without leading zeros (`010` is octal to some parsers, decimal to others). */
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`)
const PORT = /^[1-9][0-9]{0,4}$/
/** Whitespace or a control character: a name has neither (the format splits on spaces). */
const BAD_NAME_CHAR = /[\s\p{Cc}]/u
const COMMAND = /^(?:connect|exit)$/i
const LONE_SURROGATE = /\p{Surrogate}/u
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const encoder = new TextEncoder()

/**
 * True when a connection whose first byte is `byte` is a legacy one. Parley's first byte is always
 * 0x00 (the high byte of the Noise message 1 length prefix `00 20`, or of a u32 frame length ≤ 1 MiB
 * without the secure channel); a legacy string starts with its address, printable ASCII.
 */
export function isLegacyFirstByte(byte: number): boolean {
  return byte >= 0x21 && byte <= 0x7e
}

/**
 * Checks an address as the legacy format carries it: `a.b.c.d:port` (dotted decimal) or
 * `[ipv6]:port`, port 1–65535, not the unspecified address (nobody can dial 0.0.0.0 back).
 * @returns the normalized address, or undefined when it is not one
 */
export function parseLegacyAddress(text: string): string | undefined {
  const colon = text.lastIndexOf(':')
  if (colon < 0) return undefined
  const host = text.slice(0, colon)
  const port = text.slice(colon + 1)
  if (!PORT.test(port) || Number(port) > 65_535) return undefined
  if (IPV4.test(host)) return host === '0.0.0.0' ? undefined : `${host}:${port}`
  if (host.startsWith('[') && host.endsWith(']')) {
    const bare = host.slice(1, -1).toLowerCase()
    if (!isIPv6(bare) || /^[0:]+$/.test(bare)) return undefined
    return `[${bare}]:${port}`
  }
  return undefined
}

/**
 * Checks a `host:port` the user gave for a legacy peer (a host name is fine here: we only dial it).
 * @returns the normalized address (host lowercased)
 * @throws LegacyError `INVALID_ADDRESS`
 */
export function normalizeLegacyPeerAddress(text: string): string {
  const strict = parseLegacyAddress(text.trim())
  if (strict !== undefined) return strict
  let parsed: { host: string; port: number }
  try {
    parsed = parseAddress(text.trim())
  } catch (cause) {
    throw new LegacyError('INVALID_ADDRESS', (cause as Error).message, { cause })
  }
  if (parsed.port === 0) throw new LegacyError('INVALID_ADDRESS', `cannot send to port 0 (${text.trim()})`)
  const host = parsed.host.toLowerCase()
  return host.includes(':') ? `[${host}]:${parsed.port}` : `${host}:${parsed.port}`
}

/** @returns a sentence saying what is wrong with a legacy name, or undefined when it is fine */
export function checkLegacyName(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty'
  if (BAD_NAME_CHAR.test(name)) return 'the name holds whitespace or control characters'
  if (LONE_SURROGATE.test(name)) return 'the name is not well-formed Unicode'
  const bytes = encoder.encode(name).length
  if (bytes > LEGACY_MAX_NAME_BYTES) return `the name is ${bytes} bytes (at most ${LEGACY_MAX_NAME_BYTES})`
  return undefined
}

/** True when `text` is one of the two commands (`connect`, `exit`), compared case-insensitively to the whole text. */
export function isLegacyCommand(text: string): boolean {
  return COMMAND.test(text)
}

/**
 * Parses one legacy message (all the bytes of one connection). Strict: at most 1024 bytes, valid
 * UTF-8, `<ip>:<port> <name> <text>` with a dialable address, a name of 1–64 bytes without control
 * characters, and a non-empty text (which may hold spaces). Never throws.
 */
export function parseLegacyMessage(bytes: Uint8Array): LegacyParseResult {
  if (bytes.length === 0) return fail('EMPTY', 'the connection sent nothing')
  if (bytes.length > LEGACY_MAX_MESSAGE_BYTES) {
    return fail('TOO_LONG', `${bytes.length} bytes is over the legacy limit of ${LEGACY_MAX_MESSAGE_BYTES}`)
  }
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return fail('INVALID_UTF8', 'the bytes are not valid UTF-8')
  }
  const first = text.indexOf(' ')
  if (first < 0) return fail('MALFORMED', 'expected "<ip>:<port> <name> <message>", found no space')
  const addressText = text.slice(0, first)
  const address = parseLegacyAddress(addressText)
  if (address === undefined) {
    return fail('INVALID_ADDRESS', `${JSON.stringify(addressText.slice(0, 64))} is not a dialable ip:port`)
  }
  const second = text.indexOf(' ', first + 1)
  if (second < 0) return fail('MALFORMED', 'expected "<ip>:<port> <name> <message>", found no message')
  const name = text.slice(first + 1, second)
  const nameProblem = checkLegacyName(name)
  if (nameProblem !== undefined) return fail(name === '' ? 'MALFORMED' : 'INVALID_NAME', nameProblem)
  const body = text.slice(second + 1)
  if (body.length === 0) return fail('MALFORMED', 'the message is empty')
  const kind: LegacyKind = isLegacyCommand(body) ? (body.toLowerCase() as 'connect' | 'exit') : 'chat'
  return { ok: true, message: { kind, address, name, text: body } }
}

/**
 * Encodes one legacy string, `<address> <name> <text>`.
 * @throws LegacyError `INVALID_ADDRESS` (not an ip:port a legacy peer can dial back), `INVALID_NAME`,
 *   `INVALID_TEXT` (empty or not well-formed), `MESSAGE_TOO_LONG` (over 1024 bytes: refused, never split)
 */
export function encodeLegacyMessage(message: { address: string; name: string; text: string }): Uint8Array {
  const address = parseLegacyAddress(message.address)
  if (address === undefined) {
    throw new LegacyError(
      'INVALID_ADDRESS',
      `our address ${JSON.stringify(message.address)} cannot be given to legacy peers: it must be a specific ip:port they can dial back`,
    )
  }
  const nameProblem = checkLegacyName(message.name)
  if (nameProblem !== undefined) throw new LegacyError('INVALID_NAME', `invalid legacy name: ${nameProblem}`)
  if (message.text.length === 0) throw new LegacyError('INVALID_TEXT', 'the message is empty')
  if (LONE_SURROGATE.test(message.text))
    throw new LegacyError('INVALID_TEXT', 'the message is not well-formed Unicode')
  const bytes = encoder.encode(`${address} ${message.name} ${message.text}`)
  if (bytes.length > LEGACY_MAX_MESSAGE_BYTES) {
    throw new LegacyError(
      'MESSAGE_TOO_LONG',
      `the legacy message would be ${bytes.length} bytes; legacy peers read at most ${LEGACY_MAX_MESSAGE_BYTES} (shorten it by ${bytes.length - LEGACY_MAX_MESSAGE_BYTES})`,
    )
  }
  return bytes
}

function fail(code: LegacyDropCode, reason: string): LegacyParseResult {
  return { ok: false, code, reason }
}
