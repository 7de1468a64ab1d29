import { PeerError, TransportError } from '@parley/core'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { parseLine } from '../src/commands.js'
import { explain } from '../src/errors.js'
import { leftBecause, sanitize } from '../src/view/format.js'
import { textReporter } from '../src/view/reporter.js'
import { colorEnabled, createStyle } from '../src/view/style.js'

describe('line commands', () => {
  test('parse', () => {
    expect(parseLine('send bob hello there')).toEqual({ name: 'send', target: 'bob', text: 'hello there' })
    expect(parseLine('  SEND 127.0.0.1:4000   hi  ')).toEqual({
      name: 'send',
      target: '127.0.0.1:4000',
      text: 'hi',
    })
    expect(parseLine('send "bob smith" hi')).toEqual({ name: 'send', target: 'bob smith', text: 'hi' })
    expect(parseLine('send ab12:cd34 a\\nb \\\\n')).toEqual({
      name: 'send',
      target: 'ab12:cd34',
      text: 'a\nb \\n',
    })
    expect(parseLine('broadcast hi all')).toEqual({ name: 'broadcast', text: 'hi all' })
    expect(parseLine('peers')).toEqual({ name: 'peers' })
    expect(parseLine('connect [::1]:4000')).toEqual({ name: 'connect', address: '[::1]:4000' })
    expect(parseLine('connect-all')).toEqual({ name: 'connect-all' })
    expect(parseLine('quit')).toEqual({ name: 'quit' })
    expect(parseLine('')).toBeUndefined()
    expect(parseLine('# a comment')).toBeUndefined()
    for (const bad of ['send', 'send bob', 'broadcast', 'connect', 'connect a b', 'dance']) {
      expect(parseLine(bad)).toHaveProperty('error')
    }
  })

  test('never throws, whatever the line', () => {
    fc.assert(fc.property(fc.string(), (s) => parseLine(s) === undefined || typeof parseLine(s) === 'object'))
  })
})

describe('errors become one sentence, chosen by code', () => {
  test('transport and peer codes', () => {
    const refused = new PeerError('DIAL_FAILED', 'x', {
      cause: new TransportError('CONNECTION_REFUSED', 'x', {
        cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }),
      }),
    })
    expect(explain(refused, { address: 'h:1' }).sentence).toBe(
      'h:1 refused the connection — is a peer listening there?',
    )
    expect(explain(refused, { address: 'h:1' }).code).toBe('DIAL_FAILED')
    const dns = new PeerError('DIAL_FAILED', 'x', {
      cause: new TransportError('CONNECTION_REFUSED', 'x', {
        cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }),
      }),
    })
    expect(explain(dns, { address: 'nope.invalid:1' }).sentence).toMatch(
      /cannot find the host of nope\.invalid:1/,
    )
    expect(
      explain(new TransportError('ADDRESS_IN_USE', 'x'), { address: '127.0.0.1:4000', port: 4000 }).sentence,
    ).toBe('port 4000 is in use — pick another with --port (0 picks any free port)')
    const notLocal = new TransportError('INVALID_ADDRESS', 'x', {
      cause: Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' }),
    })
    expect(explain(notLocal, { address: '10.9.9.9:0', port: 0 }).sentence).toMatch(
      /not an address of this machine — check --host/,
    )
    expect(explain(new PeerError('MESSAGE_TOO_LONG', 'x')).sentence).toMatch(
      /too long — the limit is 65535 bytes/,
    )
    expect(explain(new PeerError('ACK_TIMEOUT', 'x'), { target: 'bob' }).sentence).toBe(
      'bob did not acknowledge the message in time',
    )
    expect(explain(new PeerError('REJECTED', 'x'), { address: 'h:1' }).sentence).toBe(
      'h:1 refused the connection',
    )
    expect(explain(new Error('first line\nsecond')).sentence).toBe('first line')
  })

  test('the message text never decides: same code, different text, same sentence', () => {
    fc.assert(
      fc.property(fc.string(), (message) => {
        return (
          explain(new PeerError('PEER_GONE', message), { target: 'bob' }).sentence ===
          'bob disconnected before acknowledging the message'
        )
      }),
    )
  })
})

describe('terminal safety and colour', () => {
  test('remote text cannot carry escape sequences, other controls or bidi overrides', () => {
    expect(sanitize('hi\x1b[2J\x1b]0;pwned\x07 there\u202e')).toBe('hi[2J]0;pwned there')
    expect(sanitize('a\nb\tc\r\n', true)).toBe('a\nb  c\n')
    expect(sanitize('a\nb')).toBe('a b')
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        (s) => !/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(sanitize(s, true)),
      ),
      { numRuns: 200 },
    )
  })

  test('leave reasons read as words', () => {
    expect(leftBecause('goodbye', 'peer is shutting down')).toBe('said goodbye (peer is shutting down)')
    expect(leftBecause('timeout', '')).toBe('stopped answering')
    expect(leftBecause('connection-lost', 'reset')).toBe('connection lost (reset)')
  })

  test('colour only on a terminal, never with NO_COLOR or --no-color', () => {
    expect(colorEnabled({ isTTY: true }, {})).toBe(true)
    expect(colorEnabled({ isTTY: undefined }, {})).toBe(false)
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false)
    expect(colorEnabled({ isTTY: true }, {}, false)).toBe(false)
    expect(colorEnabled({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true)
    expect(colorEnabled({ isTTY: true }, { FORCE_COLOR: '0' })).toBe(false)
    expect(createStyle(false)('red', 'x')).toBe('x')
    expect(createStyle(true)('red', 'x')).toBe('\x1b[31mx\x1b[39m')
  })
})

describe('the start banner', () => {
  const info = {
    id: 'ab'.repeat(32),
    name: 'alice',
    addresses: ['127.0.0.1:4000', '[::1]:4000'],
    version: '0.1.0',
    dataDir: undefined,
  }
  const banner = (kind: 'full' | 'line') => {
    let out = ''
    const r = textReporter({
      out: (t) => {
        out += `${t}\n`
      },
      err: () => {},
      style: createStyle(false),
      debug: false,
      banner: kind,
      now: () => 0,
    })
    r.ready(info)
    return out
  }

  test('lists every address it listens on (IPv4 and IPv6), the first one where scripts read it', () => {
    const full = banner('full')
    expect(full).toMatch(/^ {2}listening on {2}127\.0\.0\.1:4000\n {16}\[::1\]:4000\n {2}fingerprint/m)
    const line = banner('line')
    expect(line).toMatch(/listening on 127\.0\.0\.1:4000, \[::1\]:4000 as alice \(/)
    // The test helper's address() reads the first address of either banner.
    for (const text of [full, line])
      expect(/listening on\s+(\S+?),?\s/.exec(text)?.[1]).toBe('127.0.0.1:4000')
  })
})
