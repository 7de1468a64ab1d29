import { lstat, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { chunkCount, validChunkSize } from './codec.js'

/**
 * What a partial download keeps in the data directory so it can resume after a restart:
 * `<dataDir>/<root hex>.json`, written atomically (temporary file, then rename), holding the verified
 * chunk bitmap. The bitmap is only saved after the part file was synced, so a bit never claims a
 * chunk that is not on disk.
 */
export interface DownloadState {
  version: 1
  root: string
  name: string
  size: number
  chunkSize: number
  /** The `.parley-part` file and the path it becomes once verified. */
  partPath: string
  finalPath: string
  /** Verified chunks, one bit each (bit i of byte i >> 3, least significant first), base64. */
  verified: string
}

const ROOT_HEX = /^[0-9a-f]{64}$/

export function statePath(dataDir: string, root: string): string {
  return join(dataDir, `${root}.json`)
}

/** Reads a saved state, or undefined when there is none or it does not hold together. */
export async function loadState(dataDir: string, root: string): Promise<DownloadState | undefined> {
  if (!ROOT_HEX.test(root)) return undefined
  let raw: string
  try {
    raw = await readFile(statePath(dataDir, root), 'utf8')
  } catch {
    return undefined
  }
  try {
    const s = JSON.parse(raw) as DownloadState
    const ok =
      s.version === 1 &&
      s.root === root &&
      typeof s.name === 'string' &&
      Number.isSafeInteger(s.size) &&
      s.size >= 0 &&
      validChunkSize(s.chunkSize) &&
      typeof s.partPath === 'string' &&
      typeof s.finalPath === 'string' &&
      s.partPath === `${s.finalPath}.parley-part` &&
      typeof s.verified === 'string' &&
      Buffer.from(s.verified, 'base64').byteLength === Math.ceil(chunkCount(s.size, s.chunkSize) / 8)
    return ok ? s : undefined
  } catch {
    return undefined
  }
}

export async function saveState(dataDir: string, state: DownloadState): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const path = statePath(dataDir, state.root)
  const tmp = `${path}.tmp`
  await writeFile(tmp, JSON.stringify(state), { mode: 0o600 })
  await rename(tmp, path)
}

export async function removeState(dataDir: string, root: string): Promise<void> {
  await unlink(statePath(dataDir, root)).catch(() => {})
}

/**
 * Removes the partial downloads nothing came back for in `maxAge` ms: every `<root hex>.json` in
 * `dataDir` older than that (by its own and its part file's modification time), with the part file it
 * names. Only files this service recorded are touched: a part file is removed only when a valid state
 * names it (an absolute path ending in `.parley-part`) and it is a regular file, never a link.
 */
export async function expireStates(dataDir: string, maxAge: number, now = Date.now()): Promise<void> {
  let names: string[]
  try {
    names = await readdir(dataDir)
  } catch {
    return
  }
  const age = async (path: string) => {
    const st = await lstat(path).catch(() => undefined)
    return st ? { file: st.isFile(), age: now - st.mtimeMs } : undefined
  }
  for (const name of names) {
    const root = /^([0-9a-f]{64})\.json$/.exec(name)?.[1]
    if (!root) continue
    const saved = await age(statePath(dataDir, root))
    if (!saved || saved.age < maxAge) continue
    const state = await loadState(dataDir, root)
    if (state && isAbsolute(state.partPath)) {
      const part = await age(state.partPath)
      if (part && part.age < maxAge) continue
      if (part?.file) await unlink(state.partPath).catch(() => {})
    }
    await removeState(dataDir, root)
  }
}
