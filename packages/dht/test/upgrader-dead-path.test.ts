import { createHmac } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { type Connection, memoryNetwork, memoryTransport } from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { dhtUpgrader } from '../src/index.js'
import { registerSession } from '../src/session.js'

/** The dialing end of a HyperDHT session with a zero handshake hash, as the tests' connections claim. */
const dialerSession = {
  remotePeerId: 'b'.repeat(64),
  handshakeHash: new Uint8Array(64),
  initiator: true,
  remoteHost: '',
  remotePort: 0,
  path: 'direct' as const,
}

/** A connection pair whose listening end never sends a byte: an open stream over a dead path. */
async function silentPair(): Promise<Connection> {
  const network = memoryNetwork()
  const listener = await memoryTransport(network, { host: 'b' }).listen('b:1', () => {})
  onTestFinished(() => listener.close())
  const conn = await memoryTransport(network, { host: 'a' }).dial('b:1')
  onTestFinished(() => conn.abort())
  registerSession(conn, dialerSession)
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

/** A stream end we drive by hand: it can deliver several chunks in one go, as HyperDHT's stream does. */
function scriptedConnection(): Connection & EventEmitter {
  const conn = Object.assign(new EventEmitter(), {
    localAddress: 'dht:a',
    remoteAddress: 'dht:b',
    remoteHost: undefined,
    status: 'open' as const,
    send: () => true,
    close: async () => {},
    abort: () => {},
    pause: () => {},
    resume: () => {},
  })
  registerSession(conn as unknown as Connection, dialerSession)
  return conn as unknown as Connection & EventEmitter
}

describe('the bytes right behind the proof', () => {
  it('reach the upgraded connection when the stream delivers them in the same burst as the proof', async () => {
    // Seen between two peers on a topic: the listener's proof and then its WELCOME came as two chunks
    // in one go; the second was emitted before the upgraded connection listened, and was lost, so
    // the handshake hung until its limit (the "dead path" of docs/DHT.md).
    const conn = scriptedConnection()
    const upgrading = dhtUpgrader().upgrade(conn, { role: 'initiator' })
    const proof = createHmac('sha256', Buffer.alloc(0))
      .update('parley-dht/1 network proof responder')
      .update(new Uint8Array(64))
      .digest()
    conn.emit('data', proof)
    conn.emit('data', Buffer.from('WELCOME'))
    const secure = await upgrading
    const got: Buffer[] = []
    secure.on('data', (chunk) => got.push(Buffer.from(chunk)))
    await new Promise((resolve) => setImmediate(resolve))
    expect(Buffer.concat(got).toString()).toBe('WELCOME')
  })
})
