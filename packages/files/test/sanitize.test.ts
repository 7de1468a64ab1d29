import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { insideDir, numberedName, sanitizeName } from '../src/index.js'
import { publish, reservePart } from '../src/sanitize.js'
import { tempDir } from './helpers.js'

describe('sanitizeName', () => {
  const table: [offered: string, saved: string][] = [
    ['photo.jpg', 'photo.jpg'],
    ['../../x', 'x'],
    ['..', 'file'],
    ['.', 'file'],
    ['...', 'file'],
    ['', 'file'],
    ['/etc/passwd', 'passwd'],
    ['C:\\Windows\\system32\\drivers\\etc\\hosts', 'hosts'],
    ['..\\..\\boot.ini', 'boot.ini'],
    ['dir/', 'dir'],
    ['con', '_con'],
    ['CON', '_CON'],
    ['nul.txt', '_nul.txt'],
    ['Com1.tar.gz', '_Com1.tar.gz'],
    ['lpt9', '_lpt9'],
    ['COM¹', '_COM¹'],
    ['conin$', '_conin$'],
    ['nul .txt', '_nul .txt'],
    ['CON  ', '_CON'],
    ['aux...', '_aux'],
    ['com9 .tar.gz', '_com9 .tar.gz'],
    ['x.parley-part', 'x_parley-part'],
    ['X.PARLEY-PART', 'X_parley-part'],
    ['console.log', 'console.log'],
    ['a\u0000b', 'a_b'],
    ['line\nbreak\r.txt', 'line_break_.txt'],
    ['\u001b[31mred\u001b[0m.txt', '_[31mred_[0m.txt'],
    ['evil\u202Etxt.exe', 'evil_txt.exe'],
    ['bell\u0007\u007f\u0085', 'bell___'],
    ['arabic\u061cmark.txt', 'arabic_mark.txt'],
    ['isolate\u2067gpj.exe', 'isolate_gpj.exe'],
    ['two\u2028lines\u2029.txt', 'two_lines_.txt'],
    ['what?.txt', 'what_.txt'],
    ['a<b>c:d"e|f*g', 'a_b_c_d_e_f_g'],
    ['trailing. . ', 'trailing'],
    ['  leading', 'leading'],
    ['Zoë.txt', 'Zoë.txt'],
    ['Zoe\u0308.txt', 'Zoë.txt'],
    ['inv\u200Boice.pdf', 'invoice.pdf'],
    ['\uFEFFfile.txt', 'file.txt'],
    ['invoice.pdf\u3164\u3164\u3164.exe', 'invoice.pdf.exe'],
    ['soft\u00ADhyphen.txt', 'softhyphen.txt'],
    ['file.txt\u00a0', 'file.txt'],
    ['\u3000\u2003lead.txt', 'lead.txt'],
    ['trail.txt\u2009.\u202f', 'trail.txt'],
    ['con\u200B.txt', '_con.txt'],
    ['e\u034F\u0301.txt', 'é.txt'],
  ]
  it.each(table)('%j is saved as %j', (offered, saved) => {
    expect(sanitizeName(offered)).toBe(saved)
  })

  it('keeps a long name under 200 bytes with its extension, without splitting a character', () => {
    const name = sanitizeName(`${'é'.repeat(300)}.tar`)
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(200)
    expect(name.endsWith('é.tar')).toBe(true)
    expect(name).toBe(name.normalize('NFC'))
  })

  it('a long name is cut from the middle, so it ends as offered even when its extension is long', () => {
    expect(sanitizeName(`${'x'.repeat(199)}.${'y'.repeat(40)}`)).toBe(`${'x'.repeat(168)}${'y'.repeat(32)}`)
    // Dropping an extension too long to keep would have saved this as `Q3-report-AAA….exe`.
    const braille = sanitizeName(`Q3-report-${'A'.repeat(200)}.exe.pdf${'\u2800'.repeat(12)}`)
    expect(braille.endsWith('A.pdf')).toBe(true)
    expect(sanitizeName(`report.exe.${'x'.repeat(300)}`).endsWith('x'.repeat(32))).toBe(true)
  })

  it('a run of spaces inside a name is one space, so nothing can be pushed out of sight', () => {
    expect(sanitizeName(`invoice.pdf${' '.repeat(120)}.exe`)).toBe('invoice.pdf .exe')
    expect(sanitizeName('a\u2800\u2800\u2800b.txt')).toBe('a b.txt')
    expect(sanitizeName('two words.txt')).toBe('two words.txt')
  })

  it('whatever it is given, the result is one component inside the folder', () => {
    const dir = '/downloads'
    const hostile = [
      '../../../../etc/shadow',
      '/',
      '\\',
      'a/../../b',
      '.\u0000.',
      '..\u200f',
      ' .. ',
      'x/..',
      '~',
      '$HOME',
    ]
    for (const name of hostile) {
      const safe = sanitizeName(name)
      expect(safe).not.toMatch(/[/\\\u0000-\u001f]/)
      expect(['.', '..', '']).not.toContain(safe)
      expect(insideDir(dir, join(dir, safe)), name).toBe(true)
    }
  })
})

describe('never overwriting', () => {
  it('numbers names before the extension', () => {
    expect(numberedName('report.pdf', 1)).toBe('report (1).pdf')
    expect(numberedName('archive.tar.gz', 2)).toBe('archive.tar (2).gz')
    expect(numberedName('README', 3)).toBe('README (3)')
    expect(numberedName('.bashrc', 1)).toBe('.bashrc (1)')
  })

  it('takes a symlink for a name in use, even one pointing nowhere', async () => {
    const dir = await tempDir()
    await mkdir(join(dir, 'in'))
    await symlink(join(dir, 'nowhere'), join(dir, 'in', 'a.txt'))
    const { finalPath, fh } = await reservePart(join(dir, 'in'), 'a.txt')
    await fh.close()
    expect(finalPath).toBe(join(dir, 'in', 'a (1).txt'))
  })

  it('names taken by the hundred do not block a download: past "a (99).txt" it takes a random tag', async () => {
    const dir = await tempDir()
    const into = join(dir, 'in')
    await mkdir(into)
    // As a peer whose offers each left a partial download named alike would leave them.
    for (let n = 0; n < 100; n++) await writeFile(join(into, `${numberedName('a.txt', n)}.parley-part`), '')
    const { finalPath, partPath, fh } = await reservePart(into, 'a.txt')
    await fh.close()
    expect(finalPath).toMatch(/\/a \([0-9a-f]{8}\)\.txt$/)
    expect(await publish(partPath, finalPath, 'a.txt')).toBe(finalPath)
  })

  it('reserves a part file next to names in use and publishes without replacing a file that appeared', async () => {
    const dir = await tempDir()
    await mkdir(join(dir, 'in'))
    await writeFile(join(dir, 'in', 'a.txt'), 'first')
    await writeFile(join(dir, 'in', 'a (1).txt.parley-part'), 'someone else’s download')
    const { finalPath, partPath, fh } = await reservePart(join(dir, 'in'), 'a.txt')
    expect(finalPath).toBe(join(dir, 'in', 'a (2).txt'))
    // The handle it created exclusively is the one written: nothing is reopened by name.
    await fh.write('new', 0)
    await fh.close()
    expect(await readFile(partPath, 'utf8')).toBe('new')
    // While it downloaded, a file of that name appeared: it is kept, ours goes next to it.
    await writeFile(finalPath, 'appeared')
    expect(await publish(partPath, finalPath, 'a.txt')).toBe(join(dir, 'in', 'a (3).txt'))
    expect((await readdir(join(dir, 'in'))).sort()).toEqual([
      'a (1).txt.parley-part',
      'a (2).txt',
      'a (3).txt',
      'a.txt',
    ])
  })
})
