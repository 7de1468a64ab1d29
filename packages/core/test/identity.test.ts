import { createPublicKey, verify } from 'node:crypto'
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  fingerprint,
  generateIdentity,
  loadOrCreateIdentity,
  signWithIdentity,
  verifySignature,
} from '../src/identity.js'

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-id-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('identity', () => {
  it('derives the peer id from the Ed25519 public key', () => {
    const id = generateIdentity()
    expect(id.peerId).toMatch(/^[0-9a-f]{64}$/)
    const raw = id.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
    expect(raw.toString('hex')).toBe(id.peerId)
    expect(generateIdentity().peerId).not.toBe(id.peerId)
  })

  it('signs bytes that node:crypto and verifySignature accept, and nothing else verifies', () => {
    const id = generateIdentity()
    const message = Buffer.from('parley/test\0hello')
    const signature = signWithIdentity(id, message)
    expect(verify(null, message, createPublicKey(id.privateKey), signature)).toBe(true)
    expect(verifySignature(id.peerId, message, signature)).toBe(true)
    expect(verifySignature(id.peerId, Buffer.from('parley/test\0hellO'), signature)).toBe(false)
    expect(verifySignature(generateIdentity().peerId, message, signature)).toBe(false)
    expect(verifySignature(id.peerId, message, signature.subarray(0, 63))).toBe(false)
    expect(verifySignature('zz', message, signature)).toBe(false)
    // An identity whose private key is not its peer id's is refused rather than signing as someone else.
    const other = generateIdentity()
    expect(() => signWithIdentity({ ...id, privateKey: other.privateKey }, message)).toThrow(
      expect.objectContaining({ code: 'IDENTITY_INVALID' }),
    )
  })

  it('shows a 64-bit fingerprint', () => {
    expect(fingerprint(`ab12cd34ef567890${'0'.repeat(48)}`)).toBe('ab12:cd34:ef56:7890')
  })

  it('creates the key on first start with mode 0600 and loads the same one later', async () => {
    const dir = join(await tempDir(), 'nested')
    const first = await loadOrCreateIdentity(dir)
    expect((await stat(join(dir, 'identity.pem'))).mode & 0o777).toBe(0o600)
    const again = await loadOrCreateIdentity(dir)
    expect(again.peerId).toBe(first.peerId)
  })

  it('refuses a key file readable by others', async () => {
    const dir = await tempDir()
    await loadOrCreateIdentity(dir)
    await chmod(join(dir, 'identity.pem'), 0o644)
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: 'KEY_FILE_INSECURE' })
  })

  it('refuses a file that is not an Ed25519 private key', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'identity.pem'), 'not a key', { mode: 0o600 })
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: 'IDENTITY_INVALID' })
  })
})
