import { type Connection, memoryNetwork, memoryTransport } from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { dhtUpgrader } from '../src/index.js'
import { registerSession } from '../src/session.js'

/** A connection pair whose listening end never sends a byte: an open stream over a dead path. */
async function silentPair(): Promise<Connection> {
  const network = memoryNetwork()
  const listener = await memoryTransport(network, { host: 'b' }).listen('b:1', () => {})
  onTestFinished(() => listener.close())
  const conn = await memoryTransport(network, { host: 'a' }).dial('b:1')
  onTestFinished(() => conn.abort())
  registerSession(conn, {
    remotePeerId: 'b'.repeat(64),
    handshakeHash: new Uint8Array(64),
    initiator: true,
    remoteHost: '',
    remotePort: 0,
    path: 'direct',
  })
  return conn
}

describe('a DHT connection that opened but carries nothing', () => {
  it('fails on the dialing end after proofTimeout, well before the handshake limit', async () => {
    const conn = await silentPair()
    const upgrader = dhtUpgrader({ handshakeTimeout: 60_000, proofTimeout: 50 })
    const err = await upgrader.upgrade(conn, { role: 'initiator' }).catch((e: Error) => e)
    expect(err).toMatchObject({
      code: 'HANDSHAKE_TIMEOUT',
      message: 'no network proof from the remote in 50 ms',
    })
    expect(conn.status).toBe('closed')
  })
})
