import { once } from 'node:events'
import { FrameDecoder, PROTOCOL_VERSION } from '@parley/protocol'
import { describe, expect, it, onTestFinished } from 'vitest'
import { generateIdentity } from '../src/identity.js'
import type { PeerError } from '../src/peer-errors.js'
import { plaintextUpgrader } from '../src/secure/plaintext.js'
import type { Connection } from '../src/transport.js'
import { type MemoryNetwork, memoryNetwork, memoryTransport } from '../src/transports/memory.js'
import { memoryPeer } from './fixtures/memory-peer.js'
import { decodeBody, frameFor, SERVICES } from './fixtures/wire.js'

const KiB = 1024

/** A hand-written client from its own host, welcomed by the peer at `address`. */
async function client(network: MemoryNetwork, host: string, address: string) {
  const conn = await memoryTransport(network, { host }).dial(address)
  onTestFinished(() => conn.abort())
  const decoder = new FrameDecoder()
  const types: string[] = []
  conn.on('data', (chunk) => {
    for (const body of decoder.push(chunk)) types.push(decodeBody(body).type)
  })
  conn.on('end', () => void conn.close())
  const closed = once(conn, 'close')
  conn.send(
    frameFor({
      type: 'HELLO',
      version: PROTOCOL_VERSION,
      peerId: generateIdentity().peerId,
      name: host,
      listenAddrs: [],
      capabilities: [...SERVICES],
    }),
  )
  await expect.poll(() => types).toContain('WELCOME')
  return { conn, closed }
}

/** Announces a legal 1 MiB frame and sends `bytes` of its body: the peer holds them until the rest comes. */
async function holdPartialFrame(conn: Connection, bytes: number): Promise<void> {
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(1024 * KiB - 1)
  conn.send(prefix)
  for (let sent = 0; sent < bytes; sent += 16 * KiB) {
    conn.send(Buffer.alloc(Math.min(16 * KiB, bytes - sent), 1))
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe('memory held for all peers together', () => {
  it('sessions each within their own bound cannot add up past the total: the one holding the most is cut', async () => {
    const network = memoryNetwork()
    const peer = memoryPeer(network, 'peer', {
      upgrader: plaintextUpgrader(),
      maxPeerMemory: 256 * KiB,
      maxTotalPeerMemory: 512 * KiB,
    })
    await peer.start()
    const errors: PeerError[] = []
    peer.on('error', (e) => errors.push(e))
    const address = peer.addresses[0]!
    const [a, b, c] = [
      await client(network, 'a', address),
      await client(network, 'b', address),
      await client(network, 'c', address),
    ]
    await holdPartialFrame(a.conn, 224 * KiB)
    await holdPartialFrame(b.conn, 192 * KiB)
    expect(peer.resources().heldBytes).toBeGreaterThanOrEqual(416 * KiB)
    // c's share takes the total past 512 KiB: a, holding the most, goes.
    await holdPartialFrame(c.conn, 192 * KiB)
    await a.closed
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'LIMIT_EXCEEDED',
        message: expect.stringMatching(/all peers together/),
      }),
    ])
    expect(b.conn.status).toBe('open')
    expect(c.conn.status).toBe('open')
    expect(peer.resources().heldBytes).toBeLessThanOrEqual(512 * KiB)
    // Another peer still gets in and is heard.
    const honest = memoryPeer(network, 'honest', { upgrader: plaintextUpgrader() })
    await honest.start()
    await honest.connect(address)
    await expect(honest.send(peer.id, 'still here')).resolves.toMatchObject({ peerId: peer.id })
  })
})
