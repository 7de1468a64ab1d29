import { randomBytes } from 'node:crypto'
import type { Transport } from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { seededRandom } from './chaos.js'
import {
  bytes,
  echo,
  expectCode,
  expectCodeSync,
  expectTransportError,
  Harness,
  KiB,
  MiB,
  macrotask,
  nextEvent,
  sendAll,
  settle,
  type TransportFixture,
  text,
} from './transport-compliance-harness.js'

export type { TransportFixture } from './transport-compliance-harness.js'

/** Syntactically wrong for any `host:port` transport; they must fail before touching the network. */
const INVALID_ADDRESSES = [
  '',
  'no-port',
  ':4000',
  'host:',
  'host:65536',
  'host:-1',
  'host:40x0',
  'host:4000:1',
  '::1:4000',
  '[::1:4000',
  '[::1]',
  '[not-v6]:4000',
  'a b:4000',
  'host/path:4000',
  `${'a'.repeat(300)}:4000`,
]

/**
 * Registers the transport compliance suite: every {@link Transport} must pass it unchanged.
 *
 * ```ts
 * describeTransport('tcp', () => ({ transport: tcpTransport(), listenAddress: '127.0.0.1:0', unusedAddress }))
 * ```
 *
 * Each test calls `fixture` once, and aborts every connection and closes every listener it made when
 * it finishes (pass or fail), then calls `teardown`.
 */
export function describeTransport(
  name: string,
  fixture: () => Promise<TransportFixture> | TransportFixture,
): void {
  const setup = async (): Promise<Harness> => {
    const made = await fixture()
    const harness = new Harness(made)
    onTestFinished(() => harness.cleanup())
    return harness
  }

  describe(`transport compliance: ${name}`, () => {
    it('connects, and both ends report matching addresses', async () => {
      const h = await setup()
      // The listener writes inside its callback: the dialer attaches its listeners only after dial()
      // resolves, and must still see the bytes (no event in the tick a connection is handed out).
      const server = await h.listen((end) => end.conn.send(bytes('hello')))
      expect(server.address).toMatch(h.listenerAddress)

      const client = await h.dial(server.address)
      const accepted = await server.next()
      expect(client.conn.remoteAddress).toBe(server.address)
      expect(accepted.conn.localAddress).toBe(server.address)
      expect(accepted.conn.remoteAddress).toBe(client.conn.localAddress)
      expect(client.conn.status).toBe('open')
      expect(accepted.conn.status).toBe('open')

      await client.got.received(5)
      expect(text(client.got.bytes())).toBe('hello')
    })

    it('carries bytes intact and in order, both directions at once (echo)', async () => {
      const h = await setup()
      const server = await h.listen((end) => echo(end.conn))
      const client = await h.dial(server.address)
      const data = randomBytes(512 * KiB)
      // Seeded, so a failing chunk pattern replays the same way.
      const random = seededRandom(42).next

      // The echo flows back while we are still sending, so both directions are busy together.
      await sendAll(client.conn, data, () => 1 + Math.floor(random() * 16 * KiB))
      await client.got.received(data.length)
      expect(client.got.bytes().equals(data)).toBe(true)
      expect(client.got.nonBytes).toBe(0)
      const accepted = await server.next()
      expect(accepted.got.bytes().equals(data)).toBe(true)
    })

    it('send() takes its bytes as they are: views of one buffer arrive in order, each once', async () => {
      // send() owns what it is given (no copy), so a caller that never modifies a buffer may send
      // views of it, overlapping or repeated.
      const h = await setup()
      const server = await h.listen()
      const client = await h.dial(server.address)
      const accepted = await server.next()
      const source = Uint8Array.from({ length: 104 }, (_, i) => i)
      for (let i = 0; i < 100; i++) client.conn.send(source.subarray(i, i + 4))
      await accepted.got.received(400)
      const got = accepted.got.bytes()
      for (let i = 0; i < 100; i++)
        expect([...got.subarray(i * 4, i * 4 + 4)]).toEqual([i, i + 1, i + 2, i + 3])
    })

    it('half-closes: the other side gets end and can still send back', async () => {
      const h = await setup()
      const server = await h.listen()
      const client = await h.dial(server.address)
      const accepted = await server.next()

      client.conn.send(bytes('ping'))
      const closing = client.conn.close()
      expect(client.conn.status).toBe('closing')
      expectCodeSync(() => client.conn.send(bytes('late')), 'CONNECTION_CLOSED')

      await accepted.got.ended()
      expect(text(accepted.got.bytes())).toBe('ping')
      expect(accepted.conn.status).toBe('open')
      accepted.conn.send(bytes('pong'))
      await client.got.received(4)
      expect(text(client.got.bytes())).toBe('pong')
      expect(client.conn.status).toBe('closing')

      await accepted.conn.close()
      await closing
      await Promise.all([client.got.closed(), accepted.got.closed()])
      for (const end of [client, accepted]) {
        expect(end.conn.status).toBe('closed')
        expect(end.got.closeErrors).toEqual([undefined])
      }
      expect(client.got.isEnded).toBe(true)
    })

    it('moves 8 MiB in 64 KiB sends, honouring send() and drain', async () => {
      const h = await setup()
      const server = await h.listen()
      const client = await h.dial(server.address)
      const data = randomBytes(8 * MiB)

      await sendAll(client.conn, data, () => 64 * KiB)
      const closing = client.conn.close()
      const accepted = await server.next()
      await accepted.got.ended()
      expect(accepted.got.length).toBe(data.length)
      expect(accepted.got.bytes().equals(data)).toBe(true)
      await accepted.conn.close()
      await closing
    })

    it('a paused receiver pushes back on the sender; resume drains it and nothing is lost', async () => {
      const h = await setup()
      const server = await h.listen((end) => end.conn.pause())
      const client = await h.dial(server.address)
      const accepted = await server.next()
      const chunk = randomBytes(64 * KiB)

      // Bounded: far beyond any sane socket buffer (kernel buffers included), yet finite.
      let sent = 0
      let full = false
      for (let i = 0; i < 2048 && !full; i++) {
        full = !client.conn.send(chunk)
        sent += chunk.length
        // Give the transport a turn to move what it can, so only a paused receiver explains `full`.
        if (!full) await macrotask()
      }
      expect(full).toBe(true)
      expect(accepted.got.length).toBe(0)

      const drained = nextEvent(client.conn, 'drain')
      accepted.conn.resume()
      await drained
      await accepted.got.received(sent)
      const got = accepted.got.bytes()
      expect(got.length).toBe(sent)
      for (let offset = 0; offset < sent; offset += chunk.length) {
        expect(got.subarray(offset, offset + chunk.length).equals(chunk)).toBe(true)
      }
    })

    it('dialing an address nobody listens on fails fast with CONNECTION_REFUSED', async () => {
      const h = await setup()
      await expectCode(
        h.transport.dial(h.unusedAddress, { signal: AbortSignal.timeout(5_000) }),
        'CONNECTION_REFUSED',
      )
    })

    it('rejects malformed addresses with INVALID_ADDRESS, for dial and listen', async () => {
      const h = await setup()
      for (const address of [...INVALID_ADDRESSES, ...h.invalidAddresses]) {
        await expectCode(h.transport.dial(address), 'INVALID_ADDRESS', address)
        await expectCode(h.listenRaw(address), 'INVALID_ADDRESS', address)
      }
      // Port 0 is fine to listen on, but there is nothing to dial there.
      if (h.undialableAddress !== null)
        await expectCode(h.transport.dial(h.undialableAddress), 'INVALID_ADDRESS')
    })

    it('listening on a taken address fails with ADDRESS_IN_USE', async () => {
      const h = await setup()
      const server = await h.listen()
      await expectCode(h.listenRaw(server.address), 'ADDRESS_IN_USE')
    })

    it('abort() closes at once; the remote sees close with CONNECTION_RESET and no end', async () => {
      const h = await setup()
      const server = await h.listen((end) => end.conn.send(bytes('hi')))
      const client = await h.dial(server.address)
      const accepted = await server.next()
      await client.got.received(2) // nothing left in flight: see the next test for why that matters

      const reason = new Error('boom')
      client.conn.abort(reason)
      expect(client.conn.status).toBe('closed')
      expectCodeSync(() => client.conn.send(bytes('x')), 'CONNECTION_CLOSED')
      await client.got.closed()
      expect(client.got.closeErrors).toEqual([reason])

      await accepted.got.closed()
      expect(accepted.conn.status).toBe('closed')
      expectTransportError(accepted.got.closeErrors[0], 'CONNECTION_RESET')
      expect(accepted.got.isEnded).toBe(false)
    })

    it('abort() with bytes in flight still closes the remote', async () => {
      const h = await setup()
      // Linux reports a reset that finds unread bytes as a plain end of stream (EOF after the data),
      // so over TCP the remote may see 'end' and then close cleanly instead of CONNECTION_RESET.
      const server = await h.listen((end) => echo(end.conn))
      const client = await h.dial(server.address)
      const accepted = await server.next()
      client.conn.send(randomBytes(256 * KiB))
      client.conn.abort()

      await accepted.got.closed()
      const [err] = accepted.got.closeErrors
      if (err !== undefined) expectTransportError(err, 'CONNECTION_RESET')
      expect(accepted.got.closeErrors).toHaveLength(1)
    })

    it('close() aborts the connection when its signal fires', async () => {
      const h = await setup()
      const server = await h.listen()
      const client = await h.dial(server.address)
      const accepted = await server.next()

      const controller = new AbortController()
      const closing = client.conn.close({ signal: controller.signal })
      await accepted.got.ended() // our FIN is through; the remote never answers with its own
      controller.abort()
      await expectCode(closing, 'ABORTED')
      expect(client.conn.status).toBe('closed')
      await client.got.closed()
      expectTransportError(client.got.closeErrors[0], 'ABORTED')

      // TCP only notices a reset on a half-closed socket when it next writes.
      if (accepted.conn.status === 'open') accepted.conn.send(bytes('anyone?'))
      await accepted.got.closed()
      expectTransportError(accepted.got.closeErrors[0], 'CONNECTION_RESET')
    })

    it('a closed listener refuses new dials and keeps its connections', async () => {
      const h = await setup()
      const server = await h.listen((end) => echo(end.conn))
      const client = await h.dial(server.address)
      await server.next()

      await server.listener.close()
      await server.listener.close() // idempotent
      await expectCode(
        h.transport.dial(server.address, { signal: AbortSignal.timeout(5_000) }),
        'CONNECTION_REFUSED',
      )

      client.conn.send(bytes('still here'))
      await client.got.received(10)
      expect(text(client.got.bytes())).toBe('still here')
    })

    it('serves 100 concurrent connections', async () => {
      const h = await setup()
      const server = await h.listen((end) => echo(end.conn))
      const count = 100
      const clients = await Promise.all(Array.from({ length: count }, () => h.dial(server.address)))
      expect(new Set(clients.map((c) => c.conn.localAddress)).size).toBe(count)

      const payloads = clients.map((_, i) => bytes(`connection ${i};`.repeat(64)))
      for (const [i, c] of clients.entries()) c.conn.send(payloads[i]!)
      await Promise.all(clients.map((c, i) => c.got.received(payloads[i]!.length)))
      for (const [i, c] of clients.entries()) expect(c.got.bytes().equals(payloads[i]!)).toBe(true)
      expect(server.acceptedCount).toBe(count)
    })

    it("emits 'close' exactly once, whatever is called after", async () => {
      const h = await setup()
      const server = await h.listen((end) => echo(end.conn))

      const clean = await h.dial(server.address)
      await clean.conn.close()
      const cleanAccepted = await server.next()
      await cleanAccepted.got.closed()
      clean.conn.abort(new Error('too late'))
      await clean.conn.close()
      cleanAccepted.conn.abort()

      const aborted = await h.dial(server.address)
      const abortedAccepted = await server.next()
      const first = new Error('first')
      aborted.conn.abort(first)
      aborted.conn.abort(new Error('second'))
      await aborted.conn.close()
      await abortedAccepted.got.closed()

      await settle()
      expect(clean.got.closeErrors).toEqual([undefined])
      expect(cleanAccepted.got.closeErrors).toEqual([undefined])
      expect(aborted.got.closeErrors).toEqual([first])
      expect(abortedAccepted.got.closeErrors).toHaveLength(1)
    })

    it('dial and listen with an already aborted signal fail with ABORTED', async () => {
      const h = await setup()
      const server = await h.listen()
      await expectCode(h.transport.dial(server.address, { signal: AbortSignal.abort() }), 'ABORTED')
      await expectCode(h.listenRaw(h.listenAddress, { signal: AbortSignal.abort() }), 'ABORTED')
      expect(server.acceptedCount).toBe(0)
    })
  })
}
