import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { DhtOptionsError, dhtOptions, parseBootstrap, topicConnector } from '../src/index.js'

describe('DHT command-line options', () => {
  it('no DHT flag, no DHT', () => {
    expect(dhtOptions({})).toBeUndefined()
    expect(dhtOptions({ dht: false, bootstrap: [], join: [] })).toBeUndefined()
  })

  it('--dht alone is the public DHT', () => {
    expect(dhtOptions({ dht: true })).toEqual({ bootstrap: 'public', join: [] })
  })

  it('--bootstrap (repeatable) is a DHT of those nodes, never the public one', () => {
    const options = dhtOptions({
      bootstrap: ['10.0.0.1:49737', '[::1]:5000', 'boot.example:1'],
      join: ['room'],
    })
    expect(options).toEqual({
      bootstrap: [
        { host: '10.0.0.1', port: 49737 },
        { host: '::1', port: 5000 },
        { host: 'boot.example', port: 1 },
      ],
      join: ['room'],
    })
    expect(dhtOptions({ dht: true, bootstrap: ['10.0.0.1:49737'] })?.bootstrap).not.toBe('public')
  })

  it('--join without a DHT is refused in one sentence', () => {
    expect(() => dhtOptions({ join: ['room'] })).toThrow(DhtOptionsError)
    expect(() => dhtOptions({ join: ['room'] })).toThrow(
      '--join needs the DHT: add --dht (the public DHT) or --bootstrap host:port',
    )
  })

  it('--relay takes a peer id and needs the DHT', () => {
    const relay = 'ab'.repeat(32)
    expect(dhtOptions({ dht: true, relay })).toEqual({ bootstrap: 'public', join: [], relay })
    expect(() => dhtOptions({ dht: true, relay: 'relay.example:1' })).toThrow('--relay takes a peer id')
    expect(() => dhtOptions({ relay })).toThrow('--relay needs the DHT')
  })

  it('a repeated --join topic is joined once; limits are bounded', () => {
    expect(dhtOptions({ dht: true, join: ['a', 'a', 'b'] })?.join).toEqual(['a', 'b'])
    const many = Array.from({ length: 9 }, (_, i) => `t${i}`)
    expect(() => dhtOptions({ dht: true, join: many })).toThrow(/at most 8/)
    const nodes = Array.from({ length: 17 }, (_, i) => `10.0.0.${i}:1`)
    expect(() => dhtOptions({ bootstrap: nodes })).toThrow(/at most 16/)
    expect(() => dhtOptions({ dht: true, join: [''] })).toThrow(DhtOptionsError)
  })

  it.each(['', 'host', 'host:', ':1', 'host:0', 'host:65536', '::1:5000', 'a b:1', 'host:1x'])(
    '--bootstrap %j is refused',
    (value) => {
      expect(() => parseBootstrap(value)).toThrow(DhtOptionsError)
    },
  )
})

describe('the topic connector', () => {
  /** A peer whose dials succeed except to `refusing`; `connected` ids are skipped. */
  function fakes(connected: string[] = [], refusing: string[] = []) {
    const freed: string[] = []
    const dialed: string[] = []
    const peer = {
      id: '00'.repeat(32),
      status: 'running' as const,
      peers: () => ({ connected: connected.map((id) => ({ id })), known: [] }),
      connect: async (address: string) => {
        dialed.push(address)
        if (refusing.includes(address)) throw new Error('refused')
        return {}
      },
    }
    const topic = { forget: (a: string) => freed.push(a), failed: (a: string) => freed.push(a) }
    // biome-ignore lint/suspicious/noExplicitAny: a fake peer with only what the connector reads
    const connect = topicConnector(peer as any, topic, () => {})
    return { connect, freed, dialed }
  }
  const address = (n: number) => `dht:${n.toString(16).padStart(64, '1')}`

  it('frees a topic place once its dial is over, whether it connected, failed or was connected already', async () => {
    const { connect, freed, dialed } = fakes([address(2).slice(4)], [address(3)])
    for (const n of [1, 2, 3]) connect(address(n))
    await new Promise((resolve) => setImmediate(resolve))
    expect(dialed.sort()).toEqual([address(1), address(3)])
    // Peers that connected and then leave must not keep places: 64 of them would end discovery for good.
    expect(freed.sort()).toEqual([address(1), address(2), address(3)])
    // Reported again by the next round, a peer dialed a moment ago is not dialed again.
    connect(address(1))
    await new Promise((resolve) => setImmediate(resolve))
    expect(dialed.filter((a) => a === address(1))).toHaveLength(1)
  })

  it('tries a failed peer again after 20 s (a random punch fails now and then), a connected one only after a minute', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => void vi.useRealTimers())
    const { connect, dialed } = fakes([], [address(3)])
    const round = async () => {
      for (const n of [1, 3]) connect(address(n))
      await new Promise((resolve) => setImmediate(resolve))
    }
    const dials = (n: number) => dialed.filter((a) => a === address(n)).length
    await round()
    vi.setSystemTime(Date.now() + 19_000)
    await round()
    expect([dials(1), dials(3)]).toEqual([1, 1])
    vi.setSystemTime(Date.now() + 2_000)
    await round()
    expect([dials(1), dials(3)]).toEqual([1, 2])
    vi.setSystemTime(Date.now() + 40_000)
    await round()
    expect(dials(1)).toBe(2)
  })
})
