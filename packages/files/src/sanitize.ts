import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { type FileHandle, link, lstat, open, rename, unlink } from 'node:fs/promises'
import { basename, extname, join, resolve, sep } from 'node:path'

/** Suffix of a download's part file (its final name + this) until it is verified and moved into place. */
export const PART_SUFFIX = '.parley-part'

/** Longest name kept, in UTF-8 bytes (most file systems allow 255; room is left for " (999).parley-part"). */
const MAX_NAME_BYTES = 200

// C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional controls (marks,
// embeddings, overrides, isolates) that make `evil‮txt.exe` look like `evilexe.txt`.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g
// Invisible characters (zero width space, BOM, Hangul filler, soft hyphen, variation selectors, ...):
// removed, so the saved name is what it looks like (`inv\u200Boice.pdf` is `invoice.pdf`). Removed
// rather than replaced: a `_` would mangle emoji, which use the zero width joiner and selectors.
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu
// Characters Windows refuses in names; replaced everywhere, so a name travels between systems unchanged.
const RESERVED = /[<>:"|?*]/g
// Windows device names, with or without an extension (`con`, `NUL.txt`, `com1.tar.gz`, `COM¹`), also
// with spaces before the dot (`nul .txt`): Windows ignores them there.
const DEVICE = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³]) *(\.|$)/i

/**
 * Turns a name a remote peer offered into one safe to create inside a download folder: only its last
 * path component is kept (so `../../x` is `x` and `/etc/passwd` is `passwd`), control and bidi
 * characters and Windows-reserved characters become `_`, runs of spaces become one, trailing dots and
 * spaces go, device names get a leading `_`, and the result is at most 200 UTF-8 bytes, cut so that it
 * ends as the offered name does. Never empty, never `.` or `..`.
 */
export function sanitizeName(name: string): string {
  let s = name.replace(CONTROL, '_').replace(IGNORABLE, '').normalize('NFC')
  // Both separators, whatever the platform: a Windows sender's `a\b` must not become a folder here.
  s =
    s
      .split(/[/\\]/)
      .filter((part) => part !== '' && part !== '.' && part !== '..')
      .at(-1) ?? ''
  s = s
    .replace(RESERVED, '_')
    // The braille blank prints as a space; a run of spaces inside a name pushes what follows out of
    // sight (`invoice.pdf` and 120 spaces, then `.exe`): one space each.
    .replace(/\u2800/g, ' ')
    .replace(/\p{White_Space}{2,}/gu, ' ')
    // Any Unicode space at the ends (a trailing no-break space is as invisible as a plain one).
    .replace(/[.\p{White_Space}]+$/u, '')
    .replace(/^\p{White_Space}+/u, '')
  if (DEVICE.test(s)) s = `_${s}`
  if (s === '' || /^\.+$/.test(s)) s = 'file'
  // Cutting may leave a dot or space at the end again.
  s = truncateUtf8(s, MAX_NAME_BYTES).replace(/[.\p{White_Space}]+$/u, '') || 'file'
  // A name that looks like our own part files would be taken for a download in progress.
  if (s.toLowerCase().endsWith(PART_SUFFIX)) s = `${s.slice(0, -PART_SUFFIX.length)}_${PART_SUFFIX.slice(1)}`
  return s
}

/**
 * Remote text (a peer's name, an offered file name) made safe to print on a terminal, on one line:
 * control, bidi and line-separator characters are removed, tabs and newlines become spaces.
 */
export function printable(text: string): string {
  return text.replace(/\r\n?|[\n\t]/g, ' ').replace(CONTROL, '')
}

/**
 * Cuts a name to `max` UTF-8 bytes from the middle of its stem, so it still ends as it did: its
 * extension, or when that is longer than 32 bytes its last 32 bytes (dropping the tail would let
 * `report.exe.<a long extension>` be saved as `report.exe`).
 */
function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s
  const ext = extname(s)
  const keepExt = Buffer.byteLength(ext) <= 32 ? ext : tailBytes(s, 32)
  let stem = s.slice(0, s.length - keepExt.length)
  // Cut by code points so no surrogate pair is split.
  const points = [...stem]
  while (points.length > 0 && Buffer.byteLength(points.join('') + keepExt) > max) points.pop()
  stem = points.join('')
  return `${stem}${keepExt}` || 'file'
}

/** The longest end of `s`, in whole code points, of at most `max` UTF-8 bytes. */
function tailBytes(s: string, max: number): string {
  const points = [...s]
  let tail = ''
  while (points.length > 0 && Buffer.byteLength(points.at(-1)! + tail) <= max) tail = points.pop()! + tail
  return tail
}

/** `name`, `name (1).ext`, `name (2).ext`, ... */
export function numberedName(name: string, n: number | string): string {
  if (n === 0) return name
  const ext = extname(name)
  const stem = ext && ext !== name ? name.slice(0, -ext.length) : name
  return `${stem} (${n})${ext && ext !== name ? ext : ''}`
}

/** Whether `path` lies directly inside `dir` (checked after resolving, as a last line of defence). */
export function insideDir(dir: string, path: string): boolean {
  const d = resolve(dir)
  const p = resolve(path)
  return p.startsWith(d + sep) && basename(p) === p.slice(d.length + 1)
}

/**
 * The tags tried in turn for a free name: none, then 1 to 99, then a few random ones. Names taken by
 * the hundred (a peer whose offers each left a partial download named alike) cannot block a download.
 */
function* nameTags(): Generator<number | string> {
  for (let n = 0; n < 100; n++) yield n
  for (let i = 0; i < 16; i++) yield randomBytes(4).toString('hex')
}

/** Whether anything has that name: a symlink counts as itself (lstat), even one pointing nowhere. */
async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch {
    return false
  }
}

/**
 * Reserves a file name in `dir` for a download: the first of `name`, `name (1)`, ... for which neither
 * the file nor its `.parley-part` exists, creating the part file exclusively (O_EXCL) so two downloads
 * never share one. Returns the final path (not yet created) and the part path (created, empty).
 */
export async function reservePart(
  dir: string,
  name: string,
): Promise<{ finalPath: string; partPath: string; fh: FileHandle }> {
  for (const tag of nameTags()) {
    const finalPath = join(dir, numberedName(name, tag))
    if (!insideDir(dir, finalPath)) throw new Error(`refusing a path outside ${dir}`)
    if (await exists(finalPath)) continue
    const partPath = finalPath + PART_SUFFIX
    try {
      // Kept open (read-write): reopening by name would follow whatever was swapped in meanwhile.
      const fh = await open(partPath, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR, 0o600)
      return { finalPath, partPath, fh }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
      throw err
    }
  }
  throw new Error(`no free name for ${name} in ${dir}`)
}

/**
 * Moves a finished part file into place without ever replacing an existing file: a hard link fails
 * when the target exists (then the next free `name (n).ext` is tried), and the part is unlinked after.
 * Returns the path the file was saved at.
 */
export async function publish(
  partPath: string,
  finalPath: string,
  name = basename(finalPath),
): Promise<string> {
  const dir = resolve(finalPath, '..')
  for (const tag of [-1, ...nameTags()]) {
    const target = tag === -1 ? finalPath : join(dir, numberedName(name, tag))
    if (tag !== -1 && target === finalPath) continue
    // Another download's reservation: leave that name to it.
    if (tag !== -1 && (await exists(target + PART_SUFFIX))) continue
    try {
      await link(partPath, target)
      await unlink(partPath)
      return target
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') continue
      // File systems without hard links (some FUSE, FAT): check, then rename (a small race, no link).
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
        if (await exists(target)) continue
        await rename(partPath, target)
        return target
      }
      throw err
    }
  }
  throw new Error(`no free name for ${name} in ${dir}`)
}
