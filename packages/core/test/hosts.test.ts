import { describe, expect, it } from 'vitest'
import { canonicalHost, hostKeyOf, netgroupOf } from '../src/util.js'

// Limits count a host once however its address is written, and an IPv6 subscriber's /64 as one host.

describe('hosts and network groups', () => {
  it('counts one IPv6 /64 as one host, whatever address in it a connection comes from', () => {
    expect(hostKeyOf('2001:db8:1:2::1')).toBe(hostKeyOf('2001:db8:1:2:ffff:ffff:ffff:ffff'))
    expect(hostKeyOf('2001:0db8:0001:0002:0:0:0:7')).toBe(hostKeyOf('2001:db8:1:2::9'))
    expect(hostKeyOf('2001:db8:1:3::1')).not.toBe(hostKeyOf('2001:db8:1:2::1'))
    expect(hostKeyOf('fe80::1%eth0')).toBe(hostKeyOf('fe80::2'))
  })

  it('keeps an IPv4 host to itself, also when it comes IPv4-mapped', () => {
    expect(hostKeyOf('::ffff:192.0.2.1')).toBe('192.0.2.1')
    expect(hostKeyOf('192.0.2.1')).not.toBe(hostKeyOf('192.0.2.2'))
    expect(hostKeyOf('mem-host')).toBe('mem-host')
  })

  it('groups IPv6 by /32 and IPv4 by /16, however the address is written', () => {
    expect(netgroupOf('2001:db8::1')).toBe(netgroupOf('2001:0db8:0:0::1'))
    expect(netgroupOf('2001:db8::1')).toBe(netgroupOf('2001:db8:ffff::1'))
    expect(netgroupOf('2001:db8::1')).not.toBe(netgroupOf('2001:db9::1'))
    expect(netgroupOf('::ffff:192.0.2.1')).toBe(netgroupOf('192.0.200.7'))
    expect(netgroupOf('192.0.2.1')).not.toBe(netgroupOf('192.1.2.1'))
  })

  it('spells a host one way', () => {
    expect(canonicalHost('2001:0db8::0001')).toBe(canonicalHost('2001:db8:0:0:0:0:0:1'))
    expect(canonicalHost('::ffff:203.0.113.7')).toBe('203.0.113.7')
    expect(canonicalHost('::ffff:cb00:7107')).toBe(canonicalHost('::ffff:203.0.113.7'))
    expect(canonicalHost('alice')).toBe('alice')
  })
})
