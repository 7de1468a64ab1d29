import type { ReceivedMessage } from '@parley/core'
import type { Bot } from '../bot.js'
import type { BehaviourHandle } from './types.js'

/** Options of {@link relay}. */
export interface RelayOptions {
  /** How many (origin, text) pairs to remember for loop protection. @default 1024 */
  memory?: number
}

/** Starts every relayed text; what follows is `<origin name>: <original text>`. */
export const RELAY_MARKER = '↪ '

/** Splits a received text into its origin and body: a relayed text names its origin, a plain one is from the sender. */
export function parseRelayed(text: string, sender: string): { origin: string; body: string } {
  if (text.startsWith(RELAY_MARKER)) {
    const rest = text.slice(RELAY_MARKER.length)
    const colon = rest.indexOf(': ')
    if (colon > 0) return { origin: rest.slice(0, colon), body: rest.slice(colon + 2) }
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
 */
export function relay(bot: Bot, options: RelayOptions = {}): BehaviourHandle {
  const memory = Math.max(1, options.memory ?? 1024)
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
    for (const p of bot.peer.peers().connected) if (p.name === origin) except.push(p.id)
    void bot.broadcast(`${RELAY_MARKER}${origin}: ${body}`, { except })
  }
  bot.peer.on('message', onMessage)
  return {
    done: Promise.resolve(),
    stop: () => bot.peer.off('message', onMessage),
  }
}
