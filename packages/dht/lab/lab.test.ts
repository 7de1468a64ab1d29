// The NAT lab (root only; `pnpm --filter @parley/dht test:lab`): CLI peers in network namespaces behind
// nftables NATs find each other through a private DHT, by topic, and over the LAN by mDNS.
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  buildLab,
  LAB_BOOTSTRAP,
  type Lab,
  type LabHost,
  type LabProcess,
  labUnavailable,
  type NatKind,
} from './netlab.js'

const skipReason = labUnavailable()
if (skipReason !== undefined) console.warn(`NAT lab skipped: ${skipReason}`)
const CLI = fileURLToPath(new URL('../../../apps/cli/dist/main.js', import.meta.url))
const BOOTSTRAP = fileURLToPath(new URL('./bootstrap.mjs', import.meta.url))
/** A random-port punch can take ~20 s; the CLI gives a DHT dial 40 s. */
const CONNECT_MS = 60_000
const MESSAGE_MS = 15_000
/** A few MB moves in well under a second on the lab's veths, relayed or not; the bound allows for load. */
const FILE_MS = 45_000
const FILE_BYTES = 4 * 1024 * 1024

type Event = Record<string, unknown>
const type = (t: string) => (e: Event) => e.type === t

/** A lab with its bootstrap host running; removed when the test ends, whatever happens. */
async function startLab(nat1: NatKind, nat2: NatKind): Promise<{ lab: Lab; relay: string; dir: string }> {
  if (!existsSync(CLI)) throw new Error(`build the CLI first (${CLI} is missing): pnpm exec turbo run build`)
  const lab = buildLab({ nat1, nat2 })
  const dir = mkdtempSync(join(tmpdir(), 'parley-lab-'))
  onTestFinished(async () => {
    await lab.destroy()
    rmSync(dir, { recursive: true, force: true })
  })
  const boot = lab.node('boot', [BOOTSTRAP, '100.64.0.2'])
  const relay = await boot.waitFor(
    (line) => /^ready .* relay ([0-9a-f]{64})$/.exec(line)?.[1],
    20_000,
    'the bootstrap',
  )
  return { lab, relay, dir }
}

/** A CLI peer, non-interactive with NDJSON events, in a lab host. */
async function cli(
  setup: { lab: Lab; dir: string },
  host: LabHost,
  name: string,
  flags: string[],
): Promise<LabProcess> {
  const proc = setup.lab.node(host, [
    CLI,
    '--name',
    name,
    '--no-interactive',
    '--json',
    '--data-dir',
    join(setup.dir, name),
    '--port',
    '0',
    ...flags,
  ])
  await proc.waitForEvent(type('ready'), 20_000, `${name} ready`)
  // The wait for the DHT is said before it starts, not left silent (--lan alone has no DHT to wait for).
  if (flags.includes('--bootstrap'))
    expect(JSON.parse(proc.lines[0] ?? '{}')).toMatchObject({
      type: 'note',
      text: expect.stringMatching(/^joining the DHT/),
    })
  return proc
}

const connectedTo = (name: string) => (e: Event) =>
  e.type === 'peer:connect' && (e.peer as { name?: string } | undefined)?.name === name

/** `a` sends `text` to the peer named `bName`, and `b` receives it. */
async function exchange(a: LabProcess, b: LabProcess, bName: string, text: string): Promise<void> {
  const from = b.lines.length
  a.write(`send ${bName} ${text}`)
  await b.waitForEvent(
    (e) => e.type === 'message' && e.text === text,
    MESSAGE_MS,
    `"${text}" delivered`,
    from,
  )
}

/** Both ways, between peers named `oneName` and `twoName`. */
async function talk(
  [one, oneName]: [LabProcess, string],
  [two, twoName]: [LabProcess, string],
  tag: string,
): Promise<void> {
  await exchange(one, two, twoName, `hello ${tag} from ${oneName}`)
  await exchange(two, one, oneName, `hello ${tag} from ${twoName}`)
}

/** The path a peer reported for its DHT connection to `name`. */
async function pathTo(proc: LabProcess, name: string): Promise<string> {
  const event = await proc.waitForEvent(
    (e) => e.type === 'dht-path' && typeof e.text === 'string' && e.text.startsWith(`${name} reached by`),
    MESSAGE_MS,
    `${name}'s path`,
  )
  return /reached by (\w+)/.exec(event.text as string)![1]!
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

/**
 * `from` offers a file of random bytes, generated here, to the peer named `toName` (`to`, which runs
 * with --accept-files --downloads <downloads>); the saved file must hash the same as the one sent.
 */
async function transfer(
  setup: { dir: string },
  [from, to, toName]: [LabProcess, LabProcess, string],
  downloads: string,
): Promise<void> {
  const sent = join(setup.dir, 'payload.bin')
  writeFileSync(sent, randomBytes(FILE_BYTES))
  const mark = to.lines.length
  from.write(`send-file ${toName} ${sent}`)
  const end = await to.waitForEvent(
    (e) => e.type === 'file:done' || e.type === 'file:failed',
    FILE_MS,
    `the file reached ${toName}`,
    mark,
  )
  expect(end, 'the transfer failed').toMatchObject({ type: 'file:done', size: FILE_BYTES })
  const saved = end.path as string
  expect(dirname(saved)).toBe(downloads)
  expect(sha256(readFileSync(saved))).toBe(sha256(readFileSync(sent)))
}

/**
 * Two peers behind the two NATs, on one topic; resolves once both report the other connected.
 * `two` accepts every file offer into `downloads`.
 */
async function topicPair(nat1: NatKind, nat2: NatKind, relayed = false) {
  const setup = await startLab(nat1, nat2)
  const topic = `lab ${setup.lab.prefix}`
  const flags = ['--bootstrap', LAB_BOOTSTRAP, '--join', topic, ...(relayed ? ['--relay', setup.relay] : [])]
  const downloads = join(setup.dir, 'two-downloads')
  const two = await cli(setup, 'h2a', 'two', [...flags, '--accept-files', '--downloads', downloads])
  const one = await cli(setup, 'h1a', 'one', flags)
  await Promise.all([
    one.waitForEvent(connectedTo('two'), CONNECT_MS, 'one connected to two'),
    two.waitForEvent(connectedTo('one'), CONNECT_MS, 'two connected to one'),
  ])
  return { ...setup, one, two, downloads }
}

describe('the NAT lab: CLI peers behind NATs, on a private DHT', () => {
  it('cone NATs: two peers given only the bootstrap and a topic find each other, talk both ways and move a file', async (ctx) => {
    ctx.skip(skipReason !== undefined, skipReason)
    const pair = await topicPair('cone', 'cone', true)
    const { one, two } = pair
    await talk([one, 'one'], [two, 'two'], 'cone')
    await transfer(pair, [one, two, 'two'], pair.downloads)
    // A relay is offered, but peers that can reach each other are not relayed.
    expect(['direct', 'holepunch']).toContain(await pathTo(one, 'two'))
    expect(['direct', 'holepunch']).toContain(await pathTo(two, 'one'))
  })

  it('one random-port NAT: the hole is punched, and a file moves through it', async (ctx) => {
    ctx.skip(skipReason !== undefined, skipReason)
    const pair = await topicPair('cone', 'random')
    const { one, two } = pair
    await talk([one, 'one'], [two, 'two'], 'punched')
    await transfer(pair, [one, two, 'two'], pair.downloads)
    expect(await pathTo(one, 'two')).toBe('holepunch')
    expect(await pathTo(two, 'one')).toBe('holepunch')
  })

  it('two random-port NATs: the peers talk and move a file through the relay', async (ctx) => {
    ctx.skip(skipReason !== undefined, skipReason)
    const pair = await topicPair('random', 'random', true)
    const { one, two } = pair
    await talk([one, 'one'], [two, 'two'], 'relayed')
    await transfer(pair, [one, two, 'two'], pair.downloads)
    expect(await pathTo(one, 'two')).toBe('relay')
    expect(await pathTo(two, 'one')).toBe('relay')
  })

  it("a NAT'd host's link goes down and up: the peers reconnect by key and talk again", async (ctx) => {
    ctx.skip(skipReason !== undefined, skipReason)
    const { lab, one, two } = await topicPair('cone', 'cone')
    await talk([one, 'one'], [two, 'two'], 'before')
    const mark = one.lines.length
    lab.link('h1a', 'down')
    // The peer pings every 5 s and gives up on a link silent for 15 s.
    await one.waitForEvent(type('peer:disconnect'), 30_000, 'one lost two', mark)
    lab.link('h1a', 'up')
    await one.waitForEvent(connectedTo('two'), CONNECT_MS, 'one reconnected to two', mark)
    await talk([one, 'one'], [two, 'two'], 'after')
  })

  it("a peer on each LAN reaches the other LAN's peers: topic peers, --lan neighbours, peer exchange, dht: dials", async (ctx) => {
    ctx.skip(skipReason !== undefined, skipReason)
    const setup = await startLab('cone', 'cone')
    const topic = `lab ${setup.lab.prefix}`
    const dht = ['--bootstrap', LAB_BOOTSTRAP]
    // a1 and a2 are on the topic; b1 and b2 only on their LANs (and dialable as dht:<id>).
    const a2 = await cli(setup, 'h2a', 'a2', [...dht, '--join', topic, '--lan'])
    const a1 = await cli(setup, 'h1a', 'a1', [...dht, '--join', topic, '--lan'])
    const b1 = await cli(setup, 'h1b', 'b1', [...dht, '--lan'])
    const b2 = await cli(setup, 'h2b', 'b2', [...dht, '--lan'])
    await Promise.all([
      a1.waitForEvent(connectedTo('a2'), CONNECT_MS, 'a1 connected to a2'),
      b1.waitForEvent(connectedTo('a1'), CONNECT_MS, 'b1 found a1 on its LAN'),
      b2.waitForEvent(connectedTo('a2'), CONNECT_MS, 'b2 found a2 on its LAN'),
    ])
    // b1 learns of b2 by peer exchange (a2 tells a1, a1 tells b1) and dials it at its dht: address.
    // "connect to all" asks the connected peers for theirs: every 2 s, 20 times at most.
    const reached = b1.waitForEvent(connectedTo('b2'), CONNECT_MS, 'b1 reached b2')
    let tries = 0
    const timer = setInterval(() => {
      if (++tries > 20) return
      for (const p of [a1, a2, b1]) p.write('connect-all')
    }, 2_000)
    try {
      await reached
    } finally {
      clearInterval(timer)
    }
    await talk([b1, 'b1'], [b2, 'b2'], 'across')
    expect(await pathTo(b1, 'b2')).not.toBe('relay')
  })

  it('--lan peers on one LAN find each other with no address and no DHT', async (ctx) => {
    ctx.skip(skipReason !== undefined, skipReason)
    const setup = await startLab('cone', 'cone')
    const one = await cli(setup, 'h1a', 'one', ['--lan'])
    const two = await cli(setup, 'h1b', 'two', ['--lan'])
    await Promise.all([
      one.waitForEvent(connectedTo('two'), 30_000, 'one found two'),
      two.waitForEvent(connectedTo('one'), 30_000, 'two found one'),
    ])
    await talk([one, 'one'], [two, 'two'], 'lan')
  })
})
