import { readFileSync } from 'node:fs'

let aes: boolean | undefined

/**
 * True when this CPU has the instructions that make AES-GCM fast and constant-time: AES plus carry-less
 * multiplication for GHASH (`aes` and `pclmulqdq` in x86's /proc/cpuinfo `flags`, `aes` and `pmull` in
 * Arm's `Features`), and every Mac Node runs on (Apple silicon, and the Intel Macs of supported macOS
 * versions, which all have AES-NI). False where it cannot tell, so a peer there keeps
 * ChaCha20-Poly1305, which is fast in software.
 */
export function hasAesInstructions(): boolean {
  if (aes !== undefined) return aes
  if (process.platform === 'darwin') {
    aes = true
    return aes
  }
  try {
    aes = cpuHasAesGcm(readFileSync('/proc/cpuinfo', 'latin1'))
  } catch {
    aes = false
  }
  return aes
}

/** Whether a /proc/cpuinfo text names AES and carry-less multiplication on its first flags line. */
export function cpuHasAesGcm(cpuinfo: string): boolean {
  const line = /^(?:flags|features)\s*:(.*)$/im.exec(cpuinfo)?.[1]
  if (line === undefined) return false
  const flags = new Set(line.trim().split(/\s+/))
  return flags.has('aes') && (flags.has('pclmulqdq') || flags.has('pmull'))
}
