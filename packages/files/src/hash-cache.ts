import { stat } from 'node:fs/promises'
import { untilAborted } from './abort.js'
import { badFileError, FilesError } from './errors.js'
import { type HashedFile, hashFile } from './hash-tree.js'

/** Hashed files kept so offering one file to several peers hashes it once. */
const HASH_CACHE = 16

interface Entry {
  /** Size, mtime, inode and chunk size: a file that changed is hashed again. */
  readonly key: string
  readonly file: Promise<HashedFile>
  /** Stops the hashing once every caller waiting for it gave up. */
  readonly controller: AbortController
  waiters: number
  done: boolean
}

/**
 * The hashes of files being offered, by path. Callers share one hashing of a file; each caller's
 * signal only stops its own wait, and the hashing stops when every waiter aborted.
 */
export class HashCache {
  readonly #entries = new Map<string, Entry>()

  /** @throws FilesError BAD_FILE, CANCELLED (the signal aborted) */
  async get(path: string, chunkSize: number, signal?: AbortSignal): Promise<HashedFile> {
    throwIfAborted(signal)
    let st: Awaited<ReturnType<typeof stat>>
    try {
      st = await stat(path)
    } catch (cause) {
      throw badFileError(`cannot open ${path}`, cause)
    }
    throwIfAborted(signal)
    const key = `${st.size}:${st.mtimeMs}:${st.ino}:${chunkSize}`
    let entry = this.#entries.get(path)
    if (entry?.key !== key) {
      const controller = new AbortController()
      const e: Entry = {
        key,
        file: hashFile(path, { chunkSize, signal: controller.signal }),
        controller,
        waiters: 0,
        done: false,
      }
      e.file.then(
        () => {
          e.done = true
        },
        () => {
          if (this.#entries.get(path) === e) this.#entries.delete(path)
        },
      )
      this.#entries.delete(path)
      if (this.#entries.size >= HASH_CACHE) this.#entries.delete(this.#entries.keys().next().value!)
      this.#entries.set(path, e)
      entry = e
    }
    const e = entry
    e.waiters++
    try {
      return await untilAborted(e.file, signal, cancelled)
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw cancelled()
      throw err
    } finally {
      if (--e.waiters === 0 && !e.done && signal?.aborted) {
        // Gone from the map at once: a caller arriving before the hashing notices the abort starts
        // a fresh one instead of joining this one and failing with a CANCELLED it never asked for.
        if (this.#entries.get(path) === e) this.#entries.delete(path)
        e.controller.abort()
      }
    }
  }
}

function cancelled(): FilesError {
  return new FilesError('CANCELLED', 'the offer was aborted')
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled()
}
