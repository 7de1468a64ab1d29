import { readFile, rm, stat, statfs, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

/** statfs(2) magic numbers of kernel pseudo file systems, where no file can be kept. */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x64626720, 'debugfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x73636673, 'securityfs'],
])

/**
 * Says (one sentence) why `dir` cannot hold the identity, or undefined when it may. Checked before
 * core touches it: creating directories under /proc fails in ways that made the start loop instead
 * of failing. Only the file system kind is checked here; permissions fail later with their own error.
 */
export async function dataDirProblem(
  dir: string,
  what = `--data-dir ${dir}`,
  fix = 'pick a directory such as ~/.parley',
): Promise<string | undefined> {
  let path = resolve(dir)
  // The nearest existing ancestor tells which file system the directory would be on (bounded walk).
  for (let depth = 0; depth < 64; depth++) {
    try {
      const fs = await statfs(path)
      const kind = PSEUDO_FS.get(Number(fs.type))
      if (kind !== undefined) {
        return `${what} is on the kernel's ${kind} file system, which cannot keep files — ${fix}`
      }
      return undefined
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return undefined
      const parent = dirname(path)
      if (parent === path) return undefined
      path = parent
    }
  }
  return undefined
}

/**
 * Says (one sentence, with the fix) why an existing `dir` is unsafe: other users could write to it, so
 * they could swap the identity key or the known-peers file. Undefined when it is fine or missing.
 */
export async function dataDirPermissionProblem(dir: string): Promise<string | undefined> {
  if (process.platform === 'win32') return undefined
  let st: Awaited<ReturnType<typeof stat>>
  try {
    st = await stat(dir)
  } catch {
    return undefined
  }
  if (!st.isDirectory()) return `--data-dir ${dir} is not a folder — pick a directory such as ~/.parley`
  if ((st.mode & 0o022) === 0) return undefined
  // A folder shared on purpose (/tmp, /dev/shm: sticky) or someone else's: chmod would break it for
  // everyone else, so the advice is another folder, not a fix.
  if (st.mode & 0o1000 || st.uid !== process.getuid?.()) {
    return `--data-dir ${dir} is a folder other users can write to (shared, like /tmp) — pick a directory of your own, such as ~/.parley`
  }
  const who = st.mode & 0o002 ? 'every user' : 'its group'
  return `--data-dir ${dir} is writable by ${who}, who could replace your key or saved peers — run: chmod go-w ${dir}`
}

/** The file that marks a data dir as in use; it holds the owner's PID. */
export const LOCK_FILE = 'parley.lock'

/** A held data-dir lock; `release()` removes it (idempotent, never throws). */
export interface DataDirLock {
  release(): Promise<void>
}

/** Lock files this process holds. */
const heldHere = new Set<string>()

/** Thrown by {@link lockDataDir}; the message is one sentence for the user. */
export class DataDirLockError extends Error {
  readonly code = 'DATA_DIR_LOCKED'
}

/**
 * Takes the data dir for this process, so two peers never share one identity and overwrite each
 * other's known-peers file. A lock left by a process that no longer runs is taken over.
 * @throws DataDirLockError when a running process holds it
 */
export async function lockDataDir(dir: string, pid = process.pid): Promise<DataDirLock> {
  const path = resolve(dir, LOCK_FILE)
  // Two peers in one process (tests, embedders) share a PID: the file alone cannot tell them apart.
  if (heldHere.has(path)) {
    throw new DataDirLockError(
      `--data-dir ${dir} is in use by another Parley peer in this process (PID ${pid}) — pick another --data-dir`,
    )
  }
  // Two rounds at most: the second after removing a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${pid}\n`, { flag: 'wx', mode: 0o600 })
      heldHere.add(path)
      let released = false
      return {
        async release() {
          if (released) return
          released = true
          heldHere.delete(path)
          // Only our own lock: never remove one another process took over meanwhile.
          const owner = await readOwner(path)
          if (owner === pid) await rm(path, { force: true }).catch(() => {})
        },
      }
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EEXIST') throw err
    }
    const owner = await readOwner(path)
    if (owner !== undefined && owner !== pid && isRunning(owner)) {
      throw new DataDirLockError(
        `--data-dir ${dir} is in use by another Parley process (PID ${owner}) — stop it, or pick another --data-dir`,
      )
    }
    await rm(path, { force: true })
  }
  throw new DataDirLockError(`--data-dir ${dir} is being taken by another Parley process — try again`)
}

async function readOwner(path: string): Promise<number | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim()
    return /^\d{1,10}$/.test(text) ? Number(text) : undefined
  } catch {
    return undefined
  }
}

/** Whether a process with this PID exists (EPERM: it does, owned by someone else). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as { code?: unknown }).code === 'EPERM'
  }
}
