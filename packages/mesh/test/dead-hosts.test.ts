import { describe, expect, test } from 'vitest'
import { DeadHosts } from '../src/dead-hosts.js'
import { DEAD_HOST_FAILURES, DEAD_HOST_MS, DEAD_HOSTS } from '../src/mesh-options.js'

function failTimes(dead: DeadHosts, addr: string, n: number, now = 0): void {
  for (let i = 0; i < n; i++) dead.dialed(addr, false, now)
}

describe('DeadHosts: hosts where hearsay dials keep failing', () => {
  test('a host is dead after DEAD_HOST_FAILURES failures, and not before', () => {
    const dead = new DeadHosts()
    failTimes(dead, '203.0.113.7:4000', DEAD_HOST_FAILURES - 1)
    expect(dead.has('203.0.113.7:4000', 0)).toBe(false)
    dead.dialed('203.0.113.7:4000', false, 0)
    expect(dead.has('203.0.113.7:4000', 0)).toBe(true)
  })

  test('a remote host counts as one whatever the port; loopback counts each address apart', () => {
    const dead = new DeadHosts()
    dead.dialed('203.0.113.7:4000', false, 0)
    dead.dialed('203.0.113.7:5000', false, 0)
    expect(dead.has('203.0.113.7:6000', 0)).toBe(true)
    dead.dialed('127.0.0.1:4000', false, 0)
    dead.dialed('127.0.0.1:5000', false, 0)
    expect(dead.has('127.0.0.1:4000', 0)).toBe(false)
  })

  test('a dial that reaches the peer it named clears the host', () => {
    const dead = new DeadHosts()
    failTimes(dead, '203.0.113.7:4000', DEAD_HOST_FAILURES)
    dead.dialed('203.0.113.7:4000', true, 0)
    expect(dead.has('203.0.113.7:4000', 0)).toBe(false)
    expect(dead.size).toBe(0)
  })

  test('a host is forgotten DEAD_HOST_MS after its last failure', () => {
    const dead = new DeadHosts()
    failTimes(dead, '203.0.113.7:4000', DEAD_HOST_FAILURES, 1_000)
    expect(dead.has('203.0.113.7:4000', 1_000 + DEAD_HOST_MS)).toBe(true)
    expect(dead.has('203.0.113.7:4000', 1_001 + DEAD_HOST_MS)).toBe(false)
    expect(dead.size).toBe(0)
  })

  test('at most DEAD_HOSTS hosts are remembered; the oldest is forgotten first', () => {
    const dead = new DeadHosts()
    const host = (i: number) => `10.${i >> 8}.${i & 255}.1:4000`
    for (let i = 0; i <= DEAD_HOSTS; i++) failTimes(dead, host(i), DEAD_HOST_FAILURES)
    expect(dead.size).toBe(DEAD_HOSTS)
    expect(dead.has(host(0), 0)).toBe(false)
    expect(dead.has(host(1), 0)).toBe(true)
    expect(dead.has(host(DEAD_HOSTS), 0)).toBe(true)
  })
})
