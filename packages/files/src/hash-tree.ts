import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { chunkCount, chunkLength, Limits } from './codec.js'
import { badFileError, FilesError } from './errors.js'

/**
 * The content address of a file (docs/FILES.md, "Hash tree"): SHA-256 over each chunk (leaf), a binary
 * tree over the leaves, and a root that also commits to the size and the chunk size, so two files of
 * the same chunks but a different length or chunking never share a root. Prefix bytes keep leaves,
 * inner nodes and the root from ever being confused with one another (second-preimage hygiene, as in
 * RFC 6962).
 */
const LEAF = 0x00
const NODE = 0x01
const ROOT = 0x02

/** Default chunk size: 256 KiB, doubled for files past 16 GiB so a file has at most 65,536 chunks. */
export const DEFAULT_CHUNK_SIZE = 256 * 1024

/** The chunk size for a file of `size` bytes: `preferred`, doubled until the file fits in the chunk limit. */
export function chooseChunkSize(size: number, preferred = DEFAULT_CHUNK_SIZE): number {
  let chunkSize = preferred
  while (chunkCount(size, chunkSize) > Limits.maxChunks && chunkSize < Limits.maxChunkBytes) chunkSize *= 2
  return chunkSize
}

/** Leaf hash of one chunk's bytes. */
export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(LEAF)).update(data).digest()
}

/** An incremental leaf hash, for a chunk that arrives in pieces. */
export function leafHasher(): { update(piece: Uint8Array): void; digest(): Buffer } {
  const h = createHash('sha256').update(Uint8Array.of(LEAF))
  return {
    update: (piece) => void h.update(piece),
    digest: () => h.digest(),
  }
}

/** The tree over `leaves` (n × 32 bytes): pairs hashed level by level, an odd last node promoted. */
export function treeRoot(leaves: Uint8Array): Buffer {
  const n = leaves.byteLength / Limits.hashBytes
  if (n === 0) return Buffer.alloc(Limits.hashBytes)
  let level: Buffer[] = []
  for (let i = 0; i < n; i++) level.push(Buffer.from(leaves.subarray(i * 32, i * 32 + 32)))
  while (level.length > 1) {
    const next: Buffer[] = []
    for (let i = 0; i < level.length; i += 2) {
      const right = level[i + 1]
      next.push(
        right === undefined
          ? level[i]!
          : createHash('sha256').update(Uint8Array.of(NODE)).update(level[i]!).update(right).digest(),
      )
    }
    level = next
  }
  return level[0]!
}

/** The root hash: SHA-256(0x02 ‖ u64 size ‖ u32 chunkSize ‖ tree root). */
export function rootHash(size: number, chunkSize: number, leaves: Uint8Array): Buffer {
  const header = Buffer.alloc(13)
  header[0] = ROOT
  header.writeBigUInt64BE(BigInt(size), 1)
  header.writeUInt32BE(chunkSize, 9)
  return createHash('sha256').update(header).update(treeRoot(leaves)).digest()
}

/** A file's hash tree as {@link hashFile} computes it: size, chunk size, leaf hashes and root. */
export interface HashedFile {
  size: number
  chunkSize: number
  /** n × 32 bytes. */
  leaves: Buffer
  root: Buffer
}

/**
 * How a file to send is opened: read-only, and without waiting, so that a named pipe (or a device)
 * given as the file is refused as not a regular file instead of blocking its open until a writer comes
 * (which held the peer for good, and its exit too). A regular file reads the same either way.
 */
export const READ_NO_WAIT = constants.O_RDONLY | constants.O_NONBLOCK

/**
 * Hashes a file chunk by chunk through one reused buffer: memory is one chunk, whatever the file size.
 * @throws FilesError BAD_FILE when it is not a regular file, is too large, or cannot be read
 */
export async function hashFile(
  path: string,
  options: { chunkSize?: number; signal?: AbortSignal } = {},
): Promise<HashedFile> {
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(path, READ_NO_WAIT)
  } catch (cause) {
    throw badFileError(`cannot open ${path}`, cause)
  }
  try {
    const stat = await fh.stat()
    if (!stat.isFile()) {
      throw stat.isDirectory()
        ? new FilesError('BAD_FILE', `${path} is a folder`, { reason: 'folder' })
        : new FilesError('BAD_FILE', `${path} is not a regular file`, { reason: 'not-regular' })
    }
    const size = stat.size
    const chunkSize = chooseChunkSize(size, options.chunkSize)
    const n = chunkCount(size, chunkSize)
    if (n > Limits.maxChunks)
      throw new FilesError('BAD_FILE', `${path} is too large`, { reason: 'too-large' })
    const leaves = Buffer.alloc(n * Limits.hashBytes)
    const buf = Buffer.allocUnsafe(Math.min(chunkSize, Math.max(size, 1)))
    for (let i = 0; i < n; i++) {
      options.signal?.throwIfAborted()
      const len = chunkLength(size, chunkSize, i)
      await readFully(fh, buf, len, i * chunkSize)
      leafHash(buf.subarray(0, len)).copy(leaves, i * Limits.hashBytes)
    }
    return { size, chunkSize, leaves, root: rootHash(size, chunkSize, leaves) }
  } catch (err) {
    if (err instanceof FilesError || (err as Error).name === 'AbortError') throw err
    throw badFileError(`cannot read ${path}`, err)
  } finally {
    await fh.close()
  }
}

/** Reads exactly `length` bytes at `position`. @throws FilesError FILE_CHANGED when the file is shorter */
export async function readFully(
  fh: { read(b: Buffer, o: number, l: number, p: number): Promise<{ bytesRead: number }> },
  buf: Buffer,
  length: number,
  position: number,
): Promise<void> {
  let done = 0
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done)
    if (bytesRead === 0) throw new FilesError('FILE_CHANGED', 'the file is shorter than when it was offered')
    done += bytesRead
  }
}
