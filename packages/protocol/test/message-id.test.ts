import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { messageId, StreamIds } from '../src/index.js'

// Killed no mutant before: messageId had no test, yet it is the id every API shows for a TEXT.
describe('messageId', () => {
  it('is the stream, then seq as 16 zero-padded lowercase hex characters', () => {
    expect(messageId('0011223344556677', 1)).toBe('00112233445566770000000000000001')
    expect(messageId('0011223344556677', 0xabc)).toBe('00112233445566770000000000000abc')
    expect(messageId('ffffffffffffffff', Number.MAX_SAFE_INTEGER)).toBe('ffffffffffffffff001fffffffffffff')
  })

  it('differs for neighbouring seqs and streams', () => {
    const ids = new Set([
      messageId('0011223344556677', 1),
      messageId('0011223344556677', 2),
      messageId('0011223344556678', 1),
    ])
    expect(ids.size).toBe(3)
  })
})

describe('StreamIds', () => {
  it('makes the ids messageId makes, for any seqs in any order', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9a-f]{16}$/),
        fc.array(
          fc.oneof(fc.integer({ min: 1, max: 0xfff }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
          {
            maxLength: 50,
          },
        ),
        (stream, seqs) => {
          const ids = new StreamIds(stream)
          for (const seq of seqs) expect(ids.id(seq)).toBe(messageId(stream, seq))
        },
      ),
    )
  })

  it('makes the right id when the seq crosses a byte boundary, either way', () => {
    const ids = new StreamIds('0011223344556677')
    expect(ids.id(0xff)).toBe('001122334455667700000000000000ff')
    expect(ids.id(0x100)).toBe('00112233445566770000000000000100')
    expect(ids.id(0xff)).toBe('001122334455667700000000000000ff')
    expect(ids.id(0x1_0000_0000)).toBe('00112233445566770000000100000000')
  })
})
