import type { Bot } from '../bot.js'

/** A running behaviour. */
export interface BehaviourHandle {
  /**
   * Resolves when the behaviour will start no more work of its own, with its sends settled. Reactive
   * behaviours (echo, greeter, relay) act only in answer to events, so theirs resolves at once; chatter's
   * resolves after its last message settled (or after `stop()`).
   */
  readonly done: Promise<void>
  /** Stops reacting and cancels timers. Sends already made still settle. Idempotent. */
  stop(): void
}

/** A behaviour: attaches to a bot and acts on its peer's events. */
export type Behaviour<O> = (bot: Bot, options?: O) => BehaviourHandle

/** Swallows a rejected send: the bot already counted it as failed and emitted `failed`. */
export function ignore(_: unknown): void {}
