import { randomBytes } from 'node:crypto'
import {
  type AbortOptions,
  type Connection,
  type Listener,
  type Transport,
  TransportError,
  type TransportErrorCode,
} from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { seededRandom } from './chaos.js'

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

const HOST_PORT_LISTENER = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):[1-9][0-9]*$/

/** Upper bound on every wait in the suite. Nothing sleeps: each wait ends on an event or fails here. */
const WAIT_MS = 10_000
const KiB = 1024
const MiB = 1024 * KiB

/** Syntactically wrong for any `host:port` transport; they must fail before touching the network. */
const INVALID_ADDRESSES = [
  '',
  'no-port',
  ':4000',
  'host:',
  'host:65536',
  'host:-1',
  'host:40x0',
  'host:4000:1',
  '::1:4000',
  '[::1:4000',
  '[::1]',
  '[not-v6]:4000',
  'a b:4000',
  'host/path:4000',
  `${'a'.repeat(300)}:4000`,
]

/**
 * Registers the transport compliance suite: every {@link Transport} must pass it unchanged.
 *
 * ```ts
 * describeTransport('tcp', () => ({ transport: tcpTransport(), listenAddress: '127.0.0.1:0', unusedAddress }))
 * ```
 *
 * Each test calls `fixture` once, and aborts every connection and closes every listener it made when
 * it finishes (pass or fail), then calls `teardown`.
 */
export function describeTransport(
  name: string,
  fixture: () => Promise<TransportFixture> | TransportFixture,
): void {
  const setup = async (): Promise<Harness> => {
    const made = await fixture()
    const harness = new Harness(made)
    onTestFinished(() => harness.cleanup())
    return harness
  }

  describe(`transport compliance: ${name}`, () => {
    it('connects, and both ends report matching addresses', async () => {
      const h = await setup()
      // The listener writes inside its callback: the dialer attaches its listeners only after dial()
      // resolves, and must still see the bytes (no event in the tick a connection is handed out).
      const server = await h.listen((end) => end.conn.send(bytes('hello')))
      expect(server.address).toMatch(h.listenerAddress)

      const client = await h.dial(server.address)
      const accepted = await server.next()
      expect(client.conn.remoteAddress).toBe(server.address)
      expect(accepted.conn.localAddress).toBe(server.address)
      expect(accepted.conn.remoteAddress).toBe(client.conn.localAddress)
      expect(client.conn.status).toBe('open')
      expect(accepted.conn.status).toBe('open')

      await client.got.received(5)
      expect(text(client.got.bytes())).toBe('hello')
    })

    it('carries bytes intact and in order, both directions at once (echo)', async () => {
      const h = await setup()
      const server = await h.listen((end) => echo(end.conn))
      const client = await h.dial(server.address)
      const data = randomBytes(512 * KiB)
      // Seeded, so a failing chunk pattern replays the same way.
      const random = seededRandom(42).next

      // The echo flows back while we are still sending, so both directions are busy together.
      await sendAll(client.conn, data, () => 1 + Math.floor(random() * 16 * KiB))
      await client.got.received(data.length)
      expect(client.got.bytes().equals(data)).toBe(true)
      expect(client.got.nonBytes).toBe(0)
      const accepted = await server.next()
      expect(accepted.got.bytes().equals(data)).toBe(true)
    })

    it('send() takes its bytes as they are: views of one buffer arrive in order, each once', async () => {
      // send() owns what it is given (no copy), so a caller that never modifies a buffer may send
      // views of it, overlapping or repeated.
      const h = await setup()
      const server = await h.listen()
      const client = await h.dial(server.address)
      const accepted = await server.next()
      const source = Uint8Array.from({ length: 104 }, (_, i) => i)
      for (let i = 0; i < 100; i++) client.conn.send(source.subarray(i, i + 4))
      await accepted.got.received(400)
      const got = accepted.got.bytes()
      for (let i = 0; i < 100; i++)
        expect([...got.subarray(i * 4, i * 4 + 4)]).toEqual([i, i + 1, i + 2, i + 3])
    })

    it('half-closes: the other side gets end and can still send back', async () => {
      const h = await setup()
      const server = await h.listen()
      const client = await h.dial(server.address)
      const accepted = await server.next()

      client.conn.send(bytes('ping'))
      const closing = client.conn.close()
      expect(client.conn.status).toBe('closing')
      expectCodeSync(() => client.conn.send(bytes('late')), 'CONNECTION_CLOSED')

      await accepted.got.ended()
      expect(text(accepted.got.bytes())).toBe('ping')
      expect(accepted.conn.status).toBe('open')
      accepted.conn.send(bytes('pong'))
      await client.got.received(4)
      expect(text(client.got.bytes())).toBe('pong')
      expect(client.conn.status).toBe('closing')

      await accepted.conn.close()
      await closing
      await Promise.all([client.got.closed(), accepted.got.closed()])
      for (const end of [client, accepted]) {
        expect(end.conn.status).toBe('closed')
        expect(end.got.closeErrors).toEqual([undefined])
      }
      expect(client.got.isEnded).toBe(true)
    })

    it('moves 8 MiB in 64 KiB sends, honouring send() and drain', async () => {
      const h = await setup()
      const server = await h.listen()
      const client = await h.dial(server.address)
      const data = randomBytes(8 * MiB)

      await sendAll(client.conn, data, () => 64 * KiB)
      const closing = client.conn.close()
      const accepted = await server.next()
      await accepted.got.ended()
      expect(accepted.got.length).toBe(data.length)
      expect(accepted.got.bytes().equals(data)).toBe(true)
      await accepted.conn.close()
      await closing
    })

    it('a paused receiver pushes back on the sender; resume drains it and nothing is lost', async () => {
      const h = await setup()
      const server = await h.listen((end) => end.conn.pause())
      const client = await h.dial(server.address)
      const accepted = await server.next()
      const chunk = randomBytes(64 * KiB)

      // Bounded: far beyond any sane socket buffer (kernel buffers included), yet finite.
      let sent = 0
      let full = false
      for (let i = 0; i < 2048 && !full; i++) {
        full = !client.conn.send(chunk)
        sent += chunk.length
        // Give the transport a turn to move what it can, so only a paused receiver explains `full`.
        if (!full) await macrotask()
      }
      expect(full).toBe(true)
      expect(accepted.got.length).toBe(0)

      const drained = nextEvent(client.conn, 'drain')
      accepted.conn.resume()
      await drained
      await accepted.got.received(sent)
      const got = accepted.got.bytes()
      expect(got.length).toBe(sent)
      for (let offset = 0; offset < sent; offset += chunk.length) {
        expect(got.subarray(offset, offset + chunk.length).equals(chunk)).toBe(true)
      }
    })

    it('dialing an address nobody listens on fails fast with CONNECTION_REFUSED', async () => {
      const h = await setup()
      await expectCode(
        h.transport.dial(h.unusedAddress, { signal: AbortSignal.timeout(5_000) }),
        'CONNECTION_REFUSED',
      )
    })

    it('rejects malformed addresses with INVALID_ADDRESS, for dial and listen', async () => {
      const h = await setup()
      for (const address of [...INVALID_ADDRESSES, ...h.invalidAddresses]) {
        await expectCode(h.transport.dial(address), 'INVALID_ADDRESS', address)
        await expectCode(h.listenRaw(address), 'INVALID_ADDRESS', address)
      }
      // Port 0 is fine to listen on, but there is nothing to dial there.
      if (h.undialableAddress !== null)
        await expectCode(h.transport.dial(h.undialableAddress), 'INVALID_ADDRESS')
    })

    it('listening on a taken address fails with ADDRESS_IN_USE', async () => {
      const h = await setup()
      const server = await h.listen()
      await expectCode(h.listenRaw(server.address), 'ADDRESS_IN_USE')
    })

    it('abort() closes at once; the remote sees close with CONNECTION_RESET and no end', async () => {
      const h = await setup()
      const server = await h.listen((end) => end.conn.send(bytes('hi')))
      const client = await h.dial(server.address)
      const accepted = await server.next()
      await client.got.received(2) // nothing left in flight: see the next test for why that matters

      const reason = new Error('boom')
      client.conn.abort(reason)
      expect(client.conn.status).toBe('closed')
      expectCodeSync(() => client.conn.send(bytes('x')), 'CONNECTION_CLOSED')
      await client.got.closed()
      expect(client.got.closeErrors).toEqual([reason])

      await accepted.got.closed()
      expect(accepted.conn.status).toBe('closed')
      expectTransportError(accepted.got.closeErrors[0], 'CONNECTION_RESET')
      expect(accepted.got.isEnded).toBe(false)
    })

    it('abort() with bytes in flight still closes the remote', async () => {
      const h = await setup()
      // Linux reports a reset that finds unread bytes as a plain end of stream (EOF after the data),
      // so over TCP the remote may see 'end' and then close cleanly instead of CONNECTION_RESET.
      const server = await h.listen((end) => echo(end.conn))
      const client = await h.dial(server.address)
      const accepted = await server.next()
      client.conn.send(randomBytes(256 * KiB))
      client.conn.abort()

      await accepted.got.closed()
      const [err] = accepted.got.closeErrors
      if (err !== undefined) expectTransportError(err, 'CONNECTION_RESET')
      expect(accepted.got.closeErrors).toHaveLength(1)
    })

    it('close() aborts the connection when its signal fires', async () => {
      const h = await setup()
      const server = await h.listen()
      const client = await h.dial(server.address)
      const accepted = await server.next()

      const controller = new AbortController()
      const closing = client.conn.close({ signal: controller.signal })
      await accepted.got.ended() // our FIN is through; the remote never answers with its own
      controller.abort()
      await expectCode(closing, 'ABORTED')
      expect(client.conn.status).toBe('closed')
      await client.got.closed()
      expectTransportError(client.got.closeErrors[0], 'ABORTED')

      // TCP only notices a reset on a half-closed socket when it next writes.
      if (accepted.conn.status === 'open') accepted.conn.send(bytes('anyone?'))
      await accepted.got.closed()
      expectTransportError(accepted.got.closeErrors[0], 'CONNECTION_RESET')
    })

    it('a closed listener refuses new dials and keeps its connections', async () => {
      const h = await setup()
      const server = await h.listen((end) => echo(end.conn))
      const client = await h.dial(server.address)
      await server.next()

      await server.listener.close()
      await server.listener.close() // idempotent
      await expectCode(
        h.transport.dial(server.address, { signal: AbortSignal.timeout(5_000) }),
        'CONNECTION_REFUSED',
      )

      client.conn.send(bytes('still here'))
      await client.got.received(10)
      expect(text(client.got.bytes())).toBe('still here')
    })

    it('serves 100 concurrent connections', async () => {
      const h = await setup()
      const server = await h.listen((end) => echo(end.conn))
      const count = 100
      const clients = await Promise.all(Array.from({ length: count }, () => h.dial(server.address)))
      expect(new Set(clients.map((c) => c.conn.localAddress)).size).toBe(count)

      const payloads = clients.map((_, i) => bytes(`connection ${i};`.repeat(64)))
      for (const [i, c] of clients.entries()) c.conn.send(payloads[i]!)
      await Promise.all(clients.map((c, i) => c.got.received(payloads[i]!.length)))
      for (const [i, c] of clients.entries()) expect(c.got.bytes().equals(payloads[i]!)).toBe(true)
      expect(server.acceptedCount).toBe(count)
    })

    it("emits 'close' exactly once, whatever is called after", async () => {
      const h = await setup()
      const server = await h.listen((end) => echo(end.conn))

      const clean = await h.dial(server.address)
      await clean.conn.close()
      const cleanAccepted = await server.next()
      await cleanAccepted.got.closed()
      clean.conn.abort(new Error('too late'))
      await clean.conn.close()
      cleanAccepted.conn.abort()

      const aborted = await h.dial(server.address)
      const abortedAccepted = await server.next()
      const first = new Error('first')
      aborted.conn.abort(first)
      aborted.conn.abort(new Error('second'))
      await aborted.conn.close()
      await abortedAccepted.got.closed()

      await settle()
      expect(clean.got.closeErrors).toEqual([undefined])
      expect(cleanAccepted.got.closeErrors).toEqual([undefined])
      expect(aborted.got.closeErrors).toEqual([first])
      expect(abortedAccepted.got.closeErrors).toHaveLength(1)
    })

    it('dial and listen with an already aborted signal fail with ABORTED', async () => {
      const h = await setup()
      const server = await h.listen()
      await expectCode(h.transport.dial(server.address, { signal: AbortSignal.abort() }), 'ABORTED')
      await expectCode(h.listenRaw(h.listenAddress, { signal: AbortSignal.abort() }), 'ABORTED')
      expect(server.acceptedCount).toBe(0)
    })
  })
}

/** One end of a connection, with everything it delivered recorded from the moment it was handed out. */
interface End {
  conn: Connection
  got: Recorder
}

interface Server {
  listener: Listener
  address: string
  /** Connections accepted so far. */
  readonly acceptedCount: number
  /** The next accepted connection, in order. */
  next(): Promise<End>
}

class Harness {
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
class Recorder {
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
function waitUntil<T>(what: string, attempt: (check: () => void) => T | undefined): Promise<T> {
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
function nextEvent(conn: Connection, event: 'drain' | 'end'): Promise<void> {
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
async function sendAll(conn: Connection, data: Uint8Array, size: () => number): Promise<void> {
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
function echo(conn: Connection): void {
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

async function expectCode(
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

function expectCodeSync(fn: () => unknown, code: TransportErrorCode): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expectTransportError(thrown, code)
}

function expectTransportError(err: unknown, code: TransportErrorCode, context?: string): void {
  expect(err, context).toBeInstanceOf(TransportError)
  expect((err as TransportError).code, context).toBe(code)
}

function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** A few event-loop turns: long enough for a stray second 'close' to show, without a timer. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await macrotask()
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

function text(data: Uint8Array): string {
  return new TextDecoder().decode(data)
}
