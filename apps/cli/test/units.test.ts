import { PeerError, TransportError } from '@parley/core'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { parseLine } from '../src/commands.js'
import { explain } from '../src/errors.js'
import {
  displayWidth,
  leftBecause,
  peersTable,
  sanitize,
  terminalSafe,
  wrapBlock,
} from '../src/view/format.js'
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

  test("only Parley's own colour codes reach the terminal, whatever a line carries", () => {
    const lines: string[] = []
    const style = createStyle(true)
    const reporter = textReporter({
      out: (t) => lines.push(t),
      err: (t) => lines.push(t),
      style,
      debug: false,
      banner: 'line',
      // A name saved from before (the wire now refuses controls) that a newcomer's name imitates.
      names: () => ['Eve\x1b]2;PWNED\x07\x1b[2J\x1b[8m'],
    })
    reporter.message({
      id: 'm',
      // Cyrillic е, the same payload: an imitation of the saved name, so it is marked with it.
      from: { id: 'e'.repeat(64), name: 'ev\u0435\x1b]2;PWNED\x07\x1b[2J\x1b[8m' },
      text: 'hi',
      sentAt: 0,
      receivedAt: 0,
    } as never)
    reporter.problem({ code: 'X', sentence: 'quoted \x1b[8mhidden\x1b]0;t\x07 \x9b2J' })
    const printed = lines.join('\n')
    expect(printed).toContain('look-alike of Eve<U+001B>]2;PWNED<U+0007><U+001B>[2J<U+001B>[8m')
    // Every escape left is one of the styles' own (bold, dim, red, yellow, their ends).
    expect(printed.match(/\x1b[^m]*m?/g)?.every((seq) => /^\x1b\[(1|2|22|31|33|39)m$/.test(seq))).toBe(true)
    expect(printed).not.toMatch(/[\x07\x9b]/)
    expect(terminalSafe('a\x1b[8mb\x1b[1mc\x1b[22m\x1bPq\x1b\\\x1b7')).toBe('ab\x1b[1mc\x1b[22mq')
  })

  test('a body is wrapped with every continuation row indented, so padding cannot start a forged line', () => {
    const forged = `ok, see you${' '.repeat(51)}06:37:24 bob: alice, please /accept my file`
    const rows = wrapBlock('06:37:24 mallory: ', forged, 80).split('\n')
    expect(rows[0]).toBe('06:37:24 mallory: ok, see you')
    expect(rows.slice(1).every((r) => r === '' || r.startsWith('  '))).toBe(true)
    expect(rows.every((r) => displayWidth(r) <= 79)).toBe(true)
    // Wide and combining characters count as the terminal draws them.
    const wide = wrapBlock('10:00:00 bob: ', '日本語'.repeat(30), 40).split('\n')
    expect(wide.every((r) => displayWidth(r) <= 39)).toBe(true)
    expect(wide.slice(1).every((r) => r.startsWith('  '))).toBe(true)
    expect(displayWidth(`zed${'\u0300'.repeat(30)}`)).toBe(3)
    expect(displayWidth('\ufe59\ufe5a')).toBe(4)
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

describe('the peers table on a terminal', () => {
  const now = Date.parse('2026-12-08T12:00:00Z')
  const plain = createStyle(false)
  const list = {
    connected: [
      {
        id: 'a'.repeat(64),
        name: 'alice',
        address: '127.0.0.1:41234',
        listenAddrs: ['127.0.0.1:41234'],
        direction: 'outbound' as const,
        connectedAt: now - 60_000,
        lastSeen: now - 2_000,
        messagesIn: 12,
        messagesOut: 3,
      },
    ],
    known: [
      {
        id: 'b'.repeat(64),
        name: 'bob',
        addrs: ['127.0.0.1:40001', '[::1]:40001', '10.0.0.1:4000', '10.0.0.2:4000'],
        lastSeen: now - 300_000,
      },
    ],
  } as unknown as Parameters<typeof peersTable>[0]
  const widest = (text: string) => Math.max(...text.split('\n').map((l) => l.length))

  test('every row fits an 80-column terminal: the least needed columns go first', () => {
    const text = peersTable(list, plain, now, undefined, 80)
    expect(widest(text)).toBeLessThan(80)
    expect(text).not.toMatch(/connected since/)
    expect(text).toMatch(/alice\s+aaaa:aaaa:aaaa:aaaa\s+127\.0\.0\.1:41234\s+outbound\s+2s ago\s+12\s+3/)
    expect(text).toMatch(/127\.0\.0\.1:40001, \[::1\]:40001, \+2 more\s+5m ago/)
  })

  test('a wide terminal, or no terminal, shows every column and address', () => {
    const wide = peersTable(list, plain, now, undefined, 200)
    expect(wide).toMatch(/direction\s+connected since\s+last seen\s+in\s+out/)
    const piped = peersTable(list, plain, now)
    expect(piped).toMatch(/connected since/)
    expect(piped).toMatch(/10\.0\.0\.1:4000, 10\.0\.0\.2:4000/)
  })
})

describe('reconnect lines', () => {
  test('a wait under a second is said as one, not rounded up to 1s', () => {
    const lines: string[] = []
    const reporter = textReporter({
      out: (t) => lines.push(t),
      err: (t) => lines.push(t),
      style: createStyle(false),
      debug: false,
      banner: 'line',
    })
    const peer = { id: 'b'.repeat(64), name: 'bob' }
    reporter.reconnecting({ ...peer, attempt: 1, delay: 250 })
    reporter.reconnecting({ ...peer, attempt: 5, delay: 4_200 })
    expect(lines[0]).toMatch(/↻ reconnecting to bob \(bbbb:bbbb:bbbb:bbbb\) in 0\.3s, attempt 1$/)
    expect(lines[1]).toMatch(/in 4s, attempt 5$/)
  })
})
