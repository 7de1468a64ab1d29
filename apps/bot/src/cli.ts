import { existsSync, readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  createPeer,
  FINAL_DIAL_CODES,
  fingerprint,
  memoryNetwork,
  memoryTransport,
  type Peer,
  parseAddress,
  type Transport,
  tcpTransport,
} from '@parley/core'
import { printable } from '@parley/files'
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import {
  BEHAVIOURS,
  type BehaviourName,
  type BehaviourOptions,
  isReactive,
  startBehaviour,
} from './behaviours/index.js'
import { createBot } from './bot.js'
import { BotError, describeError, ScriptValidationError } from './errors.js'
import { loadScript } from './scripts/parse.js'
import { runScript } from './scripts/runner.js'
import { formatProcessSummary, MAX_PROCESSES, runProcessSwarm } from './swarm/processes.js'
import { formatSummary, MAX_SWARM_SIZE, type Swarm, startSwarm } from './swarm/swarm.js'
import { TOPOLOGIES, type Topology } from './swarm/topology.js'

/** Exit codes of the `bot` command. */
export const ExitCode = {
  OK: 0,
  /** A script failed (an assertion, a step) or a swarm's scripts did not all pass; or a runtime error. */
  FAILED: 1,
  /** Bad flags, an unreadable script, or a script that breaks the format. */
  USAGE: 2,
  /** Stopped by Ctrl+C. */
  SIGINT: 130,
  /** Stopped by SIGTERM. */
  SIGTERM: 143,
} as const

/** Where the CLI reads and writes, so tests drive it in-process. */
export interface CliIO {
  stdout: { write(chunk: string): unknown }
  stderr: { write(chunk: string): unknown; isTTY?: boolean }
  /** Aborted with reason `'SIGINT'` or `'SIGTERM'` to stop gracefully; the exit code follows the reason. */
  signal?: AbortSignal
  /** Makes the transport that replaces TCP (tests pass a memory transport). `swarm --memory` always gets a fresh in-memory network. @default tcpTransport() */
  transport?: () => Transport
  /** How `run --peer` is dialed again while it is not up. @default 0.5 s doubling to 15 s, 10 dials */
  peerRetry?: { initialDelay: number; maxDelay: number; maxAttempts: number }
}

interface RunFlags {
  name?: string
  host: string
  port: number
  peer: string[]
  to?: string
  text?: string
  prefix?: string
  interval?: number
  count?: number
  duration?: number
}

interface ScriptFlags {
  var: Record<string, string>
  name?: string
  host: string
  port: number
  downloads: string
}

interface SwarmFlags {
  count: number
  topology: Topology
  behaviour?: BehaviourName
  script?: string
  memory?: boolean
  duration: number
  json?: boolean
  seed?: number
  host: string
  name?: string
  var: Record<string, string>
  hello?: string | false
  text?: string
  prefix?: string
  interval?: number
  messages?: number
  to?: string
  verbose?: boolean
  processes?: number
  broadcasts: number
  active: number
  timeLimit: number
  plaintext?: boolean
}

/**
 * Runs the `bot` command line (argv without `node` and the script) and resolves with the exit code.
 * Never throws: every error becomes one sentence on stderr (with the stack under `--debug`) and a code.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  // pnpm 10 passes the `--` of `pnpm start -- run echo` through to the program.
  const args = argv[0] === '--' ? argv.slice(1) : [...argv]
  const debug = args.includes('--debug')
  let code: number = ExitCode.OK
  const program = buildProgram(io, (c) => {
    code = c
  })
  try {
    await program.parseAsync(args, { from: 'user' })
    return code
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE
    if (err instanceof ScriptValidationError) {
      for (const p of err.problems) io.stderr.write(`${p}\n`)
      return ExitCode.USAGE
    }
    io.stderr.write(`bot: ${describeError(err)}\n`)
    if (debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`)
    if (err instanceof BotError && (err.code === 'USAGE' || err.code === 'SCRIPT_UNREADABLE'))
      return ExitCode.USAGE
    return ExitCode.FAILED
  }
}

/**
 * Turns SIGINT/SIGTERM into an abort of the returned signal (reason `'SIGINT'`/`'SIGTERM'`); a second
 * signal calls `exit` at once. Uses `on`, not `once`, so a library's own signal handling cannot re-raise
 * the signal before our graceful stop finishes.
 */
export function handleSignals(
  proc: Pick<NodeJS.Process, 'on' | 'off'>,
  exit: (code: number) => void,
): { signal: AbortSignal; stop(reason: 'SIGINT' | 'SIGTERM'): void; dispose(): void } {
  const controller = new AbortController()
  const on = (name: 'SIGINT' | 'SIGTERM') => () => {
    if (controller.signal.aborted) exit(name === 'SIGINT' ? ExitCode.SIGINT : ExitCode.SIGTERM)
    else controller.abort(name)
  }
  const onInt = on('SIGINT')
  const onTerm = on('SIGTERM')
  proc.on('SIGINT', onInt)
  proc.on('SIGTERM', onTerm)
  return {
    signal: controller.signal,
    /** Stops gracefully as on that signal (once; unlike a signal, a repeat does not exit at once). */
    stop(reason) {
      if (!controller.signal.aborted) controller.abort(reason)
    },
    dispose() {
      proc.off('SIGINT', onInt)
      proc.off('SIGTERM', onTerm)
    },
  }
}

function signalCode(signal: AbortSignal | undefined): number | undefined {
  if (!signal?.aborted) return undefined
  return signal.reason === 'SIGTERM' ? ExitCode.SIGTERM : ExitCode.SIGINT
}

function buildProgram(io: CliIO, setCode: (code: number) => void): Command {
  // What peers send (names, texts, reasons, addresses) never reaches the terminal as controls or
  // escape sequences, and an event is one line: a peer's newline cannot print a line of its own.
  const out = (line: string) => io.stdout.write(`${line.split('\n').map(printable).join('\n')}\n`)
  const event = (line: string) => out(printable(line))
  const makeTransport = io.transport ?? (() => tcpTransport())

  const program = new Command('bot')
    .description('Scripted Parley bot peers: built-in behaviours, scripts, and swarms for demos and tests.')
    .version(version(), '-v, --version')
    .option('--debug', 'print stack traces with errors')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // One line: commander's sentence (and its "Did you mean" on a line of its own) and the hint.
      outputError: (s, write) =>
        write(
          `${s
            .replace(/^error: /, 'bot: ')
            .replace(/\s*\n\s*/g, ' ')
            .trim()} — --help lists the commands and flags\n`,
        ),
    })

  program
    .command('run')
    .description('run one bot with a built-in behaviour until Ctrl+C (chatter stops after --count messages)')
    .addArgument(new Argument('<behaviour>', 'what the bot does').choices(BEHAVIOURS))
    .option('-n, --name <name>', 'display name (default: <behaviour>-bot)')
    .option('-H, --host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <n>', 'port to listen on (0 = any free port)', int('port', 0, 65535), 0)
    .option('--peer <host:port>', 'connect to this peer at start (repeatable)', collect, [])
    .option('--to <peer>', 'chatter: send to this peer only (name, id or host:port)')
    .option(
      '--text <text>',
      'chatter: the message ({{n}}, {{name}}); greeter: the welcome ({{peer}}, {{name}})',
    )
    .option('--prefix <text>', 'echo: put before the echoed text (default: "echo: ")')
    .option('--interval <ms>', 'chatter: time between messages', int('interval', 1, 3_600_000))
    .option('--count <n>', 'chatter: messages to send', int('count', 1, 1_000_000))
    .option('--duration <ms>', 'stop after this long', int('duration', 1, 2_147_483_647))
    .action(async (behaviour: BehaviourName, flags: RunFlags) =>
      setCode(await runBehaviour(behaviour, flags)),
    )

  program
    .command('script')
    .description('run a JSON or YAML script of steps; exit 1 when a step or an assertion fails')
    .argument('<file>', 'the script (.json, .yaml or .yml)')
    .option('--var <key=value>', 'set a {{variable}} of the script (repeatable)', collectVar, {})
    .option('-n, --name <name>', 'display name when the script does not set one', 'script-bot')
    .option('-H, --host <host>', 'address to listen on when the script does not set one', '127.0.0.1')
    .option(
      '-p, --port <n>',
      'port when the script does not set one (0 = any free port)',
      int('port', 0, 65535),
      0,
    )
    .option('--downloads <dir>', 'where wait-file steps save files', 'downloads')
    .action(async (file: string, flags: ScriptFlags) => setCode(await runScriptFile(file, flags)))

  program
    .command('swarm')
    .description(
      'start N bots in this process, wire them, run a behaviour or a script on each, print a summary',
    )
    .option('--count <n>', 'bots to start', int('count', 1, MAX_SWARM_SIZE), 5)
    .addOption(new Option('--topology <shape>', 'how the bots are wired').choices(TOPOLOGIES).default('ring'))
    .addOption(
      new Option('--behaviour <name>', 'behaviour every bot runs (default: echo, unless --script)').choices(
        BEHAVIOURS,
      ),
    )
    .option('--script <file>', 'script every bot runs ({{index}}, {{name}}, {{count}} are set per bot)')
    .option('--memory', 'use the in-memory transport instead of TCP on 127.0.0.1')
    .option('--duration <ms>', 'upper bound of the run', int('duration', 1, 2_147_483_647), 10_000)
    .option('--json', 'print the summary as JSON')
    .option('--seed <n>', 'seed of the random topology', int('seed', 0, 2 ** 32 - 1))
    .option('-H, --host <host>', 'address the bots listen on (TCP)', '127.0.0.1')
    .option('-n, --name <template>', 'bot name template', 'bot-{{index}}')
    .option('--var <key=value>', 'set a {{variable}} of the script (repeatable)', collectVar, {})
    .option(
      '--hello <text>',
      'first message each bot broadcasts (default for echo and relay: "hello from {{name}}")',
    )
    .option('--no-hello', 'do not broadcast a first message')
    .option('--text <text>', 'chatter/greeter text')
    .option('--prefix <text>', 'echo prefix')
    .option('--interval <ms>', 'chatter: time between messages', int('interval', 1, 3_600_000))
    .option('--messages <n>', 'chatter: messages each bot sends', int('messages', 1, 1_000_000))
    .option('--to <peer>', 'chatter: send to this peer only')
    .option('--verbose', 'print what every bot does, not only the summary')
    .option(
      '--processes <k>',
      'run the bots as mesh peers in K child processes over TCP, measure formation and broadcast reach',
      int('processes', 1, MAX_PROCESSES),
    )
    .option('--broadcasts <n>', 'with --processes: broadcasts to measure', int('broadcasts', 0, 100), 2)
    .option('--active <n>', 'with --processes: mesh neighbours per bot', int('active', 1, 30), 6)
    .option(
      '--time-limit <s>',
      'with --processes: budget of the whole run',
      int('time-limit', 1, 86_400),
      360,
    )
    .option('--plaintext', "with --processes: no secure channel (spares the handshakes' CPU)")
    .action(async (flags: SwarmFlags) =>
      setCode(flags.processes === undefined ? await runSwarmCommand(flags) : await runProcessCommand(flags)),
    )

  async function runBehaviour(behaviour: BehaviourName, flags: RunFlags): Promise<number> {
    // A malformed --peer is a usage error before anything starts, not after "listening on".
    for (const address of flags.peer) {
      let port: number
      try {
        port = parseAddress(address).port
      } catch (err) {
        throw new BotError('USAGE', `--peer ${address} is not an address: ${describeError(err)}`)
      }
      if (port === 0)
        throw new BotError('USAGE', `--peer ${address} is not an address: port 0 cannot be dialed`)
    }
    const peer = createPeer({
      transport: makeTransport(),
      name: flags.name ?? `${behaviour}-bot`,
      listen: listenAddress(flags.host, flags.port),
    })
    const bot = createBot(peer)
    printEvents(peer, event)
    bot.on('sent', (target, text) => event(`→ ${nameOf(peer, target)}: ${text}`))
    bot.on('failed', (target, _text, err) =>
      event(`! not delivered to ${nameOf(peer, target)}: ${describeError(err)}`),
    )
    const options = behaviourOptions(flags, flags.count)
    // Reactive behaviours attach before connecting (a greeter must see the --peer connections);
    // chatter starts once they are up, so its first messages have somewhere to go.
    let handle = isReactive(behaviour) ? startBehaviour(behaviour, bot, options) : undefined
    let stopping = () => {}
    try {
      await peer.start({ signal: io.signal })
      out(
        `${peer.name} (${fingerprint(peer.id)}) listening on ${peer.addresses.join(', ')}, behaviour ${behaviour}`,
      )
      // Dialed again with backoff, as the CLI's --peer: a bot may start before the peer it dials.
      const stopped = new AbortController()
      const signal = io.signal ? AbortSignal.any([io.signal, stopped.signal]) : stopped.signal
      const dials = flags.peer.map((address) => dialWithRetry(peer, address, signal))
      stopping = () => stopped.abort()
      // A chatter needs a peer first (the first one up will do); the reactive ones run meanwhile.
      if (!isReactive(behaviour) && flags.peer.length > 0) {
        const reached = await new Promise<boolean>((resolve) => {
          let left = dials.length
          for (const dial of dials)
            void dial.then((ok) => (ok ? resolve(true) : --left === 0 && resolve(false)))
        })
        if (io.signal?.aborted) return signalCode(io.signal) ?? ExitCode.OK
        if (!reached)
          throw new BotError('TIMEOUT', `no --peer could be reached: ${behaviour} has no one to talk to`)
      }
      handle ??= startBehaviour(behaviour, bot, options)
      await until([handle.done], !isReactive(behaviour), flags.duration, stopped.signal)
    } finally {
      stopping()
      handle?.stop()
      await peer.stop()
      bot.detach()
    }
    return signalCode(io.signal) ?? ExitCode.OK
  }

  /**
   * Connects to a `--peer` address, dialing again with backoff (0.5 s doubling to 15 s, 10 dials: about
   * a minute and a half) while it is not up; the first failure and the last are printed. Resolves
   * whether it connected; never rejects (runBehaviour checked the address first).
   */
  async function dialWithRetry(peer: Peer, address: string, signal: AbortSignal): Promise<boolean> {
    const { initialDelay, maxDelay, maxAttempts } = io.peerRetry ?? {
      initialDelay: 500,
      maxDelay: 15_000,
      maxAttempts: 10,
    }
    let delay = initialDelay
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        await peer.connect(address, { signal })
        return true
      } catch (err) {
        if (signal.aborted) return false
        const code = (err as { code?: unknown }).code
        const final = attempt === maxAttempts || (typeof code === 'string' && FINAL_DIAL_CODES.has(code))
        if (attempt === 1 || final) {
          io.stderr.write(
            `bot: ${describeError(err)}${final ? (attempt > 1 ? ` (gave up after ${attempt} tries)` : '') : '; trying again for about a minute and a half'}\n`,
          )
        }
        if (final) return false
        await sleep(delay, signal)
        delay = Math.min(maxDelay, delay * 2)
      }
    }
    return false
  }

  async function runScriptFile(file: string, flags: ScriptFlags): Promise<number> {
    const script = await loadScript(scriptPath(file))
    const result = await runScript(script, {
      transport: makeTransport(),
      vars: flags.var,
      name: flags.name,
      host: flags.host,
      port: flags.port,
      downloads: flags.downloads,
      log: out,
      signal: io.signal,
    })
    const code = signalCode(io.signal)
    if (code !== undefined) return code
    if (!result.ok) {
      io.stderr.write(`${result.error}\n`)
      return ExitCode.FAILED
    }
    out(`script passed: ${result.stepsRun} steps in ${result.elapsedMs} ms`)
    return ExitCode.OK
  }

  async function runSwarmCommand(flags: SwarmFlags): Promise<number> {
    if (flags.behaviour !== undefined && flags.script !== undefined) {
      throw new BotError('USAGE', 'give the swarm either --behaviour or --script, not both')
    }
    // A swarm with neither does what a demo wants: every bot answers what it hears.
    const behaviour = flags.script === undefined ? (flags.behaviour ?? 'echo') : undefined
    const script = flags.script === undefined ? undefined : await loadScript(scriptPath(flags.script))
    const memory = flags.memory === true
    const network = memory ? memoryNetwork() : undefined
    const tcp = memory ? undefined : makeTransport()
    const progress = swarmProgress(io.stderr, flags.count, flags.topology)
    const swarm = await startSwarm({
      count: flags.count,
      topology: flags.topology,
      // In memory each bot gets its own host, as separate processes would.
      transport: network ? (i) => memoryTransport(network, { host: `bot-${i}` }) : tcp!,
      listen: (i) => (network ? `bot-${i}:0` : listenAddress(flags.host, 0)),
      name: flags.name,
      behaviour,
      behaviourOptions: behaviourOptions(flags, flags.messages),
      // undefined unless --hello <text> (a string) or --no-hello (false) was given.
      hello: flags.hello,
      script,
      vars: flags.var,
      duration: flags.duration,
      seed: flags.seed,
      log: flags.verbose ? out : undefined,
      signal: io.signal,
    }).catch((err: unknown) => {
      progress.end()
      throw err
    })
    progress.running(swarm)
    await swarm.done
    progress.end()
    const summary = await swarm.stop()
    io.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary))
    const code = signalCode(io.signal)
    if (code !== undefined) return code
    const s = summary.scripts
    return s && (s.failed > 0 || s.aborted > 0) ? ExitCode.FAILED : ExitCode.OK
  }

  /** `swarm --processes K`: mesh bots over TCP in child processes; the measured summary. */
  async function runProcessCommand(flags: SwarmFlags): Promise<number> {
    if (flags.memory || flags.script !== undefined || flags.behaviour !== undefined) {
      throw new BotError(
        'USAGE',
        '--processes runs mesh bots over TCP: it takes no --memory, --script or --behaviour',
      )
    }
    const summary = await runProcessSwarm({
      count: flags.count,
      processes: flags.processes!,
      host: flags.host,
      activeSize: flags.active,
      broadcasts: flags.broadcasts,
      timeLimit: flags.timeLimit * 1000,
      plaintext: flags.plaintext === true,
      ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
      onProgress: (line) => io.stderr.write(`${line}\n`),
    })
    io.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : formatProcessSummary(summary))
    const code = signalCode(io.signal)
    if (code !== undefined) return code
    return summary.completed && summary.reach.every((r) => r === 1) ? ExitCode.OK : ExitCode.FAILED
  }

  /**
   * Live progress of a swarm on stderr (stdout keeps only the summary, so `--json` stays parseable):
   * on a terminal one line redrawn in place, otherwise a line every few seconds.
   */
  function swarmProgress(err: CliIO['stderr'], count: number, topology: string) {
    const began = Date.now()
    const tty = err.isTTY === true
    let timer: NodeJS.Timeout | undefined
    let shown = false
    err.write(`starting ${count} bots (${topology})…\n`)
    return {
      running(swarm: Swarm) {
        err.write(
          `${swarm.bots.length} bots up, ${swarm.edges.length} links wired in ${Date.now() - began} ms\n`,
        )
        const draw = () => {
          let sent = 0
          let delivered = 0
          let received = 0
          let failed = 0
          for (const b of swarm.bots) {
            sent += b.stats.sent
            delivered += b.stats.delivered
            received += b.stats.received
            failed += b.stats.failed
          }
          const seconds = ((Date.now() - began) / 1000).toFixed(1)
          const line = `${seconds}s  sent ${sent}  delivered ${delivered}  received ${received}  failed ${failed}`
          err.write(tty ? `\r\x1b[2K${line}` : `${line}\n`)
          shown = true
        }
        timer = setInterval(draw, tty ? 250 : 2_000)
        timer.unref()
      },
      end() {
        clearInterval(timer)
        if (tty && shown) err.write('\n')
      },
    }
  }

  /** Resolves when the signal aborts, `duration` passes, or (if `finite`) the work is done. */
  function until(
    work: Promise<unknown>[],
    finite: boolean,
    duration: number | undefined,
    also?: AbortSignal,
  ): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        io.signal?.removeEventListener('abort', done)
        also?.removeEventListener('abort', done)
        resolve()
      }
      const timer = duration === undefined ? undefined : setTimeout(done, duration)
      if (io.signal?.aborted || also?.aborted) return done()
      io.signal?.addEventListener('abort', done, { once: true })
      also?.addEventListener('abort', done, { once: true })
      if (finite) Promise.all(work).then(done, done)
    })
  }

  return program
}

/** Resolves after `ms`, or at once when `signal` aborts; the timer never holds the process. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    timer.unref()
    signal.addEventListener('abort', done, { once: true })
  })
}

function behaviourOptions(
  flags: { to?: string; text?: string; prefix?: string; interval?: number },
  count: number | undefined,
): BehaviourOptions {
  return { to: flags.to, text: flags.text, prefix: flags.prefix, interval: flags.interval, count }
}

function printEvents(peer: Peer, out: (line: string) => void): void {
  peer.on('peer:connect', (p) => out(`+ ${p.name} (${fingerprint(p.id)}) joined from ${p.address}`))
  // Closed here (the bot stopping, or dropping a peer): not the peer leaving.
  peer.on('peer:disconnect', (e) =>
    out(
      e.reason === 'local'
        ? `- disconnected from ${e.peer.name} (${e.message})`
        : `- ${e.peer.name} left (${e.reason}: ${e.message})`,
    ),
  )
  peer.on('message', (m) => out(`← ${m.from.name}: ${m.text}`))
  peer.on('error', (err) => out(`! ${describeError(err)}`))
}

function nameOf(peer: Peer, target: string): string {
  return peer.status === 'running'
    ? (peer.peers().connected.find((p) => p.id === target)?.name ?? target)
    : target
}

function listenAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

function int(what: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`The ${what} must be a whole number from ${min} to ${max}.`)
    }
    return n
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

function collectVar(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=')
  const key = eq > 0 ? value.slice(0, eq) : ''
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) {
    throw new InvalidArgumentError('expected key=value, with a key of letters, digits, _ . -')
  }
  return { ...previous, [key]: value.slice(eq + 1) }
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string
    }
    return pkg.version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}

/** The bot package's folder: its bundled examples are found from anywhere by their own path. */
const BOT_DIR = fileURLToPath(new URL('..', import.meta.url))

/**
 * A script's path: relative to the folder the command was typed in; a relative path found only in the
 * bot's own folder (`examples/hello.yaml`, as its README writes it) is the bundled one.
 */
export function scriptPath(file: string): string {
  if (isAbsolute(file) || existsSync(file)) return file
  const bundled = join(BOT_DIR, file)
  return existsSync(bundled) ? bundled : file
}
