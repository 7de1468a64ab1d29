import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import type { CliIO } from '../src/index.js'

/** Writes files into a fresh temporary directory, removed when the test finishes. */
export async function tempFiles(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-bot-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
  return dir
}

/** Streams for `runCli` that collect what the program prints; `printed(text)` waits until stdout has `text`. */
export function captureIO(
  extra: Partial<CliIO> = {},
): CliIO & { out(): string; err(): string; printed(text: string): Promise<void> } {
  let out = ''
  let err = ''
  const waiters = new Set<{ text: string; resolve: () => void }>()
  return {
    stdout: {
      write: (s: string) => {
        out += s
        for (const w of waiters) {
          if (out.includes(w.text)) {
            waiters.delete(w)
            w.resolve()
          }
        }
      },
    },
    stderr: { write: (s: string) => (err += s) },
    ...extra,
    out: () => out,
    err: () => err,
    printed: (text) =>
      new Promise<void>((resolve) => {
        if (out.includes(text)) resolve()
        else waiters.add({ text, resolve })
      }),
  }
}

export const yaml = (...lines: string[]) => `${lines.join('\n')}\n`
