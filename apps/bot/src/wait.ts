import type { Peer, PeerEvents } from '@parley/core'
import { BotError } from './errors.js'

/** Options of {@link waitForEvent} and {@link delay}. */
export interface WaitOptions {
  signal?: AbortSignal
  /** Fail with `TIMEOUT` after this many ms (global timers, so fake timers drive it). */
  timeout?: number
  /** The `TIMEOUT` error's message, built when it fires. @default 'no <event> within <timeout> ms' */
  timeoutMessage?: () => string
}

/**
 * Resolves with the first `event` of `peer` for which `predicate` returns true, checked at every event.
 * `check` runs once right after the listener is attached, so a condition that already holds is not missed.
 *
 * @throws BotError `TIMEOUT` after `timeout` ms, `ABORTED` when `signal` aborts.
 */
export function waitForEvent<E extends keyof PeerEvents, T>(
  peer: Peer,
  event: E,
  match: (...args: PeerEvents[E]) => T | undefined,
  options: WaitOptions & { check?: () => T | undefined } = {},
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const { signal, timeout } = options
    let timer: ReturnType<typeof setTimeout> | undefined
    // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's generic listener type cannot be named here
    const listener = (...args: any[]) => {
      const found = match(...(args as PeerEvents[E]))
      if (found !== undefined) finish(() => resolve(found))
    }
    const onAbort = () => finish(() => reject(aborted(signal)))
    const finish = (settle: () => void) => {
      clearTimeout(timer)
      // biome-ignore lint/suspicious/noExplicitAny: see above
      peer.off(event, listener as any)
      signal?.removeEventListener('abort', onAbort)
      settle()
    }
    if (signal?.aborted) return reject(aborted(signal))
    // biome-ignore lint/suspicious/noExplicitAny: see above
    peer.on(event, listener as any)
    signal?.addEventListener('abort', onAbort, { once: true })
    if (timeout !== undefined) {
      timer = setTimeout(
        () =>
          finish(() => {
            const message = options.timeoutMessage?.() ?? `no ${String(event)} within ${timeout} ms`
            reject(new BotError('TIMEOUT', message))
          }),
        timeout,
      )
    }
    const already = options.check?.()
    if (already !== undefined) finish(() => resolve(already))
  })
}

/**
 * Resolves after `ms`. The timer is not `unref()`'d on purpose: a script's `wait: { ms }` may be the only
 * thing keeping the process alive (the memory transport holds no handles).
 *
 * @throws BotError `ABORTED` when `signal` aborts first.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(aborted(signal))
    const onAbort = () => {
      clearTimeout(timer)
      reject(aborted(signal))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** An AbortSignal that aborts with `TIMEOUT` after `ms`, on the global (fakeable) timers; call `clear()` when done. */
export function deadline(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new BotError('TIMEOUT', `timed out after ${ms} ms`)), ms)
  const onParent = () => controller.abort(parent?.reason)
  if (parent?.aborted) onParent()
  else parent?.addEventListener('abort', onParent, { once: true })
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer)
      parent?.removeEventListener('abort', onParent)
    },
  }
}

function aborted(signal: AbortSignal | undefined): BotError {
  const reason = signal?.reason
  if (reason instanceof BotError) return reason
  return new BotError('ABORTED', 'stopped before it finished', { cause: reason })
}
