import { spawnSync } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPeer, fingerprint, generateIdentity, tcpTransport } from '@parley/core'
import { describe, expect, onTestFinished, test } from 'vitest'
import { ChatState } from '../src/chat/chat-state.js'
import { parseLine } from '../src/commands.js'
import { dataDirPermissionProblem, LOCK_FILE, lockDataDir } from '../src/data-dir.js'
import { explain } from '../src/errors.js'
import { parseOptions } from '../src/options.js'
import { lookalikeNote, skeleton, suspiciousName } from '../src/view/names.js'
import { startCli } from './helpers/cli.js'

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-cli-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('look-alike names', () => {
  test('invisible characters and Cyrillic/Greek homoglyphs share the plain name’s skeleton', () => {
    expect(skeleton('bob\u200b')).toBe('bob')
    expect(skeleton('\ufeffb\u2060ob')).toBe('bob')
    expect(skeleton('b\u043eb')).toBe('bob') // Cyrillic о
    expect(skeleton('\u0430lice')).toBe('alice') // Cyrillic а
    expect(skeleton('b\u03bfb')).toBe('bob') // Greek ο
    expect(skeleton('ＢＯＢ')).toBe('bob') // fullwidth, by NFKC
    expect(skeleton('carol')).not.toBe(skeleton('bob'))
    expect(suspiciousName('bob\u200b')).toBe('invisible')
    expect(suspiciousName('ab\u202eoc')).toBe('invisible')
    expect(suspiciousName('b\u043eb')).toBe('mixed-scripts')
    expect(suspiciousName('борис')).toBeUndefined() // all Cyrillic is a name, not a disguise
    expect(suspiciousName('bob')).toBeUndefined()
    expect(lookalikeNote('bob\u200b', ['bob'])).toBe('⚠ (look-alike of bob)')
    expect(lookalikeNote('bob', ['bob', 'carol'])).toBeUndefined()
  })

  test('the chat view marks a look-alike with ⚠ and its fingerprint; plain names stay short', () => {
    const state = new ChatState({ id: 'f'.repeat(64), name: 'alice' })
    const bob = { id: 'a'.repeat(64), name: 'bob' }
    const fake = { id: 'b'.repeat(64), name: 'bob\u200b' }
    const cyr = { id: 'c'.repeat(64), name: 'b\u043eb' }
    const carol = { id: 'd'.repeat(64), name: 'carol' }
    state.see(bob)
    expect(state.label(bob)).toBe('bob')
    expect(state.label(carol)).toBe('carol')
    expect(state.label(fake)).toBe(`bob\u200b ⚠ (look-alike of bob) (${fingerprint(fake.id)})`)
    expect(state.label(cyr)).toBe(`b\u043eb ⚠ (look-alike of bob) (${fingerprint(cyr.id)})`)
    // The name spelled as it reads stays plain however many imitations arrive after it.
    state.see(fake)
    state.see(cyr)
    expect(state.label(bob)).toBe('bob')
    expect(state.label(cyr)).toBe(`b\u043eb ⚠ (look-alike of bob) (${fingerprint(cyr.id)})`)
    // Two names that both read as they are spelled mark each other: neither is the imitation.
    expect(lookalikeNote('Bob', ['bob'])).toBe('⚠ (look-alike of bob)')
    // A look-alike of your own name, and a hidden character with nobody to imitate, are flagged too.
    expect(state.label({ id: 'e'.repeat(64), name: '\u0430lice' })).toContain('⚠ (look-alike of alice)')
    expect(state.label({ id: '1'.repeat(64), name: 'dave\u200d' })).toContain('⚠ (hidden characters)')
  })
})

describe('errors about the known-peers file and keys', () => {
  test('a damaged known-peers file is named, and the identity key is not blamed', () => {
    const { sentence } = explain({ code: 'KNOWN_PEERS_INVALID', message: 'x' }, { address: '/d' })
    expect(sentence).toMatch(/^\/d\/known-peers\.json is damaged \(your identity key is fine\)/)
    expect(sentence).not.toMatch(/identity\.pem/)
  })

  test('a key that could not be saved is one sentence with the cause', () => {
    const err = Object.assign(new Error('could not save'), {
      code: 'KNOWN_PEERS_WRITE_FAILED',
      cause: Object.assign(new Error('no space'), { code: 'ENOSPC' }),
    })
    const { sentence } = explain(err)
    expect(sentence).toMatch(/^could not save a peer's key to the known-peers file \(no space\)/)
    expect(sentence.split('\n')).toHaveLength(1)
  })

  test('a refused changed key says how to accept it', () => {
    const err = Object.assign(new Error('the key at 1.2.3.4:5 changed'), { code: 'KEY_CHANGED' })
    expect(explain(err, { address: '1.2.3.4:5' }).sentence).toBe(
      'the key at 1.2.3.4:5 changed — if the peer really has a new key, accept it with /trust 1.2.3.4:5 (trust 1.2.3.4:5 without the chat view)',
    )
  })

  test('trust commands parse', () => {
    expect(parseLine('trust')).toEqual({ name: 'trust', address: undefined, full: false })
    expect(parseLine('trust --full')).toEqual({ name: 'trust', address: undefined, full: true })
    expect(parseLine('trust 1.2.3.4:5')).toEqual({ name: 'trust', address: '1.2.3.4:5', full: false })
    expect(parseLine('trust a b')).toEqual({ error: 'usage: trust [--full] or trust <address>' })
  })
})

describe('a changed key, decided by the user (non-interactive, TCP on 127.0.0.1)', () => {
  test('inbound impostor and refused dial each say how to accept; trust lists both keys; trust <address> accepts', async () => {
    const dir = await tempDir()
    const bob = createPeer({ transport: tcpTransport(), name: 'bob', listen: '127.0.0.1:0' })
    onTestFinished(() => bob.stop())
    await bob.start()
    const bobAddress = bob.addresses[0]!
    const alice = startCli(['--no-interactive', '--name', 'alice', '--data-dir', dir, '--port', '0'])
    const aliceAddress = await alice.address()
    alice.line(`connect ${bobAddress}`)
    await alice.stdout.waitFor(/✔ connected to bob/)
    await bob.stop()
    await alice.stdout.waitFor(/- bob .* left/)

    // Someone else takes bob's address and name, with another key, and dials alice.
    const mallory = createPeer({
      transport: tcpTransport(),
      identity: generateIdentity(),
      name: 'bob',
      listen: bobAddress,
    })
    onTestFinished(() => mallory.stop())
    await mallory.start()
    await mallory.connect(aliceAddress)
    await alice.stderr.waitFor(
      new RegExp(
        `dialed in claiming ${esc(bobAddress)}.*may be an impostor.* — dial ${esc(bobAddress)} to see who answers there; only if ${esc(fingerprint(mallory.id))} is the peer's new key \\(ask its owner\\), /trust ${esc(bobAddress)} accepts it`,
      ),
    )
    // Sending to the address dials it and meets the new key: refused, with the same advice.
    alice.line(`send ${bobAddress} secret`)
    await alice.stderr.waitFor(new RegExp(`accept it with /trust ${esc(bobAddress)}`))

    const from = alice.stdout.mark()
    alice.line('trust')
    const listed = await alice.stdout.waitFor(/key changes waiting for your decision \(1\):\n(.*)\n/, {
      from,
    })
    expect(listed[1]).toContain(`saved key ${fingerprint(bob.id)}, new key ${fingerprint(mallory.id)}`)
    alice.line('trust --full')
    await alice.stdout.waitFor(new RegExp(`saved key ${bob.id}, new key ${mallory.id}`))

    alice.line(`trust ${bobAddress}`)
    await alice.stdout.waitFor(
      new RegExp(`accepted the new key ${fingerprint(mallory.id)} for ${esc(bobAddress)}`),
    )
    const saved = JSON.parse(await readFile(join(dir, 'known-peers.json'), 'utf8')) as unknown
    expect(JSON.stringify(saved)).toContain(mallory.id)
    alice.line('trust')
    await alice.stdout.waitFor(/no key changes are waiting for a decision/)
    alice.line(`trust ${bobAddress}`)
    await alice.stderr.waitFor(new RegExp(`no key change is waiting for ${esc(bobAddress)}`))
  })
})

describe('a key change our own dial met', () => {
  test('accepted with trust <address>, the peer is dialed again at once', async () => {
    const bob = createPeer({ transport: tcpTransport(), name: 'bob', listen: '127.0.0.1:0' })
    onTestFinished(() => bob.stop())
    await bob.start()
    const bobAddress = bob.addresses[0]!
    const alice = startCli(['--no-interactive', '--name', 'alice', '--port', '0'])
    await alice.address()
    alice.line(`connect ${bobAddress}`)
    await alice.stdout.waitFor(/✔ connected to bob/)
    await bob.stop()
    await alice.stdout.waitFor(/- bob .* left/)
    // bob again, without its data dir: a new key at the same address.
    const again = createPeer({
      transport: tcpTransport(),
      name: 'bob',
      listen: bobAddress,
      identity: generateIdentity(),
    })
    onTestFinished(() => again.stop())
    await again.start()
    const told = new Promise((resolve) => again.once('peer:disconnect', resolve))
    alice.line(`connect ${bobAddress}`)
    await alice.stderr.waitFor(new RegExp(`accept it with /trust ${esc(bobAddress)}`))
    // The refused peer heard why.
    expect(await told).toMatchObject({
      reason: 'goodbye',
      message: expect.stringMatching(/not the one saved/),
    })
    const from = alice.stdout.mark()
    alice.line(`trust ${bobAddress}`)
    await alice.stdout.waitFor(new RegExp(`accepted the new key ${fingerprint(again.id)}`), { from })
    await alice.stdout.waitFor(/✔ connected to bob/, { from })
    expect(again.peers().connected.map((p) => p.name)).toEqual(['alice'])
  })
})

describe('the data dir', () => {
  test('two peers cannot share one data dir; the second says which PID has it', async () => {
    const dir = await tempDir()
    const first = startCli(['--no-interactive', '--name', 'one', '--data-dir', dir, '--port', '0'])
    await first.address()
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid))
    const second = startCli(['--no-interactive', '--name', 'two', '--data-dir', dir, '--port', '0'])
    expect(await second.exited).toBe(1)
    expect(second.stderr.text).toContain(
      `${dir} is in use by another Parley peer in this process (PID ${process.pid})`,
    )
    // Once the first has quit, the dir is free again.
    first.line('quit')
    expect(await first.exited).toBe(0)
    const third = startCli(['--no-interactive', '--name', 'three', '--data-dir', dir, '--port', '0'])
    await third.address()
  })

  test('a lock held by a live process refuses; one left by a dead process is taken over', async () => {
    const dir = await tempDir()
    // A PID that certainly ran and is gone: a child that has exited.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid
    await writeFile(join(dir, LOCK_FILE), `${dead}\n`)
    const lock = await lockDataDir(dir)
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid))
    await lock.release()
    // PID 1 is alive (and usually not ours): its lock stands.
    await writeFile(join(dir, LOCK_FILE), '1\n')
    await expect(lockDataDir(dir)).rejects.toThrow(
      `--data-dir ${dir} is in use by another Parley process (PID 1) — stop it, or pick another --data-dir`,
    )
  })

  test('a data dir other users can write to is refused, with the chmod that fixes it', async () => {
    const dir = await tempDir()
    expect(await dataDirPermissionProblem(dir)).toBeUndefined()
    await chmod(dir, 0o777)
    expect(await dataDirPermissionProblem(dir)).toBe(
      `--data-dir ${dir} is writable by every user, who could replace your key or saved peers — run: chmod go-w ${dir}`,
    )
    const run = startCli(['--no-interactive', '--name', 'x', '--data-dir', dir, '--port', '0'])
    expect(await run.exited).toBe(1)
    expect(run.stderr.text).toContain(`chmod go-w ${dir}`)
    await chmod(dir, 0o720)
    expect(await dataDirPermissionProblem(dir)).toMatch(/writable by its group/)
  })

  test('a shared folder (sticky, like /tmp) is refused without advice to chmod it; a file is not a folder', async () => {
    const dir = await tempDir()
    await chmod(dir, 0o1777)
    const shared = await dataDirPermissionProblem(dir)
    expect(shared).toMatch(/shared, like \/tmp\) — pick a directory of your own/)
    expect(shared).not.toContain('chmod')
    const file = join(dir, 'a-file')
    await writeFile(file, '')
    expect(await dataDirPermissionProblem(file)).toBe(
      `--data-dir ${file} is not a folder — pick a directory such as ~/.parley`,
    )
  })
})

describe('flags: network secret and DHT', () => {
  const parse = (argv: string[], env: Record<string, string> = {}) => {
    const err: string[] = []
    const result = parseOptions(argv, { env, out: () => {}, err: (t) => err.push(t) })
    return { result, err: err.join('') }
  }
  const options = (argv: string[], env: Record<string, string> = {}) => {
    const { result } = parse(argv, env)
    if (result.kind !== 'run') throw new Error('expected options')
    return result.options
  }

  test('--network-secret on the command line warns; the file and the environment do not', async () => {
    expect(options(['--network-secret', 'pw']).warnings[0]).toMatch(
      /--network-secret, which every local user can read in the process list — prefer --network-secret-file or PARLEY_NETWORK_SECRET/,
    )
    expect(options([], { PARLEY_NETWORK_SECRET: 'pw' }).warnings).toEqual([])
    const dir = await tempDir()
    await writeFile(join(dir, 'secret'), 'pw')
    const o = options(['--network-secret-file', join(dir, 'secret')])
    expect(o.warnings).toEqual([])
    expect(Buffer.from(o.networkSecret!).toString()).toBe('pw')
  })

  test('a secret file written by echo or an editor means the same secret as the flag: its line end is not part of it', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'unix'), 's3cret-one\n')
    await writeFile(join(dir, 'windows'), 's3cret-one\r\n')
    const flag = options(['--network-secret', 's3cret-one']).networkSecret!
    for (const file of ['unix', 'windows']) {
      expect(Buffer.from(options(['--network-secret-file', join(dir, file)]).networkSecret!)).toEqual(
        Buffer.from(flag),
      )
    }
    // Only line ends: a secret may start or end with other whitespace.
    await writeFile(join(dir, 'spaced'), ' pw \n')
    expect(
      Buffer.from(options(['--network-secret-file', join(dir, 'spaced')]).networkSecret!).toString(),
    ).toBe(' pw ')
  })

  test('--dht, --bootstrap (repeatable), --join (repeatable) and --relay', () => {
    expect(options([]).dht).toBeUndefined()
    expect(options(['--dht']).dht).toEqual({ bootstrap: 'public', join: [] })
    const relay = 'ab'.repeat(32)
    expect(
      options([
        '--bootstrap',
        '10.0.0.1:49737',
        '--bootstrap',
        '[fd00::1]:5000',
        '--join',
        'our room',
        '--join',
        'other',
        '--relay',
        relay,
      ]).dht,
    ).toEqual({
      bootstrap: [
        { host: '10.0.0.1', port: 49737 },
        { host: 'fd00::1', port: 5000 },
      ],
      join: ['our room', 'other'],
      relay,
    })
    // A dht: address is a peer to dial at start.
    expect(options(['--dht', '--peer', `dht:${relay}`]).peers).toEqual([`dht:${relay}`])
  })

  test('DHT flags that cannot work are usage errors (exit 2), one sentence each', () => {
    for (const [argv, expected] of [
      [['--join', 'room'], /--join needs the DHT: add --dht \(the public DHT\) or --bootstrap host:port/],
      [['--bootstrap', 'nope'], /--bootstrap "nope" is not host:port/],
      [['--dht', '--relay', 'xyz'], /--relay takes a peer id/],
    ] as const) {
      const { result, err } = parse([...argv])
      expect(result).toEqual({ kind: 'exit', code: 2 })
      expect(err.trim().split('\n')).toHaveLength(1)
      expect(err).toMatch(expected)
    }
  })
})
