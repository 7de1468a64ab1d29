import { ScriptValidationError } from '../errors.js'
import type { Script, Step, StepKind, WaitCondition } from './types.js'

/** A path into the script value: `['steps', 2, 'send', 'to']` reads `steps[2].send.to`. */
export type ValuePath = ReadonlyArray<string | number>

/** Finds the 1-based line of the deepest node along `path` that exists in the source, if known. */
export type Locate = (path: ValuePath) => number | undefined

/** Options of {@link validateScript}. */
export interface ValidateOptions {
  /** File name for messages. @default 'script' */
  source?: string
  locate?: Locate
}

/** Longest step list a script may have. */
export const MAX_STEPS = 1_000
/** Longest timeout or wait, in ms (one hour). */
export const MAX_MS = 3_600_000
/** Problems reported at most; a badly broken file would otherwise print hundreds of lines. */
const MAX_PROBLEMS = 20
/** Default timeout of a step, in ms. */
export const DEFAULT_STEP_TIMEOUT = 10_000

const STEP_KINDS: readonly StepKind[] = [
  'start',
  'connect',
  'wait',
  'send',
  'broadcast',
  'peers',
  'connect-all',
  'assert',
  'offer',
  'wait-file',
  'quit',
]
const TOP_FIELDS = ['name', 'vars', 'timeout', 'steps']
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/

type FieldType = 'string' | 'names' | 'port' | 'timeout' | 'ms' | 'count' | 'bool' | 'regex'

interface StepSpec {
  readonly fields: Readonly<Record<string, FieldType>>
  readonly required?: readonly string[]
  /** A scalar step value stands for this field: `connect: 127.0.0.1:4000`. */
  readonly shorthand?: { field: string; type: 'string' | 'number'; label: string }
}

const SPECS: Readonly<Record<StepKind, StepSpec>> = {
  start: { fields: { name: 'string', host: 'string', port: 'port' } },
  connect: {
    fields: { address: 'string', timeout: 'timeout' },
    required: ['address'],
    shorthand: { field: 'address', type: 'string', label: 'an address' },
  },
  wait: {
    fields: {
      peer: 'string',
      peers: 'count',
      message: 'string',
      regex: 'regex',
      from: 'string',
      ms: 'ms',
      timeout: 'timeout',
    },
    shorthand: { field: 'ms', type: 'number', label: 'a number of milliseconds' },
  },
  send: { fields: { to: 'string', text: 'string', timeout: 'timeout' }, required: ['to', 'text'] },
  broadcast: {
    fields: { text: 'string', timeout: 'timeout' },
    required: ['text'],
    shorthand: { field: 'text', type: 'string', label: 'a text' },
  },
  peers: { fields: { query: 'string', print: 'bool', timeout: 'timeout' } },
  'connect-all': { fields: { timeout: 'timeout' } },
  assert: {
    fields: {
      peers: 'count',
      names: 'names',
      messages: 'count',
      message: 'string',
      regex: 'regex',
      from: 'string',
    },
  },
  offer: {
    fields: { to: 'string', file: 'string', name: 'string', timeout: 'timeout' },
    required: ['to', 'file'],
  },
  'wait-file': { fields: { name: 'string', from: 'string', timeout: 'timeout' } },
  quit: { fields: {} },
}

/** Renders a path the way messages show it: `steps[2].send.to`. */
export function formatPath(path: ValuePath): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`
  return out === '' ? 'the script' : out
}

/**
 * Checks a parsed script (the plain value of a JSON or YAML file) and returns it typed.
 * Unknown fields are errors, so a typo never silently does nothing.
 *
 * @throws ScriptValidationError listing every problem, each like
 *   `hello.yaml line 7: steps[2].send.to is required`.
 */
export function validateScript(value: unknown, options: ValidateOptions = {}): Script {
  const source = options.source ?? 'script'
  const locate: Locate = options.locate ?? (() => undefined)
  const found: Array<{ line: number; text: string }> = []
  const problem: Problem = Object.assign(
    (path: ValuePath, rest: string) => {
      const line = locate(path)
      found.push({
        line: line ?? 0,
        text: `${source}${line === undefined ? '' : ` line ${line}`}: ${formatPath(path)} ${rest}`,
      })
    },
    { count: () => found.length },
  )
  // In file order (sort is stable, so problems on one line keep the order they were found in), capped.
  const problems = () =>
    found
      .sort((a, b) => a.line - b.line)
      .slice(0, MAX_PROBLEMS)
      .map((p) => p.text)

  if (!isMapping(value)) {
    const hint = Array.isArray(value) ? ' (put the list under "steps:")' : ''
    problem([], `must be a mapping with a steps list${hint}`)
    throw new ScriptValidationError(problems())
  }
  for (const key of Object.keys(value)) {
    if (!TOP_FIELDS.includes(key)) problem([key], `is not a known field (allowed: ${TOP_FIELDS.join(', ')})`)
  }
  const name = value.name === undefined ? undefined : checkField(['name'], value.name, 'string', problem)
  const timeout =
    value.timeout === undefined ? undefined : checkField(['timeout'], value.timeout, 'timeout', problem)
  const vars: Record<string, string> = {}
  if (value.vars !== undefined) {
    if (!isMapping(value.vars)) problem(['vars'], 'must be a mapping of names to values')
    else {
      for (const [key, v] of Object.entries(value.vars)) {
        if (!VAR_NAME.test(key))
          problem(['vars', key], 'is not a valid variable name (use letters, digits, _ . -)')
        else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
          vars[key] = String(v)
        else problem(['vars', key], 'must be a string, number or boolean')
      }
    }
  }

  const steps: Step[] = []
  if (value.steps === undefined) problem(['steps'], 'is required')
  else if (!Array.isArray(value.steps)) problem(['steps'], 'must be a list of steps')
  else if (value.steps.length === 0) problem(['steps'], 'must not be empty')
  else if (value.steps.length > MAX_STEPS)
    problem(['steps'], `has ${value.steps.length} steps; at most ${MAX_STEPS} are allowed`)
  else {
    let quitAt: number | undefined
    value.steps.forEach((raw: unknown, i: number) => {
      if (quitAt !== undefined) {
        problem(['steps', i], `comes after quit (steps[${quitAt}]) and would never run`)
        return
      }
      const step = checkStep(i, raw, problem, locate)
      if (!step) return
      if (step.kind === 'start' && i > 0) problem(['steps', i, 'start'], 'must be the first step')
      if (step.kind === 'quit') quitAt = i
      steps.push(step)
    })
  }

  if (found.length > 0) throw new ScriptValidationError(problems())
  return {
    source,
    name: name as string | undefined,
    vars,
    timeout: (timeout as number | undefined) ?? DEFAULT_STEP_TIMEOUT,
    steps,
  }
}

/** Reports one problem; `count()` tells how many were reported so far. */
type Problem = ((path: ValuePath, rest: string) => void) & { count(): number }

function checkStep(i: number, raw: unknown, problem: Problem, locate: Locate): Step | undefined {
  const at: ValuePath = ['steps', i]
  let kindText: string
  let body: unknown
  if (typeof raw === 'string') {
    kindText = raw
    body = null
  } else if (isMapping(raw)) {
    const keys = Object.keys(raw)
    if (keys.length === 0) {
      problem(at, 'is empty; write one step such as "send: { to: bob, text: hi }"')
      return undefined
    }
    if (keys.length > 1) {
      problem(at, `must hold exactly one step, found ${keys.length}: ${keys.join(', ')}`)
      return undefined
    }
    kindText = keys[0]!
    body = raw[kindText]
  } else {
    problem(at, `must be a step name or a mapping like "send: { to: bob, text: hi }", not ${describe(raw)}`)
    return undefined
  }
  if (!(STEP_KINDS as readonly string[]).includes(kindText)) {
    const guess = closest(kindText, STEP_KINDS)
    problem(at, `has unknown step "${kindText}"${guess ? ` (did you mean "${guess}"?)` : ''}`)
    return undefined
  }
  const kind = kindText as StepKind
  const spec = SPECS[kind]
  const path: ValuePath = [...at, kind]
  let fields: Record<string, unknown>
  if (body === null || body === undefined) fields = {}
  else if (isMapping(body)) fields = body
  else if (spec.shorthand && typeof body === spec.shorthand.type) fields = { [spec.shorthand.field]: body }
  else {
    const alt = spec.shorthand ? ` or ${spec.shorthand.label}` : ''
    problem(path, `must be a mapping${alt}, not ${describe(body)}`)
    return undefined
  }

  const before = problem.count()
  const out: Record<string, unknown> = {}
  const allowed = Object.keys(spec.fields)
  for (const [key, v] of Object.entries(fields)) {
    const type = spec.fields[key]
    if (type === undefined) {
      const list = allowed.length > 0 ? `allowed: ${allowed.join(', ')}` : `${kind} takes no fields`
      problem([...path, key], `is not a known field (${list})`)
      continue
    }
    const checked = checkField([...path, key], v, type, problem)
    if (checked !== undefined) out[key] = checked
  }
  for (const key of spec.required ?? []) {
    if (fields[key] === undefined || fields[key] === null) problem([...path, key], 'is required')
  }
  const origin = { path: formatPath(at), line: locate(at) }
  const has = (k: string) => fields[k] !== undefined && fields[k] !== null

  switch (kind) {
    case 'wait': {
      const conditions = ['peer', 'peers', 'message', 'regex', 'ms'].filter(has)
      if (conditions.length === 0) problem(path, 'needs one of peer, peers, message, regex, ms')
      else if (conditions.length > 1) {
        problem(
          path,
          `must have only one of peer, peers, message, regex, ms (found ${conditions.join(', ')})`,
        )
      }
      if (has('from') && !has('message') && !has('regex'))
        problem([...path, 'from'], 'only applies to message or regex')
      if (has('timeout') && has('ms'))
        problem([...path, 'timeout'], 'does not apply to ms (the wait is the duration)')
      if (problem.count() > before) return undefined
      const until: WaitCondition =
        out.peer !== undefined
          ? { type: 'peer', name: out.peer as string }
          : out.peers !== undefined
            ? { type: 'peers', count: out.peers as number }
            : out.ms !== undefined
              ? { type: 'duration', ms: out.ms as number }
              : {
                  type: 'message',
                  text: out.message as string | undefined,
                  regex: out.regex as string | undefined,
                  from: out.from as string | undefined,
                }
      return { kind, ...origin, until, timeout: out.timeout as number | undefined }
    }
    case 'assert': {
      if (!['peers', 'names', 'messages', 'message', 'regex'].some(has)) {
        problem(path, 'needs at least one of peers, names, messages, message, regex')
      }
      if (has('message') && has('regex')) problem(path, 'must have only one of message, regex')
      if (has('from') && !has('message') && !has('regex'))
        problem([...path, 'from'], 'only applies to message or regex')
      if (problem.count() > before) return undefined
      const names =
        out.names === undefined ? undefined : ([] as string[]).concat(out.names as string | string[])
      return { kind, ...origin, ...out, names } as Step
    }
    case 'peers':
      if (problem.count() > before) return undefined
      return { kind, ...origin, ...out, print: (out.print as boolean | undefined) ?? true } as Step
    default:
      if (problem.count() > before) return undefined
      return { kind, ...origin, ...out } as Step
  }
}

/** Checks one field value; reports and returns undefined when it is wrong. */
function checkField(path: ValuePath, v: unknown, type: FieldType, problem: Problem): unknown {
  const wholeNumber = (min: number, max: number, unit = '') => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v
    problem(path, `must be a whole number${unit} from ${min} to ${max}, not ${describe(v)}`)
    return undefined
  }
  switch (type) {
    case 'string':
      if (typeof v !== 'string') problem(path, `must be a string, not ${describe(v)}`)
      else if (v.length === 0) problem(path, 'must not be empty')
      else return v
      return undefined
    case 'names': {
      const list = Array.isArray(v) ? v : [v]
      if (list.length === 0 || !list.every((n) => typeof n === 'string' && n.length > 0)) {
        problem(path, `must be a name or a list of names, not ${describe(v)}`)
        return undefined
      }
      return v
    }
    case 'port':
      return wholeNumber(0, 65535)
    case 'timeout':
      return wholeNumber(1, MAX_MS, ' of milliseconds')
    case 'ms':
      return wholeNumber(0, MAX_MS, ' of milliseconds')
    case 'count':
      return wholeNumber(0, 100_000)
    case 'bool':
      if (typeof v === 'boolean') return v
      problem(path, `must be true or false, not ${describe(v)}`)
      return undefined
    case 'regex':
      if (typeof v !== 'string' || v.length === 0) {
        problem(path, `must be a regular expression in a string, not ${describe(v)}`)
        return undefined
      }
      try {
        new RegExp(v)
        return v
      } catch (err) {
        problem(path, `is not a valid regular expression (${lastClause((err as Error).message)})`)
        return undefined
      }
  }
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** "a number (5)", "a list", ... for "must be X, not Y" messages. */
function describe(v: unknown): string {
  if (v === null || v === undefined) return 'empty'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`
  if (typeof v === 'number') return `the number ${v}`
  if (typeof v === 'boolean') return String(v)
  return typeof v
}

function lastClause(message: string): string {
  const i = message.lastIndexOf(': ')
  return i >= 0 ? message.slice(i + 2) : message
}

/** The candidate within edit distance 2 of `word`, if any (for "did you mean"). */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c)
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  // Both are short (step names), so the full table is fine; bound the input anyway.
  if (a.length > 32) return Number.POSITIVE_INFINITY
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}
