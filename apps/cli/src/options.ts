import { readFileSync, realpathSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { type DhtOptions, DhtOptionsError, dhtOptions } from '@parley/dht'
import { displayNameProblem, Limits } from '@parley/protocol'
import { Command, CommanderError, Option } from 'commander'

/** The log levels `--log-level` accepts, quietest first. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Everything the command line and the environment decided. */
export interface CliOptions {
  /** Undefined when neither --name nor PARLEY_NAME gave one (interactive mode then asks). */
  name: string | undefined
  host: string
  port: number
  peers: string[]
  dataDir: string | undefined
  interactive: boolean
  /** The numbered menu instead of the chat view (`--menu`). */
  menu: boolean
  json: boolean
  logFile: string | undefined
  logLevel: LogLevel
  debug: boolean
  color: boolean
  /** Private network secret (passphrase, or the bytes of --network-secret-file). */
  networkSecret: Uint8Array | undefined
  /** Only these peer ids may connect (undefined: everyone). */
  allow: string[] | undefined
  deny: string[]
  /** Accept (and save) a different key presented at a saved address instead of refusing it. */
  acceptKeyChange: boolean
  /** Also talk to peers of the original plain-text protocol (`--legacy`, or implied by `--legacy-peer`). */
  legacy: boolean
  /** Legacy peers known from the start (`--legacy-peer`). */
  legacyPeers: string[]
  /** The DHT to join (`--dht`, `--bootstrap`, `--join`, `--relay`); undefined: TCP only. */
  dht: DhtOptions | undefined
  /** Find and be found by peers on the local network by mDNS (`--lan`). */
  lan: boolean
  /** Where received files go (`--downloads`); undefined: the default (see {@link downloadsDir}). */
  downloads: string | undefined
  /** Accept every file offer without asking (`--accept-files`). */
  acceptFiles: boolean
  /** Sentences to show at start (e.g. a secret given on the command line). */
  warnings: string[]
  /**
   * The folder relative paths the user typed are meant from (`--data-dir`, `--log-file`,
   * `--downloads`, `/send-file ./x`): where the command was typed (see {@link invocationDir}).
   */
  cwd: string
}

/** The outcome of parsing: options to run with, or an exit code after help/version/usage error. */
export type ParseResult = { kind: 'run'; options: CliOptions } | { kind: 'exit'; code: number }

export interface ParseIo {
  env: Readonly<Record<string, string | undefined>>
  /** Where relative paths are resolved from. @default invocationDir(env) */
  cwd?: string
  out: (text: string) => void
  err: (text: string) => void
}

/** Exit code for usage errors (bad flag, bad value). */
export const EXIT_USAGE = 2

/** Reads the version from this package's package.json (one directory above both src/ and dist/). */
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string
    }
    return pkg.version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}

/** How long non-interactive commands wait for the --peer connections before running anyway. */
export const PEER_WAIT_SECONDS = 15

const HELP_AFTER = `
Environment:
  PARLEY_NAME, PARLEY_HOST, PARLEY_PORT, PARLEY_DATA_DIR, PARLEY_PEERS (comma-separated host:port list),
  PARLEY_LOG_FILE, PARLEY_LOG_LEVEL, PARLEY_NETWORK_SECRET, PARLEY_LEGACY=1, PARLEY_DOWNLOADS. Flags win over the environment.
  Prefer PARLEY_NETWORK_SECRET or --network-secret-file to --network-secret: flags show in the process list.
  NO_COLOR turns colour off.

Chat view (the default on a terminal): type a line and Enter to send it to the current conversation
  (everyone until you pick one with /to <name>); /help lists the commands; Tab completes commands and
  names; Ctrl+C or /quit leaves. --menu starts the numbered menu instead (/menu switches to it).

Non-interactive mode (--no-interactive, or when stdin/stdout is not a terminal):
  one line per event on stdout (NDJSON with --json); errors on stderr (in the NDJSON stream with --json).
  Commands, one per line on stdin:
    send <peer> <text>    <peer> is a name, fingerprint, peer id (or prefix) or host:port;
                          quote a name with spaces: send "bob smith" hi; \\n in <text> is a line break;
                          with --legacy, legacy:<host:port> or legacy:<name> sends clear text to a
                          legacy peer (only ever when written so; never a Parley peer's name)
    broadcast <text>      to every connected peer (acknowledged), relayed on through the mesh
    peers                 connected and known peers
    connect <host:port>   connect to one peer
    connect-all           connect to every known peer not yet connected, up to the mesh's degree in a
                          large network (and send connect to legacy peers)
    trust [--full]        list key changes waiting for your decision, with both fingerprints (--full: keys)
    trust <address>       accept the new key seen at <address>; it is saved in the known-peers file
    send-file <peer> <path>
                          offer a file; the receiver accepts it (or runs with --accept-files)
    accept [id]           accept a file offer (without an id: the only one waiting)
    decline [id]          decline a file offer
    cancel <id>           stop a file transfer, sending or receiving (files lists the ids)
    files                 file offers waiting and transfers running, with their ids
    quit                  say goodbye to every peer (exit to legacy peers) and exit
  Commands wait until every --peer is connected (or given up on, at most ${PEER_WAIT_SECONDS} s).
  --peer addresses not up yet are dialed again with backoff for about a minute and a half.
  End of stdin does not stop the peer (so it can run as a daemon with < /dev/null): send "quit",
  Ctrl+C or SIGTERM.

Exit codes: 0 quit (/quit, Ctrl+C or Ctrl+D at a terminal, quit, menu 0), 1 failed to start,
  2 usage error, 129 SIGHUP or the terminal closed, 130 SIGINT (non-interactive), 141 the output's
  reader left (EPIPE), 143 SIGTERM.
`

/**
 * Parses argv (without node and script) plus the environment. A literal `--` anywhere is ignored:
 * `pnpm --filter cli start -- --port 4000` passes it through, and this program takes no operands.
 * Writes help/version to `io.out` and one-sentence usage errors to `io.err`.
 */
export function parseOptions(argv: readonly string[], io: ParseIo): ParseResult {
  const program = new Command('parley')
    .description('Parley: a peer-to-peer messenger. Every peer listens and dials; no server.')
    .addOption(
      new Option(
        '-n, --name <name>',
        `your display name, at most ${Limits.nameBytes} bytes (env PARLEY_NAME)`,
      ),
    )
    .addOption(new Option('-H, --host <host>', 'address to listen on (env PARLEY_HOST)').default('127.0.0.1'))
    .addOption(
      new Option('-p, --port <port>', 'port to listen on, 0 = any free port (env PARLEY_PORT)').default('0'),
    )
    .addOption(
      new Option(
        '--peer <host:port>',
        'connect to this peer at start; repeatable (env PARLEY_PEERS)',
      ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
    )
    .addOption(
      new Option(
        '--data-dir <dir>',
        'keep the identity key here, so the peer id survives restarts (env PARLEY_DATA_DIR)',
      ),
    )
    .addOption(
      new Option(
        '--network-secret <passphrase>',
        'private network: only peers with the same secret can connect (env PARLEY_NETWORK_SECRET)',
      ),
    )
    .addOption(
      new Option(
        '--network-secret-file <path>',
        'read the private network secret from a file, without its final line end (safer: a flag is visible to every local user)',
      ),
    )
    .addOption(new Option('--allow <peer-id>', 'only accept these peer ids; repeatable').argParser(collect))
    .addOption(new Option('--deny <peer-id>', 'refuse these peer ids; repeatable').argParser(collect))
    .addOption(
      new Option('--accept-key-change', 'accept a peer whose key differs from the one saved for its address'),
    )
    .addOption(
      new Option(
        '--legacy',
        'also talk to peers of the original plain-text protocol, on the same port — no authentication, no encryption (env PARLEY_LEGACY=1)',
      ),
    )
    .addOption(
      new Option(
        '--legacy-peer <host:port>',
        'a plain-text (legacy) peer to know at start; repeatable; implies --legacy',
      ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value.trim()]),
    )
    .addOption(new Option('--dht', 'also be reachable on the public HyperDHT, as dht:<your peer id>'))
    .addOption(
      new Option(
        '--bootstrap <host:port>',
        'join the DHT through this node instead of the public ones; repeatable (implies the DHT)',
      ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value.trim()]),
    )
    .addOption(
      new Option(
        '--join <topic>',
        'announce this peer on a DHT topic and connect to the peers on it; repeatable (needs --dht or --bootstrap)',
      ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
    )
    .addOption(
      new Option('--relay <peer-id>', 'relay DHT connections through this peer when hole punching fails'),
    )
    .addOption(
      new Option(
        '--lan',
        'find peers on the local network by mDNS and be found by them (listens on 0.0.0.0 unless --host is given)',
      ),
    )
    .addOption(
      new Option(
        '--menu',
        'the numbered menu (1 send, 2 peers, 3 connect to all, 0 quit) instead of the chat view',
      ),
    )
    .addOption(
      new Option(
        '--downloads <dir>',
        'where received files go (env PARLEY_DOWNLOADS; default: downloads/ in --data-dir, else in the current folder)',
      ),
    )
    .addOption(
      new Option(
        '--accept-files',
        'accept every file offer without asking (otherwise each waits for accept, or expires in 60 s)',
      ),
    )
    .addOption(new Option('--no-interactive', 'no chat view: print events, read commands from stdin'))
    .addOption(
      new Option('--json', 'non-interactive (even at a terminal): events and results as NDJSON on stdout'),
    )
    .addOption(new Option('--log-file <path>', 'append NDJSON logs to this file (env PARLEY_LOG_FILE)'))
    .addOption(
      new Option('--log-level <level>', 'log level for --log-file (env PARLEY_LOG_LEVEL)')
        .choices(LOG_LEVELS)
        .default('info'),
    )
    .addOption(new Option('--debug', 'show stack traces and log at debug level'))
    .addOption(new Option('--no-color', 'no colours (also: NO_COLOR=1)'))
    .version(version(), '-v, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help and exit')
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      // Commander's own error line is replaced by ours below (one sentence, no usage dump).
      outputError: () => {},
    })

  try {
    program.parse(
      argv.filter((a) => a !== '--'),
      { from: 'user' },
    )
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      ) {
        return { kind: 'exit', code: 0 }
      }
      io.err(`parley: ${oneSentence(err)} — --help lists the flags\n`)
      return { kind: 'exit', code: EXIT_USAGE }
    }
    throw err
  }

  const raw = program.opts<{
    name?: string
    host: string
    port: string
    peer?: string[]
    dataDir?: string
    interactive: boolean
    menu?: boolean
    json?: boolean
    logFile?: string
    logLevel: string
    debug?: boolean
    color: boolean
    networkSecret?: string
    networkSecretFile?: string
    allow?: string[]
    deny?: string[]
    acceptKeyChange?: boolean
    legacy?: boolean
    legacyPeer?: string[]
    dht?: boolean
    bootstrap?: string[]
    join?: string[]
    relay?: string
    lan?: boolean
    downloads?: string
    acceptFiles?: boolean
  }>()
  const fromCli = (key: string) => program.getOptionValueSource(key) === 'cli'
  const env = (name: string) => {
    const v = io.env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  const cwd = io.cwd ?? invocationDir(io.env)
  const usage = (sentence: string): ParseResult => {
    io.err(`parley: ${sentence}\n`)
    return { kind: 'exit', code: EXIT_USAGE }
  }

  // White space around a name is never meant (`--name " bob"`), and the wire refuses it.
  const name = (fromCli('name') ? raw.name : (env('PARLEY_NAME') ?? raw.name))?.trim()
  if (name !== undefined) {
    const problem = nameProblem(name)
    if (problem !== undefined) return usage(`--name ${problem}`)
  }
  const lan = raw.lan === true
  // --lan: LAN peers must be able to reach us, so the default listen address is every interface.
  const host = fromCli('host') ? raw.host : (env('PARLEY_HOST') ?? (lan ? '0.0.0.0' : raw.host))
  if (host.trim() === '') return usage('--host must not be empty')

  const portFromEnv = !fromCli('port') && env('PARLEY_PORT') !== undefined
  const portText = portFromEnv ? env('PARLEY_PORT')! : raw.port
  const port = parsePort(portText)
  if (port === undefined) {
    return usage(
      `${portFromEnv ? 'PARLEY_PORT' : '--port'} must be a whole number from 0 to 65535, not "${portText}"`,
    )
  }

  const peers = fromCli('peer')
    ? (raw.peer ?? [])
    : (env('PARLEY_PEERS')
        ?.split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '') ?? [])
  for (const address of peers) {
    const bad = checkAddress(address)
    if (bad !== undefined) return usage(`${fromCli('peer') ? '--peer' : 'PARLEY_PEERS'}: ${bad}`)
  }

  const levelText = fromCli('logLevel') ? raw.logLevel : (env('PARLEY_LOG_LEVEL') ?? raw.logLevel)
  if (!(LOG_LEVELS as readonly string[]).includes(levelText)) {
    return usage(`PARLEY_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${levelText}"`)
  }
  const debug = raw.debug === true

  const secretText = fromCli('networkSecret')
    ? raw.networkSecret
    : (env('PARLEY_NETWORK_SECRET') ?? raw.networkSecret)
  let networkSecret: Uint8Array | undefined
  const warnings: string[] = []
  if (fromCli('networkSecret')) {
    warnings.push(
      'the network secret was given with --network-secret, which every local user can read in the process list — prefer --network-secret-file or PARLEY_NETWORK_SECRET',
    )
  }
  if (raw.networkSecretFile !== undefined) {
    if (secretText !== undefined) return usage('give --network-secret or --network-secret-file, not both')
    try {
      // Without the line end an editor or `echo` adds: the same secret as the flag or the variable.
      networkSecret = withoutLineEnd(readFileSync(resolve(cwd, raw.networkSecretFile)))
    } catch {
      return usage(`cannot read the network secret file ${raw.networkSecretFile}`)
    }
    if (networkSecret.length === 0) return usage(`the network secret file ${raw.networkSecretFile} is empty`)
  } else if (secretText !== undefined) {
    if (secretText === '') return usage('--network-secret must not be empty')
    networkSecret = Buffer.from(secretText, 'utf8')
  }
  const ids = (list: string[] | undefined, flag: string): string[] | string => {
    for (const id of list ?? []) {
      if (!/^[0-9a-f]{64}$/.test(id)) return `${flag} takes a full peer id (64 hex characters), not "${id}"`
    }
    return list ?? []
  }
  const allow = ids(raw.allow, '--allow')
  if (typeof allow === 'string') return usage(allow)
  const deny = ids(raw.deny, '--deny')
  if (typeof deny === 'string') return usage(deny)

  const legacyPeers = raw.legacyPeer ?? []
  for (const address of legacyPeers) {
    const bad = checkAddress(address)
    if (bad !== undefined) return usage(`--legacy-peer: ${bad}`)
  }
  const legacyEnv = env('PARLEY_LEGACY')?.toLowerCase()
  if (legacyEnv !== undefined && !['1', '0', 'true', 'false', 'yes', 'no'].includes(legacyEnv)) {
    return usage(`PARLEY_LEGACY must be 1 or 0, not "${legacyEnv}"`)
  }
  const legacy =
    raw.legacy === true ||
    legacyPeers.length > 0 ||
    legacyEnv === '1' ||
    legacyEnv === 'true' ||
    legacyEnv === 'yes'

  let dht: DhtOptions | undefined
  try {
    dht = dhtOptions({
      dht: raw.dht === true,
      ...(raw.bootstrap ? { bootstrap: raw.bootstrap } : {}),
      ...(raw.join ? { join: raw.join } : {}),
      ...(raw.relay !== undefined ? { relay: raw.relay.trim().toLowerCase() } : {}),
    })
  } catch (err) {
    if (err instanceof DhtOptionsError) return usage(err.message)
    throw err
  }
  // --json is for programs: no chat view or menu, even at a terminal (its lines would be typed as chat).
  if (raw.json === true && raw.menu === true)
    return usage('--json and --menu do not go together: --json is for scripts')
  // Without a DHT no transport can dial a dht: address: say so now, not as a peer that stays down.
  const dhtPeer = dht === undefined ? peers.find((p) => /^dht:/i.test(p.trim())) : undefined
  if (dhtPeer !== undefined) return usage(`${dhtPeer}: a dht: address needs --dht or --bootstrap`)

  return {
    kind: 'run',
    options: {
      name,
      host: host.trim(),
      port,
      // Once each: `--peer X --peer X` is one peer to dial, not two dials and two failures.
      peers: [...new Set(peers.map(normalizeAddress))],
      dataDir: fromCli('dataDir') ? raw.dataDir : (env('PARLEY_DATA_DIR') ?? raw.dataDir),
      interactive: raw.interactive && raw.json !== true,
      menu: raw.menu === true,
      json: raw.json === true,
      logFile: fromCli('logFile') ? raw.logFile : (env('PARLEY_LOG_FILE') ?? raw.logFile),
      logLevel: debug ? 'debug' : (levelText as LogLevel),
      debug,
      color: raw.color,
      networkSecret,
      allow: raw.allow === undefined ? undefined : allow,
      deny,
      acceptKeyChange: raw.acceptKeyChange === true,
      legacy,
      legacyPeers,
      dht,
      lan,
      downloads: fromCli('downloads') ? raw.downloads : (env('PARLEY_DOWNLOADS') ?? raw.downloads),
      acceptFiles: raw.acceptFiles === true,
      warnings,
      cwd,
    },
  }
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value.trim().toLowerCase()]
}

/**
 * The folder the user typed the command in, which relative paths they give are meant from. Under
 * `pnpm --filter cli start` (or `pnpm start` at the root) the process runs in apps/cli, so its own
 * working directory is not that folder; pnpm and npm put the folder the command was typed in into
 * `INIT_CWD` (nested pnpm runs keep the outermost one). It is trusted only while we run in the
 * folder of the package whose script started us (`npm_package_json`): a shell started from a script
 * inherits both variables, and a `parley` typed in it elsewhere means its own folder. Otherwise (the
 * `parley` command run directly), the process's working directory is that folder.
 */
export function invocationDir(
  env: Readonly<Record<string, string | undefined>>,
  cwd: string = process.cwd(),
): string {
  const init = env.INIT_CWD
  const script = env.npm_package_json
  const byScript = script !== undefined && isAbsolute(script) && samePath(dirname(script), cwd)
  return byScript && init !== undefined && isAbsolute(init) ? init : cwd
}

/** Whether two paths name one folder: through symbolic links, and without case on Windows. */
function samePath(a: string, b: string): boolean {
  const real = (path: string) => {
    try {
      return realpathSync(path)
    } catch {
      return resolve(path)
    }
  }
  const [x, y] = [real(a), real(b)]
  return process.platform === 'win32' ? x.toLowerCase() === y.toLowerCase() : x === y
}

/**
 * Where received files go: `--downloads`, else `downloads/` in the data directory (next to the
 * identity it belongs to), else `downloads/` in the current folder.
 */
export function downloadsDir(options: Pick<CliOptions, 'downloads' | 'dataDir'>, cwd: string): string {
  if (options.downloads !== undefined) return resolve(cwd, options.downloads)
  return resolve(cwd, options.dataDir ?? '.', 'downloads')
}

/** A TCP port 0–65535 written as plain digits, or undefined. */
export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text.trim())) return undefined
  const n = Number(text.trim())
  return n <= 65_535 ? n : undefined
}

/** `host:port` for a listen address; IPv6 hosts get brackets. */
export function joinAddress(host: string, port: number): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`
}

const DHT_PREFIX = /^dht:/i

/**
 * An address as the transports take it: trimmed, and a DHT address (`DHT:AB12…`, any case) written
 * `dht:ab12…`. Call it on what {@link checkAddress} accepted.
 */
export function normalizeAddress(text: string): string {
  const t = text.trim()
  return DHT_PREFIX.test(t) ? `dht:${t.slice(4).toLowerCase()}` : t
}

/**
 * Checks that `text` looks like a dialable `host:port` (port 1–65535; IPv6 in brackets).
 * Returns a sentence saying what is wrong, or undefined when it is fine.
 */
export function checkAddress(text: string): string | undefined {
  // A peer on the DHT is dialed by its key (with --dht or --bootstrap); the prefix in any case.
  const dht = DHT_PREFIX.exec(text.trim())
  if (dht) {
    return /^[0-9a-f]{64}$/i.test(text.trim().slice(dht[0].length))
      ? undefined
      : `"${text}" is not a DHT address: expected a peer id of 64 hex characters after dht:`
  }
  const m = /^(\[[0-9A-Za-z:.%]+\]|[^\s:[\]]+):([^:]*)$/.exec(text.trim())
  if (!m) return `"${text}" is not host:port — e.g. 127.0.0.1:4000 or [::1]:4000`
  const port = parsePort(m[2] ?? '')
  if (port === undefined || port === 0) return `the port in "${text}" must be a whole number from 1 to 65535`
  return undefined
}

/** `bytes` without the line ends at their end (`\n`, `\r\n`): a file written by `echo` or an editor ends in one. */
function withoutLineEnd(bytes: Buffer): Buffer {
  let end = bytes.length
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--
  return bytes.subarray(0, end)
}

/** Commander's error as one line: `unknown option '--nmae' (Did you mean --name?)`. */
function oneSentence(err: CommanderError): string {
  if (err.code === 'commander.excessArguments') return 'an argument was given, but parley takes only flags'
  return err.message
    .replace(/^error: /, '')
    .replace(/\s*\n\s*/g, ' ')
    .trim()
}

/**
 * What is wrong with a display name, or undefined: empty, over the protocol's limit, starting with `/`
 * (which reads as a chat command wherever the name is typed: `/to /quit`), or what the wire refuses
 * (a control or bidi character, white space at an end).
 */
export function nameProblem(name: string): string | undefined {
  if (name.trim() === '') return 'must not be empty'
  if (Buffer.byteLength(name) > Limits.nameBytes) return `must be at most ${Limits.nameBytes} bytes`
  if (name.trim().startsWith('/')) return 'must not start with / (it would read as a command)'
  return displayNameProblem(name)
}
