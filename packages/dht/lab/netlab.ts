// A NAT lab of Linux network namespaces for tests (root only). Nothing of it is in the root namespace
// and no namespace has a route beyond the lab, so DHT traffic never leaves it.
//
//                 <p>-pub: bridge br0, 100.64.0.0/24 ("the internet")
//        ┌──────────────────────────┼─────────────────────────────┐
//  <p>-boot 100.64.0.2      <p>-nat1 100.64.0.11            <p>-nat2 100.64.0.12
//  4 testnet DHT nodes,     nftables masquerade             nftables masquerade
//  a blind relay            bridge lan0 10.1.0.1/24         bridge lan0 10.2.0.1/24
//                           ├─ <p>-h1a 10.1.0.2             ├─ <p>-h2a 10.2.0.2
//                           └─ <p>-h1b 10.1.0.3             └─ <p>-h2b 10.2.0.3
//
// <p> is unique per run (`pl<pid>x<random>`), so a crashed run's namespaces are recognised (their pid
// is gone) and removed by the next build.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:os'
import { createInterface } from 'node:readline'

export type NatKind = 'cone' | 'random'
export type LabHost = 'boot' | 'h1a' | 'h1b' | 'h2a' | 'h2b'

/** Addresses of the lab's hosts. */
export const LAB_ADDRESSES: Record<LabHost, string> = {
  boot: '100.64.0.2',
  h1a: '10.1.0.2',
  h1b: '10.1.0.3',
  h2a: '10.2.0.2',
  h2b: '10.2.0.3',
}
/** Where the lab's DHT bootstrap listens (the testnet's first node). */
export const LAB_BOOTSTRAP = `${LAB_ADDRESSES.boot}:49737`

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
const ROLES = ['pub', 'boot', 'nat1', 'nat2', 'h1a', 'h1b', 'h2a', 'h2b'] as const
const PREFIX = /^pl(\d+)x[0-9a-f]+-/

/** Why the lab cannot run here, or undefined when it can (root, `ip` and `nft`). */
export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'the NAT lab needs Linux network namespaces'
  if (process.getuid?.() !== 0)
    return 'the NAT lab needs root (network namespaces and nftables); CI runs it as root'
  for (const tool of ['ip', 'nft']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    } catch {
      return `the NAT lab needs \`${tool}\` (apt-get install ${tool === 'nft' ? 'nftables' : 'iproute2'})`
    }
  }
  return undefined
}

function run(args: string[], input?: string): string {
  return execFileSync(args[0]!, args.slice(1), {
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 10_000,
    ...(input !== undefined ? { input } : {}),
  })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Kills what runs in a namespace (a deleted namespace does not end its processes), then deletes it. */
function removeNamespace(ns: string): void {
  try {
    for (const pid of run(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {}
    }
  } catch {}
  try {
    run(['ip', 'netns', 'del', ns])
  } catch {}
}

/** Removes the namespaces of lab runs whose process is gone (a crash, a killed test run). */
export function removeStaleLabs(): void {
  let list: string
  try {
    list = run(['ip', 'netns', 'list'])
  } catch {
    return
  }
  for (const line of list.split('\n')) {
    const ns = line.split(' ')[0] ?? ''
    const m = PREFIX.exec(ns)
    if (m !== null && !alive(Number(m[1]))) removeNamespace(ns)
  }
}

function natRules(mode: NatKind): string {
  const flags = mode === 'random' ? ' random,fully-random' : ''
  // `in` and `fwd` are nft keywords: the chains are named otherwise.
  return `table ip lab {
  chain postrouting_nat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "pub0" masquerade${flags}
  }
  chain forwarding {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "pub0" accept
    iifname "lan0" oifname "lan0" accept
  }
  # Unsolicited packets to the router itself are dropped, as a home router does: accepted, a punch
  # arriving before our own outbound packet leaves a conntrack entry, and masquerade then maps our
  # packet to another port, so the punch fails.
  chain to_router {
    type filter hook input priority filter; policy accept;
    iifname "pub0" ct state established,related accept
    iifname "pub0" drop
  }
}
`
}

/** One process in a lab host, its stdout read as lines. */
export class LabProcess {
  readonly lines: string[] = []
  readonly #child: ChildProcess
  readonly #waiters = new Set<() => void>()
  readonly exited: Promise<number | null>
  #stderr = ''

  constructor(child: ChildProcess) {
    this.#child = child
    createInterface({ input: child.stdout! }).on('line', (line) => {
      // Bounded: a lab process prints a few hundred lines at most; keep the last 2000.
      this.lines.push(line)
      if (this.lines.length > 2000) this.lines.shift()
      for (const wake of this.#waiters) wake()
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)
    })
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
    void this.exited.then(() => {
      for (const wake of this.#waiters) wake()
    })
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  /** JSON lines (NDJSON events) printed so far. */
  events(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = []
    for (const line of this.lines) {
      if (!line.startsWith('{')) continue
      try {
        out.push(JSON.parse(line) as Record<string, unknown>)
      } catch {}
    }
    return out
  }

  /** Resolves with the first line (from `from` on) matching `test`; fails after `ms` or at exit. */
  waitFor<T>(test: (line: string) => T | undefined, ms: number, what: string, from = 0): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let index = from
      let exited = false
      void this.exited.then(() => {
        exited = true
      })
      const check = () => {
        for (; index < this.lines.length; index++) {
          const found = test(this.lines[index]!)
          if (found !== undefined) {
            done()
            resolve(found)
            return
          }
        }
        if (exited || this.#child.exitCode !== null) {
          done()
          reject(new Error(`${what}: the process exited first\n${this.#transcript()}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${what}: not within ${ms / 1000} s\n${this.#transcript()}`))
      }, ms)
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** Resolves with the first NDJSON event (from line `from` on) for which `test` holds. */
  waitForEvent(
    test: (event: Record<string, unknown>) => boolean,
    ms: number,
    what: string,
    from = 0,
  ): Promise<Record<string, unknown>> {
    return this.waitFor(
      (line) => {
        if (!line.startsWith('{')) return undefined
        try {
          const event = JSON.parse(line) as Record<string, unknown>
          return test(event) ? event : undefined
        } catch {
          return undefined
        }
      },
      ms,
      what,
      from,
    )
  }

  write(line: string): void {
    this.#child.stdin?.write(`${line}\n`)
  }

  /** SIGTERM, then SIGKILL after 3 s: bounded. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    this.#child.kill('SIGTERM')
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3_000)
    await this.exited
    clearTimeout(timer)
  }

  #transcript(): string {
    return `--- stdout (last lines):\n${this.lines.slice(-40).join('\n')}\n--- stderr:\n${this.#stderr}`
  }
}

/** A built lab: its namespaces, and processes started in them. */
export interface Lab {
  readonly prefix: string
  namespace(host: LabHost | 'nat1' | 'nat2' | 'pub'): string
  /** Starts `node <args>` in a host; its stdin stays open for commands. */
  node(host: LabHost, args: string[], env?: Record<string, string>): LabProcess
  /** Takes the host's only link down, or up again (with its default route). */
  link(host: Exclude<LabHost, 'boot'>, state: 'down' | 'up'): void
  /** Stops every process (bounded) and deletes every namespace. Idempotent. */
  destroy(): Promise<void>
}

/**
 * Builds the lab: 8 namespaces, 7 veth pairs, 3 bridges and the NAT rules (well under a second).
 * Removes stale labs of crashed runs first. On any failure everything built so far is removed.
 */
export function buildLab(nats: { nat1: NatKind; nat2: NatKind }): Lab {
  removeStaleLabs()
  const prefix = `pl${process.pid}x${randomBytes(3).toString('hex')}`
  const ns = (role: string) => `${prefix}-${role}`
  const processes: LabProcess[] = []
  const created: string[] = []
  let destroyed = false
  const destroySync = () => {
    for (const name of created.splice(0)) removeNamespace(name)
  }
  // A test runner that dies mid-test still leaves no lab behind: on exit, on a signal (Ctrl-C reaches
  // the whole process group), and when vitest's main process goes away — on SIGINT it exits without
  // ending its fork workers, which would keep the lab and its peers alive, orphaned.
  const onSignal = (signal: NodeJS.Signals) => {
    destroySync()
    process.exit(128 + (constants.signals[signal] ?? 0))
  }
  const onDisconnect = () => {
    destroySync()
    process.exit(1)
  }
  const disarm = () => {
    process.off('exit', destroySync)
    process.off('disconnect', onDisconnect)
    for (const signal of SIGNALS) process.off(signal, onSignal)
  }
  process.once('exit', destroySync)
  process.once('disconnect', onDisconnect)
  for (const signal of SIGNALS) process.once(signal, onSignal)
  const exec = (role: string, ...args: string[]) => run(['ip', 'netns', 'exec', ns(role), ...args])
  try {
    for (const role of ROLES) {
      run(['ip', 'netns', 'add', ns(role)])
      created.push(ns(role))
      exec(role, 'ip', 'link', 'set', 'lo', 'up')
    }
    exec('pub', 'ip', 'link', 'add', 'br0', 'type', 'bridge')
    exec('pub', 'ip', 'link', 'set', 'br0', 'up')
    // Each veth pair goes straight between two lab namespaces.
    for (const role of ['boot', 'nat1', 'nat2']) {
      run([
        'ip',
        'link',
        'add',
        `p-${role}`,
        'netns',
        ns('pub'),
        'type',
        'veth',
        'peer',
        'name',
        'pub0',
        'netns',
        ns(role),
      ])
      exec('pub', 'ip', 'link', 'set', `p-${role}`, 'master', 'br0', 'up')
      exec(role, 'ip', 'link', 'set', 'pub0', 'up')
    }
    exec('boot', 'ip', 'addr', 'add', `${LAB_ADDRESSES.boot}/24`, 'dev', 'pub0')
    for (const i of [1, 2] as const) {
      const nat = `nat${i}`
      exec(nat, 'ip', 'addr', 'add', `100.64.0.1${i}/24`, 'dev', 'pub0')
      exec(nat, 'ip', 'link', 'add', 'lan0', 'type', 'bridge')
      exec(nat, 'ip', 'addr', 'add', `10.${i}.0.1/24`, 'dev', 'lan0')
      exec(nat, 'ip', 'link', 'set', 'lan0', 'up')
      exec(nat, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
      for (const side of ['a', 'b'] as const) {
        const host = `h${i}${side}` as LabHost
        run([
          'ip',
          'link',
          'add',
          `h-${side}`,
          'netns',
          ns(nat),
          'type',
          'veth',
          'peer',
          'name',
          'eth0',
          'netns',
          ns(host),
        ])
        exec(nat, 'ip', 'link', 'set', `h-${side}`, 'master', 'lan0', 'up')
        exec(host, 'ip', 'addr', 'add', `${LAB_ADDRESSES[host]}/24`, 'dev', 'eth0')
        exec(host, 'ip', 'link', 'set', 'eth0', 'up')
        exec(host, 'ip', 'route', 'add', 'default', 'via', `10.${i}.0.1`)
      }
      run(['ip', 'netns', 'exec', ns(nat), 'nft', '-f', '-'], natRules(nats[nat as 'nat1' | 'nat2']))
    }
  } catch (err) {
    destroySync()
    disarm()
    const stderr = (err as { stderr?: string }).stderr
    throw new Error(`building the lab failed: ${stderr?.trim() || (err as Error).message}`, { cause: err })
  }
  return {
    prefix,
    namespace: ns,
    node(host, args, env = {}) {
      const child = spawn('ip', ['netns', 'exec', ns(host), process.execPath, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, NO_COLOR: '1', ...env },
      })
      const proc = new LabProcess(child)
      processes.push(proc)
      return proc
    },
    link(host, state) {
      exec(host, 'ip', 'link', 'set', 'eth0', state)
      if (state === 'up') {
        const i = host[1]
        exec(host, 'ip', 'route', 'replace', 'default', 'via', `10.${i}.0.1`)
      }
    },
    async destroy() {
      if (destroyed) return
      destroyed = true
      await Promise.all(processes.map((p) => p.stop()))
      destroySync()
      disarm()
    },
  }
}
