import type { Bot } from '../bot.js'
import { BotError } from '../errors.js'
import { render } from '../template.js'
import { type BehaviourHandle, ignore } from './types.js'

/** Options of {@link chatter}. */
export interface ChatterOptions {
  /** Time between messages, in ms; the first goes out after one interval. @default 1_000 */
  interval?: number
  /** Messages to send before stopping (at least 1). @default 10 */
  count?: number
  /** Peer to send to (id, name or address). @default every connected peer (broadcast) */
  to?: string
  /** The text; `{{n}}` is the message number from 1, `{{name}}` this bot's name. @default 'chatter {{n}} from {{name}}' */
  text?: string
}

/** Most messages one chatter may send: the loop must stay bounded even when asked for "forever". */
export const MAX_CHATTER_COUNT = 1_000_000

/**
 * Sends a message every `interval` ms, `count` times, to one peer or to all. Uses the global timers, so
 * `vi.useFakeTimers()` drives it. `done` resolves after the last send settled.
 *
 * @throws BotError `USAGE` for a bad interval, count or text template.
 */
export function chatter(bot: Bot, options: ChatterOptions = {}): BehaviourHandle {
  const interval = options.interval ?? 1_000
  const count = options.count ?? 10
  const template = options.text ?? 'chatter {{n}} from {{name}}'
  if (!Number.isInteger(interval) || interval < 1) {
    throw new BotError('USAGE', 'the chatter interval must be a whole number of milliseconds, at least 1')
  }
  if (!Number.isInteger(count) || count < 1 || count > MAX_CHATTER_COUNT) {
    throw new BotError('USAGE', `the chatter count must be a whole number from 1 to ${MAX_CHATTER_COUNT}`)
  }
  const textOf = (n: number) => {
    try {
      return render(template, { n: String(n), name: bot.peer.name })
    } catch (err) {
      throw new BotError(
        'USAGE',
        `the chatter text uses {{${(err as Error).message}}}; only {{n}} and {{name}} exist`,
      )
    }
  }
  textOf(0)

  let sentCount = 0
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const inflight: Promise<unknown>[] = []
  let finish: () => void = () => {}
  const finished = new Promise<void>((resolve) => {
    finish = resolve
  })

  const tick = () => {
    timer = undefined
    if (stopped) return
    sentCount++
    const text = textOf(sentCount)
    if (bot.peer.status === 'running') {
      inflight.push(options.to === undefined ? bot.broadcast(text) : bot.send(options.to, text).catch(ignore))
    }
    if (sentCount < count) timer = setTimeout(tick, interval)
    else finish()
  }
  timer = setTimeout(tick, interval)

  return {
    done: finished.then(() => Promise.allSettled(inflight)).then(() => undefined),
    stop() {
      if (stopped) return
      stopped = true
      clearTimeout(timer)
      finish()
    },
  }
}
