import { describe, expect, it } from 'vitest'
import { messageId } from '../src/index.js'

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
