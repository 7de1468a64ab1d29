import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fingerprint } from './identity.js'
import { PeerError } from './peer-errors.js'

/** Outcome of checking a peer's key against what was seen before at the same address. */
export type TrustVerdict =
  | { status: 'new' }
  | { status: 'match' }
  | { status: 'mismatch'; expected: string; name: string }

/**
 * Trust on first use, like SSH's known_hosts: the first key seen at an address is remembered;
 * a later, different key there is refused until the user accepts the change.
 */
export interface KnownPeers {
  /** Compares `peerId` with the key remembered for `address`; changes nothing. */
  check(address: string, peerId: string): TrustVerdict
  /** Records (or, after the user accepted a change, replaces) the key for `address`. */
  remember(address: string, peerId: string, name: string): Promise<void>
  /** Every remembered address with its key and the name last seen there. */
  entries(): Array<{ address: string; peerId: string; name: string }>
}

interface Entry {
  peerId: string
  name: string
  firstSeen: number
}

const MAX_ENTRIES = 10_000

/** An in-memory store (used when there is no data directory). */
export function memoryKnownPeers(): KnownPeers {
  return new Store(new Map(), undefined)
}

/**
 * Loads the store kept in `path` (JSON; created on first write, mode 0600).
 * @throws PeerError `KNOWN_PEERS_INVALID` when the file exists but is not a known-peers file.
 */
export async function fileKnownPeers(path: string): Promise<KnownPeers> {
  const map = new Map<string, Entry>()
  let text: string | undefined
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (text !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (cause) {
      throw new PeerError(
        'KNOWN_PEERS_INVALID',
        `${path} is not valid JSON; fix it or move it away (your identity key is not affected)`,
        { cause },
      )
    }
    const peers = (parsed as { peers?: unknown })?.peers
    if (typeof peers !== 'object' || peers === null) {
      throw new PeerError(
        'KNOWN_PEERS_INVALID',
        `${path} has no "peers" object; fix it or move it away (your identity key is not affected)`,
      )
    }
    for (const [address, value] of Object.entries(peers)) {
      const e = value as Partial<Entry>
      if (typeof e?.peerId !== 'string' || !/^[0-9a-f]{64}$/.test(e.peerId)) {
        throw new PeerError('KNOWN_PEERS_INVALID', `${path}: the entry for ${address} has no valid peerId`)
      }
      map.set(address, { peerId: e.peerId, name: String(e.name ?? ''), firstSeen: Number(e.firstSeen ?? 0) })
    }
  }
  return new Store(map, path)
}

class Store implements KnownPeers {
  #writing: Promise<void> = Promise.resolve()
  constructor(
    readonly map: Map<string, Entry>,
    readonly path: string | undefined,
  ) {}

  check(address: string, peerId: string): TrustVerdict {
    const e = this.map.get(address)
    if (!e) return { status: 'new' }
    if (e.peerId === peerId) return { status: 'match' }
    return { status: 'mismatch', expected: e.peerId, name: e.name }
  }

  remember(address: string, peerId: string, name: string): Promise<void> {
    const prev = this.map.get(address)
    if (prev?.peerId === peerId && prev.name === name) return Promise.resolve()
    if (!prev && this.map.size >= MAX_ENTRIES) return Promise.resolve()
    this.map.set(address, { peerId, name, firstSeen: prev?.firstSeen ?? Date.now() })
    // Writes are serialized, and each goes to a temporary file renamed into place, so a crash never
    // truncates the file. A failed write is reported to the caller; the next write tries again.
    const write = this.#writing.then(() => this.#save())
    this.#writing = write.catch(() => {})
    return write
  }

  entries() {
    return [...this.map].map(([address, e]) => ({ address, peerId: e.peerId, name: e.name }))
  }

  async #save(): Promise<void> {
    if (!this.path) return
    const peers = Object.fromEntries(this.map)
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
    const tmp = `${this.path}.${process.pid}.tmp`
    await writeFile(tmp, `${JSON.stringify({ version: 1, peers }, null, 2)}\n`, { mode: 0o600 })
    await rename(tmp, this.path)
  }
}

/** The loud message shown when a saved peer presents a different key. */
export function keyChangedMessage(address: string, name: string, expected: string, actual: string): string {
  return (
    `the peer at ${address}${name ? ` (${name})` : ''} presented key ${fingerprint(actual)}, ` +
    `but ${fingerprint(expected)} was saved for it — it may be an impostor; ` +
    'accept the new key only if you know it changed'
  )
}
