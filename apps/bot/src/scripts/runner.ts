import {
  createPeer,
  fingerprint,
  type Peer,
  type PeerInit,
  type ReceivedMessage,
  type Transport,
} from '@parley/core'
import { createFileService, type FileService, printable } from '@parley/files'
import { type Bot, type BotStats, createBot, type Traffic } from '../bot.js'
import { BotError, describeError, ScriptValidationError } from '../errors.js'
import { render, type Vars } from '../template.js'
import { deadline, delay, waitForEvent } from '../wait.js'
import { ScriptFiles } from './file-steps.js'
import type { AssertStep, Script, Step, WaitCondition } from './types.js'

/** Options of {@link runScript}. */
export interface RunScriptOptions {
  /** Transport for the peer the script starts. Required unless `peer` or `bot` is given. */
  transport?: Transport
  /** A running peer to drive instead of starting one (a swarm bot); `start` steps are then skipped. */
  peer?: Peer
  /** Like `peer`, with counters already attached (the swarm shares them with its summary). */
  bot?: Bot
  /** In-flight counter for the bot the runner creates. */
  traffic?: Traffic
  /** Variables for `{{...}}`, over the script's own `vars`. `name` defaults to the peer's name. */
  vars?: Vars
  /** Defaults for the `start` step. @default name 'bot', host '127.0.0.1', port 0 */
  name?: string
  host?: string
  port?: number
  /** Other construction options of the peer the script starts. */
  peerInit?: Omit<PeerInit, 'transport' | 'name' | 'listen'>
  /** Receives one line per thing that happened (a message, a step's result). @default discard */
  log?: (line: string) => void
  /** Aborting stops the script (status `aborted`) and the peer it started. */
  signal?: AbortSignal
  /** Stop the peer after the last step. @default true when the runner started the peer, else false */
  stopAtEnd?: boolean
  /**
   * The file service of a given `peer`, for `offer` and `wait-file` steps. When the runner starts the
   * peer itself it makes one (only if the script has file steps).
   */
  files?: FileService
  /** Where `wait-file` saves files (when the runner makes the file service). @default ./downloads */
  downloads?: string
}

/** How a script run ended. */
export interface ScriptResult {
  readonly status: 'passed' | 'failed' | 'aborted'
  readonly ok: boolean
  /** Why it failed, one sentence: `hello.yaml line 9: steps[2].assert failed: expected 2 connected peers, found 1`. */
  readonly error?: string
  readonly failedStep?: Step
  /** Steps that completed. */
  readonly stepsRun: number
  readonly stats: BotStats
  readonly elapsedMs: number
}

/** Messages remembered for `wait`/`assert`; older ones are forgotten first. */
const INBOX_LIMIT = 1_000

interface InboxEntry {
  readonly fromId: string
  readonly fromName: string
  readonly text: string
  used: boolean
}

/**
 * Runs a validated script. Each step runs in order under its timeout; the first failing step ends the run
 * with status `failed`. Variables are substituted up front, so a missing one fails before any peer starts.
 *
 * Step semantics: `wait: { message }` takes the oldest matching message not taken by an earlier wait,
 * including ones that arrived before the wait began (no race with a fast sender); `assert: { message }`
 * looks at every message received so far. `broadcast` never fails the script (failures are counted);
 * `send` fails it when the message is not acknowledged. `quit` stops the peer and ends the run as passed.
 *
 * @throws ScriptValidationError when a step uses an undefined variable, or a regex breaks after substitution;
 *   BotError `USAGE` when there is neither a transport nor a peer.
 */
export async function runScript(script: Script, options: RunScriptOptions = {}): Promise<ScriptResult> {
  const began = performance.now()
  // Every line is one line without controls: names, texts and addresses are the peers' (see cli.ts).
  const userLog = options.log
  const log = userLog === undefined ? () => {} : (line: string) => userLog(printable(line))
  const given = options.bot?.peer ?? options.peer
  if (!given && !options.transport) {
    throw new BotError('USAGE', 'runScript needs a transport to start a peer, or a running peer')
  }
  const first = script.steps[0]
  const start = first?.kind === 'start' ? first : undefined
  const vars: Record<string, string> = { ...script.vars, ...options.vars }
  // {{name}} is always the name of the peer the script drives.
  const startName =
    start?.name === undefined ? undefined : renderField(script, start, 'name', start.name, vars)
  vars.name = given?.name ?? startName ?? options.name ?? vars.name ?? 'bot'
  const steps = script.steps.map((step) => resolveStep(script, step, vars))

  let peer = given
  let bot = options.bot ?? (given ? createBot(given, { traffic: options.traffic }) : undefined)
  const ownsBot = options.bot === undefined
  const stopAtEnd = options.stopAtEnd ?? !given
  const inbox: InboxEntry[] = []
  let detach = () => {}
  const usesFiles = steps.some((s) => s.kind === 'offer' || s.kind === 'wait-file')
  let service = options.files
  const ownsFiles = !given && usesFiles && service === undefined
  if (ownsFiles) service = createFileService({ downloads: options.downloads ?? 'downloads' })
  let files: ScriptFiles | undefined

  const watch = (p: Peer) => {
    const onMessage = (m: ReceivedMessage) => {
      inbox.push({ fromId: m.from.id, fromName: m.from.name, text: m.text, used: false })
      if (inbox.length > INBOX_LIMIT) inbox.shift()
      log(`← ${m.from.name}: ${m.text}`)
    }
    const onConnect = (info: { name: string; address: string }) =>
      log(`+ ${info.name} connected (${info.address})`)
    // Closed here (the script stopping, or dropping a peer): not the peer leaving.
    const onDisconnect = (e: { peer: { name: string }; reason: string; message: string }) =>
      log(
        e.reason === 'local'
          ? `- disconnected from ${e.peer.name} (${e.message})`
          : `- ${e.peer.name} left (${e.reason}: ${e.message})`,
      )
    p.on('message', onMessage)
    p.on('peer:connect', onConnect)
    p.on('peer:disconnect', onDisconnect)
    if (service && usesFiles) files = new ScriptFiles(service, p, log)
    detach = () => {
      files?.detach()
      p.off('message', onMessage)
      p.off('peer:connect', onConnect)
      p.off('peer:disconnect', onDisconnect)
    }
  }
  if (peer) watch(peer)

  let stepsRun = 0
  let failure: { step: Step; message: string } | undefined
  let aborted = false
  let quit = false
  try {
    let todo = steps
    if (!peer) {
      const s = start ? (steps[0] as typeof start) : undefined
      const host = s?.host ?? options.host ?? '127.0.0.1'
      const port = s?.port ?? options.port ?? 0
      peer = createPeer({
        ...options.peerInit,
        transport: options.transport!,
        name: vars.name!,
        ...(ownsFiles && service ? { services: [...(options.peerInit?.services ?? []), service] } : {}),
        listen: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
      })
      bot = createBot(peer, { traffic: options.traffic })
      watch(peer)
      try {
        await peer.start({ signal: options.signal })
        log(`started ${peer.name} (${fingerprint(peer.id)}) on ${peer.addresses.join(', ') || 'no address'}`)
        if (s) {
          stepsRun++
          todo = steps.slice(1)
        }
      } catch (err) {
        if (options.signal?.aborted) aborted = true
        else {
          const what = s ? `${where(script, s)} failed` : `${script.source}: could not start the peer`
          failure = { step: s ?? steps[0]!, message: `${what}: ${describeError(err)}` }
        }
        todo = []
      }
    }
    for (const step of todo) {
      if (options.signal?.aborted) {
        aborted = true
        break
      }
      try {
        const outcome = await runStep(step, {
          script,
          peer,
          bot: bot!,
          inbox,
          log,
          signal: options.signal,
          files,
          closeFiles: async () => {
            if (ownsFiles) await service?.close()
          },
        })
        stepsRun++
        if (outcome === 'quit') {
          quit = true
          break
        }
      } catch (err) {
        if (options.signal?.aborted) {
          aborted = true
          break
        }
        failure = { step, message: `${where(script, step)} failed: ${describeError(err)}` }
        break
      }
    }
  } finally {
    detach()
    // Before the peer stops: partial downloads keep their state and no transfer sees its peer vanish first.
    if (ownsFiles) await service?.close()
    if (peer && !quit && (stopAtEnd || (aborted && !given))) await peer.stop()
    if (ownsBot) bot?.detach()
  }
  const status = aborted ? 'aborted' : failure ? 'failed' : 'passed'
  return {
    status,
    ok: status === 'passed',
    error: aborted ? 'the script was stopped before it finished' : failure?.message,
    failedStep: failure?.step,
    stepsRun,
    stats: bot?.stats ?? { sent: 0, delivered: 0, failed: 0, received: 0, peersSeen: new Set() },
    elapsedMs: Math.round(performance.now() - began),
  }
}

interface StepContext {
  readonly script: Script
  readonly peer: Peer
  readonly bot: Bot
  readonly inbox: InboxEntry[]
  readonly log: (line: string) => void
  readonly signal?: AbortSignal
  /** The file steps, when the script has any and there is a file service. */
  readonly files?: ScriptFiles
  /** Closes the file service the runner made (before `quit` stops the peer). */
  readonly closeFiles: () => Promise<void>
}

async function runStep(step: Step, ctx: StepContext): Promise<'next' | 'quit'> {
  const { peer, bot, log } = ctx
  const timeout = ('timeout' in step ? step.timeout : undefined) ?? ctx.script.timeout
  const within = <T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const limit = deadline(timeout, ctx.signal)
    return work(limit.signal).finally(() => limit.clear())
  }
  switch (step.kind) {
    case 'start':
      log(`start: already running as ${peer.name}`)
      return 'next'
    case 'connect': {
      const info = await within((signal) => peer.connect(step.address, { signal }))
      log(`connected to ${info.name} (${fingerprint(info.id)}) at ${step.address}`)
      return 'next'
    }
    case 'wait':
      await waitUntil(step.until, timeout, ctx)
      return 'next'
    case 'send':
      log(`→ ${step.to}: ${step.text}`)
      await bot.send(step.to, step.text, { timeout, signal: ctx.signal })
      return 'next'
    case 'broadcast': {
      const results = await bot.broadcast(step.text, { timeout, signal: ctx.signal })
      const delivered = results.filter((r) => r.ok).length
      log(`→ all: ${step.text} (${delivered}/${results.length} delivered)`)
      for (const r of results) if (!r.ok) log(`! not delivered to ${r.name}: ${describeError(r.error)}`)
      return 'next'
    }
    case 'peers': {
      if (step.query !== undefined) {
        const known = await within((signal) => peer.queryPeers(step.query!, { timeout, signal }))
        if (step.print) {
          log(`${step.query} knows ${known.length} peer${known.length === 1 ? '' : 's'}`)
          for (const k of known) {
            log(
              `  ${k.name}  ${fingerprint(k.id)}  ${k.addrs.join(' ')}${k.connected ? '  (connected)' : ''}`,
            )
          }
        }
        return 'next'
      }
      const { connected, known } = peer.peers()
      if (step.print) {
        log(`${connected.length} connected, ${known.length} known`)
        for (const p of connected) {
          log(
            `  ${p.name}  ${fingerprint(p.id)}  ${p.address}  ${p.direction}  in ${p.messagesIn} out ${p.messagesOut}`,
          )
        }
        for (const k of known) log(`  ${k.name}  ${fingerprint(k.id)}  ${k.addrs.join(' ')}  (not connected)`)
      }
      return 'next'
    }
    case 'connect-all': {
      const results = await within((signal) => peer.connectToActive({ signal }))
      if (results.length === 0) log('connect-all: no new peers to connect to')
      for (const r of results) {
        log(
          r.ok
            ? `connect-all: ${r.name} connected`
            : `connect-all: ${r.name} failed: ${describeError(r.error)}`,
        )
      }
      return 'next'
    }
    case 'assert':
      check(step, ctx)
      return 'next'
    case 'offer':
      await needFiles(ctx).offer(step, timeout, ctx.signal)
      return 'next'
    case 'wait-file':
      await needFiles(ctx).waitFile(step, timeout, ctx.signal)
      return 'next'
    case 'quit':
      log('quit: leaving')
      await ctx.closeFiles()
      await peer.stop()
      return 'quit'
  }
}

function needFiles(ctx: StepContext): ScriptFiles {
  if (!ctx.files) throw new BotError('USAGE', 'this peer runs no file service (pass `files` to runScript)')
  return ctx.files
}

function waitUntil(until: WaitCondition, timeout: number, ctx: StepContext): Promise<unknown> {
  const { peer, signal } = ctx
  switch (until.type) {
    case 'duration':
      return delay(until.ms, signal)
    case 'peer': {
      const found = () => peer.peers().connected.find((p) => p.name === until.name)
      return waitForEvent(peer, 'peer:connect', () => found(), {
        check: found,
        timeout,
        signal,
        timeoutMessage: () => `${until.name} did not connect within ${timeout} ms`,
      })
    }
    case 'peers': {
      const enough = () => (peer.peers().connected.length >= until.count ? true : undefined)
      return waitForEvent(peer, 'peer:connect', () => enough(), {
        check: enough,
        timeout,
        signal,
        timeoutMessage: () =>
          `${connectedCount(peer)} of ${until.count} peer${until.count === 1 ? '' : 's'} connected within ${timeout} ms`,
      })
    }
    case 'message': {
      const matches = messageMatcher(until)
      const take = () => {
        const entry = ctx.inbox.find((m) => !m.used && matches(m))
        if (entry) entry.used = true
        return entry
      }
      return waitForEvent(peer, 'message', () => take(), {
        check: take,
        timeout,
        signal,
        timeoutMessage: () => `no message ${describeMatch(until)} arrived within ${timeout} ms`,
      })
    }
  }
}

function check(step: AssertStep, ctx: StepContext): void {
  const connected = ctx.peer.status === 'running' ? ctx.peer.peers().connected : []
  const names = connected.map((p) => p.name)
  const listed = names.length > 0 ? names.join(', ') : 'none'
  const problems: string[] = []
  if (step.peers !== undefined && connected.length !== step.peers) {
    problems.push(
      `expected ${step.peers} connected peer${step.peers === 1 ? '' : 's'}, found ${connected.length} (${listed})`,
    )
  }
  const missing = (step.names ?? []).filter((n) => !names.includes(n))
  if (missing.length > 0)
    problems.push(`expected ${missing.join(', ')} to be connected (connected: ${listed})`)
  if (step.messages !== undefined && ctx.bot.stats.received < step.messages) {
    problems.push(`expected at least ${step.messages} messages, received ${ctx.bot.stats.received}`)
  }
  if (step.message !== undefined || step.regex !== undefined) {
    const cond = { text: step.message, regex: step.regex, from: step.from }
    if (!ctx.inbox.some(messageMatcher(cond))) {
      problems.push(`no message ${describeMatch(cond)} was received (${ctx.inbox.length} received)`)
    }
  }
  if (problems.length > 0) throw new BotError('ASSERTION_FAILED', problems.join('; '))
  ctx.log(`assert ok (${connected.length} connected, ${ctx.bot.stats.received} received)`)
}

function connectedCount(peer: Peer): number {
  return peer.status === 'running' ? peer.peers().connected.length : 0
}

interface MessageCondition {
  readonly text?: string
  readonly regex?: string
  readonly from?: string
}

function messageMatcher(c: MessageCondition): (m: InboxEntry) => boolean {
  const regex = c.regex === undefined ? undefined : new RegExp(c.regex)
  return (m) =>
    (c.from === undefined || m.fromName === c.from || m.fromId === c.from) &&
    (c.text === undefined || m.text.includes(c.text)) &&
    (regex === undefined || regex.test(m.text))
}

function describeMatch(c: MessageCondition): string {
  const what = c.regex !== undefined ? `matching /${c.regex}/` : `containing ${JSON.stringify(c.text ?? '')}`
  return c.from === undefined ? what : `${what} from ${c.from}`
}

/** `hello.yaml line 9: steps[2].assert` */
function where(script: Script, step: Step, field?: string): string {
  const line = step.line === undefined ? '' : ` line ${step.line}`
  return `${script.source}${line}: ${step.path}.${step.kind}${field ? `.${field}` : ''}`
}

/** Substitutes variables in every string field of a step. */
function resolveStep(script: Script, step: Step, vars: Vars): Step {
  const out: Record<string, unknown> = { ...step }
  for (const [key, value] of Object.entries(step)) {
    if (key === 'kind' || key === 'path') continue
    if (typeof value === 'string') out[key] = renderField(script, step, key, value, vars)
    else if (Array.isArray(value))
      out[key] = value.map((v: string) => renderField(script, step, key, v, vars))
  }
  if (step.kind === 'wait') {
    const until: Record<string, unknown> = { ...step.until }
    for (const [key, value] of Object.entries(step.until)) {
      // The condition's fields are named as in the file: `message:` is `text`, `peer:` is `name`.
      const field = key === 'text' ? 'message' : key === 'name' ? 'peer' : key
      if (key !== 'type' && typeof value === 'string')
        until[key] = renderField(script, step, field, value, vars)
    }
    out.until = until
  }
  const regex = (
    step.kind === 'wait' ? (out.until as { regex?: string }).regex : (out as { regex?: string }).regex
  ) as string | undefined
  if (regex !== undefined) {
    try {
      new RegExp(regex)
    } catch {
      throw new ScriptValidationError([
        `${where(script, step, 'regex')} is not a valid regular expression once variables are filled in`,
      ])
    }
  }
  return out as unknown as Step
}

function renderField(script: Script, step: Step, field: string, template: string, vars: Vars): string {
  try {
    return render(template, vars)
  } catch (err) {
    const name = (err as Error).message
    throw new ScriptValidationError([
      `${where(script, step, field)} uses {{${name}}}, which is not defined (set it under vars: or pass --var ${name}=...)`,
    ])
  }
}
