import { statfs } from 'node:fs/promises'
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
export async function dataDirProblem(dir: string): Promise<string | undefined> {
  let path = resolve(dir)
  // The nearest existing ancestor tells which file system the directory would be on (bounded walk).
  for (let depth = 0; depth < 64; depth++) {
    try {
      const fs = await statfs(path)
      const kind = PSEUDO_FS.get(Number(fs.type))
      if (kind !== undefined) {
        return `--data-dir ${dir} is on the kernel's ${kind} file system, which cannot keep files — pick a directory such as ~/.parley`
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
