import { describe, expect, it } from 'vitest'
import { DhtOptionsError, dhtOptions, parseBootstrap } from '../src/index.js'

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
