import { badFileError, FilesError, FilesErrorCode } from '@parley/files'
import { describe, expect, test } from 'vitest'
import { splitPeerAndPath } from '../src/chat/chat.js'
import { parseChatLine } from '../src/chat/chat-commands.js'
import { parseLine } from '../src/commands.js'
import { explainFileError } from '../src/files/file-errors.js'
import { fileLine, formatBytes, formatDuration, progressText } from '../src/files/file-report.js'
import { offerId, offersNamed } from '../src/files/offer-ids.js'
import { sanitize } from '../src/view/format.js'
import { jsonReporter } from '../src/view/reporter.js'
import { createStyle } from '../src/view/style.js'

const plain = { style: createStyle(false), who: (p: { name: string }) => p.name, slash: true, now: () => 0 }

describe('file commands and lines', () => {
  test('send-file, accept, decline and files parse as lines and as slash commands', () => {
    expect(parseLine('send-file bob ./a.txt')).toEqual({ name: 'send-file', target: 'bob', path: './a.txt' })
    expect(parseLine('send-file "bob smith" "my photo.jpg"')).toEqual({
      name: 'send-file',
      target: 'bob smith',
      path: 'my photo.jpg',
    })
    expect(parseLine('send-file bob')).toEqual({ error: 'usage: send-file <peer> <path>' })
    expect(parseLine('accept')).toEqual({ name: 'accept', id: undefined })
    expect(parseLine('decline 1a2b')).toEqual({ name: 'decline', id: '1a2b' })
    expect(parseLine('accept a b')).toEqual({ error: 'usage: accept [id]' })
    expect(parseLine('files')).toEqual({ name: 'files' })
    expect(parseChatLine('/send-file bob x.bin')).toEqual({
      kind: 'command',
      name: 'send-file',
      arg: 'bob x.bin',
    })
    expect(parseChatLine('/acc 1a2b')).toEqual({ kind: 'command', name: 'accept', arg: '1a2b' })
    expect(splitPeerAndPath('bob ./a b.jpg')).toEqual({ peer: 'bob', path: './a b.jpg' })
    expect(splitPeerAndPath('"bob smith" "x y"')).toEqual({ peer: 'bob smith', path: 'x y' })
    expect(splitPeerAndPath('bob')).toBeUndefined()
  })

  test('a look-alike offer sharing the first 8 hex digits does not make a real offer unnameable', () => {
    const real = { root: `1a2b3c4d5e${'0'.repeat(54)}` }
    const fake = { root: `1a2b3c4d6f${'0'.repeat(54)}` }
    const other = { root: `99${'0'.repeat(62)}` }
    const roots = [real, fake, other].map((o) => o.root)
    expect(offerId(real.root, roots)).toBe('1a2b3c4d5')
    expect(offerId(fake.root, roots)).toBe('1a2b3c4d6')
    expect(offerId(other.root, roots)).toBe('99000000')
    // The id shown names exactly one offer; the whole root always does (the menu answers with it).
    expect(offersNamed([real, fake, other], offerId(real.root, roots))).toEqual([real])
    expect(offersNamed([real, fake, other], real.root.toUpperCase())).toEqual([real])
    expect(offersNamed([real, fake, other], '1a2b3c4d')).toEqual([real, fake])
    // Even a root that is a prefix of nothing else but shares 63 digits: the whole root.
    const twin = { root: `${real.root.slice(0, 63)}f` }
    expect(offerId(real.root, [real.root, twin.root])).toBe(real.root)
    expect(offersNamed([real, twin], real.root)).toEqual([real])
  })

  test('every file error code has its own sentence (a new code is not left to the generic one)', () => {
    const reasons = Object.values(FilesErrorCode).map(
      (code) => explainFileError({ name: 'FilesError', code }, { peer: 'bob', path: 'a.bin' }).reason,
    )
    expect(new Set(reasons).size).toBe(reasons.length)
    expect(explainFileError({ name: 'FilesError', code: 'SERVE_LIMIT' }, { peer: 'bob' })).toEqual({
      code: 'SERVE_LIMIT',
      reason: 'bob fetched the file too many times over, so sending it was stopped',
    })
  })

  test('a file that cannot be sent says why: missing, not allowed, a folder, too large', () => {
    const bad = (err: FilesError) => explainFileError(err, { path: 'a.bin' }).reason
    const system = (code: string) => Object.assign(new Error(code), { code })
    expect(bad(badFileError('cannot open a.bin', system('ENOENT')))).toBe('there is no such file')
    expect(bad(badFileError('cannot open a.bin', system('EACCES')))).toBe('permission denied')
    expect(bad(new FilesError('BAD_FILE', 'x', { reason: 'not-regular' }))).toBe('it is not a regular file')
    expect(bad(new FilesError('BAD_FILE', 'x', { reason: 'folder' }))).toBe('it is a folder')
    expect(bad(new FilesError('BAD_FILE', 'x', { reason: 'too-large' }))).toMatch(/it is too large to share/)
    expect(bad(badFileError('cannot read a.bin', system('EIO')))).toBe('it could not be read (EIO)')
  })

  test('a failure names a hostile peer without its terminal controls, whatever the error', () => {
    const peer = 'ev\u001b[2Jil\u202e'
    const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })
    for (const err of [refused, new Error('boom'), { name: 'FilesError', code: 'DECLINED' }]) {
      expect(explainFileError(err, { peer }).reason).not.toMatch(/[\u001b\u202e]/)
    }
    expect(explainFileError(refused, { peer }).reason).toContain('ev[2Jil')
  })

  test('remote text loses the controls @parley/files keeps out of names: marks, separators too', () => {
    expect(sanitize('a\u200eb\u200fc\u061cd\u2028e\u2029f')).toBe('abcdef')
    expect(sanitize('x\u202ey\u2066z\u2069', true)).toBe('xyz')
  })

  test('sizes, durations and progress read like a file manager', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(3_100_000)).toBe('3.1 MB')
    expect(formatBytes(250_000_000_000)).toBe('250 GB')
    // Rounding never shows 1000 of a unit, nor "100.0".
    expect(formatBytes(999_999)).toBe('1.0 MB')
    expect(formatBytes(999_499)).toBe('999 kB')
    expect(formatBytes(99_960)).toBe('100 kB')
    expect(formatBytes(99_940)).toBe('99.9 kB')
    expect(formatBytes(999_960_000_000)).toBe('1.0 TB')
    expect(formatBytes(5_000_000_000_000_000)).toBe('5000 TB')
    expect(formatDuration(7)).toBe('0:07')
    expect(formatDuration(3723)).toBe('1:02:03')
    expect(formatDuration(undefined)).toBe('?')
    expect(
      progressText({
        kind: 'progress',
        direction: 'in',
        id: '1a2b3c4d',
        name: 'photo.jpg',
        bytes: 43,
        size: 100,
        rate: 12_300_000,
        secondsLeft: 7,
      }),
    ).toBe('↓ photo.jpg 43% 12.3 MB/s 0:07 left')
    // Nothing came for a while (the sender vanished): no stale rate or time left.
    const sending = {
      kind: 'progress' as const,
      direction: 'out' as const,
      id: '1a2b3c4d',
      name: 'a.zip',
      bytes: 5,
      size: 100,
      rate: 1_000,
      secondsLeft: 95,
    }
    expect(progressText(sending, true)).toBe('↑ a.zip 5% waiting for the receiver')
  })

  test('remote names print without control characters; the NDJSON keeps them exact (JSON escapes them)', () => {
    const offer = {
      kind: 'offer' as const,
      id: '1a2b3c4d',
      root: '1a2b3c4d'.padEnd(64, '0'),
      name: 'x_[2Jy.txt',
      offeredName: '../x\x1b[2Jy.txt',
      size: 2048,
      from: { id: 'ab'.repeat(32), name: 'eve\x1b]0;owned\x07' },
    }
    const text = fileLine(
      { ...offer, expiresInSeconds: 60 },
      { ...plain, who: (p) => p.name.replace(/[\x00-\x1f]/g, '') },
    )
    expect(text?.text).toBe(
      '00:00:00 ⇣ eve]0;owned offers x_[2Jy.txt (offered as "../x[2Jy.txt") (2.0 kB) — /accept 1a2b3c4d or /decline 1a2b3c4d (expires in 60 s)'.replace(
        '00:00:00',
        text!.text.slice(0, 8),
      ),
    )
    expect(text?.text).not.toMatch(/[\x00-\x1f\x7f]/)
    // In the numbered menu, commands cannot be typed: the hint names the menu item instead.
    const inMenu = fileLine({ ...offer, expiresInSeconds: 60 }, { ...plain, who: (p) => p.name, menu: true })
    expect(inMenu?.text).toMatch(/ — menu 8 \(Files\) accepts or declines it \(expires in 60 s\)$/)
    expect(inMenu?.text).not.toContain('/accept')
    const lines: string[] = []
    jsonReporter((l) => lines.push(l), false).file({ ...offer, expiresInSeconds: 60 })
    const event = JSON.parse(lines[0]!) as Record<string, unknown>
    expect(event).toMatchObject({
      type: 'file:offer',
      id: '1a2b3c4d',
      offeredName: '../x\x1b[2Jy.txt',
      size: 2048,
    })
  })
})

describe('a download cut short by quitting', () => {
  test('says how far it got and whether it can resume', () => {
    const paused = { kind: 'paused' as const, id: '1a2b3c4d', name: 'huge.bin', bytes: 27, size: 100 }
    const style = createStyle(false)
    const init = { style, who: (p: { name: string }) => p.name, slash: true }
    expect(fileLine({ ...paused, resumable: true }, init)?.text).toMatch(
      /receiving huge\.bin stopped at 27% as you quit — it resumes when you start again with the same --data-dir$/,
    )
    expect(fileLine({ ...paused, resumable: false }, init)?.text).toMatch(
      /it cannot resume: there is no --data-dir$/,
    )
    const lines: string[] = []
    jsonReporter((l) => lines.push(l), false).file({ ...paused, resumable: false })
    expect(JSON.parse(lines[0]!)).toMatchObject({
      type: 'file:paused',
      bytes: 27,
      size: 100,
      resumable: false,
    })
  })
})
