import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { fileKnownPeers, keyChangedMessage } from '../src/known-peers.js'

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)

async function tempFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-known-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'known-peers.json')
}

describe('known peers file (trust on first use)', () => {
  it('remembers the first key seen at an address, in a 0600 file that survives a restart', async () => {
    const path = await tempFile()
    const store = await fileKnownPeers(path)
    expect(store.check('127.0.0.1:4000', A)).toEqual({ status: 'new' })
    await store.remember('127.0.0.1:4000', A, 'bob')
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const reloaded = await fileKnownPeers(path)
    expect(reloaded.check('127.0.0.1:4000', A)).toEqual({ status: 'match' })
  })

  it('reports a different key at a saved address as a mismatch with the saved one', async () => {
    const path = await tempFile()
    const store = await fileKnownPeers(path)
    await store.remember('127.0.0.1:4000', A, 'bob')
    expect(store.check('127.0.0.1:4000', B)).toEqual({ status: 'mismatch', expected: A, name: 'bob' })
    const message = keyChangedMessage('127.0.0.1:4000', 'bob', A, B)
    expect(message).toContain('aaaa:aaaa')
    expect(message).toContain('bbbb:bbbb')
  })

  it('replaces the key once the user accepted the change', async () => {
    const path = await tempFile()
    const store = await fileKnownPeers(path)
    await store.remember('127.0.0.1:4000', A, 'bob')
    await store.remember('127.0.0.1:4000', B, 'bob')
    const reloaded = await fileKnownPeers(path)
    expect(reloaded.check('127.0.0.1:4000', B)).toEqual({ status: 'match' })
    expect(JSON.parse(await readFile(path, 'utf8')).peers['127.0.0.1:4000'].peerId).toBe(B)
  })

  it('refuses a corrupt file with a clear error instead of trusting nothing silently', async () => {
    const path = await tempFile()
    await writeFile(path, '{ not json')
    await expect(fileKnownPeers(path)).rejects.toMatchObject({ code: 'KNOWN_PEERS_INVALID' })
    await writeFile(path, JSON.stringify({ peers: { x: { peerId: 'nope' } } }))
    await expect(fileKnownPeers(path)).rejects.toMatchObject({ code: 'KNOWN_PEERS_INVALID' })
  })
})
