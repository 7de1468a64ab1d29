import { input } from '@inquirer/prompts'
import { Limits } from '@parley/protocol'
import type { Asker } from './ask.js'

/** Most continuation lines one message may have; keeps the loop bounded. */
export const MAX_LINES = 200

/**
 * Asks for a message that may span lines: a line ending in `\` continues on the next line
 * (`\\` at the end is a literal backslash). No external editor, so incoming lines keep printing
 * above the prompt. Returns undefined when the first line is left empty (back to the menu).
 */
export async function askText(ask: Asker, label: string): Promise<string | undefined> {
  const lines: string[] = []
  for (let i = 0; i < MAX_LINES; i++) {
    const so = lines.join('\n')
    const line = await ask((ctx) =>
      input(
        {
          message: i === 0 ? `${label} (\\ at the end continues on a new line; empty = back)` : '…',
          validate: (value: string) => {
            const bytes =
              Buffer.byteLength(so) + (i > 0 ? 1 : 0) + Buffer.byteLength(stripContinuation(value).text)
            return (
              bytes <= Limits.textBytes || `the message is too long — the limit is ${Limits.textBytes} bytes`
            )
          },
        },
        ctx,
      ),
    )
    if (i === 0 && line.trim() === '') return undefined
    const { text, more } = stripContinuation(line)
    lines.push(text)
    if (!more) break
  }
  return lines.join('\n')
}

function stripContinuation(line: string): { text: string; more: boolean } {
  if (line.endsWith('\\\\')) return { text: line.slice(0, -1), more: false }
  if (line.endsWith('\\')) return { text: line.slice(0, -1), more: true }
  return { text: line, more: false }
}
