import { isIPv4, isIPv6 } from 'node:net'
import { networkInterfaces } from 'node:os'
import { Limits, utf8Length } from '@parley/protocol'
import { PeerError } from './peer-errors.js'

/** Bytes of `text` in UTF-8, checked against the protocol's limit and for lone surrogates. */
export function textBytes(text: string): number {
  const bytes = utf8Length(text)
  if (bytes > Limits.textBytes) {
    throw new PeerError('MESSAGE_TOO_LONG', `the message is ${bytes} bytes; the limit is ${Limits.textBytes}`)
  }
  // Only a text with non-ASCII characters can hold a lone surrogate, which UTF-8 cannot carry.
  if (bytes !== text.length && !(text as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new PeerError('INVALID_TEXT', 'the message holds a lone UTF-16 surrogate, which UTF-8 cannot carry')
  }
  return bytes
}

/** `text` cut to at most `max` UTF-8 bytes, on a character boundary. */
export function clip(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let out = text.slice(0, max)
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1)
  return out
}

/**
 * Addresses others can dial: a wildcard bind (0.0.0.0, [::]) is not one, so it becomes this machine's
 * interface addresses with the bound port (reachable ones first, loopback last); anything else is kept.
 */
export function announceable(bound: string): string[] {
  const i = bound.lastIndexOf(':')
  const host = bound.slice(0, i)
  const port = bound.slice(i + 1)
  const v4 = host === '0.0.0.0'
  if (!v4 && host !== '[::]') return [bound]
  const out: string[] = []
  for (const nets of Object.values(networkInterfaces())) {
    for (const net of nets ?? []) {
      if (net.family === 'IPv4') out.push(`${net.address}:${port}`)
      else if (!v4 && !net.address.startsWith('fe80')) out.push(`[${net.address}]:${port}`)
    }
  }
  out.sort((a, b) => Number(isLoopback(hostOf(a))) - Number(isLoopback(hostOf(b))))
  return out.length > 0 ? out.slice(0, Limits.addresses) : [bound]
}

export function isLoopback(host: string): boolean {
  return host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.')
}

/** The host part of `host:port`, `[v6]:port` or a transport's own address (`mem:3` → `mem`). */
export function hostOf(address: string): string {
  // A DHT address (dht:<key>[:<stream>]) names a peer, not a host: the key is what limits count by.
  if (address.startsWith('dht:')) return address.slice(0, 68)
  const i = address.lastIndexOf(':')
  return (i < 0 ? address : address.slice(0, i)).replace(/^\[|\]$/g, '')
}

/** The network host a connection comes from: its transport's `remoteHost`, else the host of its address. */
export function remoteHostOf(conn: { readonly remoteAddress: string; readonly remoteHost?: string }): string {
  return conn.remoteHost ?? hostOf(conn.remoteAddress)
}

/**
 * The eight 16-bit groups of an IPv6 address in any written form (`2001:db8::1`, `2001:0db8:0:0::1`,
 * an embedded IPv4 tail, a `%zone`), or undefined when `host` is not one. Limits must count one address
 * once, however it is spelled.
 */
function ipv6Groups(host: string): number[] | undefined {
  const bare = host.replace(/%.*$/, '')
  if (!isIPv6(bare)) return undefined
  let text = bare
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length
  const groups = [...left, ...Array<string>(zeros).fill('0'), ...right].map((g) => Number.parseInt(g, 16))
  return groups.length === 8 ? groups : undefined
}

/** An IPv4 address, also when it comes IPv4-mapped (`::ffff:192.0.2.1`, `::ffff:c000:201`); else undefined. */
function ipv4Of(host: string): string | undefined {
  if (isIPv4(host)) return host
  const g = ipv6Groups(host)
  if (g === undefined || g[5] !== 0xffff || g.slice(0, 5).some((x) => x !== 0)) return undefined
  return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join('.')
}

/**
 * The network group of a host, as Bitcoin Core groups peers: /16 for IPv4, /32 for IPv6, the host
 * itself otherwise. One operator usually holds addresses in few groups, so limits and eviction by
 * group make it costly to take many slots.
 */
export function netgroupOf(host: string): string {
  const v4 = ipv4Of(host)
  if (v4 !== undefined) return v4.split('.').slice(0, 2).join('.')
  const v6 = ipv6Groups(host)
  return v6 === undefined ? host : v6Prefix(v6, 2)
}

/** `host` in one spelling: an IPv4 address also when IPv4-mapped, an IPv6 address in full; else as is. */
export function canonicalHost(host: string): string {
  const v4 = ipv4Of(host)
  if (v4 !== undefined) return v4
  const v6 = ipv6Groups(host)
  return v6 === undefined ? host : v6Hex(v6)
}

/**
 * What per-host limits count connections by: an IPv4 address, or an IPv6 /64 (one subscriber's
 * network: a host there has 2^64 addresses to choose from), or the host itself for other transports.
 */
export function hostKeyOf(host: string): string {
  const v4 = ipv4Of(host)
  if (v4 !== undefined) return v4
  const v6 = ipv6Groups(host)
  return v6 === undefined ? host : v6Prefix(v6, 4)
}

/** IPv6 groups in hex, without leading zeros: `2001:db8:0:0:0:0:0:1`. */
function v6Hex(groups: readonly number[]): string {
  return groups.map((g) => g.toString(16)).join(':')
}

/** The first `count` groups of an IPv6 address as a prefix: `2001:db8::/32`. */
function v6Prefix(groups: readonly number[], count: number): string {
  return `${v6Hex(groups.slice(0, count))}::/${count * 16}`
}

export function looksLikeAddress(target: string): boolean {
  return /^(\[[0-9a-fA-F:.]+\]|[^\s:]+):\d{1,5}$/.test(target)
}

export function secretBytes(secret: string | Uint8Array): Uint8Array {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret
}

/** Resolves when `promise` settles or `signal` aborts, whichever is first. Never rejects. */
export function raceSignal(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
    promise.then(done, done)
  })
}

export async function mapConcurrent<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

let clockNow = 0
let clockFresh = false
const clockStale = (): void => {
  clockFresh = false
}

/**
 * `Date.now()` read once for a run of synchronous code and the microtasks queued before it: a burst of
 * sends (or the sends that one read's acknowledgements release) shares one clock read, which costs
 * 40-80 ns, instead of one per message. The time is at most as old as that run, which a send's
 * timestamp and ack deadline (milliseconds, seconds) can afford. Not for measuring durations.
 */
export function coarseNow(): number {
  if (!clockFresh) {
    clockNow = Date.now()
    clockFresh = true
    queueMicrotask(clockStale)
  }
  return clockNow
}

/** A token bucket: `burst` tokens, refilled at `perSecond`. */
export class TokenBucket {
  #tokens: number
  #refilledAt = Date.now()

  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {
    this.#tokens = burst
  }

  /**
   * Takes `n` tokens; false (and nothing taken) when there are not enough. `now` lets a caller that
   * already read the clock (once per read, for many records) spare a `Date.now()` per call.
   */
  take(n = 1, now = Date.now()): boolean {
    if (this.available(now) < n) return false
    this.#tokens -= n
    return true
  }

  /** The tokens there are at `now` (refilled up to it), without taking any. */
  available(now = Date.now()): number {
    if (now < this.#refilledAt) now = this.#refilledAt
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#refilledAt) * this.perSecond) / 1000)
    this.#refilledAt = now
    return this.#tokens
  }
}

/** Timers that die with their owner: each `after` is unref'd and cleared by `clear()`. */
export class Timers {
  readonly #timers = new Set<ReturnType<typeof setTimeout>>()

  /** Runs `fire` after `ms` on the (fakeable) global timers; returns what cancels it. */
  after(ms: number, fire: () => void): () => void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      fire()
    }, ms)
    timer.unref?.()
    this.#timers.add(timer)
    return () => {
      clearTimeout(timer)
      this.#timers.delete(timer)
    }
  }

  /** An AbortSignal that fires after `ms`. */
  deadline(ms: number): AbortSignal {
    const controller = new AbortController()
    this.after(ms, () => controller.abort(new PeerError('ABORTED', `timed out after ${ms} ms`)))
    return controller.signal
  }

  clear(): void {
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
  }
}
