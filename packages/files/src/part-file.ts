import type { FileHandle } from 'node:fs/promises'
import { unlink } from 'node:fs/promises'
import { chunkCount, chunkLength } from './codec.js'
import { leafHash, readFully } from './hash-tree.js'
import { publish } from './sanitize.js'
import { type DownloadState, removeState, saveState } from './state.js'

export interface PartFileInit {
  fh: FileHandle
  partPath: string
  finalPath: string
  /** Root hash, hex (the state file's name). */
  root: string
  name: string
  size: number
  chunkSize: number
  dataDir: string | undefined
  /** A write failed: the download fails (called once per failed write). */
  onWriteError: (cause: unknown) => void
}

/**
 * The `.parley-part` file of one download and its saved state: one write queue (writes never race in
 * the thread pool), the bitmap saved only after the data it claims is synced, the read-back check
 * before publishing, and the clean-up of a download that ends without a file.
 */
export class PartFile {
  readonly #init: PartFileInit
  #writes: Promise<void> = Promise.resolve()
  #saving: Promise<void> = Promise.resolve()

  constructor(init: PartFileInit) {
    this.#init = init
  }

  get path(): string {
    return this.#init.partPath
  }

  /**
   * Queues `pieces` (one verified chunk) to be written at `position` in one `writev`. Resolves when the
   * write is done or failed (a failure is reported to `onWriteError`); `skip()` is asked first, so a
   * download that ended meanwhile writes nothing.
   */
  write(pieces: Buffer[], position: number, skip: () => boolean): Promise<void> {
    const fh = this.#init.fh
    const write = this.#writes.then(async () => {
      if (skip()) return
      let at = position
      let rest = pieces
      // writev may write less than asked (like write): go on from where it stopped.
      while (rest.length > 0) {
        const { bytesWritten } = await fh.writev(rest, at)
        at += bytesWritten
        let skipBytes = bytesWritten
        while (rest.length > 0 && skipBytes >= rest[0]!.byteLength) {
          skipBytes -= rest[0]!.byteLength
          rest = rest.slice(1)
        }
        if (skipBytes > 0) rest = [rest[0]!.subarray(skipBytes), ...rest.slice(1)]
      }
    })
    this.#writes = write.catch((cause) => this.#init.onWriteError(cause))
    return this.#writes
  }

  /** Resolves when every queued write is done. */
  flushed(): Promise<void> {
    return this.#writes
  }

  /** Saves the bitmap `bits()` gives once the writes before it are synced; one save at a time. */
  save(bits: () => Uint8Array): Promise<void> {
    const { dataDir } = this.#init
    if (!dataDir) return this.#saving
    this.#saving = this.#saving.then(async () => {
      await this.#writes
      const verified = bits()
      try {
        await this.#init.fh.datasync()
        const state: DownloadState = {
          version: 1,
          root: this.#init.root,
          name: this.#init.name,
          size: this.#init.size,
          chunkSize: this.#init.chunkSize,
          partPath: this.#init.partPath,
          finalPath: this.#init.finalPath,
          verified: Buffer.from(verified).toString('base64'),
        }
        await saveState(dataDir, state)
      } catch {
        // A failed save costs a resume some chunks, never correctness: the part file is checked at the end.
      }
    })
    return this.#saving
  }

  /** Syncs, then reads every chunk back and checks it against its leaf; returns the bad ones. */
  async verify(leaves: Buffer, stop: () => boolean): Promise<number[]> {
    const { fh, size, chunkSize } = this.#init
    await this.#writes
    await fh.datasync()
    const bad: number[] = []
    const buf = Buffer.allocUnsafe(Math.min(chunkSize, Math.max(size, 1)))
    const n = chunkCount(size, chunkSize)
    for (let i = 0; i < n; i++) {
      if (stop()) return bad
      const len = chunkLength(size, chunkSize, i)
      await readFully(fh, buf, len, i * chunkSize)
      if (!leafHash(buf.subarray(0, len)).equals(leaves.subarray(i * 32, i * 32 + 32))) bad.push(i)
    }
    return bad
  }

  /** Closes the part file and moves it into place (never over a file); returns where it went. */
  async publish(): Promise<string> {
    const { fh, partPath, finalPath, name, dataDir, root } = this.#init
    await fh.close()
    const path = await publish(partPath, finalPath, name)
    if (dataDir) await removeState(dataDir, root)
    return path
  }

  /** Closes the file after the pending writes and saves (the download paused). */
  async close(): Promise<void> {
    await this.#saving
    await this.#init.fh.close().catch(() => {})
  }

  /**
   * The download ended without a file: closes it after pending writes, then removes the part file and
   * the saved state, unless `keep` (its verified chunks wait for a later offer of the root).
   */
  discard(keep: boolean): void {
    const { fh, partPath, dataDir, root } = this.#init
    this.#saving = this.#saving
      .then(() => this.#writes)
      .then(() => fh.close())
      .catch(() => {})
      .then(async () => {
        if (keep) return
        await unlink(partPath).catch(() => {})
        if (dataDir) await removeState(dataDir, root)
      })
  }

  /** Resolves when pending saves (and a discard's clean-up) are done. */
  settled(): Promise<void> {
    return this.#saving
  }
}
