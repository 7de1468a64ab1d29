import { type ReceivedMessage, TokenBucket } from '@parley/core'
import type { Bot } from '../bot.js'
import type { BehaviourHandle } from './types.js'

/** Options of {@link relay}. */
export interface RelayOptions {
  /** How many (origin, text) pairs to remember for loop protection. @default 1024 */
  memory?: number
  /**
   * Deliveries (one forwarded text to one peer) per second, and at once: whatever reaches it, a relay
   * never sends more, so no peer can make it flood the others. @default 1,000/s, 10,000 at once
   */
  rate?: { perSecond: number; burst: number }
  /**
   * Bytes of forwarded text not yet acknowledged, over all recipients; a text that would go past it is
   * not forwarded (one always may when nothing waits), so peers that do not read cannot make the relay
   * hold an unbounded backlog for them. @default 16 MiB
   */
  maxPendingBytes?: number
}

/** Starts every relayed text; what follows is `<origin name>: <original text>`. */
export const RELAY_MARKER = '↪ '

/** What a relay adds after an origin that is not the peer the text came from: `↪ alice (via bob): hi`. */
const VIA = / \(via [^)]*\)$/

/**
 * Splits a received text into its origin and body: a relayed text names its origin (a `(via …)` after
 * it is not part of it), a plain one is from the sender.
 */
export function parseRelayed(text: string, sender: string): { origin: string; body: string } {
  if (text.startsWith(RELAY_MARKER)) {
    const rest = text.slice(RELAY_MARKER.length)
    const colon = rest.indexOf(': ')
    if (colon > 0) return { origin: rest.slice(0, colon).replace(VIA, ''), body: rest.slice(colon + 2) }
  }
  return { origin: sender, body: text }
}

/**
 * Forwards every message it receives to all its other peers as `↪ <origin>: <text>`.
 *
 * Loop protection, so any graph of relays settles:
 * - each (origin, text) pair is forwarded at most once (a bounded memory of recent pairs);
 * - a text whose origin is this bot is never forwarded (our own words coming back);
 * - nothing goes back to the peer it came from, nor to the peer named as its origin.
 *
 * The origin a text names is only a claim: when it is not the peer the text came from, the forwarded
 * text says who passed it on (`↪ alice (via mallory): …`), so nobody can speak as another through a
 * relay unnoticed. And a relay sends at most `rate` deliveries and holds at most `maxPendingBytes`
 * unacknowledged: past either it drops what it would forward.
 */
export function relay(bot: Bot, options: RelayOptions = {}): BehaviourHandle {
  const memory = Math.max(1, options.memory ?? 1024)
  const rate = options.rate ?? { perSecond: 1_000, burst: 10_000 }
  const budget = new TokenBucket(rate.perSecond, rate.burst)
  const maxPending = options.maxPendingBytes ?? 16 * 1024 * 1024
  let pending = 0
  const seen = new Set<string>()
  const onMessage = (m: ReceivedMessage) => {
    const { origin, body } = parseRelayed(m.text, m.from.name)
    if (origin === bot.peer.name) return
    const key = `${origin}\u0000${body}`
    if (seen.has(key)) return
    seen.add(key)
    if (seen.size > memory) {
      // Sets iterate in insertion order: the first key is the oldest.
      const oldest = seen.values().next().value
      if (oldest !== undefined) seen.delete(oldest)
    }
    const except = [m.from.id]
    const connected = bot.peer.peers().connected
    for (const p of connected) if (p.name === origin) except.push(p.id)
    const via = origin === m.from.name ? '' : ` (via ${m.from.name})`
    const text = `${RELAY_MARKER}${origin}${via}: ${body}`
    const recipients = connected.filter((p) => !except.includes(p.id)).length
    const bytes = Buffer.byteLength(text) * recipients
    if (recipients === 0 || (pending > 0 && pending + bytes > maxPending) || !budget.take(recipients)) return
    pending += bytes
    void bot.broadcast(text, { except }).finally(() => {
      pending -= bytes
    })
  }
  bot.peer.on('message', onMessage)
  return {
    done: Promise.resolve(),
    stop: () => bot.peer.off('message', onMessage),
  }
}
