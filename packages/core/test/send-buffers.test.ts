import { once } from 'node:events'
import { createServer } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { isSendBuffer, releaseSendBuffer, SEND_BUFFER_BYTES, takeSendBuffer } from '../src/send-buffers.js'
import { tcpTransport } from '../src/transports/tcp.js'

describe('send buffers', () => {
  it('lends memory once: a stale or second release, or releasing foreign bytes, does nothing', () => {
    const a = takeSendBuffer(1000)
    expect(a.length).toBe(1000)
    expect(isSendBuffer(a)).toBe(true)
    expect(isSendBuffer(a.subarray(10, 20))).toBe(false) // only the object handed out counts
    expect(isSendBuffer(Buffer.alloc(1000))).toBe(false)
    releaseSendBuffer(a)
    expect(isSendBuffer(a)).toBe(false)
    const b = takeSendBuffer(10) // may reuse a's memory
    releaseSendBuffer(a) // stale: must not give back the memory b now holds
    expect(isSendBuffer(b)).toBe(true)
    const c = takeSendBuffer(10)
    expect(c.buffer).not.toBe(b.buffer)
    releaseSendBuffer(Buffer.alloc(10))
    expect(() => takeSendBuffer(SEND_BUFFER_BYTES + 1)).toThrow(RangeError)
  })

  it('the TCP transport writes a lent buffer intact, then gives its memory back', async () => {
    const size = 60_000
    const { conn, received } = await tcpSink(size)
    const bytes = takeSendBuffer(size)
    for (let i = 0; i < size; i++) bytes[i] = i % 251
    const expected = Buffer.from(bytes)
    conn.send(bytes)
    expect((await received).equals(expected)).toBe(true)
    // The write callback ran before the bytes could reach the other end.
    expect(isSendBuffer(bytes)).toBe(false)
  })

  it('a burst of sends reuses the memory of records the kernel took at once, and all arrive intact', async () => {
    const size = 50_000
    const count = 8
    const { conn, received } = await tcpSink(size * count)
    const memory = new Set<ArrayBufferLike>()
    for (let i = 0; i < count; i++) {
      const bytes = takeSendBuffer(size)
      bytes.fill(i + 1)
      memory.add(bytes.buffer)
      conn.send(bytes) // the socket's buffers are empty: each is written before send() returns
    }
    expect(memory.size).toBeLessThan(count)
    const all = await received
    for (let i = 0; i < count; i++) {
      expect(all.subarray(i * size, (i + 1) * size).every((b) => b === i + 1)).toBe(true)
    }
  })
})

/** A TCP connection to a local server; `received` resolves with the first `size` bytes the server got. */
async function tcpSink(size: number) {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onTestFinished(() => {
    server.close()
  })
  const received = new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = []
    let length = 0
    server.on('connection', (socket) => {
      socket.on('error', () => {})
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        length += chunk.length
        if (length >= size) resolve(Buffer.concat(chunks))
      })
    })
  })
  const { port } = server.address() as { port: number }
  const conn = await tcpTransport().dial(`127.0.0.1:${port}`)
  onTestFinished(() => conn.abort())
  return { conn, received }
}
