import { styleText } from 'node:util'

type Format = Parameters<typeof styleText>[0]

/** Applies a colour or text style to a string, or returns it unchanged when colour is off. */
export type Style = (format: Format, text: string) => string

/**
 * Decides once whether a stream gets colour: never with `--no-color`, `NO_COLOR`, `NODE_DISABLE_COLORS`
 * or `FORCE_COLOR=0`; always with another `FORCE_COLOR`; otherwise only on a terminal.
 * The environment is passed in (not read from `process.env`) so tests control it.
 */
export function colorEnabled(
  stream: { isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>>,
  flag = true,
): boolean {
  if (!flag) return false
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.NODE_DISABLE_COLORS !== undefined && env.NODE_DISABLE_COLORS !== '') return false
  if (env.FORCE_COLOR === '0' || env.FORCE_COLOR === 'false') return false
  if (env.FORCE_COLOR !== undefined) return true
  if (env.TERM === 'dumb') return false
  return stream.isTTY === true
}

/** A {@link Style} that colours when `enabled`. */
export function createStyle(enabled: boolean): Style {
  // validateStream: false because the decision was made above, for the injected stream and env.
  return enabled
    ? (format, text) => styleText(format, text, { validateStream: false })
    : (_format, text) => text
}
