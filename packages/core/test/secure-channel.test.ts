import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import { once } from 'node:events'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { MAX_RECORD_PLAINTEXT, type NoiseUpgraderInit, noiseUpgrader } from '../src/secure/channel.js'
import { NoiseConnection } from '../src/secure/channel-records.js'
import { SecureChannelError } from '../src/secure/errors.js'
import { HandshakeState } from '../src/secure/noise.js'
import { generateKeyPair } from '../src/secure/noise-crypto.js'
import { plaintextUpgrader } from '../src/secure/plaintext.js'
import type { SecureConnection } from '../src/secure/upgrader.js'
import { isSendBuffer, takeSendBuffer } from '../src/send-buffers.js'
import type { Connection } from '../src/transport.js'
import { type MemoryNetworkInit, memoryNetwork, memoryTransport } from '../src/transports/memory.js'
import { type DuplexPairOptions, duplexPair, type TestConnection } from './fixtures/duplex-pair.js'

const WAIT = 5_000

// Whether this machine "has AES instructions", as the upgrader sees it; a test may take them away.
const cpu = vi.hoisted(() => ({ aes: true }))
vi.mock('../src/secure/cpu-features.js', () => ({ hasAesInstructions: () => cpu.aes }))

function makeIdentity() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')
  return { peerId: raw.toString('hex'), privateKey, publicKey, raw }
}

/** Resolves with `promise`, or rejects once `ms` pass (every wait in these tests is bounded). */
function within<T>(promise: Promise<T>, ms = WAIT): Promise<T> {
  const signal = AbortSignal.timeout(ms)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** Everything a connection emits, for assertions. */
function record(conn: Connection) {
  const chunks: Buffer[] = []
  let length = 0
  let ended = false
  let waiter: (() => void) | undefined
  conn.on('data', (chunk) => {
    chunks.push(Buffer.from(chunk))
    length += chunk.length
    waiter?.()
  })
  const end = new Promise<void>((resolve) =>
    conn.on('end', () => {
      ended = true
      resolve()
    }),
  )
  const closed = new Promise<Error | undefined>((resolve) => conn.on('close', resolve))
  return {
    chunks,
    get ended() {
      return ended
    },
    bytes: () => Buffer.concat(chunks),
    /** Resolves with the close error (undefined for a clean close). */
    closed: () => within(closed),
    end: () => within(end),
    /** Resolves with everything received once at least `n` bytes arrived. */
    received(n: number): Promise<Buffer> {
      return within(
        new Promise<Buffer>((resolve) => {
          waiter = () => {
            if (length >= n) resolve(Buffer.concat(chunks))
          }
          waiter()
        }),
      )
    },
  }
}

/** Byte equality without vitest's slow element-wise diff of large buffers. */
function expectSameBytes(actual: Buffer, expected: Buffer) {
  expect(actual.length).toBe(expected.length)
  expect(actual.equals(expected)).toBe(true)
}

interface PairOptions {
  a?: Partial<NoiseUpgraderInit>
  b?: Partial<NoiseUpgraderInit>
  wire?: DuplexPairOptions
}

/** Two upgraders over an in-test duplex pair; `a` initiates. Resolves both upgrades (settled). */
async function upgradePair(options: PairOptions = {}) {
  const [wireA, wireB] = duplexPair(options.wire)
  const idA = makeIdentity()
  const idB = makeIdentity()
  const upA = noiseUpgrader({ identity: idA, ...options.a })
  const upB = noiseUpgrader({ identity: idB, ...options.b })
  const [a, b] = await Promise.allSettled([
    upA.upgrade(wireA, { role: 'initiator' }),
    upB.upgrade(wireB, { role: 'responder' }),
  ])
  onTestFinished(() => {
    wireA.abort()
    wireB.abort()
  })
  return { wireA, wireB, idA, idB, a, b }
}

async function securePair(options: PairOptions = {}) {
  const pair = await upgradePair(options)
  if (pair.a.status === 'rejected') throw pair.a.reason
  if (pair.b.status === 'rejected') throw pair.b.reason
  return { ...pair, a: pair.a.value, b: pair.b.value }
}

function codeOf(result: PromiseSettledResult<unknown>): string | undefined {
  return result.status === 'rejected' ? (result.reason as SecureChannelError).code : undefined
}

/** Splits a wire capture of one side into its u16-length-prefixed frames. */
function frames(bytes: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < bytes.length; ) {
    const length = bytes.readUInt16BE(i)
    out.push(bytes.subarray(i + 2, i + 2 + length))
    i += 2 + length
  }
  return out
}

afterEach(() => {
  vi.useRealTimers()
  cpu.aes = true
})

describe('noiseUpgrader handshake', () => {
  it('authenticates both peers and carries data both ways', async () => {
    const { a, b, idA, idB, wireA, wireB } = await securePair()
    expect(a.remotePeerId).toBe(idB.peerId)
    expect(b.remotePeerId).toBe(idA.peerId)
    expect(a.status).toBe('open')
    expect(a.remoteAddress).toBe('test:b')
    expect(b.localAddress).toBe('test:b')

    const atA = record(a)
    const atB = record(b)
    a.send(Buffer.from('hello from a'))
    b.send(Buffer.from('hello from b'))
    expect((await atB.received(12)).toString()).toBe('hello from a')
    expect((await atA.received(12)).toString()).toBe('hello from b')

    // Wire layout: -> 2+32, <- 2+193, -> 2+161, then one record per send (2 + 12 + 16).
    expect(wireA.sent.map((s) => s.length)).toEqual([34, 163, 30])
    expect(wireB.sent.map((s) => s.length)).toEqual([195, 30])
    expect([a.protocol, b.protocol]).toEqual([
      'Noise_XX_25519_ChaChaPoly_SHA256',
      'Noise_XX_25519_ChaChaPoly_SHA256',
    ])
  })

  it('a shared network secret connects', async () => {
    const secret = Buffer.from('our little network')
    const { a, b, idA } = await securePair({ a: { networkSecret: secret }, b: { networkSecret: secret } })
    expect(b.remotePeerId).toBe(idA.peerId)
    const atB = record(b)
    a.send(Buffer.from('hi'))
    expect((await atB.received(2)).toString()).toBe('hi')
  })

  it.each([
    ['different secrets', { networkSecret: Buffer.from('one') }, { networkSecret: Buffer.from('two') }],
    ['a secret on one side only', { networkSecret: Buffer.from('one') }, {}],
  ])('%s fail on BOTH sides with HANDSHAKE_FAILED', async (_, a, b) => {
    const pair = await upgradePair({ a, b })
    expect(codeOf(pair.a)).toBe('HANDSHAKE_FAILED')
    expect(codeOf(pair.b)).toBe('HANDSHAKE_FAILED')
    // The side that detected the MAC failure says why.
    expect((pair.a as PromiseRejectedResult).reason.message).toMatch(/network secret/)
    expect(pair.wireA.status).toBe('closed')
    expect(pair.wireB.status).toBe('closed')
  })

  it('works with every message split into 1-byte chunks', async () => {
    const { a, b, idA, idB } = await securePair({ wire: { chunkSize: 1 } })
    expect(a.remotePeerId).toBe(idB.peerId)
    expect(b.remotePeerId).toBe(idA.peerId)
    const atA = record(a)
    const atB = record(b)
    const big = randomBytes(70_000) // two records, fed byte by byte
    a.send(big)
    b.send(Buffer.from('pong'))
    expectSameBytes(await atB.received(big.length), big)
    expect((await atA.received(4)).toString()).toBe('pong')
  })

  it('keeps bytes that arrive in the same chunk as the last handshake message', async () => {
    let held: Buffer | undefined
    const wire: DuplexPairOptions = {
      tap: (from, bytes, index) => {
        if (from !== 'a') return [bytes]
        if (index === 1) {
          held = Buffer.from(bytes) // message 3: hold it back…
          return []
        }
        if (index === 2) return [Buffer.concat([held!, bytes])] // …and send it glued to the first record
        return [bytes]
      },
    }
    const [wireA, wireB] = duplexPair(wire)
    onTestFinished(() => wireA.abort())
    const upA = noiseUpgrader({ identity: makeIdentity() })
    const upB = noiseUpgrader({ identity: makeIdentity() })
    const pendingB = upB.upgrade(wireB, { role: 'responder' })
    const a = await upA.upgrade(wireA, { role: 'initiator' })
    a.send(Buffer.from('early bird'))
    // The responder only completes now, on the glued chunk; listeners attached after await see the data.
    const b = await pendingB
    const atB = record(b)
    expect((await atB.received(10)).toString()).toBe('early bird')
  })

  it('times out a stalled handshake with HANDSHAKE_TIMEOUT and aborts the connection', async () => {
    vi.useFakeTimers()
    const [wireA] = duplexPair() // nobody answers on the other end
    const closed = once(wireA, 'close')
    const result = noiseUpgrader({ identity: makeIdentity() })
      .upgrade(wireA, { role: 'initiator' })
      .catch((err: unknown) => err)
    await vi.advanceTimersByTimeAsync(9_999)
    expect(wireA.status).toBe('open')
    await vi.advanceTimersByTimeAsync(1)
    expect(await result).toMatchObject({ code: 'HANDSHAKE_TIMEOUT' })
    expect(wireA.status).toBe('closed')
    const [err] = await closed
    expect(err).toBeInstanceOf(SecureChannelError)
  })

  it('honours a shorter handshakeTimeout for the responder too', async () => {
    vi.useFakeTimers()
    const [, wireB] = duplexPair()
    const result = noiseUpgrader({ identity: makeIdentity(), handshakeTimeout: 50 })
      .upgrade(wireB, { role: 'responder' })
      .catch((err: unknown) => err)
    await vi.advanceTimersByTimeAsync(50)
    expect(await result).toMatchObject({ code: 'HANDSHAKE_TIMEOUT' })
    expect(wireB.status).toBe('closed')
  })

  it.each([
    ['random bytes', randomBytes(300)],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n')],
    [
      'a well-framed but bogus message 1, then junk',
      Buffer.concat([Buffer.from([0, 32]), randomBytes(32 + 200)]),
    ],
  ])('the responder rejects %s with HANDSHAKE_FAILED and aborts', async (_, garbage) => {
    const [wireA, wireB] = duplexPair()
    const pending = noiseUpgrader({ identity: makeIdentity() })
      .upgrade(wireB, { role: 'responder' })
      .catch((err: unknown) => err)
    wireB.inject(garbage)
    expect(await pending).toMatchObject({ code: 'HANDSHAKE_FAILED' })
    expect(wireB.status).toBe('closed')
    expect(wireA.status).toBe('closed')
  })

  it.each([
    ['random bytes', () => randomBytes(300)],
    [
      'a well-framed message 2 of random bytes',
      () => Buffer.concat([Buffer.from([0, 193]), randomBytes(193)]),
    ],
  ])('the initiator rejects %s as a reply with HANDSHAKE_FAILED', async (_, garbage) => {
    const [wireA, wireB] = duplexPair()
    wireB.on('data', () => wireA.inject(garbage()))
    const result = await noiseUpgrader({ identity: makeIdentity() })
      .upgrade(wireA, { role: 'initiator' })
      .catch((err: unknown) => err)
    expect(result).toMatchObject({ code: 'HANDSHAKE_FAILED' })
    expect(wireA.status).toBe('closed')
  })

  it('aborts the handshake when the signal aborts', async () => {
    const [wireA] = duplexPair()
    const controller = new AbortController()
    const pending = noiseUpgrader({ identity: makeIdentity() })
      .upgrade(wireA, { role: 'initiator', signal: controller.signal })
      .catch((err: unknown) => err)
    controller.abort(new Error('stop'))
    expect(await pending).toMatchObject({ message: 'stop' })
    expect(wireA.status).toBe('closed')
  })

  it('rejects an inconsistent local identity up front', () => {
    const id = makeIdentity()
    const other = makeIdentity()
    const attempt = (identity: NoiseUpgraderInit['identity']) => () => noiseUpgrader({ identity })
    expect(attempt({ ...id, peerId: other.peerId })).toThrowError(
      expect.objectContaining({ code: 'IDENTITY_INVALID' }),
    )
    expect(attempt({ ...id, publicKey: other.publicKey, peerId: other.peerId })).toThrowError(
      expect.objectContaining({ code: 'IDENTITY_INVALID' }),
    )
    expect(attempt({ ...id, privateKey: other.privateKey })).toThrowError(
      expect.objectContaining({ code: 'IDENTITY_INVALID' }),
    )
    expect(attempt({ ...id, privateKey: generateKeyPairSync('x25519').privateKey })).toThrowError(
      expect.objectContaining({ code: 'IDENTITY_INVALID' }),
    )
    expect(() => noiseUpgrader({ identity: id, maxRecordSize: MAX_RECORD_PLAINTEXT + 1 })).toThrow(RangeError)
    expect(() => noiseUpgrader({ identity: id, handshakeTimeout: 0 })).toThrow(RangeError)
  })
})

describe('cipher choice', () => {
  /** Sends `bytes` from one side and checks that they arrive intact at the other. */
  async function carries(from: SecureConnection, to: SecureConnection, bytes: Buffer) {
    const at = record(to)
    from.send(bytes)
    expectSameBytes(await at.received(bytes.length), bytes)
  }

  it('a dialer that asks for AESGCM gets AES-256-GCM on both sides, for small and large sends', async () => {
    const { a, b, wireA } = await securePair({ a: { cipher: 'AESGCM' } })
    expect([a.protocol, b.protocol]).toEqual(['Noise_XX_25519_AESGCM_SHA256', 'Noise_XX_25519_AESGCM_SHA256'])
    // -> [u16 33] 0x02 ‖ e: the cipher byte inside the first message's length prefix.
    expect(wireA.sent[0]!.subarray(0, 3).toString('hex')).toBe('002102')
    expect(wireA.sent[0]!.length).toBe(2 + 1 + 32)
    await carries(a, b, Buffer.from('small'))
    await carries(b, a, randomBytes(200_000)) // four records, sealed and opened through OpenSSL
  })

  it('a private network runs XXpsk0 with AES-256-GCM', async () => {
    const secret = Buffer.from('our little network')
    const { a, b, wireA } = await securePair({
      a: { networkSecret: secret, cipher: 'AESGCM' },
      b: { networkSecret: secret },
    })
    expect(b.protocol).toBe('Noise_XXpsk0_25519_AESGCM_SHA256')
    expect(wireA.sent[0]!.length).toBe(2 + 1 + 48)
    await carries(a, b, Buffer.from('hi'))
  })

  it('a dialer without AES instructions stays on ChaCha20-Poly1305 and sends the plain first message', async () => {
    cpu.aes = false
    const { a, b, wireA } = await securePair({ a: { cipher: 'AESGCM' } })
    expect(b.protocol).toBe('Noise_XX_25519_ChaChaPoly_SHA256')
    expect(wireA.sent[0]!.length).toBe(2 + 32)
    await carries(a, b, Buffer.from('hi'))
  })

  /** Rewrites the dialer's first message (the handshake's message 1, length prefix included). */
  const firstMessage = (rewrite: (m: Buffer) => Buffer): DuplexPairOptions => ({
    tap: (from, bytes, index) => (from === 'a' && index === 0 ? [rewrite(Buffer.from(bytes))] : [bytes]),
  })
  const withPrefix = (body: Buffer) =>
    Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body])
  const stripByte = (m: Buffer) => withPrefix(m.subarray(3))
  const insertByte = (byte: number) => (m: Buffer) =>
    withPrefix(Buffer.concat([Buffer.from([byte]), m.subarray(2)]))

  it.each([
    ['removed from an AESGCM dialer', { cipher: 'AESGCM' } as const, stripByte],
    ['added to a ChaChaPoly dialer', {}, insertByte(0x02)],
  ])('a cipher byte %s on the way fails the handshake on both sides', async (_, a, rewrite) => {
    const pair = await upgradePair({ a, wire: firstMessage(rewrite) })
    // The listener runs the cipher the byte says; the dialer's handshake hash names the other one,
    // so the listener's message 2 fails its first tag at the dialer.
    expect(codeOf(pair.a)).toBe('HANDSHAKE_FAILED')
    expect(codeOf(pair.b)).toBe('HANDSHAKE_FAILED')
    expect((pair.a as PromiseRejectedResult).reason.message).toMatch(/authentication check/)
  })

  it('on a private network, a removed cipher byte fails at the listener on message 1', async () => {
    const secret = Buffer.from('our little network')
    const pair = await upgradePair({
      a: { networkSecret: secret, cipher: 'AESGCM' },
      b: { networkSecret: secret },
      wire: firstMessage(stripByte),
    })
    expect(codeOf(pair.b)).toBe('HANDSHAKE_FAILED')
    expect((pair.b as PromiseRejectedResult).reason.message).toMatch(/authentication check/)
    expect(codeOf(pair.a)).toBe('HANDSHAKE_FAILED')
  })

  it.each(['01', '07', 'ff'])('a cipher byte 0x%s, not 0x02, is refused with a reason', async (hex) => {
    const byte = Number.parseInt(hex, 16)
    const pair = await upgradePair({
      a: { cipher: 'AESGCM' },
      wire: firstMessage((m) => insertByte(byte)(stripByte(m))),
    })
    expect(codeOf(pair.b)).toBe('HANDSHAKE_FAILED')
    expect((pair.b as PromiseRejectedResult).reason.message).toMatch(`cipher 0x${hex},`)
    expect(codeOf(pair.a)).toBe('HANDSHAKE_FAILED')
  })

  it('a 33-byte first message is refused by a private network listener before it is read', async () => {
    const pair = await upgradePair({ a: { cipher: 'AESGCM' }, b: { networkSecret: Buffer.from('ours') } })
    expect(codeOf(pair.b)).toBe('HANDSHAKE_FAILED')
    expect((pair.b as PromiseRejectedResult).reason.message).toMatch(/expected a 48-byte handshake message/)
  })

  it('rejects an unknown cipher name up front', () => {
    expect(() => noiseUpgrader({ identity: makeIdentity(), cipher: 'AES' as 'AESGCM' })).toThrow(RangeError)
  })
})

describe('identity binding', () => {
  /**
   * A hand-rolled responder speaking the real Noise handshake but with a chosen identity payload,
   * to check that the initiator verifies it.
   */
  async function initiatorAgainst(makePayload: (staticPublicKey: Buffer) => Buffer) {
    const [wireA, wireB] = duplexPair()
    const staticKeyPair = generateKeyPair()
    const state = new HandshakeState({ initiator: false, staticKeyPair, prologue: Buffer.from('parley/1') })
    wireB.once('data', (chunk) => {
      state.readMessage(Buffer.from(chunk).subarray(2))
      const message = state.writeMessage(makePayload(staticKeyPair.publicKey))
      const framed = Buffer.alloc(2 + message.length)
      framed.writeUInt16BE(message.length)
      message.copy(framed, 2)
      wireB.send(framed)
    })
    return noiseUpgrader({ identity: makeIdentity() })
      .upgrade(wireA, { role: 'initiator' })
      .catch((err: unknown) => err)
  }

  const signed = (id: ReturnType<typeof makeIdentity>, staticKey: Buffer, version = 1) =>
    Buffer.concat([
      Buffer.from([version]),
      id.raw,
      sign(null, Buffer.concat([Buffer.from('parley-noise-static-key:'), staticKey]), id.privateKey),
    ])

  it('accepts a correct payload (the hand-rolled responder is faithful)', async () => {
    const id = makeIdentity()
    const result = await initiatorAgainst((s) => signed(id, s))
    expect((result as SecureConnection).remotePeerId).toBe(id.peerId)
    ;(result as SecureConnection).abort()
  })

  it('sends an identity payload that node:crypto (OpenSSL) verifies', async () => {
    // A hand-rolled initiator reads the real responder's message 2.
    const [wireA, wireB] = duplexPair()
    onTestFinished(() => wireA.abort())
    const id = makeIdentity()
    const pending = noiseUpgrader({ identity: id })
      .upgrade(wireB, { role: 'responder' })
      .catch(() => {})
    const state = new HandshakeState({
      initiator: true,
      staticKeyPair: generateKeyPair(),
      prologue: Buffer.from('parley/1'),
    })
    const message1 = state.writeMessage(Buffer.alloc(0))
    const framed = Buffer.alloc(2 + message1.length)
    framed.writeUInt16BE(message1.length)
    message1.copy(framed, 2)
    const reply = new Promise<Buffer>((resolve) => wireA.once('data', (chunk) => resolve(Buffer.from(chunk))))
    wireA.send(framed)
    const payload = state.readMessage((await within(reply)).subarray(2))
    expect(payload[0]).toBe(1)
    expect(payload.subarray(1, 33).equals(id.raw)).toBe(true)
    const signedBytes = Buffer.concat([Buffer.from('parley-noise-static-key:'), state.remoteStaticPublicKey!])
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: id.raw.toString('base64url') },
      format: 'jwk',
    })
    expect(verify(null, signedBytes, publicKey, payload.subarray(33))).toBe(true)
    wireA.abort()
    await pending
  })

  it('rejects a signature that does not verify', async () => {
    const id = makeIdentity()
    const result = await initiatorAgainst((s) => {
      const payload = signed(id, s)
      payload[40]! ^= 0x01
      return payload
    })
    expect(result).toMatchObject({ code: 'IDENTITY_INVALID' })
  })

  it('rejects a valid signature over a different static key (a replayed identity)', async () => {
    const victim = makeIdentity()
    const victimsStaticKey = generateKeyPair().publicKey
    const result = await initiatorAgainst(() => signed(victim, victimsStaticKey))
    expect(result).toMatchObject({ code: 'IDENTITY_INVALID' })
  })

  it('rejects an unknown payload version', async () => {
    const id = makeIdentity()
    const result = await initiatorAgainst((s) => signed(id, s, 2))
    expect(result).toMatchObject({ code: 'IDENTITY_INVALID' })
  })
})

describe('noise transport records', () => {
  /** A secure pair where `tamper` may rewrite the initiator's post-handshake sends (index 0 = first record). */
  async function tamperedPair(tamper: (bytes: Buffer, index: number) => Buffer[]) {
    return securePair({
      wire: {
        tap: (from, bytes, index) =>
          from === 'a' && index >= 2 ? tamper(Buffer.from(bytes), index - 2) : [bytes],
      },
    })
  }

  it('one send() is one record in one underlying send, and 1 MiB arrives intact across records', async () => {
    const { a, b, wireA } = await securePair()
    const atB = record(b)
    const big = randomBytes(1 << 20)
    const before = wireA.sent.length
    a.send(big)
    expect(wireA.sent.length).toBe(before + 1)
    const records = frames(wireA.sent.at(-1)!)
    expect(records.length).toBe(Math.ceil(big.length / MAX_RECORD_PLAINTEXT))
    expect(records.slice(0, -1).every((r) => r.length === 65535)).toBe(true)
    expectSameBytes(await atB.received(big.length), big)

    a.send(Buffer.alloc(64, 7))
    expect(frames(wireA.sent.at(-1)!).map((r) => r.length)).toEqual([64 + 16])
  })

  it('gives back recycled memory it was sent once sealed, and the bytes arrive intact', async () => {
    const { a, b } = await securePair()
    const atB = record(b)
    const bytes = takeSendBuffer(60_000)
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 253
    const expected = Buffer.from(bytes)
    a.send(bytes)
    expect(isSendBuffer(bytes)).toBe(false) // sealed and given back within send()
    expectSameBytes(await atB.received(expected.length), expected)
  })

  it.each([undefined, 1000])(
    'delivered plaintext is the listener’s to keep, records whole or split across reads (chunkSize %s)',
    async (chunkSize) => {
      // Records inside one read are opened into fresh buffers, split ones assembled and opened in
      // place: either way a chunk kept without copying must not change as later records arrive.
      const { a, b } = await securePair({ wire: { chunkSize } })
      // Small records and large ones (16 KiB and up, received into recycled memory) alike.
      const sizes = [3000, 4500, 6000, 20_000, 65_519, 7500, 40_000, 9000]
      const sends = sizes.map((size, i) => Buffer.alloc(size, 0x41 + i))
      const total = sends.reduce((n, s) => n + s.length, 0)
      const kept: Uint8Array[] = []
      let length = 0
      const all = new Promise<void>((resolve) => {
        b.on('data', (chunk) => {
          kept.push(chunk)
          length += chunk.length
          if (length >= total) resolve()
        })
      })
      for (const bytes of sends) a.send(Buffer.from(bytes))
      await within(all)
      expectSameBytes(Buffer.concat(kept), Buffer.concat(sends))
    },
  )

  it.each([undefined, 1000])(
    'a listener that gives chunks back gets every byte intact, in reused memory (chunkSize %s)',
    async (chunkSize) => {
      const { a, b } = await securePair({ wire: { chunkSize } })
      const sends = Array.from({ length: 8 }, (_, i) => randomBytes(30_000 + i * 4000))
      const total = sends.reduce((n, s) => n + s.length, 0)
      const copies: Buffer[] = []
      const memory = new Set<ArrayBufferLike>()
      let length = 0
      const all = new Promise<void>((resolve) => {
        b.on('data', (chunk) => {
          copies.push(Buffer.from(chunk))
          memory.add(chunk.buffer)
          length += chunk.length
          b.recycle?.(chunk)
          b.recycle?.(chunk) // a second give-back is ignored
          if (length >= total) resolve()
        })
      })
      for (const bytes of sends) a.send(Buffer.from(bytes))
      await within(all)
      expectSameBytes(Buffer.concat(copies), Buffer.concat(sends))
      expect(memory.size).toBeLessThan(sends.length)
    },
  )

  it('never puts the plaintext on the wire', async () => {
    const { a, b, wireA, wireB } = await securePair()
    const atB = record(b)
    const atA = record(a)
    const secret = 'TOP-SECRET-PAYLOAD-'.repeat(50)
    a.send(Buffer.from(secret))
    b.send(Buffer.from(secret))
    await atB.received(secret.length)
    await atA.received(secret.length)
    for (const wire of [wireA, wireB]) {
      const captured = Buffer.concat(wire.sent)
      expect(captured.includes('TOP-SECRET')).toBe(false)
      expect(captured.includes('PAYLOAD')).toBe(false)
    }
  })

  // A 20-byte plaintext makes a 38-byte record: 2 length, 20 ciphertext, 16 tag. Flip every bit
  // position class: each byte of ciphertext and tag, and the low bit of the length.
  const positions = Array.from({ length: 36 }, (_, i) => i + 2)
  it.each([1, ...positions])(
    'a flipped bit at byte %i of a record closes with INTEGRITY and delivers nothing of it',
    async (at) => {
      const { a, b } = await tamperedPair((bytes, index) => {
        if (index === 1) bytes[at]! ^= 0x01
        return [bytes]
      })
      const atB = record(b)
      const atA = record(a)
      a.send(Buffer.from('first record is fine'))
      a.send(Buffer.from('second will be hit!!'))
      a.send(Buffer.from('third never arrives.'))
      const err = await atB.closed()
      expect(err).toBeInstanceOf(SecureChannelError)
      expect((err as SecureChannelError).code).toBe('INTEGRITY')
      expect(atB.bytes().toString()).toBe('first record is fine')
      expect(b.status).toBe('closed')
      await atA.closed() // the sender sees the connection reset
    },
  )

  it('rejects a replayed record', async () => {
    const { a, b } = await tamperedPair((bytes, index) => (index === 0 ? [bytes, bytes] : [bytes]))
    const atB = record(b)
    a.send(Buffer.from('pay me once'))
    const err = await atB.closed()
    expect((err as SecureChannelError).code).toBe('INTEGRITY')
    expect(atB.bytes().toString()).toBe('pay me once')
  })

  it('rejects reordered records', async () => {
    let held: Buffer | undefined
    const { a, b } = await tamperedPair((bytes, index) => {
      if (index === 0) {
        held = bytes
        return []
      }
      return index === 1 ? [bytes, held!] : [bytes]
    })
    const atB = record(b)
    a.send(Buffer.from('one'))
    a.send(Buffer.from('two'))
    expect(((await atB.closed()) as SecureChannelError).code).toBe('INTEGRITY')
    expect(atB.chunks).toEqual([])
  })

  it('rejects a record truncated by the end of the stream', async () => {
    const { a, b } = await tamperedPair((bytes) => [bytes.subarray(0, 10)])
    const atB = record(b)
    a.send(Buffer.from('this record will be cut short'))
    void a.close()
    expect(((await atB.closed()) as SecureChannelError).code).toBe('INTEGRITY')
    expect(atB.ended).toBe(false)
    expect(atB.chunks).toEqual([])
  })

  // No Parley peer sends one (send() skips empty writes); a hostile one could stream authentic empty
  // records, each an open for us and no delivered byte for any budget to count.
  it.each(['ChaChaPoly', 'AESGCM'] as const)(
    'an authentic empty %s record closes with INTEGRITY after what came before it',
    async (cipher) => {
      const i = new HandshakeState({
        initiator: true,
        staticKeyPair: generateKeyPair(),
        prologue: Buffer.alloc(0),
        cipher,
      })
      const r = new HandshakeState({
        initiator: false,
        staticKeyPair: generateKeyPair(),
        prologue: Buffer.alloc(0),
        cipher,
      })
      r.readMessage(i.writeMessage(Buffer.alloc(0)))
      i.readMessage(r.writeMessage(Buffer.alloc(0)))
      r.readMessage(i.writeMessage(Buffer.alloc(0)))
      const sealer = i.split().send
      const [wire, inner] = duplexPair()
      const b = new NoiseConnection(inner, 'a', r.split(), MAX_RECORD_PLAINTEXT, Buffer.alloc(0), 'test')
      const atB = record(b)
      const seal = (text: string) => {
        const plaintext = Buffer.from(text)
        const out = Buffer.alloc(2 + plaintext.length + 16)
        out.writeUInt16BE(plaintext.length + 16, 0)
        sealer.encryptInto(plaintext, out, 2)
        return out
      }
      wire.send(Buffer.concat([seal('before'), seal(''), seal('after')]))
      const err = await within(atB.closed())
      expect((err as SecureChannelError).code).toBe('INTEGRITY')
      expect(atB.bytes().toString()).toBe('before')
    },
  )

  it('rejects a record longer than the receiver allows with RECORD_TOO_LARGE', async () => {
    const { a, b } = await securePair({ b: { maxRecordSize: 1024 } })
    const atB = record(b)
    a.send(randomBytes(2000))
    expect(((await atB.closed()) as SecureChannelError).code).toBe('RECORD_TOO_LARGE')
    expect(atB.chunks).toEqual([])
  })

  it('splits sends at maxRecordSize', async () => {
    const { a, b, wireA } = await securePair({ a: { maxRecordSize: 1000 }, b: { maxRecordSize: 1000 } })
    const atB = record(b)
    const data = randomBytes(2500)
    a.send(data)
    expect(frames(wireA.sent.at(-1)!).map((r) => r.length)).toEqual([1016, 1016, 516])
    expectSameBytes(await atB.received(data.length), data)
  })

  it('pause() stops delivery between records, resume() continues in order', async () => {
    const { a, b } = await securePair()
    const atB = record(b)
    b.once('data', () => b.pause())
    const data = randomBytes(3 * MAX_RECORD_PLAINTEXT) // three records in one chunk
    a.send(data)
    await atB.received(1)
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(atB.bytes().length).toBe(MAX_RECORD_PLAINTEXT)
    b.resume()
    expectSameBytes(await atB.received(data.length), data)
  })

  it('pause() inside a data listener holds the rest of the same chunk until resume()', async () => {
    const { a, b, wireA } = await securePair({ a: { maxRecordSize: 1000 }, b: { maxRecordSize: 1000 } })
    const atB = record(b)
    b.once('data', () => b.pause())
    await new Promise((resolve) => setImmediate(resolve)) // past the hand-out tick: nothing held
    const data = randomBytes(2500)
    a.send(data)
    expect(frames(wireA.sent.at(-1)!).length).toBe(3) // three records, one chunk
    await atB.received(1)
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(atB.bytes().length).toBe(1000)
    b.resume()
    expectSameBytes(await atB.received(data.length), data)
  })

  it('discardInput() opens nothing more, yet the remote end still closes it cleanly', async () => {
    // Every record after the first is replayed: opening it would fail with INTEGRITY.
    const { a, b } = await tamperedPair((bytes, index) => (index === 0 ? [bytes] : [bytes, bytes]))
    const atB = record(b)
    a.send(Buffer.from('before'))
    await atB.received(6)
    b.discardInput?.()
    a.send(Buffer.from('after'))
    const closing = a.close()
    await atB.end()
    void b.close()
    await closing
    expect(await atB.closed()).toBeUndefined()
    expect(atB.bytes().toString()).toBe('before')
  })

  it('discardInput() stops reading altogether once the remote floods past 64 KiB', async () => {
    const { a, b } = await securePair()
    const inner = (b as unknown as { inner: Connection }).inner
    const pause = vi.spyOn(inner, 'pause')
    b.discardInput?.()
    a.send(Buffer.alloc(16 * 1024))
    await new Promise((resolve) => inner.once('data', resolve))
    expect(pause).not.toHaveBeenCalled()
    for (let i = 0; i < 8; i++) a.send(Buffer.alloc(16 * 1024))
    await vi.waitFor(() => expect(pause).toHaveBeenCalled(), { timeout: 5_000 })
  })

  it('forwards a graceful close: end, then close without error on both sides', async () => {
    const { a, b } = await securePair()
    const atA = record(a)
    const atB = record(b)
    a.send(Buffer.from('bye'))
    const closing = a.close()
    await atB.received(3)
    await atB.end()
    void b.close()
    await closing
    expect(await atA.closed()).toBeUndefined()
    expect(await atB.closed()).toBeUndefined()
    expect(a.status).toBe('closed')
  })

  it('abort(err) closes both sides', async () => {
    const { a, b } = await securePair()
    const atA = record(a)
    const atB = record(b)
    const reason = new Error('going away')
    a.abort(reason)
    expect(await atA.closed()).toBe(reason)
    expect(await atB.closed()).toBeInstanceOf(Error)
  })
})

describe('plaintextUpgrader', () => {
  it('passes bytes through unauthenticated and emits nothing in the hand-out tick', async () => {
    const [wireA, wireB] = duplexPair()
    onTestFinished(() => wireA.abort())
    const upgrader = plaintextUpgrader()
    const a = await upgrader.upgrade(wireA, { role: 'initiator' })
    wireA.inject(Buffer.from('already in flight'))
    const b = await upgrader.upgrade(wireB, { role: 'responder' })
    expect(a.remotePeerId).toBe('')
    const atA = record(a)
    const atB = record(b)
    a.send(Buffer.from('plain'))
    expect((await atB.received(5)).toString()).toBe('plain')
    expect((await atA.received(17)).toString()).toBe('already in flight')
    expect(Buffer.concat((wireA as TestConnection).sent).toString()).toBe('plain')
  })
})

describe('over the memory transport', () => {
  /** A listener that secures what it accepts, and a dialer that secures what it dials. */
  async function memoryPair(network: MemoryNetworkInit = {}, a: Partial<NoiseUpgraderInit> = {}, b = a) {
    const net = memoryNetwork(network)
    const idA = makeIdentity()
    const idB = makeIdentity()
    const upA = noiseUpgrader({ identity: idA, ...a })
    const upB = noiseUpgrader({ identity: idB, ...b })
    let accepted!: Promise<SecureConnection>
    const listener = await memoryTransport(net).listen('bob:0', (conn) => {
      accepted = upB.upgrade(conn, { role: 'responder' })
      accepted.catch(() => {})
    })
    const raw = await memoryTransport(net).dial(listener.address)
    const dialed = upA.upgrade(raw, { role: 'initiator' })
    const [sa, sb] = await Promise.allSettled([
      dialed,
      dialed.then(
        () => accepted,
        () => accepted,
      ),
    ])
    onTestFinished(async () => {
      await listener.close()
      if (sa.status === 'fulfilled') sa.value.abort()
      if (sb.status === 'fulfilled') sb.value.abort()
    })
    return { net, idA, idB, a: sa, b: sb }
  }

  it('secures a dialed connection: identities, data both ways, 1 MiB with backpressure, clean close', async () => {
    const pair = await memoryPair()
    if (pair.a.status !== 'fulfilled' || pair.b.status !== 'fulfilled') throw new Error('handshake failed')
    const a = pair.a.value
    const b = pair.b.value
    expect(a.remotePeerId).toBe(pair.idB.peerId)
    expect(b.remotePeerId).toBe(pair.idA.peerId)
    const atA = record(a)
    const atB = record(b)
    const big = randomBytes(1 << 20)
    const drained = once(a, 'drain', { signal: AbortSignal.timeout(WAIT) })
    expect(a.send(big)).toBe(false) // over the 64 KiB high-water mark
    b.send(Buffer.from('ack'))
    expectSameBytes(await atB.received(big.length), big)
    expect((await atA.received(3)).toString()).toBe('ack')
    await drained
    const closing = a.close()
    await atB.end()
    await b.close()
    await closing
    expect(await atA.closed()).toBeUndefined()
    expect(await atB.closed()).toBeUndefined()
    expect(pair.net.connections).toBe(0)
  })

  it('handshakes with the network delivering one byte at a time', async () => {
    const pair = await memoryPair({ chunking: 1 })
    if (pair.a.status !== 'fulfilled' || pair.b.status !== 'fulfilled') throw new Error('handshake failed')
    const atB = record(pair.b.value)
    pair.a.value.send(Buffer.from('byte by byte'))
    expect((await atB.received(12)).toString()).toBe('byte by byte')
  })

  it('different network secrets fail on both sides with HANDSHAKE_FAILED', async () => {
    const pair = await memoryPair(
      {},
      { networkSecret: Buffer.from('x') },
      { networkSecret: Buffer.from('y') },
    )
    expect(codeOf(pair.a)).toBe('HANDSHAKE_FAILED')
    expect(codeOf(pair.b)).toBe('HANDSHAKE_FAILED')
    await vi.waitFor(() => expect(pair.net.connections).toBe(0))
  })
})
