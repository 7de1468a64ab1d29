import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { TransportError, type TransportErrorCode } from '../src/errors.js'
import type { Connection } from '../src/transport.js'
import { formatAddress, parseAddress } from '../src/transports/address.js'
import { tcpTransport } from '../src/transports/tcp.js'

async function expectCode(promise: Promise<unknown>, code: TransportErrorCode): Promise<TransportError> {
  const err = await promise.then(
    (value) => {
      ;(value as Partial<Connection> | undefined)?.abort?.()
      return undefined
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TransportError)
  expect((err as TransportError).code).toBe(code)
  return err as TransportError
}

/** A raw node:net server on 127.0.0.1, closed when the test ends. */
async function rawServer(
  onSocket: Parameters<typeof createServer>[1] = () => {},
): Promise<{ server: Server; address: string }> {
  const server = createServer(onSocket)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening', { signal: AbortSignal.timeout(5_000) })
  onTestFinished(() => {
    server.close()
  })
  const { port } = server.address() as { port: number }
  return { server, address: `127.0.0.1:${port}` }
}

const timeout = () => ({ signal: AbortSignal.timeout(5_000) })

afterEach(() => {
  vi.useRealTimers()
})

describe('addresses', () => {
  it.each([
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:4000', { host: '::1', port: 4000 }],
    ['[fe80::1:2]:65535', { host: 'fe80::1:2', port: 65535 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['peer-1.example.org:443', { host: 'peer-1.example.org', port: 443 }],
    ['mem:1', { host: 'mem', port: 1 }],
  ])('parses %s', (address, expected) => {
    expect(parseAddress(address)).toEqual(expected)
    expect(formatAddress(expected.host, expected.port)).toBe(address)
  })

  it.each([
    '',
    '4000',
    ':4000',
    'host:',
    'host:65536',
    'host:-1',
    'host:+1',
    'host: 1',
    'host:1e3',
    '::1:4000',
    '[::1]4000',
    '[::1]:',
    '[127.0.0.1]:4000',
    '999.1.1.1:80',
    '-host:1',
    'a..b:1',
    'ho st:1',
    `${'a'.repeat(64)}:1`,
    `${'a.'.repeat(130)}a:1`,
  ])('rejects %j with INVALID_ADDRESS', (address) => {
    expect(() => parseAddress(address)).toThrow(TransportError)
    try {
      parseAddress(address)
    } catch (err) {
      expect((err as TransportError).code).toBe('INVALID_ADDRESS')
    }
  })
})

describe('tcp transport: error mapping', () => {
  it('ECONNREFUSED becomes CONNECTION_REFUSED, with the errno error as cause', async () => {
    const { server, address } = await rawServer()
    server.close()
    await once(server, 'close')
    const err = await expectCode(tcpTransport().dial(address, timeout()), 'CONNECTION_REFUSED')
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED')
  })

  it('EADDRINUSE becomes ADDRESS_IN_USE', async () => {
    const { address } = await rawServer()
    const err = await expectCode(
      tcpTransport().listen(address, () => {}),
      'ADDRESS_IN_USE',
    )
    expect((err.cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE')
  })

  it('an address that is not ours to bind becomes INVALID_ADDRESS', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never a local address (EADDRNOTAVAIL).
    await expectCode(
      tcpTransport().listen('192.0.2.1:0', () => {}),
      'INVALID_ADDRESS',
    )
  })

  it('malformed addresses and port 0 fail before any socket is made', async () => {
    const transport = tcpTransport()
    await expectCode(transport.dial('127.0.0.1:70000'), 'INVALID_ADDRESS')
    await expectCode(transport.dial('127.0.0.1:0'), 'INVALID_ADDRESS')
    await expectCode(
      transport.listen('::1:0', () => {}),
      'INVALID_ADDRESS',
    )
  })

  it('the dial timer fails the dial with DIAL_TIMEOUT (fake timers)', async () => {
    const { address } = await rawServer()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const dialing = tcpTransport({ dialTimeout: 2_000 }).dial(address)
    // connect() has not even reached the kernel yet: it runs on a later tick.
    vi.advanceTimersByTime(2_000)
    await expectCode(dialing, 'DIAL_TIMEOUT')
  })

  it('aborting the signal during a dial fails it with ABORTED', async () => {
    const { address } = await rawServer()
    const controller = new AbortController()
    const dialing = tcpTransport().dial(address, { signal: controller.signal })
    controller.abort(new Error('changed my mind'))
    const err = await expectCode(dialing, 'ABORTED')
    expect((err.cause as Error).message).toBe('changed my mind')
  })

  it('a connection reset by the remote closes with CONNECTION_RESET', async () => {
    // Reset on the first byte: resetting at accept could beat our own connect() to it.
    const { address } = await rawServer((socket) => {
      socket.once('data', () => socket.resetAndDestroy())
    })
    const conn = await tcpTransport().dial(address, timeout())
    onTestFinished(() => conn.abort())
    conn.send(new Uint8Array([1]))
    const [err] = (await once(conn, 'close', timeout())) as [TransportError]
    expect(err).toBeInstanceOf(TransportError)
    expect(err.code).toBe('CONNECTION_RESET')
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ECONNRESET')
    expect(conn.status).toBe('closed')
  })
})

describe('tcp transport', () => {
  it('reports the real bound address when listening on a name with port 0', async () => {
    const transport = tcpTransport()
    const listener = await transport.listen('localhost:0', () => {})
    onTestFinished(() => listener.close())
    expect(listener.address).toMatch(/^(127\.0\.0\.1|\[::1\]):[1-9][0-9]*$/)
    const conn = await transport.dial(listener.address, timeout())
    conn.abort()
  })

  it('passes the socket Buffers straight through as data', async () => {
    const transport = tcpTransport()
    let accepted: Connection | undefined
    const listener = await transport.listen('127.0.0.1:0', (conn) => {
      accepted = conn
    })
    onTestFinished(() => listener.close())
    const conn = await transport.dial(listener.address, timeout())
    onTestFinished(() => conn.abort())
    const arrived = once(conn, 'data', timeout())
    await vi.waitFor(() => expect(accepted).toBeDefined())
    accepted!.send(new Uint8Array([1, 2, 3]))
    const [chunk] = (await arrived) as [Uint8Array]
    expect(Buffer.isBuffer(chunk)).toBe(true)
    accepted!.abort()
  })
})
