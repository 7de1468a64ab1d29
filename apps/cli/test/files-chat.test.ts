import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { type Channel, createPeer, memoryTransport } from '@parley/core'
import { createFileService, encode, FILES_PROTOCOL, type IncomingOffer } from '@parley/files'
import { createTestNetwork } from '@parley/testing'
import { describe, expect, onTestFinished, test } from 'vitest'
import { type CliRun, startCli } from './helpers/cli.js'
import { KEY, renderScreen } from './helpers/streams.js'

const COLS = 120
const ROWS = 40

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-files-chat-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A test network and "bob" on it (at bob:1): a library peer with the file service, saving into dir/bob-in. */
async function bobWithFiles(dir: string, options: { progressInterval?: number } = {}) {
  const net = await createTestNetwork({ size: 1, names: ['observer'] })
  onTestFinished(() => net.stop())
  const files = createFileService({ downloads: join(dir, 'bob-in'), ...options })
  const bob = createPeer({
    transport: memoryTransport(net.network),
    name: 'bob',
    listen: 'bob:1',
    services: [files],
  })
  onTestFinished(async () => {
    await files.close()
    await bob.stop()
  })
  await bob.start()
  return { net, bob, files }
}

/** The chat view of "alice" on fake TTY streams, and "bob": a library peer with the file service. */
async function setup(extra: string[] = []) {
  const dir = await tempDir()
  const { net, bob, files } = await bobWithFiles(dir, { progressInterval: 0 })
  const downloads = join(dir, 'alice-in')
  const cli = startCli(
    [
      '--name',
      'alice',
      '--host',
      'alice',
      '--port',
      '0',
      '--peer',
      'bob:1',
      '--downloads',
      downloads,
      ...extra,
    ],
    { network: net.network, tty: true, columns: COLS, rows: ROWS },
  )
  await cli.stdout.waitFor('1 peer:')
  await cli.stdout.waitFor('[everyone] › ')
  return { dir, cli, bob, files, downloads, network: net.network }
}

async function keys(cli: CliRun, input: string, expected: string | RegExp) {
  const from = cli.stdout.mark()
  cli.stdin.write(input)
  return cli.stdout.waitFor(expected, { from })
}

describe('files in the chat view', () => {
  test('an offer prints above the prompt with its sender, size and a sanitized name; /accept saves it', async () => {
    const { dir, cli, bob, files, downloads } = await setup()
    const src = join(dir, 'report.pdf')
    await writeFile(src, 'x'.repeat(300_000))
    await keys(cli, 'half typed', 'half typed')
    const alice = bob.peers().connected[0]!
    const t = await files.offer(alice.id, src, { name: 'rep\x1b[31mort\u202e.pdf' })
    const id = t.root.slice(0, 8)
    await cli.stdout.waitFor(`/accept ${id}`)
    const { lines } = await renderScreen(cli.stdout.raw, COLS, ROWS)
    expect(cli.stdout.text).toMatch(
      /^\d\d:\d\d:\d\d ⇣ bob offers rep_\[31mort_\.pdf \(offered as "rep\[31mort\.pdf"\) \(300 kB\) — \/accept [0-9a-f]{8} or \/decline [0-9a-f]{8} \(expires in \d+ s\)$/m,
    )
    expect(cli.stdout.raw).not.toContain('\x1b[31mort')
    // What was typed is still on the input line.
    expect(lines.at(-1)).toContain('half typed')

    await keys(cli, `\x15/files${KEY.enter}`, /offers waiting \(1\)\s+[0-9a-f]{8}\s+rep_\[31mort_\.pdf/)
    await keys(cli, `/accept${KEY.enter}`, /✔ saved rep_\[31mort_\.pdf \(300 kB, verified\) at /)
    await t.finished
    expect(await readFile(join(downloads, 'rep_[31mort_.pdf'), 'utf8')).toBe('x'.repeat(300_000))
  })

  test('/files after a finished transfer says no offers or transfers are open, not "nothing yet"', async () => {
    const { dir, cli, bob, files } = await setup()
    const src = join(dir, 'notes.txt')
    await writeFile(src, 'some notes')
    const t = await files.offer(bob.peers().connected[0]!.id, src)
    await cli.stdout.waitFor('/accept ')
    await keys(cli, `/accept${KEY.enter}`, /✔ saved notes\.txt/)
    await t.finished
    await keys(
      cli,
      `/files${KEY.enter}`,
      /sending \(0\)\s+no offers or transfers open — \/send-file <peer> <path>/,
    )
    expect(cli.stdout.text).not.toContain('nothing yet')
  })

  test('with --accept-files a download starts at once; its progress shows on the status line, then the saved line', async () => {
    const { dir, cli, bob, files, downloads } = await setup(['--accept-files'])
    const src = join(dir, 'big.bin')
    await writeFile(src, Buffer.alloc(8_000_000, 7))
    const from = cli.stdout.mark()
    const t = await files.offer(bob.peers().connected[0]!.id, src)
    await cli.stdout.waitFor(/receiving big\.bin \(8\.0 MB\), accepted by --accept-files/, { from })
    // The status line (the row above the input line) carries the transfer while it runs.
    await cli.stdout.waitFor(/· ↓ big\.bin \d+% [\d.]+ [kMG]?B\/s [\d:?]+ left/, { from })
    await cli.stdout.waitFor(/✔ saved big\.bin \(8\.0 MB, verified\) at /, { from })
    await t.finished
    expect((await readFile(join(downloads, 'big.bin'))).equals(Buffer.alloc(8_000_000, 7))).toBe(true)
    // Once it is done, the status line no longer shows it.
    const { lines } = await renderScreen(cli.stdout.raw, COLS, ROWS)
    expect(lines.at(-2)).not.toContain('big.bin')
  })

  test('/send-file offers to a peer named like /to; the receiver saying no is one line', async () => {
    const { dir, cli, files } = await setup()
    const src = join(dir, 'photo.jpg')
    await writeFile(src, 'y'.repeat(1000))
    files.once('offer', (o: IncomingOffer) => o.decline())
    await keys(
      cli,
      `/send-file bob ${src}${KEY.enter}`,
      /offered photo\.jpg \(1\.0 kB\) to bob — waiting for an answer/,
    )
    await cli.stdout.waitFor(/✖ sending photo\.jpg failed: bob declined it/)
    await keys(cli, `/send-file nobody ${src}${KEY.enter}`, 'no connected peer matches "nobody"')
    await keys(cli, `/send-file alice ${src}${KEY.enter}`, 'alice is you — name the peer to send it to')
    await keys(cli, `/accept 1234${KEY.enter}`, 'no offer waiting has the id 1234 — /files lists them')
    await keys(
      cli,
      `/send-file bob ${join(dir, 'missing.bin')}${KEY.enter}`,
      /✖ sending missing\.bin failed: there is no such file$/m,
    )
  })
})

describe('the same file twice', () => {
  test('/cancel stops a transfer by the id /files lists; the other side hears of it', async () => {
    const { dir, cli, files } = await setup()
    const src = join(dir, 'photo.jpg')
    await writeFile(src, 'y'.repeat(1000))
    const offered = once(files, 'offer')
    const m = await keys(
      cli,
      `/send-file bob ${src}${KEY.enter}`,
      /offered photo\.jpg \(1\.0 kB\) to bob — waiting for an answer \(([0-9a-f]{8})\)/,
    )
    const [offer] = (await offered) as [IncomingOffer]
    const withdrawn = once(files, 'offer:withdrawn')
    await keys(cli, `/cancel 1234${KEY.enter}`, 'no transfer running has the id 1234 — /files lists them')
    await keys(cli, `/cancel ${m[1]}${KEY.enter}`, /✖ sending photo\.jpg failed: you cancelled it/)
    await withdrawn
    expect(offer.status).toBe('withdrawn')
  })

  test('/send-file of a file already waiting for an answer says so once; nothing is left stuck in "offered"', async () => {
    const { dir, cli, files } = await setup()
    const src = join(dir, 'photo.jpg')
    await writeFile(src, 'y'.repeat(1000))
    const offered = once(files, 'offer', { signal: AbortSignal.timeout(5_000) })
    await keys(
      cli,
      `/send-file bob ${src}${KEY.enter}`,
      /offered photo\.jpg \(1\.0 kB\) to bob — waiting for an answer/,
    )
    const from = cli.stdout.mark()
    await keys(
      cli,
      `/send-file bob ${src}${KEY.enter}`,
      'photo.jpg is already offered to bob and waiting for an answer — not offered again',
    )
    expect(stripVTControlCharacters(cli.stdout.raw.slice(from))).not.toMatch(/offered photo\.jpg \(/)
    const [offer] = (await offered) as [IncomingOffer]
    expect(files.offers()).toEqual([offer])

    await offer.accept()
    await cli.stdout.waitFor(/✔ bob received photo\.jpg \(1\.0 kB, verified\)/, { from })
    await keys(cli, `/files${KEY.enter}`, /sending \(0\)/)
    // Done: the same file may be sent again, as a new offer.
    await keys(
      cli,
      `/send-file bob ${src}${KEY.enter}`,
      /offered photo\.jpg \(1\.0 kB\) to bob — waiting for an answer/,
    )
  })
})

describe('a sender that leaves', () => {
  test('its waiting offer is dropped with one line, not left to be accepted into a download nobody feeds', async () => {
    const { dir, cli, bob, files } = await setup()
    const src = join(dir, 'notes.txt')
    await writeFile(src, 'n'.repeat(2000))
    let from = cli.stdout.mark()
    const t = await files.offer(bob.peers().connected[0]!.id, src)
    const id = t.root.slice(0, 8)
    await cli.stdout.waitFor(`/accept ${id}`, { from })
    from = cli.stdout.mark()
    // As the CLI quits: the file service is closed, then the peer says goodbye.
    await files.close()
    await bob.stop()
    await cli.stdout.waitFor(/the offer of notes\.txt \([0-9a-f]{8}\) was dropped: its sender left/, { from })
    const said = stripVTControlCharacters(cli.stdout.raw.slice(from))
    expect(said.indexOf('- bob left')).toBeGreaterThanOrEqual(0)
    expect(said.indexOf('- bob left')).toBeLessThan(said.indexOf('was dropped'))
    await keys(cli, `/files${KEY.enter}`, 'offers waiting (0)')
    await keys(cli, `/accept${KEY.enter}`, 'no offer is waiting')
  })
})

describe('offers of one root', () => {
  test('two offers of one root (different size claims) get ids of their own; the bare id asks which', async () => {
    const { dir, cli, bob, files, network } = await setup()
    const src = join(dir, 'report.pdf')
    await writeFile(src, 'z'.repeat(300_000))
    // Mallory speaks the files protocol by hand: it offers the same root, claiming another size.
    const channels: Channel[] = []
    const mallory = createPeer({
      transport: memoryTransport(network),
      name: 'mallory',
      listen: 'mallory:1',
      services: [
        {
          protocol: FILES_PROTOCOL,
          open(channel: Channel) {
            channels.push(channel)
            return { onFrame: () => {}, onClose: () => {} }
          },
        },
      ],
    })
    onTestFinished(() => mallory.stop())
    await mallory.start()
    const alice = await mallory.connect(await cli.address())

    let from = cli.stdout.mark()
    const t = await files.offer(bob.peers().connected[0]!.id, src)
    const id = t.root.slice(0, 8)
    await cli.stdout.waitFor(`bob offers report.pdf (300 kB) — /accept ${id} or`, { from })
    from = cli.stdout.mark()
    const sent = channels
      .find((c) => c.peer.id === alice.id)!
      .sendBytes(
        encode({
          type: 'OFFER',
          id: randomBytes(16),
          root: Buffer.from(t.root, 'hex'),
          size: 10_000_000_000,
          chunkSize: 256 * 1024,
          name: 'report.pdf',
        }),
      )
    expect(sent).toBe(true)
    await cli.stdout.waitFor(`mallory offers report.pdf (10.0 GB) — /accept ${id}-2 or`, { from })

    await keys(
      cli,
      `/accept ${id}${KEY.enter}`,
      `2 offers are waiting — accept one by id: ${id}-1 (report.pdf, 300 kB, from bob), ${id}-2 (report.pdf, 10.0 GB, from mallory)`,
    )
    await keys(
      cli,
      `/files${KEY.enter}`,
      new RegExp(
        `${id}-1 +report\\.pdf +300 kB +from bob[^\\n]*\\n +${id}-2 +report\\.pdf +10\\.0 GB +from mallory`,
      ),
    )
    await keys(cli, `/accept ${id}-1${KEY.enter}`, /✔ saved report\.pdf \(300 kB, verified\) at /)
    await t.finished
  })
})

describe('files in the menu', () => {
  test('7 sends a file to a picked peer; 8 lists an offer and accepts it', async () => {
    const dir = await tempDir()
    const { net, bob, files } = await bobWithFiles(dir)
    const downloads = join(dir, 'alice-in')
    const cli = startCli(
      [
        '--menu',
        '--name',
        'alice',
        '--host',
        'alice',
        '--port',
        '0',
        '--peer',
        'bob:1',
        '--downloads',
        downloads,
      ],
      { network: net.network, tty: true, columns: COLS, rows: ROWS },
    )
    await cli.stdout.waitFor(/✔ connected to bob/)
    await cli.stdout.waitFor('0) Quit')

    const out = join(dir, 'notes.txt')
    await writeFile(out, 'from alice')
    const offered = new Promise<IncomingOffer>((resolve) => files.once('offer', resolve))
    await keys(cli, `7${KEY.enter}`, '? Send the file to')
    await keys(cli, `1${KEY.enter}`, '? Path of the file')
    await keys(cli, `${out}${KEY.enter}`, /offered notes\.txt \(10 B\) to bob \(/)
    const download = await (await offered).accept()
    expect(await readFile((await download.finished).path, 'utf8')).toBe('from alice')
    await cli.stdout.waitFor(/✔ bob \(.*\) received notes\.txt \(10 B, verified\)/)

    const back = join(dir, 'reply.txt')
    await writeFile(back, 'from bob')
    const t = await files.offer(bob.peers().connected[0]!.id, back)
    await cli.stdout.waitFor(/⇣ bob \(.*\) offers reply\.txt \(8 B\)/)
    await keys(cli, `8${KEY.enter}`, '? Answer an offer')
    await keys(cli, `1${KEY.enter}`, /✔ saved reply\.txt \(8 B, verified\)/)
    await t.finished
    expect(await readFile(join(downloads, 'reply.txt'), 'utf8')).toBe('from bob')
  })
})

describe('paths typed by the user', () => {
  test('under pnpm (INIT_CWD set), send-file ./x and the default downloads/ are where the command was typed, not apps/cli', async () => {
    const [aliceDir, bobDir] = [await tempDir(), await tempDir()]
    const net = await createTestNetwork({ size: 1, names: ['observer'] })
    onTestFinished(() => net.stop())
    // pnpm runs the app in apps/cli (this process's cwd here) and says where it was typed in INIT_CWD.
    const script = join(process.cwd(), 'package.json')
    const bob = startCli(
      ['--no-interactive', '--name', 'bob', '--host', 'bob', '--port', '0', '--accept-files'],
      {
        network: net.network,
        env: { INIT_CWD: bobDir, npm_package_json: script },
      },
    )
    const bobAddress = await bob.address()
    const alice = startCli(
      ['--no-interactive', '--name', 'alice', '--host', 'alice', '--port', '0', '--peer', bobAddress],
      { network: net.network, env: { INIT_CWD: aliceDir, npm_package_json: script } },
    )
    await alice.stdout.waitFor(/✔ connected to bob/)
    await writeFile(join(aliceDir, 'notes.txt'), 'typed next to me')

    alice.line('send-file bob ./notes.txt')
    await bob.stdout.waitFor(/✔ saved notes\.txt \(16 B, verified\) at /)
    expect(await readFile(join(bobDir, 'downloads', 'notes.txt'), 'utf8')).toBe('typed next to me')
    expect(alice.stderr.text).toBe('')
  })
})

describe('files in line mode', () => {
  test('quit right after send-file says the unanswered offer was withdrawn', async () => {
    const dir = await tempDir()
    const { net, files } = await bobWithFiles(dir)
    const offered = once(files, 'offer')
    const cli = startCli(
      ['--no-interactive', '--name', 'alice', '--host', 'alice', '--port', '0', '--peer', 'bob:1'],
      {
        network: net.network,
      },
    )
    await cli.stdout.waitFor(/✔ connected to bob/)
    const src = join(dir, 'photo.jpg')
    await writeFile(src, 'y'.repeat(1000))
    cli.line(`send-file bob ${src}`)
    await cli.stdout.waitFor(/offered photo\.jpg \(1\.0 kB\) to bob/)
    await offered
    cli.line('quit')
    expect(await cli.exited).toBe(0)
    expect(cli.stdout.text).toMatch(
      /the offer of photo\.jpg \([0-9a-f]{8}\) to bob \(.*\) was withdrawn: you quit before it was answered\n[\s\S]*stopped/,
    )
  })
})
