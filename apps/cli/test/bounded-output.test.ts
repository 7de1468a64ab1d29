import { Writable } from 'node:stream'
import { describe, expect, test } from 'vitest'
import { boundedOutput } from '../src/view/bounded-output.js'

/** A pipe whose reader takes nothing until `read()`: what it was given waits in the stream. */
function stalledPipe() {
  const taken: string[] = []
  const waiting: Array<() => void> = []
  const stream = new Writable({
    highWaterMark: 16,
    write(chunk, _encoding, done) {
      taken.push(String(chunk))
      waiting.push(done)
    },
  })
  const read = async () => {
    for (let i = 0; i < 10_000 && waiting.length > 0; i++) {
      waiting.shift()!()
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  return { stream, taken, read }
}

describe('output a slow reader cannot make grow without bound', () => {
  test('past the limit lines are dropped and counted; the count is told before the next line that fits', async () => {
    const pipe = stalledPipe()
    const out = boundedOutput(pipe.stream, (n) => `(${n} dropped)\n`, 100)
    // Ten-byte lines: the eleventh finds 110 bytes waiting.
    for (let i = 0; i < 30; i++) out(`line ${String(i).padStart(4, '0')}\n`)
    expect(pipe.stream.writableLength).toBeLessThanOrEqual(110)
    await pipe.read()
    out('after\n')
    await pipe.read()
    const text = pipe.taken.join('')
    expect(text).toContain('line 0010\n')
    expect(text).not.toContain('line 0011\n')
    expect(text.endsWith('line 0010\n(19 dropped)\nafter\n')).toBe(true)
  })

  test('the count is told once the reader catches up, though no line comes after', async () => {
    const pipe = stalledPipe()
    const out = boundedOutput(pipe.stream, (n) => `(${n} dropped)\n`, 100)
    for (let i = 0; i < 15; i++) out(`line ${String(i).padStart(4, '0')}\n`)
    await pipe.read()
    await pipe.read()
    expect(pipe.taken.join('').endsWith('line 0010\n(4 dropped)\n')).toBe(true)
  })

  test('a reader that keeps up loses nothing', async () => {
    const pipe = stalledPipe()
    const out = boundedOutput(pipe.stream, (n) => `(${n} dropped)\n`, 100)
    for (let i = 0; i < 30; i++) {
      out(`line ${i}\n`)
      await pipe.read()
    }
    expect(pipe.taken).toHaveLength(30)
    expect(pipe.taken.join('')).not.toContain('dropped')
  })
})
