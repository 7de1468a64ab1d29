import { describe, expect, it } from 'vitest'
import { cpuHasAesGcm } from '../src/secure/cpu-features.js'

describe('cpuHasAesGcm', () => {
  it.each([
    ['x86 with AES-NI and PCLMULQDQ', 'processor\t: 0\nflags\t\t: fpu sse2 pclmulqdq ssse3 aes avx\n', true],
    ['Arm with AES and PMULL', 'processor\t: 0\nFeatures\t: fp asimd aes pmull sha1 sha2\n', true],
    ['x86 with AES-NI but no carry-less multiply', 'flags\t\t: fpu sse2 ssse3 aes avx\n', false],
    ['x86 with neither', 'flags\t\t: fpu sse2 ssse3 avx\n', false],
    ['a flag that only contains the letters', 'flags\t\t: vaes_like pclmulqdq\n', false],
    ['no flags line at all', 'processor\t: 0\nmodel name\t: something\n', false],
  ])('%s: %s', (_name, cpuinfo, expected) => {
    expect(cpuHasAesGcm(cpuinfo)).toBe(expected)
  })
})
