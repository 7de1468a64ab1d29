import { chmod, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createTestNetwork } from '@parley/testing'
import fc from 'fast-check'
import { describe, expect, onTestFinished, test } from 'vitest'
import { runCli } from '../src/index.js'
import {
  checkAddress,
  downloadsDir,
  invocationDir,
  joinAddress,
  parseOptions,
  parsePort,
} from '../src/options.js'
import { startCli } from './helpers/cli.js'
import { Capture, FakeTtyInput } from './helpers/streams.js'

/** Runs the CLI for an exit-only invocation (help, version, usage errors). */
async function once(argv: string[], env: Record<string, string> = {}) {
  const stdout = new Capture()
  const stderr = new Capture()
  const code = await runCli(argv, { stdin: new FakeTtyInput(false), stdout, stderr, env })
  return { code, out: stdout.text, err: stderr.text }
}

function parse(argv: string[], env: Record<string, string> = {}) {
  const err: string[] = []
  const result = parseOptions(argv, { env, out: () => {}, err: (t) => err.push(t) })
  return { result, err: err.join('') }
}

async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'parley-cli-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('flags and environment', () => {
  test('--help into a pipe its reader closed (`parley --help | head -1`) exits 0, without an error', async () => {
    // A reader gone: every write fails with EPIPE, emitted as an 'error' after the write returns. With
    // no one listening, that error would end the process with a stack trace.
    const closedPipe = new Writable({
      write(_chunk, _encoding, done) {
        done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
      },
    })
    let unheard = 0
    const emit = closedPipe.emit.bind(closedPipe)
    closedPipe.emit = (event: string | symbol, ...args: unknown[]) => {
      if (event === 'error' && closedPipe.listenerCount('error') === 0) {
        unheard++
        return false
      }
      return emit(event, ...args)
    }
    const closed = new Promise((resolve) => closedPipe.on('close', resolve))
    const stdin = new FakeTtyInput(false)
    expect(await runCli(['--help'], { stdin, stdout: closedPipe, stderr: new Capture(), env: {} })).toBe(0)
    await closed
    expect(unheard).toBe(0)
  })

  test('--help and --version print to stdout and exit 0', async () => {
    const help = await once(['--help'])
    expect(help.code).toBe(0)
    expect(help.out).toMatch(/Usage: parley \[options\]/)
    for (const flag of [
      '--name',
      '-H, --host',
      '-p, --port',
      '--peer',
      '--data-dir',
      '--no-interactive',
      '--json',
    ]) {
      expect(help.out).toContain(flag)
    }
    expect(help.out).toMatch(/End of stdin does not stop the peer/)
    const version = await once(['-v'])
    expect(version).toMatchObject({ code: 0, err: '' })
    expect(version.out.trim()).toMatch(/^\d+\.\d+\.\d+/)
    expect((await once(['--', '--version'])).code).toBe(0)
  })

  test('a bad port exits 2 with one sentence and no usage dump', async () => {
    for (const port of ['70000', '-1', 'abc', '1.5', '']) {
      const r = await once(['--port', port])
      expect(r.code).toBe(2)
      expect(r.err.trim().split('\n')).toHaveLength(1)
      expect(r.err).toMatch(/port must be a whole number from 0 to 65535/)
      expect(r.out).toBe('')
    }
    const fromEnv = await once([], { PARLEY_PORT: 'x' })
    expect(fromEnv).toMatchObject({ code: 2 })
    expect(fromEnv.err).toMatch(/^parley: PARLEY_PORT must be a whole number from 0 to 65535, not "x"\n$/)
  })

  test('unknown flags and bad values are usage errors (exit 2, one line)', async () => {
    for (const argv of [
      ['--bogus'],
      ['--log-level', 'loud'],
      ['--name', 'x'.repeat(65)],
      ['--name', ' '],
      ['--name', '/quit'],
      ['--nmae', 'bob'],
      ['bob'],
      ['--peer'],
      ['--peer', '4000'],
      ['--peer', 'localhost'],
      ['--peer', '127.0.0.1:0'],
      ['--peer', '127.0.0.1:4000', '--peer', 'bob'],
    ]) {
      const r = await once(argv)
      expect(r.code, argv.join(' ')).toBe(2)
      expect(r.err.trim().split('\n'), argv.join(' ')).toHaveLength(1)
    }
  })

  test('--json is for programs: never the chat view, even at a terminal, and not with --menu', async () => {
    const { result } = parse(['--json', '--name', 'js'])
    expect(result).toMatchObject({ kind: 'run', options: { json: true, interactive: false } })
    const both = await once(['--json', '--menu'])
    expect(both.code).toBe(2)
    expect(both.err).toBe('parley: --json and --menu do not go together: --json is for scripts\n')
  })

  test('a --peer that is not host:port says so in one sentence, from the flag or PARLEY_PEERS', async () => {
    const flag = await once(['--peer', '4000'])
    expect(flag.err).toBe('parley: --peer: "4000" is not host:port — e.g. 127.0.0.1:4000 or [::1]:4000\n')
    const env = await once([], { PARLEY_PEERS: '127.0.0.1:4000,nope' })
    expect(env.code).toBe(2)
    expect(env.err).toMatch(/^parley: PARLEY_PEERS: "nope" is not host:port/)
  })

  test('a literal -- (pnpm passes it through) is accepted and ignored', async () => {
    const net = await createTestNetwork({ size: 0 })
    const cli = startCli(['--', '--no-interactive', '--name', 'dash', '--host', 'dash', '--port', '0'], {
      network: net.network,
    })
    expect(await cli.address()).toMatch(/^dash:\d+$/)
    cli.line('quit')
    expect(await cli.exited).toBe(0)
    expect(parse(['--', '-p', '4000']).result).toMatchObject({ kind: 'run', options: { port: 4000 } })
  })

  test('--lan listens on every interface unless a host is given', () => {
    expect(parse(['--lan']).result).toMatchObject({ kind: 'run', options: { lan: true, host: '0.0.0.0' } })
    expect(parse(['--lan', '-H', '10.1.0.2']).result).toMatchObject({
      kind: 'run',
      options: { lan: true, host: '10.1.0.2' },
    })
    expect(parse([]).result).toMatchObject({ kind: 'run', options: { lan: false, host: '127.0.0.1' } })
  })

  test('environment variables fill in what flags did not give; flags win', () => {
    const env = {
      PARLEY_NAME: 'envname',
      PARLEY_HOST: '0.0.0.0',
      PARLEY_PORT: '4100',
      PARLEY_DATA_DIR: '/tmp/x',
      PARLEY_PEERS: 'a:1, b:2,,',
      PARLEY_LOG_LEVEL: 'warn',
      PARLEY_NETWORK_SECRET: 's3cret',
    }
    expect(parse([], env).result).toEqual({
      kind: 'run',
      options: {
        name: 'envname',
        host: '0.0.0.0',
        port: 4100,
        peers: ['a:1', 'b:2'],
        dataDir: '/tmp/x',
        interactive: true,
        menu: false,
        json: false,
        logFile: undefined,
        logLevel: 'warn',
        debug: false,
        color: true,
        networkSecret: Buffer.from('s3cret'),
        allow: undefined,
        deny: [],
        acceptKeyChange: false,
        legacy: false,
        legacyPeers: [],
        dht: undefined,
        lan: false,
        downloads: undefined,
        acceptFiles: false,
        // The secret came from the environment: nothing to warn about.
        warnings: [],
        // No INIT_CWD (not run by pnpm/npm): relative paths are meant from the process's own folder.
        cwd: process.cwd(),
      },
    })
    const flags = parse(
      [
        '-n',
        'flag',
        '-H',
        '::1',
        '-p',
        '0',
        '--peer',
        'c:3',
        '--peer',
        'd:4',
        '--no-interactive',
        '--json',
        '--debug',
        '--no-color',
      ],
      env,
    )
    expect(flags.result).toMatchObject({
      kind: 'run',
      options: {
        name: 'flag',
        host: '::1',
        port: 0,
        peers: ['c:3', 'd:4'],
        interactive: false,
        json: true,
        logLevel: 'debug',
        debug: true,
        color: false,
      },
    })
  })

  test('received files go to --downloads, else downloads/ in the data dir, else in the current folder', () => {
    const run = (argv: string[], env: Record<string, string> = {}) => {
      const { result } = parse(argv, env)
      if (result.kind !== 'run') throw new Error('expected options')
      return result.options
    }
    const plain = run([])
    expect(plain.acceptFiles).toBe(false)
    expect(downloadsDir(plain, '/home/me')).toBe('/home/me/downloads')
    expect(downloadsDir(run(['--data-dir', 'state']), '/home/me')).toBe('/home/me/state/downloads')
    const flags = run(['--downloads', '/srv/in', '--accept-files'], { PARLEY_DOWNLOADS: '/elsewhere' })
    expect(downloadsDir(flags, '/home/me')).toBe('/srv/in')
    expect(flags.acceptFiles).toBe(true)
    expect(downloadsDir(run([], { PARLEY_DOWNLOADS: 'in' }), '/home/me')).toBe('/home/me/in')
  })

  test('relative paths are meant from where the command was typed: INIT_CWD only while run by a package script in its folder', () => {
    const pnpm = { INIT_CWD: '/home/me/work', npm_package_json: '/repo/apps/cli/package.json' }
    // `pnpm --filter cli start` typed in /home/me/work: pnpm runs us in apps/cli.
    expect(invocationDir(pnpm, '/repo/apps/cli')).toBe('/home/me/work')
    // A shell started from a script inherits both; `parley` typed in it elsewhere means that folder.
    expect(invocationDir(pnpm, '/home/me/other')).toBe('/home/me/other')
    // Not run by a package manager, or a relative value: the process's own folder.
    expect(invocationDir({}, '/home/me/other')).toBe('/home/me/other')
    expect(invocationDir({ INIT_CWD: '/home/me/work' }, '/repo/apps/cli')).toBe('/repo/apps/cli')
    expect(invocationDir({ ...pnpm, INIT_CWD: 'work' }, '/repo/apps/cli')).toBe('/repo/apps/cli')
  })

  test('a checkout reached through a symbolic link is still the package folder pnpm runs us in', async () => {
    const root = await mkdtemp(join(tmpdir(), 'parley-link-'))
    onTestFinished(() => rm(root, { recursive: true, force: true }))
    await mkdir(join(root, 'repo', 'apps', 'cli'), { recursive: true })
    await symlink(join(root, 'repo'), join(root, 'link'))
    // pnpm names the package by the path it was given; the process's cwd is the resolved folder.
    const env = {
      INIT_CWD: '/home/me/work',
      npm_package_json: join(root, 'link', 'apps', 'cli', 'package.json'),
    }
    expect(invocationDir(env, join(root, 'repo', 'apps', 'cli'))).toBe('/home/me/work')
  })

  test('ports: exactly the whole numbers 0–65535', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 65_535 }), (n) => parsePort(String(n)) === n))
    fc.assert(
      fc.property(fc.integer({ min: 65_536, max: 10_000_000 }), (n) => parsePort(String(n)) === undefined),
    )
    fc.assert(
      fc.property(fc.string(), (s) => {
        const p = parsePort(s)
        return p === undefined || (/^\s*\d+\s*$/.test(s) && p >= 0 && p <= 65_535)
      }),
    )
  })

  test('addresses: IPv6 gets brackets; dial addresses need host:port with port 1–65535', () => {
    expect(joinAddress('::1', 4000)).toBe('[::1]:4000')
    expect(joinAddress('[::1]', 4000)).toBe('[::1]:4000')
    expect(joinAddress('127.0.0.1', 0)).toBe('127.0.0.1:0')
    for (const ok of ['127.0.0.1:4000', '[::1]:4000', 'example.org:1', 'bob:65535'])
      expect(checkAddress(ok)).toBeUndefined()
    for (const bad of ['foo', ':4000', '::1:4000', 'a:0', 'a:65536', 'a:b', 'a b:1'])
      expect(checkAddress(bad)).toBeTypeOf('string')
  })

  test('DHT addresses: the dht: prefix in any case; a bad peer id is named as such', () => {
    const id = 'ab'.repeat(32)
    for (const ok of [`dht:${id}`, `DHT:${id}`, `Dht:${id.toUpperCase()}`])
      expect(checkAddress(ok)).toBeUndefined()
    for (const bad of ['dht:', 'DHT:xyz', `dht:${id}0`, `dht:${id.slice(2)}`, `DHT:${'g'.repeat(64)}`])
      expect(checkAddress(bad)).toMatch(/expected a peer id of 64 hex characters/)

    const ok = parse(['--dht', '--peer', `DHT:${id.toUpperCase()}`]).result
    expect(ok.kind === 'run' && ok.options.peers).toEqual([`dht:${id}`])
    const { result, err } = parse(['--dht', '--peer', 'DHT:1234'])
    expect(result).toEqual({ kind: 'exit', code: 2 })
    expect(err).toMatch(/--peer: "DHT:1234" is not a DHT address: expected a peer id of 64 hex characters/)
  })
})

describe('identity and logs', () => {
  test.skipIf(process.platform !== 'linux')(
    '--data-dir on /proc or /sys fails at once with one sentence (no hang, no stack)',
    async () => {
      const net = await createTestNetwork({ size: 0 })
      for (const dir of ['/proc/parley', '/sys/kernel/parley/deeper']) {
        const cli = startCli(['--no-interactive', '--data-dir', dir, '--host', 'p', '--port', '0'], {
          network: net.network,
        })
        expect(await cli.exited).toBe(1)
        expect(cli.stderr.lines()).toHaveLength(1)
        expect(cli.stderr.text).toMatch(
          new RegExp(
            `--data-dir ${dir} is on the kernel's (proc|sysfs) file system, which cannot keep files`,
          ),
        )
      }
      // The download folder too: creating it there never returned, and accepting a file then spun.
      const cli = startCli(['--no-interactive', '--downloads', '/proc/dl', '--host', 'p', '--port', '0'], {
        network: net.network,
      })
      expect(await cli.exited).toBe(1)
      expect(cli.stderr.text).toMatch(/--downloads \/proc\/dl is on the kernel's proc file system/)
      // The default folder, when the command was typed in /proc: no flag to blame, so none is named.
      const here = startCli(['--no-interactive', '--host', 'p', '--port', '0'], {
        network: net.network,
        env: { INIT_CWD: '/proc', npm_package_json: join(process.cwd(), 'package.json') },
      })
      expect(await here.exited).toBe(1)
      expect(here.stderr.lines()).toHaveLength(1)
      expect(here.stderr.text).toContain(
        "✖ the downloads folder /proc/downloads is on the kernel's proc file system, which cannot keep files — start from another folder, or pick one with --downloads ~/Downloads",
      )
    },
  )

  test('--data-dir keeps the peer id across runs', async () => {
    const dir = await tempDir()
    const net = await createTestNetwork({ size: 0 })
    const ids: string[] = []
    for (let run = 0; run < 2; run++) {
      const cli = startCli(['--no-interactive', '--host', `h${run}`, '--port', '0', '--data-dir', dir], {
        network: net.network,
      })
      const m = await cli.stdout.waitFor(/peer id ([0-9a-f]{64})/)
      ids.push(m[1]!)
      cli.line('quit')
      expect(await cli.exited).toBe(0)
    }
    expect(ids[0]).toBe(ids[1])
  })

  test('an identity key readable by others is refused in one sentence, exit 1', async () => {
    const dir = await tempDir()
    const net = await createTestNetwork({ size: 0 })
    const first = startCli(['--no-interactive', '--host', 'k', '--port', '0', '--data-dir', dir], {
      network: net.network,
    })
    await first.address()
    first.line('quit')
    await first.exited
    await chmod(join(dir, 'identity.pem'), 0o644)
    const cli = startCli(['--no-interactive', '--host', 'k', '--port', '0', '--data-dir', dir], {
      network: net.network,
    })
    expect(await cli.exited).toBe(1)
    expect(cli.stderr.lines()).toHaveLength(1)
    expect(cli.stderr.text).toMatch(/readable by other users — run: chmod 600 .*identity\.pem/)
  })

  test('--log-file gets NDJSON lines; nothing of it reaches stdout', async () => {
    const dir = await tempDir()
    const logFile = join(dir, 'parley.log')
    const net = await createTestNetwork({ size: 1, names: ['bob'] })
    onTestFinished(() => net.stop())
    const cli = startCli(
      [
        '--no-interactive',
        '--host',
        'lg',
        '--port',
        '0',
        '--log-file',
        logFile,
        '--peer',
        net.address(net.peers[0]!),
      ],
      { network: net.network },
    )
    await cli.stdout.waitFor(/connected to bob/)
    cli.line('quit')
    expect(await cli.exited).toBe(0)
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n')
    const records = lines.map((l) => JSON.parse(l) as { level: string; event: string; time: string })
    expect(records.map((r) => r.event)).toEqual(
      expect.arrayContaining(['starting', 'listening', 'peer:connect', 'stopping']),
    )
    expect(records.every((r) => ['error', 'warn', 'info'].includes(r.level))).toBe(true)
    expect(cli.stdout.text).not.toMatch(/"event"/)
  })
})

test('a peer given twice is dialed once', () => {
  expect(
    parse(['--peer', '127.0.0.1:4000', '--peer', '127.0.0.1:4000', '--peer', 'localhost:4001']).result,
  ).toMatchObject({
    kind: 'run',
    options: { peers: ['127.0.0.1:4000', 'localhost:4001'] },
  })
})

describe('usage errors', () => {
  test('are one line: a misspelt flag with its suggestion, a stray argument', () => {
    const typo = parse(['--nmae', 'bob'])
    expect(typo.result).toEqual({ kind: 'exit', code: 2 })
    expect(typo.err).toBe("parley: unknown option '--nmae' (Did you mean --name?) — --help lists the flags\n")
    const stray = parse(['bob'])
    expect(stray.result).toEqual({ kind: 'exit', code: 2 })
    expect(stray.err).toBe(
      'parley: an argument was given, but parley takes only flags — --help lists the flags\n',
    )
  })

  test('a dht: --peer without a DHT is refused at once, not retried as a peer that is down', () => {
    const key = 'ab'.repeat(32)
    const lone = parse(['--peer', `dht:${key}`])
    expect(lone.result).toEqual({ kind: 'exit', code: 2 })
    expect(lone.err).toMatch(/a dht: address needs --dht or --bootstrap/)
    expect(parse(['--peer', `DHT:${key}`]).result).toEqual({ kind: 'exit', code: 2 })
    expect(parse(['--dht', '--peer', `dht:${key}`]).result).toMatchObject({ kind: 'run' })
  })
})

describe('security flags', () => {
  test('--allow and --deny take full peer ids; --network-secret-file reads bytes', () => {
    const id = 'ab'.repeat(32)
    const ok = parse(['--allow', id, '--deny', 'CD'.repeat(32)])
    expect(ok.result).toMatchObject({ kind: 'run', options: { allow: [id], deny: ['cd'.repeat(32)] } })
    const bad = parse(['--allow', 'ab12:cd34'])
    expect(bad.result).toEqual({ kind: 'exit', code: 2 })
    expect(bad.err).toMatch(/full peer id/)
    const missing = parse(['--network-secret-file', '/nonexistent/secret'])
    expect(missing.result).toEqual({ kind: 'exit', code: 2 })
  })
})
