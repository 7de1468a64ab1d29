import type { PeerInfo } from '@parley/core'
import type { Bot } from '../bot.js'
import { BotError } from '../errors.js'
import { render } from '../template.js'
import { type BehaviourHandle, ignore } from './types.js'

/** Options of {@link greeter}. */
export interface GreeterOptions {
  /** The welcome; `{{peer}}` is the newcomer's name, `{{name}}` this bot's. @default 'welcome, {{peer}}!' */
  text?: string
}

/**
 * Sends a welcome to every peer that connects (inbound or outbound), once per connection.
 *
 * @throws BotError `USAGE` when `text` uses a variable other than `{{peer}}` and `{{name}}`.
 */
export function greeter(bot: Bot, options: GreeterOptions = {}): BehaviourHandle {
  const text = options.text ?? 'welcome, {{peer}}!'
  const welcome = (peer: string) => {
    try {
      return render(text, { peer, name: bot.peer.name })
    } catch (err) {
      throw new BotError(
        'USAGE',
        `the greeting uses {{${(err as Error).message}}}; only {{peer}} and {{name}} exist`,
      )
    }
  }
  welcome('check')
  const onConnect = (info: PeerInfo) => {
    bot.send(info.id, welcome(info.name)).catch(ignore)
  }
  bot.peer.on('peer:connect', onConnect)
  return {
    done: Promise.resolve(),
    stop: () => bot.peer.off('peer:connect', onConnect),
  }
}
