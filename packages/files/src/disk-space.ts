import { statfs } from 'node:fs/promises'
import { FilesError } from './errors.js'

/**
 * @throws FilesError NO_SPACE when `dir`'s file system has less than `bytes` available, plus `reserve`
 * left free after them (a download must not fill the disk the rest of the system lives on)
 */
export async function checkSpace(dir: string, bytes: number, reserve = 0): Promise<void> {
  let available: number
  try {
    const fs = await statfs(dir)
    available = Number(fs.bavail) * Number(fs.bsize)
  } catch {
    return // statfs is not supported everywhere; writing will fail with ENOSPC instead
  }
  if (available < bytes + reserve) {
    throw new FilesError(
      'NO_SPACE',
      `${dir} has ${available} bytes free, ${bytes} are needed and ${reserve} are kept free`,
    )
  }
}
