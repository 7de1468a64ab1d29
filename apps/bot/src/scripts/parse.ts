import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml'
import { BotError, ScriptValidationError } from '../errors.js'
import type { Script } from './types.js'
import { type Locate, type ValuePath, validateScript } from './validate.js'

/** Options of {@link parseScript}. */
export interface ParseScriptOptions {
  /** File name used in messages; its extension picks the format. @default 'script' */
  source?: string
  /** @default from the extension of `source`: `.json` is JSON, anything else YAML */
  format?: 'json' | 'yaml'
}

/** Longest script file read, in bytes: a script is a page of steps, not a data set. */
export const MAX_SCRIPT_BYTES = 1024 * 1024
/** YAML aliases expanded at most (guards against "billion laughs" documents). */
const MAX_ALIASES = 100

/**
 * Parses and validates a script written in JSON or YAML. Every message names the file, the line and the
 * field: `hello.yaml line 7: steps[2].send.to is required`. JSON files get line numbers too: they are
 * re-read as YAML (which JSON is a subset of) only to locate nodes.
 *
 * @throws ScriptValidationError (`SCRIPT_INVALID`) for a syntax error or a script that breaks the format.
 */
export function parseScript(text: string, options: ParseScriptOptions = {}): Script {
  const source = options.source ?? 'script'
  const format = options.format ?? (extname(source).toLowerCase() === '.json' ? 'json' : 'yaml')
  const lineCounter = new LineCounter()
  const lineOf = (offset: number) => lineCounter.linePos(offset).line

  if (format === 'json') {
    try {
      JSON.parse(text)
    } catch (err) {
      const message = (err as Error).message
      const at = /at position (\d+)/.exec(message)
      const line = at ? lineAt(text, Number(at[1])) : undefined
      throw new ScriptValidationError([
        `${source}${line === undefined ? '' : ` line ${line}`}: invalid JSON (${jsonReason(message)})`,
      ])
    }
  }
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const syntax = doc.errors[0]
  if (syntax) {
    const kind = format === 'json' ? 'JSON' : 'YAML'
    throw new ScriptValidationError([
      `${source} line ${lineOf(syntax.pos[0])}: invalid ${kind} (${syntax.message})`,
    ])
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES })
  } catch (err) {
    throw new ScriptValidationError([`${source}: invalid YAML (${(err as Error).message})`])
  }
  return validateScript(value, { source, locate: locator(doc, lineOf) })
}

/**
 * Reads a script file and parses it with {@link parseScript}, naming it as `file` was given.
 *
 * @throws BotError `SCRIPT_UNREADABLE` when the file cannot be read or is too large;
 *   ScriptValidationError when it is invalid.
 */
export async function loadScript(file: string): Promise<Script> {
  let text: string
  try {
    const bytes = await readFile(file)
    if (bytes.byteLength > MAX_SCRIPT_BYTES) {
      throw new BotError(
        'SCRIPT_UNREADABLE',
        `${file} is larger than ${MAX_SCRIPT_BYTES} bytes; is it a script?`,
      )
    }
    text = bytes.toString('utf8')
  } catch (err) {
    if (err instanceof BotError) throw err
    const code = (err as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT'
        ? 'there is no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (err as Error).message
    throw new BotError('SCRIPT_UNREADABLE', `cannot read ${file}: ${why}`, { cause: err })
  }
  return parseScript(text, { source: file })
}

/** Maps a value path to the line of the deepest node along it that exists (a missing field points at its parent). */
function locator(doc: Document, lineOf: (offset: number) => number): Locate {
  return (path: ValuePath) => {
    let node: unknown = doc.contents
    let offset = (node as Node | null)?.range?.[0]
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(part))
        if (!pair) break
        offset = (pair.key as Node).range?.[0] ?? offset
        node = pair.value
      } else if (isSeq(node) && typeof part === 'number') {
        const item = node.items[part] as Node | undefined
        if (!item) break
        offset = item.range?.[0] ?? offset
        node = item
      } else break
    }
    return offset === undefined ? undefined : lineOf(offset)
  }
}

function lineAt(text: string, offset: number): number {
  let line = 1
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

/**
 * The reason part of a JSON.parse message, without the position or the quoted source. V8 reports a
 * position for some errors only (and the wording differs between Node 20 and 22+), so a JSON syntax
 * error has a line number when V8 gives one.
 */
function jsonReason(message: string): string {
  return message
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/, (?:\.\.\.)?".*" is not valid JSON$/s, '')
    .trim()
}
