import { isIPv4, isIPv6 } from 'node:net'
import { TransportError } from '../errors.js'

/** A `host:port` address split into its parts. `host` never carries the IPv6 brackets. */
export interface HostPort {
  host: string
  /** 0–65535; 0 asks a listener for any free port. */
  port: number
}

/** Same bound as the protocol's address field (255 bytes), so every address we accept can be gossiped. */
const MAX_ADDRESS_LENGTH = 255
/** DNS names (RFC 1123 labels, plus `_` which some private resolvers hand out) and dotted IPv4. */
const HOSTNAME =
  /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/
const DOTTED_NUMBERS = /^[0-9.]+$/
const PORT = /^[0-9]{1,5}$/

/**
 * Parses `host:port`, with an IPv6 host in brackets (`[::1]:4000`).
 * Checks syntax only; it never touches the network.
 *
 * @throws TransportError `INVALID_ADDRESS` for anything else: a missing or bad host, a bare IPv6 host,
 * a port outside 0–65535, an address longer than 255 characters.
 */
export function parseAddress(address: string): HostPort {
  if (typeof address !== 'string' || address.length === 0 || address.length > MAX_ADDRESS_LENGTH) {
    throw invalid(address, 'expected host:port')
  }
  let host: string
  let portText: string
  if (address.startsWith('[')) {
    const close = address.indexOf(']')
    if (close < 0 || address[close + 1] !== ':') throw invalid(address, 'expected [ipv6]:port')
    host = address.slice(1, close)
    portText = address.slice(close + 2)
    if (!isIPv6(host)) throw invalid(address, `${host} is not an IPv6 address`)
  } else {
    const colon = address.lastIndexOf(':')
    if (colon < 0) throw invalid(address, 'missing :port')
    host = address.slice(0, colon)
    portText = address.slice(colon + 1)
    if (host.includes(':')) throw invalid(address, 'an IPv6 host goes in brackets, as in [::1]:4000')
    if (!HOSTNAME.test(host)) throw invalid(address, 'bad host')
    // `999.1.1.1` is a well-formed DNS name but surely a typo for an IPv4 address.
    if (DOTTED_NUMBERS.test(host) && !isIPv4(host)) throw invalid(address, `${host} is not an IPv4 address`)
  }
  if (!PORT.test(portText)) throw invalid(address, 'the port must be a number from 0 to 65535')
  const port = Number(portText)
  if (port > 65535) throw invalid(address, 'the port must be a number from 0 to 65535')
  return { host, port }
}

/** The inverse of {@link parseAddress}: brackets IPv6 hosts. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

function invalid(address: unknown, why: string): TransportError {
  const shown = typeof address === 'string' ? JSON.stringify(address.slice(0, 80)) : typeof address
  return new TransportError('INVALID_ADDRESS', `invalid address ${shown}: ${why}`)
}
