/** Sending to legacy peers: one dial per message, and a bounded pool to send one to every peer. */
import type { Connection, Transport } from '../transport.js'
import type { LegacySendOptions, LegacySendOutcome } from './bridge-types.js'
import { LegacyError } from './errors.js'

/**
 * One legacy message: dial, write, close. The close waits (up to `lingerTime`) for the receiver
 * to close too, so the bytes are flushed before anything is reset; its failure is not ours to
 * report, because the legacy protocol never confirms delivery anyway.
 */
export async function deliverLegacyMessage(
  transport: Transport,
  address: string,
  bytes: Uint8Array,
  options: LegacySendOptions,
  sendTimeout: number,
  lingerTime: number,
): Promise<void> {
  const timeout = options.timeout ?? sendTimeout
  const deadline = timer(timeout)
  const signal =
    options.signal === undefined ? deadline.signal : AbortSignal.any([options.signal, deadline.signal])
  let conn: Connection
  try {
    conn = await transport.dial(address, { signal })
  } catch (cause) {
    deadline.clear()
    if (options.signal?.aborted)
      throw new LegacyError('ABORTED', `sending to ${address} was aborted`, { cause })
    if (deadline.signal.aborted) {
      throw new LegacyError('TIMEOUT', `${address} did not answer within ${timeout} ms`, { cause })
    }
    throw new LegacyError(
      'UNREACHABLE',
      `could not reach the legacy peer ${address}: ${(cause as Error).message}`,
      {
        cause,
      },
    )
  }
  deadline.clear()
  try {
    conn.send(bytes)
  } catch (cause) {
    conn.abort()
    throw new LegacyError(
      'UNREACHABLE',
      `the connection to ${address} closed before the message was written`,
      {
        cause,
      },
    )
  }
  const linger = timer(lingerTime)
  try {
    await conn.close({ signal: linger.signal })
  } catch {
    // The receiver did not close in time (close() then reset the connection), or reset it itself.
  } finally {
    linger.clear()
  }
}

/** Runs `deliver` for every address, `concurrency` at a time. Never rejects: each outcome says how it went. */
export async function deliverToAll(
  addresses: string[],
  concurrency: number,
  deliver: (address: string) => Promise<void>,
): Promise<LegacySendOutcome[]> {
  const outcomes: LegacySendOutcome[] = new Array(addresses.length)
  let next = 0
  const worker = async () => {
    while (next < addresses.length) {
      const i = next++
      const address = addresses[i]!
      try {
        await deliver(address)
        outcomes[i] = { address, ok: true }
      } catch (err) {
        outcomes[i] = { address, ok: false, error: err as LegacyError }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, addresses.length) }, worker))
  return outcomes
}

/** An abort signal fired by setTimeout (so fake timers drive it), unref'd and clearable. */
function timer(ms: number): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController()
  const t = setTimeout(() => controller.abort(new Error(`timed out after ${ms} ms`)), ms)
  t.unref?.()
  return { signal: controller.signal, clear: () => clearTimeout(t) }
}
