import {
  type AbortOptions,
  type Connection,
  type Listener,
  type Transport,
  TransportError,
  type TransportErrorCode,
} from '@parley/core'
import { expect } from 'vitest'

/** What {@link describeTransport} needs from a transport under test. Made fresh for every test. */
export interface TransportFixture {
  transport: Transport
  /** An address to listen on, with port 0 (`127.0.0.1:0`, `mem:0`); tests listen on it several times. */
  listenAddress: string
  /** An address nothing listens on: dialing it must fail with `CONNECTION_REFUSED`. */
  unusedAddress: string
  /** Runs after the test, once its connections are aborted and its listeners closed. */
  teardown?: () => Promise<void> | void
  /**
   * What a bound listener's address looks like.
   * @default `host:port` with a real port (`127.0.0.1:4000`, `[::1]:4000`, `mem:3`)
   */
  listenerAddress?: RegExp
  /** Malformed addresses in this transport's own syntax, refused like the `host:port` ones. */
  invalidAddresses?: readonly string[]
  /**
   * An address that can be listened on but not dialed: dialing it fails with `INVALID_ADDRESS`.
   * `null` for a transport that has none (a `dht:` key is dialable wherever it is listenable).
   * @default listenAddress (port 0)
   */
  undialableAddress?: string | null
}

// The compliance suite's harness: it records what each end delivers from the moment it is handed
// out, waits on events (never sleeps), and cleans up every connection and listener a test made.
// Internal to the testing package (not exported from its index).

const HOST_PORT_LISTENER = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):[1-9][0-9]*$/

/** Upper bound on every wait in the suite. Nothing sleeps: each wait ends on an event or fails here. */
const WAIT_MS = 10_000
export const KiB = 1024
export const MiB = 1024 * KiB

/** One end of a connection, with everything it delivered recorded from the moment it was handed out. */
export interface End {
  conn: Connection
  got: Recorder
}

export interface Server {
  listener: Listener
  address: string
  /** Connections accepted so far. */
  readonly acceptedCount: number
  /** The next accepted connection, in order. */
  next(): Promise<End>
}

export class Harness {
  readonly transport: Transport
  readonly listenAddress: string
  readonly unusedAddress: string
  readonly listenerAddress: RegExp
  readonly invalidAddresses: readonly string[]
  readonly undialableAddress: string | null
  readonly #fixture: TransportFixture
  readonly #connections = new Set<Connection>()
  readonly #listeners = new Set<Listener>()

  constructor(fixture: TransportFixture) {
    this.#fixture = fixture
    this.transport = fixture.transport
    this.listenAddress = fixture.listenAddress
    this.unusedAddress = fixture.unusedAddress
    this.listenerAddress = fixture.listenerAddress ?? HOST_PORT_LISTENER
    this.invalidAddresses = fixture.invalidAddresses ?? []
    this.undialableAddress =
      fixture.undialableAddress === undefined ? fixture.listenAddress : fixture.undialableAddress
  }

  async listen(onConnection: (end: End) => void = () => {}): Promise<Server> {
    const accepted: End[] = []
    let taken = 0
    const waiters: Array<() => void> = []
    const listener = await this.transport.listen(this.listenAddress, (conn) => {
      const end = this.#track(conn)
      accepted.push(end)
      onConnection(end)
      for (const wake of waiters.splice(0)) wake()
    })
    this.#listeners.add(listener)
    return {
      listener,
      address: listener.address,
      get acceptedCount() {
        return accepted.length
      },
      next: () => {
        const index = taken++
        return waitUntil(`accepted connection #${index + 1}`, (check) => {
          const end = accepted[index]
          if (end !== undefined) return end
          waiters.push(check)
          return undefined
        })
      },
    }
  }

  /** listen() for tests that expect it to fail; closes the listener if it does not. */
  async listenRaw(address: string, options?: AbortOptions): Promise<Listener> {
    const listener = await this.transport.listen(address, (conn) => this.#track(conn), options)
    this.#listeners.add(listener)
    return listener
  }

  async dial(address: string, options?: AbortOptions): Promise<End> {
    return this.#track(await this.transport.dial(address, options))
  }

  async cleanup(): Promise<void> {
    for (const conn of this.#connections) conn.abort()
    await Promise.all([...this.#listeners].map((listener) => listener.close()))
    await this.#fixture.teardown?.()
  }

  #track(conn: Connection): End {
    this.#connections.add(conn)
    return { conn, got: new Recorder(conn) }
  }
}

/** Records what a connection emits and lets a test wait for a condition on it. */
export class Recorder {
  length = 0
  /** `data` payloads that were not Uint8Arrays (must stay 0). */
  nonBytes = 0
  isEnded = false
  closeErrors: Array<Error | undefined> = []
  #buffer = Buffer.alloc(4 * KiB)
  readonly #checks = new Set<() => void>()

  constructor(conn: Connection) {
    conn.on('data', (chunk) => {
      if (!(chunk instanceof Uint8Array)) this.nonBytes++
      this.#append(chunk)
      this.#wake()
    })
    conn.on('end', () => {
      this.isEnded = true
      this.#wake()
    })
    conn.on('close', (err) => {
      this.closeErrors.push(err)
      this.#wake()
    })
  }

  bytes(): Buffer {
    return this.#buffer.subarray(0, this.length)
  }

  received(count: number): Promise<void> {
    return this.#until(`${count} bytes`, () => this.length >= count)
  }

  ended(): Promise<void> {
    return this.#until("'end'", () => this.isEnded)
  }

  closed(): Promise<void> {
    return this.#until("'close'", () => this.closeErrors.length > 0, false)
  }

  async #until(what: string, done: () => boolean, failOnClose = true): Promise<void> {
    await waitUntil(what, (check) => {
      if (done()) return true
      if (failOnClose && this.closeErrors.length > 0) {
        throw new Error(
          `closed (${this.closeErrors[0]?.message ?? 'cleanly'}) before ${what}; ${this.#state()}`,
        )
      }
      this.#checks.add(check)
      return undefined
    })
  }

  #state(): string {
    return `got ${this.length} bytes, ended=${this.isEnded}, closed=${this.closeErrors.length}`
  }

  #append(chunk: Uint8Array): void {
    if (this.length + chunk.length > this.#buffer.length) {
      const grown = Buffer.alloc(Math.max(this.#buffer.length * 2, this.length + chunk.length))
      this.#buffer.copy(grown, 0, 0, this.length)
      this.#buffer = grown
    }
    this.#buffer.set(chunk, this.length)
    this.length += chunk.length
  }

  #wake(): void {
    if (this.#checks.size === 0) return
    const checks = [...this.#checks]
    this.#checks.clear()
    for (const check of checks) check()
  }
}

/**
 * Polls `attempt` now and whenever it is woken through the `check` callback it registered,
 * until it returns a value (or throws); rejects after `WAIT_MS`.
 */
export function waitUntil<T>(what: string, attempt: (check: () => void) => T | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const signal = AbortSignal.timeout(WAIT_MS)
    let settled = false
    const finish = (fn: () => void) => {
      settled = true
      signal.removeEventListener('abort', onTimeout)
      fn()
    }
    const onTimeout = () => {
      if (!settled) finish(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)))
    }
    const check = () => {
      if (settled) return
      try {
        const value = attempt(check)
        if (value !== undefined) finish(() => resolve(value))
      } catch (err) {
        finish(() => reject(err))
      }
    }
    signal.addEventListener('abort', onTimeout, { once: true })
    check()
  })
}

/** Resolves on the connection's next `event`; rejects if it closes first or after `WAIT_MS`. */
export function nextEvent(conn: Connection, event: 'drain' | 'end'): Promise<void> {
  return new Promise((resolve, reject) => {
    const signal = AbortSignal.timeout(WAIT_MS)
    const done = () => {
      conn.off(event, onEvent)
      conn.off('close', onClose)
      signal.removeEventListener('abort', onTimeout)
    }
    const onEvent = () => {
      done()
      resolve()
    }
    const onClose = (err?: Error) => {
      done()
      reject(new Error(`closed before '${event}'`, { cause: err }))
    }
    const onTimeout = () => {
      done()
      reject(new Error(`timed out after ${WAIT_MS} ms waiting for '${event}'`))
    }
    conn.on(event, onEvent)
    conn.on('close', onClose)
    signal.addEventListener('abort', onTimeout, { once: true })
  })
}

/** Sends `data` in pieces of `size()` bytes, waiting for 'drain' whenever send() says so. */
export async function sendAll(conn: Connection, data: Uint8Array, size: () => number): Promise<void> {
  let offset = 0
  // Bounded: every turn sends at least one byte.
  for (let turn = 0; turn < data.length && offset < data.length; turn++) {
    const end = Math.min(data.length, offset + Math.max(1, size()))
    const more = conn.send(data.subarray(offset, end))
    offset = end
    if (!more && offset < data.length) await nextEvent(conn, 'drain')
  }
}

/** Sends back whatever arrives, pausing while the way back is full; ends when the other side ends. */
export function echo(conn: Connection): void {
  let waiting = false
  conn.on('data', (chunk) => {
    if (conn.status !== 'open') return
    if (!conn.send(chunk) && !waiting) {
      waiting = true
      conn.pause()
      conn.once('drain', () => {
        waiting = false
        conn.resume()
      })
    }
  })
  conn.on('end', () => {
    if (conn.status === 'open') conn.close().catch(() => {})
  })
}

export async function expectCode(
  promise: Promise<unknown>,
  code: TransportErrorCode,
  context?: string,
): Promise<void> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  )
  if ('value' in outcome) {
    const value = outcome.value as Partial<Connection & Listener> | undefined
    value?.abort?.()
    await value?.close?.()
    expect.fail(
      `expected ${code}${context === undefined ? '' : ` for ${JSON.stringify(context)}`}, but it succeeded`,
    )
  }
  expectTransportError(outcome.error, code, context)
}

export function expectCodeSync(fn: () => unknown, code: TransportErrorCode): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expectTransportError(thrown, code)
}

export function expectTransportError(err: unknown, code: TransportErrorCode, context?: string): void {
  expect(err, context).toBeInstanceOf(TransportError)
  expect((err as TransportError).code, context).toBe(code)
}

export function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** A few event-loop turns: long enough for a stray second 'close' to show, without a timer. */
export async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await macrotask()
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data)
}
