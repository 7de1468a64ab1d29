import type { Writable } from 'node:stream'
import type { LiveConsole } from '../view/live-console.js'

/** The prompt context every prompt gets: our input, the LiveConsole's output, the shutdown signal. */
export interface PromptContext {
  input: NodeJS.ReadableStream
  output: Writable
  signal: AbortSignal
}

/** Thrown out of a prompt when the user pressed Ctrl+C or shutdown aborted it: leave the flow. */
export class PromptClosed extends Error {
  override readonly name = 'PromptClosed'
  constructor(readonly byUser: boolean) {
    super(byUser ? 'the user pressed Ctrl+C' : 'the prompt was aborted')
  }
}

export type Asker = <V>(prompt: (context: PromptContext) => Promise<V>) => Promise<V>

/**
 * Wraps prompts so each one prints through the LiveConsole and ends the same way:
 * Ctrl+C inside a prompt is not a SIGINT but an `ExitPromptError` (stdin is in raw mode), so it is
 * turned into `onCtrlC()` here; an abort (shutdown) or cancel just closes the flow.
 */
export function createAsker(
  ui: LiveConsole,
  input: NodeJS.ReadableStream,
  signal: AbortSignal,
  onCtrlC: () => void,
): Asker {
  return async <V>(prompt: (context: PromptContext) => Promise<V>): Promise<V> => {
    if (signal.aborted) throw new PromptClosed(false)
    try {
      return await prompt(ui.context({ input, signal }))
    } catch (err) {
      // @inquirer/prompts does not re-export its error classes; their names are their contract.
      const name = (err as { name?: unknown } | null)?.name
      if (name === 'ExitPromptError') {
        onCtrlC()
        throw new PromptClosed(true)
      }
      if (name === 'AbortPromptError' || name === 'CancelPromptError') throw new PromptClosed(false)
      throw err
    }
  }
}
