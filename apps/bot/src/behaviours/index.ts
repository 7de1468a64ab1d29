import type { Bot } from '../bot.js'
import { chatter } from './chatter.js'
import { echo } from './echo.js'
import { greeter } from './greeter.js'
import { relay } from './relay.js'
import type { BehaviourHandle } from './types.js'

export type { ChatterOptions } from './chatter.js'
export { chatter, MAX_CHATTER_COUNT } from './chatter.js'
export type { EchoOptions } from './echo.js'
export { echo } from './echo.js'
export type { GreeterOptions } from './greeter.js'
export { greeter } from './greeter.js'
export type { RelayOptions } from './relay.js'
export { parseRelayed, RELAY_MARKER, relay } from './relay.js'
export type { Behaviour, BehaviourHandle } from './types.js'

/** The built-in behaviours, by the name the CLI takes. */
export const BEHAVIOURS = ['echo', 'greeter', 'chatter', 'relay'] as const
export type BehaviourName = (typeof BEHAVIOURS)[number]

/** Every option of every built-in behaviour; each reads only its own. */
export interface BehaviourOptions {
  /** echo */
  prefix?: string
  /** greeter, chatter */
  text?: string
  /** chatter */
  interval?: number
  /** chatter */
  count?: number
  /** chatter */
  to?: string
  /** relay */
  memory?: number
}

/** True for behaviours that only answer events (they must be attached before peers connect). */
export function isReactive(name: BehaviourName): boolean {
  return name !== 'chatter'
}

/** Type guard for user input. */
export function isBehaviourName(name: string): name is BehaviourName {
  return (BEHAVIOURS as readonly string[]).includes(name)
}

/**
 * Starts the built-in behaviour `name` on `bot`.
 * @throws BotError `USAGE` when an option is out of range.
 */
export function startBehaviour(
  name: BehaviourName,
  bot: Bot,
  options: BehaviourOptions = {},
): BehaviourHandle {
  switch (name) {
    case 'echo':
      return echo(bot, { prefix: options.prefix })
    case 'greeter':
      return greeter(bot, { text: options.text })
    case 'chatter':
      return chatter(bot, {
        interval: options.interval,
        count: options.count,
        to: options.to,
        text: options.text,
      })
    case 'relay':
      return relay(bot, { memory: options.memory })
  }
}
