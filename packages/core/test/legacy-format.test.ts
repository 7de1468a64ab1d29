import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LegacyError } from '../src/legacy/errors.js'
import {
  encodeLegacyMessage,
  isLegacyFirstByte,
  LEGACY_MAX_MESSAGE_BYTES,
  normalizeLegacyPeerAddress,
  parseLegacyAddress,
  parseLegacyMessage,
} from '../src/legacy/format.js'

const bytes = (s: string) => new TextEncoder().encode(s)
const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'))

describe('parseLegacyMessage', () => {
  it('reads a chat message whose text has spaces', () => {
    expect(parseLegacyMessage(bytes('127.0.0.1:5001 alice hello there'))).toEqual({
      ok: true,
      message: { kind: 'chat', address: '127.0.0.1:5001', name: 'alice', text: 'hello there' },
    })
  })

  it('reads connect and exit in any case, compared to the whole text', () => {
    const kind = (s: string) => {
      const r = parseLegacyMessage(bytes(s))
      return r.ok ? r.message.kind : r.code
    }
    expect(kind('10.0.0.2:4000 bob connect')).toBe('connect')
    expect(kind('10.0.0.2:4000 bob CoNnEcT')).toBe('connect')
    expect(kind('10.0.0.2:4000 bob EXIT')).toBe('exit')
    expect(kind('10.0.0.2:4000 bob exit now')).toBe('chat')
    expect(kind('10.0.0.2:4000 bob connect ')).toBe('chat')
  })

  it('takes bracketed IPv6 and lowercases it', () => {
    const r = parseLegacyMessage(bytes('[::1]:5001 alice hi'))
    expect(r).toMatchObject({ ok: true, message: { address: '[::1]:5001' } })
    expect(parseLegacyAddress('[FE80::1]:9')).toBe('[fe80::1]:9')
  })

  it('takes exactly 1024 bytes and refuses 1025', () => {
    const head = '127.0.0.1:5001 alice '
    const fits = head + 'x'.repeat(LEGACY_MAX_MESSAGE_BYTES - head.length)
    expect(parseLegacyMessage(bytes(fits)).ok).toBe(true)
    expect(parseLegacyMessage(bytes(`${fits}x`))).toMatchObject({ ok: false, code: 'TOO_LONG' })
  })

  // One crafted input per drop code; the parser reports, it never throws.
  it.each([
    ['EMPTY', new Uint8Array(0)],
    ['INVALID_UTF8', hex('31 32 37 2e 30 2e 30 2e 31 3a 31 20 61 20 c0 80')], // overlong NUL in the text
    ['INVALID_UTF8', hex('31 3a 31 20 61 20 ff')],
    ['MALFORMED', bytes('127.0.0.1:5001')],
    ['MALFORMED', bytes('127.0.0.1:5001 alice')],
    ['MALFORMED', bytes('127.0.0.1:5001 alice ')],
    ['MALFORMED', bytes('127.0.0.1:5001  hello')],
    ['INVALID_ADDRESS', bytes('localhost:5001 alice hi')],
    ['INVALID_ADDRESS', bytes('GET / HTTP/1.1\r\n\r\n')],
    ['INVALID_ADDRESS', bytes('0.0.0.0:5001 alice hi')],
    ['INVALID_ADDRESS', bytes('127.0.0.1:0 alice hi')],
    ['INVALID_ADDRESS', bytes('127.0.0.1:65536 alice hi')],
    ['INVALID_ADDRESS', bytes('127.0.0.01:5001 alice hi')],
    ['INVALID_ADDRESS', bytes('256.0.0.1:5001 alice hi')],
    ['INVALID_ADDRESS', bytes('127.0.0.1 alice hi')],
    ['INVALID_ADDRESS', bytes('::1:5001 alice hi')],
    ['INVALID_ADDRESS', bytes('[::]:5001 alice hi')],
    ['INVALID_NAME', bytes(`127.0.0.1:5001 ${'n'.repeat(65)} hi`)],
    ['INVALID_NAME', bytes('127.0.0.1:5001 al\x1bice hi')],
    ['INVALID_NAME', bytes('127.0.0.1:5001 al\tice hi')],
  ])('drops %s: %j', (code, input) => {
    const r = parseLegacyMessage(input)
    expect(r).toMatchObject({ ok: false, code })
    if (!r.ok) expect(r.reason).toMatch(/\w/)
  })

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1100 }), (input) => {
        const r = parseLegacyMessage(input)
        expect(typeof r.ok).toBe('boolean')
      }),
    )
  })
})

describe('encodeLegacyMessage', () => {
  it('writes "<ip>:<port> <name> <text>" in UTF-8', () => {
    expect(
      Buffer.from(
        encodeLegacyMessage({ address: '127.0.0.1:5000', name: 'zoë', text: 'hi there' }),
      ).toString(),
    ).toBe('127.0.0.1:5000 zoë hi there')
  })

  it('refuses, never splits, a string over 1024 bytes — counting UTF-8 bytes, not characters', () => {
    const head = '127.0.0.1:5000 alice '
    const text = 'é'.repeat((LEGACY_MAX_MESSAGE_BYTES - head.length) / 2 + 1) // 2 bytes each
    const err = (() => {
      try {
        encodeLegacyMessage({ address: '127.0.0.1:5000', name: 'alice', text })
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(LegacyError)
    expect((err as LegacyError).code).toBe('MESSAGE_TOO_LONG')
    expect(
      encodeLegacyMessage({ address: '127.0.0.1:5000', name: 'alice', text: 'x'.repeat(1024 - head.length) }),
    ).toHaveLength(1024)
  })

  it.each([
    ['INVALID_ADDRESS', { address: '0.0.0.0:5000', name: 'a', text: 'hi' }],
    ['INVALID_ADDRESS', { address: 'localhost:5000', name: 'a', text: 'hi' }],
    ['INVALID_NAME', { address: '127.0.0.1:5000', name: 'two words', text: 'hi' }],
    ['INVALID_NAME', { address: '127.0.0.1:5000', name: '', text: 'hi' }],
    ['INVALID_TEXT', { address: '127.0.0.1:5000', name: 'a', text: '' }],
    ['INVALID_TEXT', { address: '127.0.0.1:5000', name: 'a', text: 'lone \ud800' }],
  ])('refuses with %s: %j', (code, message) => {
    expect(() => encodeLegacyMessage(message)).toThrow(expect.objectContaining({ code }))
  })

  it('round-trips through the parser', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_.\-é]{1,20}$/)
    const text = fc.string({ minLength: 1, maxLength: 200 }).filter((t) => !/^(connect|exit)$/i.test(t))
    fc.assert(
      fc.property(name, text, fc.integer({ min: 1, max: 65_535 }), (n, t, port) => {
        const address = `192.168.1.7:${port}`
        const r = parseLegacyMessage(encodeLegacyMessage({ address, name: n, text: t }))
        expect(r).toEqual({ ok: true, message: { kind: 'chat', address, name: n, text: t } })
      }),
    )
  })
})

describe('telling legacy from Parley', () => {
  it('Parley starts with 0x00 (Noise message 1: 00 20); a legacy string with printable ASCII', () => {
    expect(isLegacyFirstByte(0x00)).toBe(false)
    for (const c of '0123456789[abzABZ') expect(isLegacyFirstByte(c.charCodeAt(0))).toBe(true)
    for (const b of [0x20, 0x7f, 0x80, 0xff, 0x0a]) expect(isLegacyFirstByte(b)).toBe(false)
  })
})

describe('normalizeLegacyPeerAddress', () => {
  it('takes host names for peers we dial, and refuses what cannot be dialed', () => {
    expect(normalizeLegacyPeerAddress(' LocalHost:5001 ')).toBe('localhost:5001')
    expect(normalizeLegacyPeerAddress('[::1]:5001')).toBe('[::1]:5001')
    for (const bad of ['127.0.0.1', '127.0.0.1:0', 'a b:1', '::1:5001']) {
      expect(() => normalizeLegacyPeerAddress(bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_ADDRESS' }),
      )
    }
  })
})
