import { describe, expect, it, vi } from 'vitest'
import {
  decodeMessage,
  encodedLength,
  encodeMessage,
  Limits,
  type Message,
  MessageType,
  type PeerRecord,
  ProtocolError,
  ProtocolErrorCode,
  peekHelloVersion,
  utf8Length,
} from '../src/index.js'
import {
  allTypes,
  channelBody,
  expectProtocolError,
  fromHex,
  hexOf,
  MSG_ID,
  PEER_A,
  SEQ,
  STREAM,
  samples,
} from './fixtures.js'

const u16hex = (n: number): string => n.toString(16).padStart(4, '0')
const strHex = (s: string): string => u16hex(Buffer.byteLength(s)) + Buffer.from(s).toString('hex')
const helloWith = (fields: Partial<Message>): Message => ({ ...samples.HELLO, ...fields }) as Message

describe('round trip', () => {
  it.each(allTypes)('%s decodes to what was encoded', (type) => {
    const msg = samples[type]
    const body = encodeMessage(msg)
    expect(body[0]).toBe(MessageType[type])
    expect(encodedLength(msg)).toBe(body.length)
    expect(decodeMessage(body)).toEqual(msg)
  })

  it('writes fields big-endian in the documented order', () => {
    expect(hexOf(encodeMessage({ type: 'PING', nonce: 0x01020304 }))).toBe('3001020304')
    expect(hexOf(encodeMessage({ type: 'ACK', stream: STREAM, seq: SEQ, status: 1 }))).toBe(`11${MSG_ID}01`)
    expect(
      hexOf(encodeMessage({ type: 'TEXT', stream: STREAM, seq: SEQ, sentAt: 2 ** 32 + 5, text: 'é' })),
    ).toBe(`10${MSG_ID}00000001000000050002c3a9`)
  })

  it('accepts every string and list exactly at its limit', () => {
    const name = 'é'.repeat(Limits.nameBytes / 2) // 2 bytes each: exactly 64 bytes, 32 chars
    const addr = 'a'.repeat(Limits.addressBytes)
    const msg = helloWith({
      name,
      listenAddrs: Array(Limits.addresses).fill(addr),
      capabilities: Array(Limits.capabilities).fill('c'.repeat(Limits.capabilityBytes)),
    })
    expect(decodeMessage(encodeMessage(msg))).toEqual(msg)

    const text: Message = {
      type: 'TEXT',
      stream: STREAM,
      seq: SEQ,
      sentAt: 1,
      text: '€'.repeat(Limits.textBytes / 3),
    }
    expect(encodedLength(text)).toBe(1 + 16 + 8 + 2 + Limits.textBytes)
    expect(decodeMessage(encodeMessage(text))).toEqual(text)

    const peer: PeerRecord = { peerId: PEER_A, name: '', addrs: [], lastSeen: 0 }
    const peers: Message = { type: 'PEERS', peers: Array(Limits.peers).fill(peer) }
    expect(decodeMessage(encodeMessage(peers))).toEqual(peers)
  })

  it('decodes a plain Uint8Array view at an offset, without copying it first', () => {
    const body = encodeMessage(samples.HELLO)
    const backing = new Uint8Array(body.length + 10)
    backing.set(body, 7)
    expect(decodeMessage(backing.subarray(7, 7 + body.length))).toEqual(samples.HELLO)
  })
})

describe('encode rejects invalid messages with ProtocolError', () => {
  it.each([
    ['name', helloWith({ name: 'x'.repeat(65) }), ProtocolErrorCode.STRING_TOO_LONG],
    ['multi-byte name', helloWith({ name: 'é'.repeat(33) }), ProtocolErrorCode.STRING_TOO_LONG],
    ['address', helloWith({ listenAddrs: ['a'.repeat(256)] }), ProtocolErrorCode.STRING_TOO_LONG],
    ['capability', helloWith({ capabilities: ['c'.repeat(33)] }), ProtocolErrorCode.STRING_TOO_LONG],
    ['address count', helloWith({ listenAddrs: Array(17).fill('a') }), ProtocolErrorCode.LIST_TOO_LONG],
    ['capability count', helloWith({ capabilities: Array(17).fill('c') }), ProtocolErrorCode.LIST_TOO_LONG],
    ['uppercase peerId', helloWith({ peerId: PEER_A.toUpperCase() }), ProtocolErrorCode.INVALID_FIELD],
    ['short peerId', helloWith({ peerId: PEER_A.slice(2) }), ProtocolErrorCode.INVALID_FIELD],
    ['non-hex peerId', helloWith({ peerId: `${PEER_A.slice(1)}g` }), ProtocolErrorCode.INVALID_FIELD],
    ['version above u16', helloWith({ version: 0x1_0000 }), ProtocolErrorCode.INVALID_FIELD],
    ['lone surrogate', helloWith({ name: 'a\uD800b' }), ProtocolErrorCode.INVALID_UTF8],
    ['escape in a name', helloWith({ name: 'eve\x1b]2;title\x07' }), ProtocolErrorCode.INVALID_FIELD],
    ['C1 control in a name', helloWith({ name: 'eve\u009b2J' }), ProtocolErrorCode.INVALID_FIELD],
    ['NUL in a name', helloWith({ name: 'bob\0' }), ProtocolErrorCode.INVALID_FIELD],
    ['line separator in a name', helloWith({ name: 'b\u2028ob' }), ProtocolErrorCode.INVALID_FIELD],
    ['bidi override in a name', helloWith({ name: '\u202ebob' }), ProtocolErrorCode.INVALID_FIELD],
    ['trailing space in a name', helloWith({ name: 'bob ' }), ProtocolErrorCode.INVALID_FIELD],
    ['leading no-break space in a name', helloWith({ name: '\u00a0bob' }), ProtocolErrorCode.INVALID_FIELD],
    ['trailing U+FEFF in a name', helloWith({ name: 'bob\ufeff' }), ProtocolErrorCode.INVALID_FIELD],
    ['a message that is not an object', null as unknown as Message, ProtocolErrorCode.INVALID_FIELD],
    [
      'a peer record that is not an object',
      { type: 'PEERS', peers: [null] } as unknown as Message,
      ProtocolErrorCode.INVALID_FIELD,
    ],
    [
      'control in a peer record name',
      { type: 'PEERS', peers: [{ peerId: PEER_A, name: 'bob\x7f', addrs: [], lastSeen: 0 }] },
      ProtocolErrorCode.INVALID_FIELD,
    ],
    ['reject code', { type: 'REJECT', code: -1, reason: '' }, ProtocolErrorCode.INVALID_FIELD],
    ['reason', { type: 'GOODBYE', reason: 'r'.repeat(257) }, ProtocolErrorCode.STRING_TOO_LONG],
    [
      'text',
      { type: 'TEXT', stream: STREAM, seq: SEQ, sentAt: 0, text: 't'.repeat(65_536) },
      ProtocolErrorCode.STRING_TOO_LONG,
    ],
    [
      'stream',
      { type: 'TEXT', stream: PEER_A, seq: 1, sentAt: 0, text: '' },
      ProtocolErrorCode.INVALID_FIELD,
    ],
    ['seq 0', { type: 'TEXT', stream: STREAM, seq: 0, sentAt: 0, text: '' }, ProtocolErrorCode.INVALID_FIELD],
    ['ack seq 0', { type: 'ACK_UPTO', stream: STREAM, seq: 0 }, ProtocolErrorCode.INVALID_FIELD],
    ['seq 2^53', { type: 'ACK', stream: STREAM, seq: 2 ** 53, status: 0 }, ProtocolErrorCode.INVALID_FIELD],
    [
      'unsafe sentAt',
      { type: 'TEXT', stream: STREAM, seq: SEQ, sentAt: 2 ** 53, text: '' },
      ProtocolErrorCode.INVALID_FIELD,
    ],
    [
      'fractional sentAt',
      { type: 'TEXT', stream: STREAM, seq: SEQ, sentAt: 1.5, text: '' },
      ProtocolErrorCode.INVALID_FIELD,
    ],
    [
      'negative sentAt',
      { type: 'TEXT', stream: STREAM, seq: SEQ, sentAt: -1, text: '' },
      ProtocolErrorCode.INVALID_FIELD,
    ],
    ['ack status', { type: 'ACK', stream: STREAM, seq: SEQ, status: 256 }, ProtocolErrorCode.INVALID_FIELD],
    ['nonce above u32', { type: 'PING', nonce: 2 ** 32 }, ProtocolErrorCode.INVALID_FIELD],
    ['NaN nonce', { type: 'PONG', nonce: Number.NaN }, ProtocolErrorCode.INVALID_FIELD],
    [
      'peer count',
      { type: 'PEERS', peers: Array(257).fill({ peerId: PEER_A, name: '', addrs: [], lastSeen: 0 }) },
      ProtocolErrorCode.LIST_TOO_LONG,
    ],
    [
      'peer address',
      { type: 'PEERS', peers: [{ peerId: PEER_A, name: '', addrs: ['a'.repeat(256)], lastSeen: 0 }] },
      ProtocolErrorCode.STRING_TOO_LONG,
    ],
    ['unknown type', { type: 'SHOUT' } as unknown as Message, ProtocolErrorCode.UNKNOWN_TYPE],
    ['string field of the wrong type', helloWith({ name: 42 } as never), ProtocolErrorCode.INVALID_FIELD],
  ] as [string, Message, ProtocolErrorCode][])('%s', (_, msg, code) => {
    expectProtocolError(() => encodeMessage(msg), code)
    expectProtocolError(() => encodedLength(msg), code)
  })

  it('names the field and the limit in the message', () => {
    const err = expectProtocolError(
      () => encodeMessage(helloWith({ name: 'x'.repeat(70) })),
      ProtocolErrorCode.STRING_TOO_LONG,
    )
    expect(err.message).toBe('name is 70 bytes of UTF-8, over the 64-byte limit')
  })
})

describe('decode rejects crafted bytes, one test per code', () => {
  it('EMPTY_FRAME: an empty body', () => {
    expectProtocolError(() => decodeMessage(new Uint8Array(0)), ProtocolErrorCode.EMPTY_FRAME)
  })

  it('INVALID_FIELD: a body that is not bytes (a JavaScript caller)', () => {
    expectProtocolError(() => decodeMessage(null as unknown as Uint8Array), ProtocolErrorCode.INVALID_FIELD)
    expectProtocolError(() => decodeMessage('30' as unknown as Uint8Array), ProtocolErrorCode.INVALID_FIELD)
  })

  it.each(['00', '04', '13', '3e', '7f', 'ff'])('UNKNOWN_TYPE: type byte %s', (type) => {
    expectProtocolError(() => decodeMessage(fromHex(type)), ProtocolErrorCode.UNKNOWN_TYPE)
  })

  it('TRUNCATED: a PING with a 3-byte nonce', () => {
    expectProtocolError(() => decodeMessage(fromHex('30 010203')), ProtocolErrorCode.TRUNCATED)
  })

  it.each(allTypes.filter((t) => t !== 'PEERS_REQUEST'))(
    'TRUNCATED: every proper prefix of a %s body',
    (type) => {
      const body = encodeMessage(samples[type])
      for (let end = 1; end < body.length; end++) {
        expectProtocolError(() => decodeMessage(body.subarray(0, end)), ProtocolErrorCode.TRUNCATED)
      }
    },
  )

  it('TRUNCATED: a string whose bytes are missing (length within the limit)', () => {
    expectProtocolError(() => decodeMessage(fromHex(`3f 0005 6869`)), ProtocolErrorCode.TRUNCATED)
  })

  it.each(allTypes)('TRAILING_BYTES: a %s body with one byte appended', (type) => {
    const body = encodeMessage(samples[type])
    const longer = new Uint8Array(body.length + 1)
    longer.set(body)
    expectProtocolError(() => decodeMessage(longer), ProtocolErrorCode.TRAILING_BYTES)
  })

  it.each([
    ['a lone continuation byte', '80'],
    ['an invalid byte', 'ff'],
    ['an overlong NUL', 'c080'],
    ['a UTF-8 encoded surrogate', 'eda080'],
    ['a sequence cut short', `${'61'.repeat(40)}e282`], // long: exercises the TextDecoder path
    ['a sequence cut short in a short string', '61e282'], // short: exercises the ASCII fast path
  ])('INVALID_UTF8: %s', (_, bytes) => {
    const body = fromHex(`3f ${u16hex(bytes.length / 2)} ${bytes}`)
    const err = expectProtocolError(() => decodeMessage(body), ProtocolErrorCode.INVALID_UTF8)
    expect(err.cause).toBeInstanceOf(Error)
  })

  it('INVALID_FIELD: a name with a control character or white space at an end, in HELLO and in PEERS; inner spaces and emoji are fine', () => {
    const hello = (name: string) => {
      const body = Buffer.from(encodeMessage(helloWith({ name: 'x' })))
      // The name is the only "x" field: swap its two bytes (length 1, "x") for the crafted name.
      const at = body.indexOf(Buffer.from('0001' + '78', 'hex'))
      return Buffer.concat([body.subarray(0, at), fromHex(strHex(name)), body.subarray(at + 3)])
    }
    for (const bad of ['eve\x1b[2J', 'bob\r', 'bob ', ' bob', '\u2066bob', 'bob\u0085']) {
      const err = expectProtocolError(() => decodeMessage(hello(bad)), ProtocolErrorCode.INVALID_FIELD)
      expect(err.message).toMatch(/^name (holds a control|starts or ends with white space)/)
    }
    const peers = `${u16hex(MessageType.PEERS).slice(2)}0001${PEER_A}${strHex('bob\x00')}0000${'00'.repeat(8)}`
    expectProtocolError(() => decodeMessage(fromHex(peers)), ProtocolErrorCode.INVALID_FIELD)
    for (const good of ['Ana María', 'zoë 👩‍👩‍👧', '']) {
      expect(decodeMessage(hello(good))).toMatchObject({ type: 'HELLO', name: good })
    }
  })

  it('keeps a leading byte order mark as text', () => {
    expect(decodeMessage(fromHex(`3f ${strHex('\uFEFFx')}`))).toEqual({ type: 'GOODBYE', reason: '\uFEFFx' })
  })

  it('STRING_TOO_LONG: checked on the length prefix, before the bytes (none follow here)', () => {
    const head = `01 0001 ${PEER_A}`
    expectProtocolError(() => decodeMessage(fromHex(`${head} 0041`)), ProtocolErrorCode.STRING_TOO_LONG)
    expectProtocolError(() => decodeMessage(fromHex('3f 0101')), ProtocolErrorCode.STRING_TOO_LONG)
    expectProtocolError(
      () => decodeMessage(fromHex(`10 ${MSG_ID} 0000000000000000 ffff`)),
      ProtocolErrorCode.TRUNCATED,
    )
  })

  it('LIST_TOO_LONG: checked on the count, before the items (none follow here)', () => {
    const head = `01 0001 ${PEER_A} ${strHex('alice')}`
    expectProtocolError(() => decodeMessage(fromHex(`${head} 0011`)), ProtocolErrorCode.LIST_TOO_LONG)
    expectProtocolError(() => decodeMessage(fromHex(`${head} 0000 0011`)), ProtocolErrorCode.LIST_TOO_LONG)
    expectProtocolError(() => decodeMessage(fromHex('21 0101')), ProtocolErrorCode.LIST_TOO_LONG)
  })

  it('INVALID_FIELD: a u64 above Number.MAX_SAFE_INTEGER, or a seq of 0', () => {
    const text = (u64: string) => fromHex(`10 ${MSG_ID} ${u64} 0000`)
    const seq = (u64: string) => fromHex(`12 ${STREAM} ${u64}`)
    expect(decodeMessage(seq('001fffffffffffff'))).toMatchObject({ seq: Number.MAX_SAFE_INTEGER })
    expectProtocolError(() => decodeMessage(seq('0020000000000000')), ProtocolErrorCode.INVALID_FIELD)
    expectProtocolError(() => decodeMessage(seq('0000000000000000')), ProtocolErrorCode.INVALID_FIELD)
    expect(decodeMessage(text('001fffffffffffff'))).toMatchObject({ sentAt: Number.MAX_SAFE_INTEGER })
    expectProtocolError(() => decodeMessage(text('0020000000000000')), ProtocolErrorCode.INVALID_FIELD)
    expectProtocolError(() => decodeMessage(text('ffffffffffffffff')), ProtocolErrorCode.INVALID_FIELD)
    const peers = fromHex(`21 0001 ${PEER_A} 0000 0000 0020000000000000`)
    expectProtocolError(() => decodeMessage(peers), ProtocolErrorCode.INVALID_FIELD)
  })

  it('accepts REJECT codes and ACK statuses it does not know', () => {
    expect(decodeMessage(fromHex('03 1234 0000'))).toEqual({ type: 'REJECT', code: 0x1234, reason: '' })
    expect(decodeMessage(fromHex(`11 ${MSG_ID} 7f`))).toEqual({
      type: 'ACK',
      stream: STREAM,
      seq: SEQ,
      status: 0x7f,
    })
  })
})

describe('peekHelloVersion', () => {
  it('reads the version of a v3 HELLO or WELCOME frame body: channel 0, then the message', () => {
    const hello = { ...samples.HELLO, version: 3 } as Message
    expect(peekHelloVersion(channelBody(0, hello))).toBe(3)
    expect(peekHelloVersion(channelBody(0, samples.WELCOME))).toBe(0xffff)
    // A body whose remainder it cannot decode, as a later version's HELLO may be.
    const future = fromHex('00 01 0004 ffffffff')
    expect(peekHelloVersion(future)).toBe(4)
    expectProtocolError(() => decodeMessage(future.subarray(1)), ProtocolErrorCode.TRUNCATED)
  })

  it('reads the version of a v1 or v2 HELLO, whose frame body had no channel byte', () => {
    // v2 HELLO as a v2 peer frames it: the body is the message itself.
    const v2 = encodeMessage({ ...samples.HELLO, version: 2 } as Message)
    expect(v2[0]).toBe(MessageType.HELLO)
    expect(peekHelloVersion(v2)).toBe(2)
    expect(peekHelloVersion(encodeMessage({ ...samples.WELCOME, version: 2 } as Message))).toBe(2)
    expect(peekHelloVersion(encodeMessage(samples.HELLO))).toBe(1)
    expect(peekHelloVersion(fromHex('01 0002'))).toBe(2)
  })

  it('does not take a frame on channel 1 or 2 for an old HELLO or WELCOME', () => {
    // `01 01 00 03`: a v3 frame on channel 1 whose message starts with 0x01 0x00, not a v1/v2 HELLO.
    expect(peekHelloVersion(fromHex('01 01 0003'))).toBeUndefined()
    expect(peekHelloVersion(fromHex('02 01 0003'))).toBeUndefined()
    expect(peekHelloVersion(channelBody(1, { ...samples.HELLO, version: 3 } as Message))).toBeUndefined()
    // Without a channel byte only versions 1 and 2 exist.
    expect(peekHelloVersion(fromHex('01 0003 00'))).toBeUndefined()
    expect(peekHelloVersion(fromHex('02 ffff 00'))).toBeUndefined()
  })

  it('returns undefined for other types and short bodies', () => {
    expect(peekHelloVersion(channelBody(0, { type: 'PING', nonce: 0x00010203 }))).toBeUndefined()
    expect(peekHelloVersion(encodeMessage({ type: 'PING', nonce: 0x00010203 }))).toBeUndefined()
    expect(peekHelloVersion(fromHex('00 01 00'))).toBeUndefined() // v3: the version is cut short
    expect(peekHelloVersion(fromHex('01 00'))).toBeUndefined() // v2: the same
    expect(peekHelloVersion(fromHex('00'))).toBeUndefined()
    expect(peekHelloVersion(new Uint8Array(0))).toBeUndefined()
    expect(peekHelloVersion(null as unknown as Uint8Array)).toBeUndefined()
  })
})

describe('ProtocolError', () => {
  it('is an Error with a name, a code and an optional cause', () => {
    const cause = new Error('underlying')
    const err = new ProtocolError(ProtocolErrorCode.TRUNCATED, 'body ends inside nonce', { cause })
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe('ProtocolError')
    expect(err.code).toBe('TRUNCATED')
    expect(err.cause).toBe(cause)
    expect(String(err)).toBe('ProtocolError: body ends inside nonce')
  })

  it('has one code per table entry, each equal to its key', () => {
    for (const [key, value] of Object.entries(ProtocolErrorCode)) expect(value).toBe(key)
  })
})

describe('utf8Length', () => {
  it('measures UTF-8 bytes, and an encode right after it of the same text gets the same size', () => {
    const text = 'é€😀'.repeat(1000)
    expect(utf8Length(text)).toBe(9000)
    const msg: Message = { type: 'TEXT', stream: STREAM, seq: SEQ, sentAt: 0, text }
    expect(encodedLength(msg)).toBe(1 + 16 + 8 + 2 + 9000)
    expect(encodedLength(msg)).toBe(1 + 16 + 8 + 2 + 9000)
    expect(decodeMessage(encodeMessage(msg))).toEqual(msg)
  })

  it('lends its figure only to an equal text', () => {
    utf8Length('a'.repeat(10))
    const msg: Message = { type: 'GOODBYE', reason: 'b'.repeat(20) }
    expect(encodedLength(msg)).toBe(1 + 2 + 20)
  })

  it('lends the bytes of a long text only to an equal text, which encodes as if never measured', () => {
    const measured = 'é'.repeat(2000)
    const other = 'ü'.repeat(2000) // same length, different bytes
    expect(utf8Length(measured)).toBe(4000)
    const msg: Message = { type: 'TEXT', stream: STREAM, seq: SEQ, sentAt: 0, text: other }
    expect(decodeMessage(encodeMessage(msg))).toEqual(msg)
    // Long after the measurement, and with another text encoded between: still its own bytes.
    const again: Message = { ...msg, text: `${measured}` }
    expect(decodeMessage(encodeMessage(again))).toEqual(again)
    expect(encodeMessage(again)).toEqual(encodeMessage({ ...again, text: `${'é'.repeat(1999)}é` }))
  })

  it('measures a long text with a lone surrogate as byteLength does, and encoding still refuses it', () => {
    const text = `${'a'.repeat(3000)}\ud800`
    expect(utf8Length(text)).toBe(Buffer.byteLength(text))
    expectProtocolError(
      () => encodeMessage({ type: 'TEXT', stream: STREAM, seq: SEQ, sentAt: 0, text }),
      'INVALID_UTF8',
    )
  })
})

describe('decoding streams', () => {
  it('reads each TEXT its own stream, when streams alternate or differ in one byte', () => {
    const streams = ['0011223344556677', '0011223344556678', '1011223344556677', '0011223344556677']
    for (const stream of streams) {
      const msg: Message = { type: 'TEXT', stream, seq: 1, sentAt: 0, text: '' }
      expect(decodeMessage(encodeMessage(msg))).toEqual(msg)
    }
  })

  it('writes and reads the right stream however two, three or four streams interleave', () => {
    // A conversation alternates its two streams (TEXT on one's own, ACK_UPTO on the other's); a third
    // or fourth stream between them must not be mistaken for either.
    const streams = ['00112233445566ff', 'ffeeddccbbaa9988', '00112233445566fe', '7fffffff80000000']
    const order = [0, 1, 0, 1, 1, 0, 2, 0, 1, 2, 1, 3, 2, 0, 0, 3, 1, 2, 3, 0]
    for (const [i, k] of order.entries()) {
      const stream = streams[k]!
      const text: Message = { type: 'TEXT', stream, seq: i + 1, sentAt: i, text: `m${i}` }
      const ack: Message = { type: 'ACK_UPTO', stream, seq: i + 1 }
      const encoded = encodeMessage(i % 2 === 0 ? text : ack)
      // Bytes 1–8 are the stream, whichever message carries it.
      expect(hexOf(encoded.subarray(1, 9))).toBe(stream)
      expect(decodeMessage(encoded)).toEqual(i % 2 === 0 ? text : ack)
    }
  })

  it('refuses an empty stream even before any stream was written, and reads all-zero bytes as a stream', async () => {
    // A fresh copy of the codec: its stream cache is still empty.
    vi.resetModules()
    const fresh = await import('../src/index.js')
    expect(() => fresh.encodeMessage({ type: 'ACK_UPTO', stream: '', seq: 1 })).toThrowError(/stream must be/)
    const zeros: Message = { type: 'ACK_UPTO', stream: '0000000000000000', seq: 1 }
    expect(fresh.decodeMessage(fresh.encodeMessage(zeros))).toEqual(zeros)
  })
})
