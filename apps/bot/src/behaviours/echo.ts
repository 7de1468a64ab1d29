import type { ReceivedMessage } from '@parley/core'
import type { Bot } from '../bot.js'
import { BotError } from '../errors.js'
import { parseRelayed } from './relay.js'
import { type BehaviourHandle, ignore } from './types.js'

/** Options of {@link echo}. */
export interface EchoOptions {
  /** Put before the echoed text. Must not be empty. @default 'echo: ' */
  prefix?: string
}

/**
 * Replies to every message with the same text, prefixed. Messages that already start with the prefix are
 * not echoed, nor relayed texts whose body does, so two echo bots do not answer each other forever,
 * directly or through relays.
 *
 * @throws BotError `USAGE` when `prefix` is empty.
 */
export function echo(bot: Bot, options: EchoOptions = {}): BehaviourHandle {
  const prefix = options.prefix ?? 'echo: '
  if (prefix === '') throw new BotError('USAGE', 'the echo prefix must not be empty')
  const onMessage = (m: ReceivedMessage) => {
    // Nor an echo a relay passed on (`↪ bob: echo: hi`): an echo bot on each side of a relay would
    // otherwise answer each other through it, one longer text a hop, until the text limit.
    if (m.text.startsWith(prefix) || parseRelayed(m.text, m.from.name).body.startsWith(prefix)) return
    bot.send(m.from.id, `${prefix}${m.text}`).catch(ignore)
  }
  bot.peer.on('message', onMessage)
  return {
    done: Promise.resolve(),
    stop: () => bot.peer.off('message', onMessage),
  }
}
