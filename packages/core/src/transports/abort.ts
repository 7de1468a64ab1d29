import { TransportError } from '../errors.js'

/** The error every transport raises when a call's signal aborts. */
export function abortedError(signal: AbortSignal, what: string): TransportError {
  return new TransportError('ABORTED', `${what} aborted`, { cause: signal.reason })
}

/**
 * Waits for `closed`, unless `signal` aborts first: then the connection is aborted and the wait
 * rejects with `ABORTED` (the graceful close gave up, the immediate one takes over).
 */
export function closedOrAborted(
  closed: Promise<void>,
  signal: AbortSignal | undefined,
  abort: (err: Error) => void,
) {
  if (signal === undefined) return closed
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      const err = abortedError(signal, 'close')
      abort(err)
      reject(err)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    closed.then(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    })
  })
}
