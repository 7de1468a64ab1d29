import { once } from 'node:events'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { createLegacyBridge } from '../src/legacy/bridge.js'
import type { LegacyBridge, LegacyBridgeInit } from '../src/legacy/bridge-types.js'
import { type LegacyAwareTransportInit, legacyAwareTransport } from '../src/legacy/transport.js'
import { createPeer, type Peer } from '../src/peer.js'
import type { PeerError } from '../src/peer-errors.js'
import type { Connection } from '../src/transport.js'
import { type MemoryNetwork, memoryNetwork, memoryTransport } from '../src/transports/memory.js'

// The bridge and the sniffing listener over the memory transport, which can split chunks down to
// single bytes. Legacy peers here are raw memory connections; the TCP tests against a fake
// original peer live in packages/testing.

const ALICE = '10.0.0.1'

interface Setup {
  network: MemoryNetwork
  peer: Peer
  bridge: LegacyBridge
  /** Errors the Parley peer reported. */
  errors: PeerError[]
  /** Dials the Parley peer from `host` with a raw connection. */
  raw(host: string): Promise<Connection>
  /** Writes a legacy string from `host` on a fresh connection and ends it. */
  legacy(host: string, text: string | Uint8Array): Promise<Connection>
}

async function setup(
  options: {
    bridge?: Partial<LegacyBridgeInit>
    sniff?: LegacyAwareTransportInit
    network?: MemoryNetwork
  } = {},
): Promise<Setup> {
  const network = options.network ?? memoryNetwork()
  const transport = memoryTransport(network, { host: ALICE })
  let peer: Peer | undefined
  const bridge = createLegacyBridge({
    transport,
    name: 'alice',
    ownAddress: () => peer?.addresses[0],
    ...options.bridge,
  })
  peer = createPeer({
    transport: legacyAwareTransport(transport, bridge, options.sniff),
    name: 'alice',
    listen: `${ALICE}:0`,
  })
  const errors: PeerError[] = []
  peer.on('error', (e) => errors.push(e))
  await peer.start()
  onTestFinished(async () => {
    await bridge.close()
    await peer.stop()
  })
  const raw = async (host: string) => {
    const conn = await memoryTransport(network, { host }).dial(peer.addresses[0]!)
    conn.on('end', () => void conn.close().catch(() => {}))
    onTestFinished(() => conn.abort())
    return conn
  }
  const legacy = async (host: string, text: string | Uint8Array) => {
    const conn = await raw(host)
    conn.send(typeof text === 'string' ? new TextEncoder().encode(text) : text)
    void conn.close().catch(() => {})
    return conn
  }
  return { network, peer, bridge, errors, raw, legacy }
}

/** A legacy listener on the memory network: records each connection's bytes as one string. */
async function legacyListener(network: MemoryNetwork, host: string) {
  const strings: string[] = []
  const waiting: Array<() => void> = []
  const listener = await memoryTransport(network, { host }).listen(`${host}:5001`, (conn) => {
    const chunks: Uint8Array[] = []
    conn.on('data', (c) => chunks.push(c))
    conn.on('end', () => {
      strings.push(Buffer.concat(chunks).toString('utf8'))
      for (const w of waiting.splice(0)) w()
      void conn.close()
    })
  })
  onTestFinished(() => listener.close())
  return {
    address: listener.address,
    strings,
    async next(n: number) {
      const deadline = AbortSignal.timeout(2_000)
      while (strings.length < n) {
        if (deadline.aborted) throw new Error(`only ${strings.length} legacy strings arrived`)
        await new Promise<void>((resolve) => {
          waiting.push(resolve)
          deadline.addEventListener('abort', () => resolve(), { once: true })
        })
      }
      return strings
    },
  }
}

function event<T>(emitter: NodeJS.EventEmitter, name: string): Promise<T> {
  return once(emitter, name, { signal: AbortSignal.timeout(2_000) }).then((args) => args[0] as T)
}

afterEach(() => {
  vi.useRealTimers()
})

describe('receiving legacy messages', () => {
  it('a legacy string fed one byte at a time is one message, marked legacy and unverified', async () => {
    const s = await setup()
    s.network.setChunking(1)
    const joined = event(s.bridge, 'peer:joined')
    const got = event(s.bridge, 'message')
    await s.legacy('10.0.0.2', '10.0.0.2:5001 bob hello there, alice')
    expect(await got).toMatchObject({
      from: { address: '10.0.0.2:5001', name: 'bob' },
      text: 'hello there, alice',
      legacy: true,
      verified: false,
    })
    expect(await joined).toMatchObject({ address: '10.0.0.2:5001', name: 'bob', legacy: true })
    expect(s.bridge.peers()).toEqual([
      { address: '10.0.0.2:5001', name: 'bob', lastSeen: expect.any(Number), legacy: true },
    ])
    // The Parley peer never saw it.
    expect(s.errors).toEqual([])
    expect(s.peer.peers().connected).toEqual([])
  })

  it('connect adds the sender, exit removes it, exit from a stranger changes nothing', async () => {
    const s = await setup()
    const joined = event(s.bridge, 'peer:joined')
    await s.legacy('10.0.0.2', '10.0.0.2:5001 bob CONNECT')
    expect(await joined).toMatchObject({ address: '10.0.0.2:5001', name: 'bob' })
    const left = event(s.bridge, 'peer:left')
    await s.legacy('10.0.0.3', '10.0.0.3:5001 carol exit')
    await s.legacy('10.0.0.2', '10.0.0.2:5001 bob Exit')
    expect(await left).toMatchObject({ peer: { address: '10.0.0.2:5001', name: 'bob' }, reason: 'exit' })
    expect(s.bridge.peers()).toEqual([])
  })

  it('drops malformed input with a reason, and the Parley peer keeps serving Parley peers', async () => {
    const s = await setup()
    const drops: string[] = []
    s.bridge.on('dropped', (d) => drops.push(d.code))
    await s.legacy('10.0.0.2', 'hello')
    await s.legacy('10.0.0.2', 'localhost:5001 bob hi')
    await s.legacy('10.0.0.2', Uint8Array.from([0x31, 0x3a, 0x31, 0x20, 0x62, 0x20, 0xff]))
    await s.legacy('10.0.0.2', `10.0.0.2:5001 bob ${'x'.repeat(2000)}`)
    await vi.waitFor(() => expect(drops).toHaveLength(4), { timeout: 2_000 })
    expect(drops.sort()).toEqual(['INVALID_ADDRESS', 'INVALID_UTF8', 'MALFORMED', 'TOO_LONG'])
    expect(s.bridge.peers()).toEqual([])

    const bob = createPeer({
      transport: memoryTransport(s.network, { host: 'bob' }),
      name: 'bob',
      listen: 'bob:0',
    })
    onTestFinished(() => bob.stop())
    await bob.start()
    const info = await bob.connect(s.peer.addresses[0]!)
    expect(info.id).toBe(s.peer.id)
    const got = event<{ text: string }>(s.peer, 'message')
    await bob.send(s.peer.id, 'still here?')
    expect((await got).text).toBe('still here?')
  })

  it('a message claiming our own address is dropped', async () => {
    const s = await setup()
    const dropped = event<{ code: string }>(s.bridge, 'dropped')
    await s.legacy('10.0.0.2', `${s.peer.addresses[0]} mallory hi`)
    expect((await dropped).code).toBe('SELF')
  })

  it('a sender that keeps the connection open gets its message taken after the quiet time, then is reset', async () => {
    const s = await setup({ bridge: { quietTime: 50, lingerTime: 50 } })
    const conn = await s.raw('10.0.0.2')
    const got = event(s.bridge, 'message')
    const closed = once(conn, 'close')
    conn.send(new TextEncoder().encode('10.0.0.2:5001 bob no FIN from me'))
    expect(await got).toMatchObject({ text: 'no FIN from me' })
    await closed
  })

  it('a sender trickling bytes is cut off at readTimeout', async () => {
    const s = await setup({ bridge: { quietTime: 1_000, readTimeout: 100 } })
    const conn = await s.raw('10.0.0.2')
    const dropped = event<{ code: string }>(s.bridge, 'dropped')
    conn.send(new TextEncoder().encode('10.0.0.2:5001 bob slow'))
    expect((await dropped).code).toBe('TIMEOUT')
  })

  it('bounds legacy connections at once', async () => {
    const s = await setup({ bridge: { maxConnections: 1, quietTime: 5_000 } })
    const first = await s.raw('10.0.0.2')
    first.send(new TextEncoder().encode('10.0.0.2:5001 bob'))
    const dropped = event<{ code: string }>(s.bridge, 'dropped')
    const second = await s.raw('10.0.0.3')
    second.send(new TextEncoder().encode('10.0.0.3:5001 carol hi'))
    expect((await dropped).code).toBe('TOO_MANY_CONNECTIONS')
  })

  it('a closed bridge drops legacy connections without events', async () => {
    const s = await setup()
    await s.bridge.close()
    const events: string[] = []
    s.bridge.on('message', () => events.push('message'))
    s.bridge.on('dropped', () => events.push('dropped'))
    const conn = await s.legacy('10.0.0.2', '10.0.0.2:5001 bob hi')
    await once(conn, 'close')
    expect(events).toEqual([])
  })
})

describe('sniffing the first bytes', () => {
  it('Parley connections pass through the decorated listener untouched, even one byte at a time', async () => {
    const s = await setup()
    const drops: unknown[] = []
    s.bridge.on('dropped', (d) => drops.push(d))
    s.network.setChunking(1)
    const bob = createPeer({
      transport: memoryTransport(s.network, { host: 'bob' }),
      name: 'bob',
      listen: 'bob:0',
    })
    onTestFinished(() => bob.stop())
    await bob.start()
    await bob.connect(s.peer.addresses[0]!)
    const atAlice = event<{ text: string }>(s.peer, 'message')
    await bob.send(s.peer.id, 'over the sniffer')
    expect((await atAlice).text).toBe('over the sniffer')
    const atBob = event<{ text: string }>(bob, 'message')
    await s.peer.send(bob.id, 'and back')
    expect((await atBob).text).toBe('and back')
    expect(drops).toEqual([])
  })

  it('a connection that stays silent is reset after sniffTimeout, before the peer ever sees it', async () => {
    vi.useFakeTimers()
    const s = await setup({ sniff: { sniffTimeout: 1_000 } })
    const dropped = event<{ code: string }>(s.bridge, 'dropped')
    const conn = await s.raw('10.0.0.2')
    const closed = once(conn, 'close')
    await vi.advanceTimersByTimeAsync(999)
    expect(conn.status).toBe('open')
    await vi.advanceTimersByTimeAsync(10)
    expect((await dropped).code).toBe('SILENT')
    await closed
    expect(s.errors).toEqual([])
  })

  it('a connection closed before its first byte is dropped as EMPTY', async () => {
    const s = await setup()
    const dropped = event<{ code: string }>(s.bridge, 'dropped')
    const conn = await s.raw('10.0.0.2')
    void conn.close()
    expect((await dropped).code).toBe('EMPTY')
  })

  it('bounds the connections waiting for their first byte, and resets them when the listener closes', async () => {
    const s = await setup({ sniff: { maxPending: 1 } })
    const silent = await s.raw('10.0.0.2')
    const dropped = event<{ code: string }>(s.bridge, 'dropped')
    const extra = await s.raw('10.0.0.3')
    expect((await dropped).code).toBe('TOO_MANY_CONNECTIONS')
    await once(extra, 'close')
    const closed = once(silent, 'close')
    await s.peer.stop()
    await closed
  })

  it('bytes that are neither Parley nor legacy go to the peer, whose handshake refuses them', async () => {
    const s = await setup()
    const refused = event<PeerError>(s.peer, 'error')
    const conn = await s.raw('10.0.0.2')
    conn.send(Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0x05])) // a TLS record header
    expect((await refused).code).toBe('HANDSHAKE_FAILED')
    await once(conn, 'close')
  })

  it('refuses a bridge it did not make', () => {
    const transport = memoryTransport(memoryNetwork())
    expect(() => legacyAwareTransport(transport, {} as LegacyBridge)).toThrow(TypeError)
  })
})

describe('sending legacy messages', () => {
  it('dials, writes "<own ip:port> <name> <text>", closes; by address or by name', async () => {
    const s = await setup()
    const bob = await legacyListener(s.network, '10.0.0.2')
    await s.bridge.send(bob.address, 'hi bob')
    await s.legacy('10.0.0.2', `${bob.address} bob hello`)
    await vi.waitFor(() => expect(s.bridge.find('bob')).toBeDefined())
    await s.bridge.send('bob', 'by name')
    const own = s.peer.addresses[0]
    expect(await bob.next(2)).toEqual([`${own} alice hi bob`, `${own} alice by name`])
  })

  it('connectAll sends connect and exitAll sends exit to every known legacy peer, reporting each', async () => {
    const s = await setup({ bridge: { sendTimeout: 500 } })
    const bob = await legacyListener(s.network, '10.0.0.2')
    s.bridge.addPeer(bob.address)
    s.bridge.addPeer('10.0.0.9:5001') // nobody listens there
    const connects = await s.bridge.connectAll()
    expect(connects).toEqual([
      { address: bob.address, ok: true },
      { address: '10.0.0.9:5001', ok: false, error: expect.objectContaining({ code: 'UNREACHABLE' }) },
    ])
    const exits = await s.bridge.exitAll()
    expect(exits.map((o) => o.ok)).toEqual([true, false])
    const own = s.peer.addresses[0]
    expect(await bob.next(2)).toEqual([`${own} alice connect`, `${own} alice exit`])
  })

  it('refuses with a typed error rather than splitting or misleading', async () => {
    const s = await setup()
    const bob = await legacyListener(s.network, '10.0.0.2')
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'sent',
        (e: { code: string }) => e.code,
      )
    expect(await code(s.bridge.send(bob.address, 'x'.repeat(1024)))).toBe('MESSAGE_TOO_LONG')
    expect(await code(s.bridge.send(bob.address, 'Exit'))).toBe('INVALID_TEXT')
    expect(await code(s.bridge.send(bob.address, ''))).toBe('INVALID_TEXT')
    expect(await code(s.bridge.send('nobody', 'hi'))).toBe('UNKNOWN_PEER')
    expect(await code(s.bridge.send('10.0.0.9:5001', 'hi'))).toBe('UNREACHABLE')
    expect(bob.strings).toEqual([])
    await s.bridge.close()
    expect(await code(s.bridge.send(bob.address, 'hi'))).toBe('STOPPED')
    expect(() => s.bridge.addPeer(bob.address)).toThrow(expect.objectContaining({ code: 'STOPPED' }))
  })

  it('refuses to announce an address nobody can dial back', async () => {
    const network = memoryNetwork()
    const bob = await legacyListener(network, '10.0.0.2')
    const bridge = createLegacyBridge({
      transport: memoryTransport(network),
      name: 'alice',
      ownAddress: () => '0.0.0.0:4000',
    })
    await expect(bridge.send(bob.address, 'hi')).rejects.toMatchObject({ code: 'INVALID_ADDRESS' })
    expect(() =>
      createLegacyBridge({ transport: memoryTransport(network), name: 'a b', ownAddress: () => undefined }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_NAME' }))
  })
})

describe('our legacy name', () => {
  it('may be a function, read on every send (e.g. the peer name core picked) and checked then', async () => {
    const network = memoryNetwork()
    const bob = await legacyListener(network, '10.0.0.2')
    let name = 'alice'
    const bridge = createLegacyBridge({
      transport: memoryTransport(network),
      name: () => name,
      ownAddress: () => '10.0.0.1:4000',
    })
    await bridge.send(bob.address, 'one')
    name = 'alice2'
    await bridge.send(bob.address, 'two')
    expect(await bob.next(2)).toEqual(['10.0.0.1:4000 alice one', '10.0.0.1:4000 alice2 two'])
    name = 'not valid'
    await expect(bridge.send(bob.address, 'three')).rejects.toMatchObject({ code: 'INVALID_NAME' })
  })
})

describe('the legacy peer list', () => {
  it('is bounded: the peer heard from least recently is forgotten', async () => {
    let now = 1_000
    const s = await setup({ bridge: { maxPeers: 2, now: () => now++ } })
    const left = event<{ peer: { address: string }; reason: string }>(s.bridge, 'peer:left')
    s.bridge.addPeer('10.0.0.5:1')
    const joined = event(s.bridge, 'peer:joined')
    await s.legacy('10.0.0.2', '10.0.0.2:5001 bob connect')
    await joined
    s.bridge.addPeer('10.0.0.6:1')
    expect(await left).toEqual({
      peer: expect.objectContaining({ address: '10.0.0.5:1' }),
      reason: 'evicted',
    })
    expect(s.bridge.peers().map((p) => p.address)).toEqual(['10.0.0.2:5001', '10.0.0.6:1'])
  })

  it('adds by address (host names too), finds by address or name, removes', async () => {
    const s = await setup()
    expect(s.bridge.addPeer('LocalHost:5001')).toEqual({
      address: 'localhost:5001',
      name: undefined,
      lastSeen: undefined,
      legacy: true,
    })
    expect(() => s.bridge.addPeer('not an address')).toThrow(
      expect.objectContaining({ code: 'INVALID_ADDRESS' }),
    )
    expect(s.bridge.find('localhost:5001')?.address).toBe('localhost:5001')
    expect(s.bridge.removePeer('localhost:5001')).toBe(true)
    expect(s.bridge.peers()).toEqual([])
  })
})
