import { readFileSync } from 'node:fs'

let aes: boolean | undefined

/**
 * True when this CPU has AES instructions: the `aes` flag of /proc/cpuinfo on Linux (x86 `flags`,
 * Arm `Features`), and every Apple silicon Mac. False where it cannot tell, so a peer there keeps
 * ChaCha20-Poly1305, which is fast in software.
 */
export function hasAesInstructions(): boolean {
  if (aes !== undefined) return aes
  if (process.platform === 'darwin') {
    aes = process.arch === 'arm64'
    return aes
  }
  try {
    aes = /^(flags|features)\s*:.*\baes\b/im.test(readFileSync('/proc/cpuinfo', 'latin1'))
  } catch {
    aes = false
  }
  return aes
}
