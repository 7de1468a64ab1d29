import { userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import { input } from '@inquirer/prompts'
import {
  fileKnownPeers,
  generateIdentity,
  type Identity,
  type KnownPeers,
  loadOrCreateIdentity,
  memoryKnownPeers,
  type Peer,
  tcpTransport,
} from '@parley/core'
import {
  DHT_HANDSHAKE_TIMEOUT,
  type DhtNetworking,
  dhtNetworking,
  joinLan,
  type LanDiscovery,
} from '@parley/dht'
import { createMeshPeer } from '@parley/mesh'
import { Limits } from '@parley/protocol'
import { connectWithRetry } from './actions.js'
import type { App } from './app-context.js'
import { runChat } from './chat/chat.js'
import { ChatState } from './chat/chat-state.js'
import type { ChatView } from './chat/chat-view.js'
import { type CliIo, EXIT, type SignalSource } from './cli-io.js'
import { runLineCommands } from './commands.js'
import { type DataDirLock, dataDirPermissionProblem, dataDirProblem, lockDataDir } from './data-dir.js'
import { explain } from './errors.js'
import { FileDesk } from './files/file-desk.js'
import { GonePeers } from './gone.js'
import { Inbox } from './inbox.js'
import { addLegacyPeer, type LegacySetup, leaveLegacy, setupLegacy, wireLegacy } from './legacy.js'
import { fileLogger, type Logger, silentLogger } from './logger.js'
import { createAsker, PromptClosed } from './menu/ask.js'
import { runMenu } from './menu/menu.js'
import {
  type CliOptions,
  downloadsDir,
  joinAddress,
  nameProblem,
  PEER_WAIT_SECONDS,
  parseOptions,
  parsePort,
  version,
} from './options.js'
import { wirePeerEvents } from './peer-events.js'
import {
  captureConsole,
  ignoreSignalsUntilExit,
  launchedByPackageManager,
  listenForSignals,
  SHOW_CURSOR,
} from './signals.js'
import { boundedOutput } from './view/bounded-output.js'
import { LiveConsole, type TerminalStream } from './view/live-console.js'
import { jsonReporter, type Reporter, textReporter } from './view/reporter.js'
import { colorEnabled, createStyle, type Style } from './view/style.js'

export { type CliIo, EXIT, type SignalSource }

/** How often a busy port is offered to be replaced interactively before giving up. */
const MAX_PORT_RETRIES = 5

/**
 * Runs the Parley terminal peer and resolves with its exit code once it has shut down.
 *
 * ```
 * start ─► parse flags ─► identity ─► (ask name) ─► listen ─► banner ─► --peer dials
 *       ─► menu (TTY) | line commands (otherwise) ─► shutdown ─► exit code
 * shutdown: abort prompt/commands ─► peer.stop() (GOODBYE to all, listener closed) ─► cursor shown
 * ```
 * Quit → 0, Ctrl+C → 130, SIGTERM → 143; a second Ctrl+C during shutdown is ignored (a note says so), a third exits at once via `io.exit`.
 */
/** Why output was dropped (see boundedOutput). */
const SLOW_READER = 'the output was not read as fast as it came (over 4 MiB waiting)'

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const write = (stream: TerminalStream) => (text: string) => void stream.write(text)
  // `parley --help | head`: the reader may close the pipe before the text is all written. The text
  // was for it alone, so that is no error (the run installs its own handling below).
  const ignore = () => {}
  io.stdout.on('error', ignore)
  io.stderr.on('error', ignore)
  const parsed = parseOptions(argv, { env: io.env, out: write(io.stdout), err: write(io.stderr) })
  if (parsed.kind === 'exit') return parsed.code
  io.stdout.off('error', ignore)
  io.stderr.off('error', ignore)
  const options = parsed.options
  const interactive = options.interactive && io.stdin.isTTY === true && io.stdout.isTTY === true
  return new Session(options, io, interactive).run()
}

/** One run of the program: owns the peer, the screen and the shutdown. */
class Session {
  readonly controller = new AbortController()
  readonly ui: LiveConsole | undefined
  readonly reporter: Reporter
  readonly logger: Logger
  readonly signals: SignalSource
  peer: Peer | undefined
  /** The bridge to legacy plain-text peers, with --legacy. */
  legacy: LegacySetup | undefined
  exitCode: number | undefined
  /** The chat view while it shows; lines go through it then. */
  chatView: ChatView | undefined
  chat: ChatState | undefined
  readonly style: Style
  readonly inbox: Inbox
  readonly gone = new GonePeers()
  /** The known-peers store (keys saved per address): in the data dir, or in memory. */
  knownPeers: KnownPeers | undefined
  #stopping: Promise<void> | undefined
  #lock: DataDirLock | undefined
  /** The DHT side of the peer, with --dht or --bootstrap. */
  dht: DhtNetworking | undefined
  /** mDNS discovery on the local network, with --lan. */
  lan: LanDiscovery | undefined
  /** File transfer (offers, downloads, uploads), once the data dir is known. */
  files: FileDesk | undefined
  #unlistenSignals: (() => void) | undefined
  #restoreConsole: (() => void) | undefined

  constructor(
    readonly options: CliOptions,
    readonly io: CliIo,
    readonly interactive: boolean,
  ) {
    this.signals = io.signals ?? process
    this.style = createStyle(colorEnabled(io.stdout, io.env, options.color))
    if (interactive) {
      this.ui = new LiveConsole(io.stdout)
      const ui = this.ui
      const style = this.style
      const toScreen = (text: string) => {
        const view = this.chatView
        if (view && !view.closed) view.log(text)
        else ui.log(text)
      }
      this.reporter = textReporter({
        out: toScreen,
        err: toScreen,
        style,
        debug: options.debug,
        banner: 'full',
        // In the chat view, peers go by name alone (a fingerprint only for namesakes), long messages fold.
        who: (p) => (this.chatView ? style('bold', this.chat?.label(p) ?? p.name) : undefined),
        fold: (text) => (this.chatView && this.chat ? this.chat.folds.fold(text) : text),
        names: () => this.#peerNames(),
        slash: true,
        menu: () => this.chatView?.closed !== false,
        columns: () => (io.stdout.isTTY ? io.stdout.columns : undefined),
      })
    } else if (options.json) {
      const out = boundedOutput(
        io.stdout,
        (n) =>
          `${JSON.stringify({ type: 'dropped', time: new Date().toISOString(), events: n, reason: SLOW_READER })}\n`,
      )
      this.reporter = jsonReporter(out, options.debug)
    } else {
      const dropped = (n: number) => `${n} line${n === 1 ? '' : 's'} dropped: ${SLOW_READER}\n`
      const out = boundedOutput(io.stdout, dropped)
      const err = boundedOutput(io.stderr, dropped)
      this.reporter = textReporter({
        out: (t) => out(`${t}\n`),
        err: (t) => err(`${t}\n`),
        style: createStyle(colorEnabled(io.stdout, io.env, options.color)),
        debug: options.debug,
        banner: 'line',
        names: () => this.#peerNames(),
      })
    }
    this.logger = options.logFile
      ? fileLogger(resolve(options.cwd, options.logFile), options.logLevel, (err) =>
          this.reporter.problem({
            code: 'LOG_FILE',
            sentence: `cannot write the log file ${options.logFile} (${explain(err).sentence}); logging is off`,
          }),
        )
      : silentLogger
    this.inbox = new Inbox((m) => {
      this.reporter.message(m)
      this.logger.log('info', 'message', { from: m.from.id, id: m.id, bytes: Buffer.byteLength(m.text) })
    })
  }

  /**
   * --data-dir, from the folder it was typed in: under `pnpm --filter cli start` the process runs in
   * apps/cli, which is not where a relative path was meant from (see invocationDir).
   */
  #dataDir(): string | undefined {
    const dir = this.options.dataDir
    return dir === undefined ? undefined : resolve(this.options.cwd, dir)
  }

  /** A handshake over the DHT may include punching through NATs: give it the time that needs. */
  #handshakeTimeout(): number {
    return Math.max(this.io.peerInit?.handshakeTimeout ?? 10_000, DHT_HANDSHAKE_TIMEOUT)
  }

  /** Every name a Parley peer uses or used here: connected, known, and saved with a key. */
  /** Names of the peers saved with their keys: those a newcomer's name must not pass for. */
  #knownNames(): string[] {
    return (this.knownPeers?.entries() ?? []).map((e) => e.name)
  }

  #peerNames(): string[] {
    const list = this.peer?.peers()
    const names = [...(list?.connected ?? []), ...(list?.known ?? [])].map((p) => p.name)
    for (const e of this.knownPeers?.entries() ?? []) names.push(e.name)
    return names.filter((n) => n !== '').slice(0, 4096)
  }

  get debug(): boolean {
    return this.options.debug
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  async run(): Promise<number> {
    // `on`, not `once`: writes after the first failure fail too, and must not end the process either.
    const gone = (err: unknown) => this.outputGone(err)
    this.io.stdout.on('error', gone)
    this.io.stderr.on('error', gone)
    this.#survivesHangup(gone)
    this.#unlistenSignals = listenForSignals(this.signals, {
      interactive: this.interactive,
      stopping: () => this.#stopping !== undefined,
      shutdown: (code) => void this.shutdown(code),
      forceExit: (code) => {
        if (this.interactive) this.io.stdout.write(SHOW_CURSOR)
        ;(this.io.exit ?? process.exit)(code)
      },
      note: (text) => this.reporter.note(text),
      repeatWindowMs: launchedByPackageManager(this.io.env) ? 250 : 0,
      logger: this.logger,
    })
    if (this.interactive && !this.options.color && this.io.env === process.env) {
      // @inquirer colours through util.styleText, which reads process.env on every call.
      process.env.NO_COLOR = '1'
    }
    if (this.ui && (this.io.captureConsole ?? this.io.stdout === process.stdout)) {
      this.#restoreConsole = captureConsole(this.ui)
    }
    try {
      const code = await this.#main()
      await this.shutdown(code ?? EXIT.OK)
    } catch (err) {
      if (!(err instanceof PromptClosed)) {
        this.reporter.problem(explain(err), err)
        this.logger.log('error', 'crash', { err })
        await this.shutdown(EXIT.START_FAILED)
      } else {
        await this.shutdown(EXIT.OK)
      }
    } finally {
      // The stop is done (every path above awaits it); from here to the process's end a late signal is ignored.
      ignoreSignalsUntilExit(this.signals)
      this.#unlistenSignals?.()
      this.#restoreConsole?.()
    }
    return this.exitCode ?? EXIT.OK
  }

  /** Returns an exit code to stop with, or undefined when the mode ended by shutting down. */
  async #main(): Promise<number | undefined> {
    const { options } = this
    this.logger.log('info', 'starting', { version: version(), interactive: this.interactive })

    let identity: Identity | undefined
    let knownPeers: KnownPeers = memoryKnownPeers()
    const dataDir = this.#dataDir()
    if (dataDir) {
      const bad = await dataDirProblem(dataDir)
      if (bad !== undefined) {
        this.reporter.problem({ code: 'DATA_DIR', sentence: bad })
        return EXIT.START_FAILED
      }
      try {
        // Checked before and after core creates the directory (it may exist already, set up by hand).
        const unsafe = await dataDirPermissionProblem(dataDir)
        if (unsafe === undefined) identity = await loadOrCreateIdentity(dataDir)
        const problem = unsafe ?? (await dataDirPermissionProblem(dataDir))
        if (problem !== undefined) {
          this.reporter.problem({ code: 'DATA_DIR_INSECURE', sentence: problem })
          return EXIT.START_FAILED
        }
        this.#lock = await lockDataDir(dataDir)
        knownPeers = await fileKnownPeers(join(dataDir, 'known-peers.json'))
      } catch (err) {
        this.reporter.problem(explain(err, { address: dataDir }), err)
        return EXIT.START_FAILED
      }
    }
    this.knownPeers = knownPeers
    // Checked as the data dir is: creating folders under /proc never returned, and accepting spun.
    const downloads = downloadsDir(this.options, this.options.cwd)
    const badDownloads =
      this.options.downloads !== undefined
        ? await dataDirProblem(downloads, `--downloads ${downloads}`, 'pick a folder such as ~/Downloads')
        : await dataDirProblem(
            downloads,
            `the downloads folder ${downloads}`,
            'start from another folder, or pick one with --downloads ~/Downloads',
          )
    if (badDownloads !== undefined) {
      this.reporter.problem({ code: 'DOWNLOADS_DIR', sentence: badDownloads })
      return EXIT.START_FAILED
    }
    const files = this.#fileDesk()
    this.files = files
    for (const warning of options.warnings) this.reporter.note(warning, 'warning')

    const ask = this.ui
      ? createAsker(this.ui, this.io.stdin, this.signal, () => void this.shutdown(EXIT.OK))
      : undefined
    let name = options.name
    if (name === undefined && ask) {
      const fallback = sanitizeName(userInfo().username)
      name = await ask((ctx) =>
        input(
          {
            message: 'Your name',
            ...(fallback ? { default: fallback } : {}),
            validate: (v: string) => {
              const problem = nameProblem(v.trim())
              return problem === undefined || `the name ${problem}`
            },
          },
          ctx,
        ),
      )
      name = name.trim()
    }

    // --legacy: the listener also takes plain-text connections (told apart by their first byte).
    if (options.legacy) {
      const handshakeTimeout = this.io.peerInit?.handshakeTimeout ?? 10_000
      this.legacy = setupLegacy(this.io.transport ?? tcpTransport(), () => this.peer, name, handshakeTimeout)
    }

    // The DHT reaches a peer by its key: the key must exist before the transport does.
    if (options.dht && !identity) identity = generateIdentity()
    let port = options.port
    for (let attempt = 0; ; attempt++) {
      const tcpListen = joinAddress(options.host, port)
      const tcp = this.legacy?.transport ?? this.io.transport ?? tcpTransport()
      // --dht / --bootstrap: TCP and dht:<peer id> side by side (dht: addresses go over HyperDHT).
      const net =
        options.dht && identity
          ? dhtNetworking({
              identity,
              options: options.dht,
              other: tcp,
              handshakeTimeout: this.#handshakeTimeout(),
              ...(options.networkSecret ? { networkSecret: options.networkSecret } : {}),
            })
          : undefined
      // dht:<id> first: it is the address others can reach from anywhere, and peer exchange hands on
      // the first addresses of a peer only.
      const listen = net ? [net.listen, tcpListen] : tcpListen
      // A mesh peer: broadcasts are relayed to peers this one is not connected to, and connect-to-all
      // joins the mesh instead of dialing everyone once the network outgrows maxDegree.
      const peer = createMeshPeer({
        transport: net?.transport ?? tcp,
        ...(net ? { upgrader: net.upgrader } : {}),
        listen,
        ...(identity ? { identity } : {}),
        ...(name !== undefined ? { name } : {}),
        knownPeers,
        services: [files.service],
        // Trust on first use: a changed key is refused loudly unless the user said to accept it.
        onKeyChange: () => options.acceptKeyChange,
        ...(options.networkSecret ? { networkSecret: options.networkSecret } : {}),
        ...(options.allow ? { allow: options.allow } : {}),
        deny: options.deny,
        ...this.io.peerInit,
        ...(net ? { handshakeTimeout: this.#handshakeTimeout() } : {}),
      })
      // Listening on the DHT waits for its bootstrap nodes: seconds, or half a minute with no way out.
      if (net && attempt === 0)
        this.reporter.note('joining the DHT: this takes a few seconds (half a minute when it is unreachable)')
      try {
        await peer.start({ signal: this.signal })
        this.peer = peer
        this.dht = net
        break
      } catch (err) {
        await net?.close().catch(() => {})
        const problem = explain(err, { address: tcpListen, port })
        this.reporter.problem(problem, err)
        this.logger.log('error', 'listen failed', { listen, err })
        if (!ask || this.signal.aborted || attempt + 1 >= MAX_PORT_RETRIES) return EXIT.START_FAILED
        const answer = await ask((ctx) =>
          input(
            {
              message: 'Port to listen on instead (0 = any free port)',
              default: '0',
              validate: (v: string) => parsePort(v) !== undefined || 'a whole number from 0 to 65535, please',
            },
            ctx,
          ),
        )
        port = parsePort(answer) ?? 0
      }
    }

    const peer = this.peer
    wirePeerEvents(peer, this)
    this.dht?.join(peer, (err) => this.logger.log('warn', 'dht topic', { err }))
    if (options.lan)
      this.lan = joinLan(peer, { onError: (err) => this.logger.log('warn', 'lan dial', { err }) })
    this.reporter.ready({
      id: peer.id,
      name: peer.name,
      addresses: peer.addresses,
      version: version(),
      dataDir: this.#dataDir(),
    })
    this.logger.log('info', 'listening', { addresses: peer.addresses, id: peer.id, name: peer.name })

    const app: App = {
      peer,
      reporter: this.reporter,
      logger: this.logger,
      signal: this.signal,
      shutdown: (code) => this.shutdown(code),
      outputGone: (err) => this.outputGone(err),
      hold: (ids) => this.inbox.hold(ids),
      gone: this.gone,
      files,
      parleyNames: () => this.#peerNames(),
      ...(this.legacy ? { legacy: this.legacy.bridge } : {}),
    }
    // Dial the --peer list in the background, again with backoff while a peer is not up yet: each
    // failure is one line, and the peer keeps running.
    const dials = options.peers.map((address) => connectWithRetry(app, address, this.io.peerRetry))
    if (this.legacy) {
      wireLegacy(this.legacy.bridge, this.reporter, this.logger)
      for (const address of options.legacyPeers) addLegacyPeer(app, address)
    }

    if (!ask) {
      // Commands piped in are meant for the --peer peers: run them once those are connected.
      await this.#waitForDials(dials)
      if (!this.signal.aborted) await runLineCommands(app, this.io.stdin)
      return undefined
    }
    let mode: 'chat' | 'menu' = options.menu ? 'menu' : 'chat'
    while (!this.signal.aborted) {
      if (mode === 'menu') {
        const next = await runMenu(app, ask, { backToChat: this.chat !== undefined })
        if (next !== 'chat') break
        mode = 'chat'
        continue
      }
      this.chat ??= new ChatState(
        { id: peer.id, name: peer.name },
        () => this.#knownNames(),
        (name) => peer.namedKeys(name),
      )
      if (options.peers.length === 0 && peer.peers().connected.length === 0) {
        this.reporter.note(
          `waiting for peers — another peer connects with --peer ${peer.addresses[0] ?? '<host:port>'}, or type /connect <host:port>`,
        )
      }
      this.reporter.note(
        'type a line and Enter to send it to everyone; /to <name> talks to one peer; /help lists the commands',
      )
      const how = await runChat({
        app,
        state: this.chat,
        input: this.io.stdin,
        output: this.io.stdout,
        style: this.style,
        attach: (view) => {
          this.chatView = view
        },
      })
      if (how !== 'menu') break
      mode = 'menu'
    }
    return undefined
  }

  #fileDesk(): FileDesk {
    const { options } = this
    return new FileDesk({
      downloads: downloadsDir(options, options.cwd),
      stateDir: this.#dataDir() === undefined ? undefined : join(this.#dataDir()!, 'files'),
      cwd: options.cwd,
      acceptAll: options.acceptFiles,
      reporter: this.reporter,
      logger: this.logger,
      progress: () => {
        if (!this.interactive) return options.json ? 'events' : 'milestones'
        return this.chatView?.closed === false ? 'status' : 'milestones'
      },
      statusChanged: () => this.chatView?.refresh(),
      slash: () => this.chatView?.closed === false,
    })
  }

  /** Waits until every --peer dial has connected or given up, or the wait runs out (then says so). */
  async #waitForDials(dials: Array<Promise<unknown>>): Promise<void> {
    if (dials.length === 0) return
    const seconds = (this.io.peerWait ?? PEER_WAIT_SECONDS * 1000) / 1000
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), seconds * 1000)
    })
    const aborted = new Promise<'aborted'>((resolve) =>
      this.signal.addEventListener('abort', () => resolve('aborted'), { once: true }),
    )
    const outcome = await Promise.race([Promise.allSettled(dials), timedOut, aborted])
    clearTimeout(timer)
    if (outcome === 'timeout') {
      const missing = this.options.peers.filter(
        (a) => !this.peer?.peers().connected.some((p) => p.address === a || p.listenAddrs.includes(a)),
      )
      this.reporter.problem({
        code: 'PEER_WAIT',
        sentence: `not connected to ${missing.join(', ') || 'every --peer'} after ${seconds} s — running the commands anyway (still trying in the background)`,
      })
    }
  }

  /**
   * A terminal that was closed fails the raw-mode switch every readline makes as it closes (EIO). A tty
   * stream emits it as an 'error', which readline passes on as its own; in the prompts' readline (the
   * menu) nobody listens, so that emit throws, here, inside the switch. It is caught here and reported as
   * the terminal gone instead of ending the process with a stack trace.
   */
  #survivesHangup(gone: (err: unknown) => void): void {
    const input = this.io.stdin as { setRawMode?: (mode: boolean) => unknown }
    const setRawMode = input.setRawMode
    if (typeof setRawMode !== 'function') return
    input.setRawMode = (mode: boolean) => {
      try {
        return setRawMode.call(input, mode)
      } catch (err) {
        gone(err)
        return input
      }
    }
  }

  /**
   * The screen or the pipe we print to is gone: a closed terminal (EIO), or a reader that left
   * (`| head`: EPIPE). Nothing more can be shown, but the peers still get their goodbye.
   */
  outputGone(err: unknown): void {
    if (this.#stopping) return
    this.logger.log('warn', 'output gone', { err })
    void this.shutdown((err as { code?: unknown } | null)?.code === 'EPIPE' ? EXIT.SIGPIPE : EXIT.SIGHUP)
  }

  /** The one graceful shutdown. Idempotent: later calls wait for the first and keep its exit code. */
  shutdown(code: number): Promise<void> {
    if (this.#stopping) return this.#stopping
    this.exitCode = code
    this.controller.abort()
    this.#stopping = (async () => {
      this.logger.log('info', 'stopping', { exitCode: code })
      const told = this.peer?.peers().connected.length ?? 0
      try {
        // Quit as the original does: `exit` to every known legacy peer (bounded), before the GOODBYEs.
        if (this.legacy) {
          await (this.peer ? leaveLegacy(this.legacy.bridge, this.logger) : this.legacy.bridge.close()).catch(
            (err: unknown) => this.logger.log('error', 'legacy exit failed', { err }),
          )
        }
        // Saves partial downloads for a resume; before stop(), so no transfer sees its peers vanish first.
        await this.files?.close()
        await this.lan?.stop()
        await this.peer?.stop()
        await this.dht?.close()
      } catch (err) {
        this.logger.log('error', 'stop failed', { err })
      }
      await this.#lock?.release()
      if (this.peer) this.reporter.stopped(code, told)
      if (this.interactive) this.io.stdout.write(SHOW_CURSOR)
      await this.logger.flush()
    })()
    return this.#stopping
  }
}

function sanitizeName(name: string): string {
  const clean = name.replace(/[^\p{L}\p{N} ._-]/gu, '').trim()
  return Buffer.byteLength(clean) <= Limits.nameBytes ? clean : ''
}
