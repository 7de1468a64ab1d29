import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { TransportError, type TransportErrorCode } from '../src/errors.js'
import type { Connection } from '../src/transport.js'
import { type MemoryNetwork, memoryNetwork, memoryTransport } from '../src/transports/memory.js'

const encode = (text: string) => new TextEncoder().encode(text)
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** Everything a connection emits, recorded from the moment it is handed out. */
function record(conn: Connection) {
  const log = { chunks: [] as Uint8Array[], ended: false, closes: [] as Array<Error | undefined>, drains: 0 }
  conn.on('data', (chunk) => log.chunks.push(chunk))
  conn.on('end', () => {
    log.ended = true
  })
  conn.on('close', (err) => log.closes.push(err))
  conn.on('drain', () => log.drains++)
  return Object.assign(log, { text: () => decode(Buffer.concat(log.chunks)) })
}

/** `from` dials a listener on host `to`; both ends recorded, both aborted when the test ends. */
async function connect(network: MemoryNetwork, from: string, to: string) {
  let accepted: Connection | undefined
  const listener = await memoryTransport(network, { host: to }).listen(`${to}:0`, (conn) => {
    accepted = conn
  })
  const client = await memoryTransport(network, { host: from }).dial(listener.address)
  const server = accepted!
  onTestFinished(() => {
    client.abort()
    server.abort()
  })
  return { listener, client, server, c: record(client), s: record(server) }
}

async function expectCode(promise: Promise<unknown>, code: TransportErrorCode): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TransportError)
  expect((err as TransportError).code).toBe(code)
}

/** Every pending delivery, under fake timers (an immediate is a timer due now). */
const flush = () => vi.advanceTimersByTimeAsync(0)

afterEach(() => {
  vi.useRealTimers()
})

describe('memory transport: addresses', () => {
  it('hands out free ports per host, and refuses a taken address', async () => {
    const network = memoryNetwork()
    const alice = memoryTransport(network)
    const first = await alice.listen('alice:0', () => {})
    const second = await alice.listen('alice:0', () => {})
    const bob = await alice.listen('bob:0', () => {})
    expect([first.address, second.address, bob.address]).toEqual(['alice:1', 'alice:2', 'bob:1'])
    await alice.listen('alice:7', () => {})
    await expectCode(
      alice.listen('alice:7', () => {}),
      'ADDRESS_IN_USE',
    )
    await expectCode(
      alice.listen('alice:1', () => {}),
      'ADDRESS_IN_USE',
    )
    await first.close()
    await alice.listen('alice:1', () => {}) // free again once closed
  })

  it('keeps networks apart: the same address in two networks is no clash', async () => {
    const one = memoryNetwork()
    const two = memoryNetwork()
    await memoryTransport(one).listen('mem:5', () => {})
    await memoryTransport(two).listen('mem:5', () => {})
    await expectCode(memoryTransport(two).dial('mem:6'), 'CONNECTION_REFUSED')
  })

  it('dials from init.host, else its first listening host, else an anonymous one', async () => {
    const network = memoryNetwork()
    await memoryTransport(network).listen('server:1', () => {})
    const anonymous = await memoryTransport(network).dial('server:1')
    expect(anonymous.localAddress).toMatch(/^anonymous-1:\d+$/)
    const listening = memoryTransport(network)
    await listening.listen('alice:0', () => {})
    expect((await listening.dial('server:1')).localAddress).toMatch(/^alice:\d+$/)
    expect((await memoryTransport(network, { host: 'carol' }).dial('server:1')).localAddress).toMatch(
      /^carol:\d+$/,
    )
    expect(() => memoryTransport(network, { host: 'not a host' })).toThrow(TransportError)
  })

  it('refuses a dial asynchronously, and never runs the listener inside dial()', async () => {
    const network = memoryNetwork()
    const transport = memoryTransport(network)
    let settled = false
    const refused = expectCode(transport.dial('nobody:1'), 'CONNECTION_REFUSED').finally(() => {
      settled = true
    })
    expect(settled).toBe(false)
    await refused

    let insideDial = false
    let ranInsideDial: boolean | undefined
    await transport.listen('mem:1', () => {
      ranInsideDial = insideDial
    })
    insideDial = true
    const dialing = transport.dial('mem:1')
    insideDial = false
    ;(await dialing).abort()
    expect(ranInsideDial).toBe(false)
  })

  it('rejects bad options', () => {
    const network = memoryNetwork()
    expect(() => network.setChunking(0)).toThrow(RangeError)
    expect(() => network.setChunking(1.5)).toThrow(RangeError)
    expect(() => network.setDelay(-1)).toThrow(RangeError)
    expect(() => network.setDelay(Number.NaN)).toThrow(RangeError)
    expect(() => memoryNetwork({ highWaterMark: 0 })).toThrow(RangeError)
    expect(() => memoryTransport({ connections: 0 } as unknown as MemoryNetwork)).toThrow(TypeError)
  })
})

describe('memory transport: delivery', () => {
  it('delivers asynchronously, in order, and hands over the sent bytes themselves (no copy)', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork()
    const { client, s } = await connect(network, 'alice', 'bob')
    const one = encode('one')
    client.send(one)
    client.send(encode('two'))
    expect(s.chunks).toHaveLength(0) // nothing inside send()
    await flush()
    expect(s.text()).toBe('onetwo')
    // send() owns its bytes (Connection.send), so the receiver gets that very memory.
    expect(s.chunks[0]).toBe(one)
  })

  it('setChunking(n) splits every chunk into pieces of at most n bytes', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork()
    const { client, s } = await connect(network, 'alice', 'bob')
    network.setChunking(3)
    client.send(encode('0123456789'))
    await flush()
    expect(s.chunks.map((c) => c.length)).toEqual([3, 3, 3, 1])
    network.setChunking(1)
    client.send(encode('abc'))
    await flush()
    expect(s.chunks.slice(4).map(decode)).toEqual(['a', 'b', 'c'])
    network.setChunking(undefined)
    client.send(encode('whole'))
    await flush()
    expect(decode(s.chunks.at(-1)!)).toBe('whole')
  })

  it('setDelay(ms) holds dials and bytes back until the clock moves, keeping order', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork({ delay: 100 })
    const transport = memoryTransport(network)
    let accepted: Connection | undefined
    await transport.listen('bob:1', (conn) => {
      accepted = conn
    })
    let client: Connection | undefined
    const dialing = transport.dial('bob:1').then((conn) => {
      client = conn
    })
    await vi.advanceTimersByTimeAsync(99)
    expect(client).toBeUndefined()
    await vi.advanceTimersByTimeAsync(1)
    await dialing
    onTestFinished(() => client!.abort())
    const s = record(accepted!)

    client!.send(encode('slow '))
    network.setDelay(0)
    client!.send(encode('fast')) // must not overtake
    await vi.advanceTimersByTimeAsync(99)
    expect(s.chunks).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(s.text()).toBe('slow fast')
  })

  it('a dial waiting out the delay can be aborted', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork({ delay: 1_000 })
    const transport = memoryTransport(network)
    await transport.listen('bob:1', () => {})
    const controller = new AbortController()
    const dialing = expectCode(transport.dial('bob:1', { signal: controller.signal }), 'ABORTED')
    await vi.advanceTimersByTimeAsync(10)
    controller.abort()
    await dialing
    expect(network.connections).toBe(0)
  })

  it('send() returns false at the high-water mark, and drain follows delivery', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork({ highWaterMark: 8 })
    const { client, c, s } = await connect(network, 'alice', 'bob')
    expect(client.send(encode('1234'))).toBe(true)
    expect(client.send(encode('5678'))).toBe(false)
    await flush()
    expect(s.text()).toBe('12345678')
    expect(c.drains).toBe(1)
  })

  it('a paused receiver gets nothing, not even end, and the sender sees backpressure', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork({ highWaterMark: 8 })
    const { client, server, c, s } = await connect(network, 'alice', 'bob')
    server.pause()
    expect(client.send(encode('1234'))).toBe(true)
    await flush()
    expect(client.send(encode('5678'))).toBe(false)
    const closing = client.close()
    await flush()
    expect(s.chunks).toHaveLength(0)
    expect(s.ended).toBe(false)

    server.resume()
    await flush()
    expect(s.text()).toBe('12345678')
    expect(s.ended).toBe(true)
    expect(c.drains).toBe(0) // closing: nobody can send any more
    const serverClosing = server.close()
    await flush()
    await Promise.all([serverClosing, closing])
    expect(network.connections).toBe(0)
  })
})

describe('memory transport: faults', () => {
  it('partition drops bytes silently both ways and refuses dials; heal restores', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork()
    const { client, server, listener, c, s } = await connect(network, 'alice', 'bob')
    network.partition('bob', 'alice') // order does not matter
    client.send(encode('lost'))
    server.send(encode('lost too'))
    await flush()
    expect(s.chunks).toHaveLength(0)
    expect(c.chunks).toHaveLength(0)
    expect([client.status, server.status]).toEqual(['open', 'open'])
    expect(c.closes).toHaveLength(0)

    await expectCode(memoryTransport(network, { host: 'alice' }).dial(listener.address), 'CONNECTION_REFUSED')
    const carol = await memoryTransport(network, { host: 'carol' }).dial(listener.address)
    carol.abort()

    network.heal()
    client.send(encode('back'))
    server.send(encode('me too'))
    await flush()
    expect(s.text()).toBe('back')
    expect(c.text()).toBe('me too')
  })

  it('heal(a, b) ends one partition and leaves the others', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork()
    const ab = await connect(network, 'a', 'b')
    const ac = await connect(network, 'a', 'c')
    network.partition('a', 'b')
    network.partition('a', 'c')
    network.heal('b', 'a')
    ab.client.send(encode('to b'))
    ac.client.send(encode('to c'))
    await flush()
    expect(ab.s.text()).toBe('to b')
    expect(ac.s.chunks).toHaveLength(0)
  })

  it('a reset is lost across a partition, like on a cut cable', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork()
    const { client, server, s } = await connect(network, 'alice', 'bob')
    network.partition('alice', 'bob')
    client.abort()
    await flush()
    expect(server.status).toBe('open')
    expect(s.closes).toHaveLength(0)
    expect(network.connections).toBe(1) // the half that never heard
    server.abort()
    expect(network.connections).toBe(0)
  })

  it('dropConnections(host) resets every connection of that host at both ends, without end', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork()
    const outgoing = await connect(network, 'alice', 'bob')
    const incoming = await connect(network, 'dan', 'alice')
    const unrelated = await connect(network, 'carol', 'bob')
    outgoing.client.send(encode('queued, then lost'))
    expect(network.connections).toBe(3)

    network.dropConnections('alice')
    for (const { client, server } of [outgoing, incoming]) {
      expect([client.status, server.status]).toEqual(['closed', 'closed'])
    }
    await flush()
    for (const log of [outgoing.c, outgoing.s, incoming.c, incoming.s]) {
      expect(log.ended).toBe(false)
      expect(log.closes).toHaveLength(1)
      expect(log.closes[0]).toBeInstanceOf(TransportError)
      expect((log.closes[0] as TransportError).code).toBe('CONNECTION_RESET')
    }
    expect(outgoing.s.chunks).toHaveLength(0)
    expect(network.connections).toBe(1)

    unrelated.client.send(encode('fine'))
    await flush()
    expect(unrelated.s.text()).toBe('fine')
    // The listener survives: alice can be dialed again.
    const again = await memoryTransport(network, { host: 'dan' }).dial(incoming.listener.address)
    again.abort()
  })

  it('abort() reaches the remote as CONNECTION_RESET and drops what was queued', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork()
    const { client, c, s } = await connect(network, 'alice', 'bob')
    client.send(encode('never delivered'))
    client.abort()
    expect(client.status).toBe('closed')
    await flush()
    expect(s.chunks).toHaveLength(0)
    expect(s.ended).toBe(false)
    expect((s.closes[0] as TransportError).code).toBe('CONNECTION_RESET')
    expect(c.closes).toEqual([undefined])
    expect(network.connections).toBe(0)
  })

  it('a clean close on both sides leaves no connection behind', async () => {
    vi.useFakeTimers()
    const network = memoryNetwork()
    const { client, server, c, s } = await connect(network, 'alice', 'bob')
    const closing = Promise.all([client.close(), server.close()])
    await flush()
    await closing
    expect(c.closes).toEqual([undefined])
    expect(s.closes).toEqual([undefined])
    expect(network.connections).toBe(0)
    await expectCode(
      Promise.resolve().then(() => client.send(encode('x'))),
      'CONNECTION_CLOSED',
    )
  })
})
