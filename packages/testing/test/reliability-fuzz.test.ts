import { frameStandard, memoryTransport, type Peer, PeerError } from '@parley/core'
import { displayNameProblem, type Message, PROTOCOL_VERSION, ProtocolError } from '@parley/protocol'
import fc from 'fast-check'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createTestNetwork, waitFor } from '../src/index.js'
import { type SecureClient, secureClient } from './fixtures/secure-client.js'

// Property-based fuzzing of a LIVE peer over the default, encrypted path: a client completes the real
// Noise handshake, then writes random, mutated, truncated, oversized and out-of-order frames and
// floods inside the channel. The protocol decoder alone is fuzzed in packages/protocol; this is about
// the peer around it: it never crashes, keeps serving an honest peer, and closes only the offending
// connection.

const MAX_FRAME = 4_096
const BURST = 200

const hex = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'))
const text = (max: number) => fc.string({ maxLength: max })
/** A display name the wire accepts (no white space at its ends, no controls). */
const name = text(20).filter((s) => displayNameProblem(s) === undefined)
const seq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
const u32 = fc.nat({ max: 0xffff_ffff })
const announcement = fc.record({
  version: fc.constant(PROTOCOL_VERSION),
  peerId: hex(32),
  name,
  listenAddrs: fc.array(text(30), { maxLength: 3 }),
  capabilities: fc.array(text(10), { maxLength: 2 }),
})
/** Any valid message except HELLO (HELLOs have their own operations). */
const message = fc.oneof(
  fc.record({ type: fc.constant('TEXT' as const), stream: hex(8), seq, sentAt: fc.nat(), text: text(100) }),
  fc.record({ type: fc.constant('ACK' as const), stream: hex(8), seq, status: fc.nat({ max: 255 }) }),
  fc.record({ type: fc.constant('ACK_UPTO' as const), stream: hex(8), seq }),
  fc.constant({ type: 'PEERS_REQUEST' as const }),
  fc.record({
    type: fc.constant('PEERS' as const),
    peers: fc.array(
      fc.record({
        peerId: hex(32),
        name,
        addrs: fc.array(text(30), { maxLength: 3 }),
        lastSeen: fc.nat(),
      }),
      { maxLength: 4 },
    ),
  }),
  fc.record({ type: fc.constant('PING' as const), nonce: u32 }),
  fc.record({ type: fc.constant('PONG' as const), nonce: u32 }),
  fc.record({ type: fc.constant('GOODBYE' as const), reason: text(40) }),
  announcement.map((a) => ({ type: 'WELCOME' as const, ...a })),
  fc.record({ type: fc.constant('REJECT' as const), code: fc.nat({ max: 0xffff }), reason: text(40) }),
) as fc.Arbitrary<Message>

type Op =
  /** HELLO with the client's own (authenticated) id; a compliant client then waits for the answer. */
  | { kind: 'hello' }
  /** HELLO claiming the honest peer's id. */
  | { kind: 'impostor' }
  /** HELLO of a future protocol version. */
  | { kind: 'future' }
  | { kind: 'frame'; msg: Message }
  | { kind: 'flood'; count: number }
  | { kind: 'random'; bytes: Uint8Array }
  | { kind: 'mutated'; msg: Message; at: number; xor: number }
  | { kind: 'truncated'; msg: Message; keep: number }
  | { kind: 'oversized'; length: number }
  | { kind: 'empty' }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'hello' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'impostor' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'future' as const }) },
  { weight: 6, arbitrary: message.map((msg) => ({ kind: 'frame' as const, msg })) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 400 }).map((count) => ({ kind: 'flood' as const, count })),
  },
  {
    weight: 2,
    arbitrary: fc
      .uint8Array({ minLength: 1, maxLength: 64 })
      .map((bytes) => ({ kind: 'random' as const, bytes })),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('mutated' as const),
      msg: message,
      at: fc.nat(),
      xor: fc.integer({ min: 1, max: 255 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('truncated' as const), msg: message, keep: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: MAX_FRAME + 1, max: 0xffff_ffff })
      .map((length) => ({ kind: 'oversized' as const, length })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'empty' as const }) },
)

/** A script: operations, each written as one or more encrypted records (`splits` cuts them up). */
const script = fc.record({
  ops: fc.array(op, { minLength: 1, maxLength: 12 }),
  splits: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 12, maxLength: 12 }),
})

function prefix(length: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(length >>> 0)
  return b
}

function flood(count: number): Buffer {
  const frames: Uint8Array[] = []
  for (let i = 0; i < count; i++) {
    frames.push(
      i % 2
        ? frameStandard({ type: 'PING', nonce: i })
        : frameStandard({ type: 'TEXT', stream: 'ff'.repeat(8), seq: i + 1, sentAt: i, text: `flood ${i}` }),
    )
  }
  return Buffer.concat(frames)
}

/**
 * What a correct peer must do with the script, as far as it can be known without re-implementing it:
 * 'closed' (it must drop us), 'open' (it must keep us, and answer), or 'unknown' (random bytes made the
 * rest of the stream unpredictable, or the message count is near the rate limit).
 */
type Verdict = 'closed' | 'open' | 'handshaking' | 'unknown'

describe('fuzzing a live peer over the encrypted channel', () => {
  it('random, mutated, truncated, oversized and out-of-order frames and floods: the peer survives, serves the honest peer, and drops only the offender', async () => {
    const net = await createTestNetwork({
      size: 2,
      names: ['victim', 'honest'],
      peer: { maxFrameSize: MAX_FRAME, rateLimit: { perSecond: 1_000, burst: BURST } },
    })
    onTestFinished(() => net.stop())
    const [victim, honest] = net.peers as [Peer, Peer]
    await net.connect(honest, victim)
    let honestDrops = 0
    honest.on('peer:disconnect', () => honestDrops++)
    victim.on('peer:disconnect', (e) => e.peer.id === honest.id && honestDrops++)
    // Everything the victim reports must be a typed error caused by the bytes, never an internal bug.
    const reported: PeerError[] = []
    victim.on('error', (e) => reported.push(e))
    const crashes: unknown[] = []
    const onCrash = (err: unknown) => crashes.push(err)
    process.on('uncaughtException', onCrash)
    process.on('unhandledRejection', onCrash)
    onTestFinished(() => {
      process.off('uncaughtException', onCrash)
      process.off('unhandledRejection', onCrash)
    })
    let run = 0

    const property = fc.asyncProperty(script, async ({ ops, splits }) => {
      const client = await secureClient(
        memoryTransport(net.network, { host: `attacker-${run++}` }),
        victim.addresses[0]!,
      )
      try {
        const verdict = await play(client, ops, splits)
        // The honest peer is served both ways, whatever just happened.
        await expect(honest.send(victim.id, 'still there?')).resolves.toMatchObject({ peerId: victim.id })
        await expect(victim.send(honest.id, 'yes')).resolves.toMatchObject({ peerId: honest.id })
        if (verdict === 'closed') {
          await Promise.race([
            client.closed,
            rejectAfter(3_000, 'the victim kept an offending connection open'),
          ])
        } else if (verdict === 'open') {
          // Not an offender: it is still served too.
          const nonce = 0xfeed_beef
          client.send({ type: 'PING', nonce })
          let pong = await client.next('PONG')
          // Skip the answers to the script's own PINGs (bounded: at most one per PING sent).
          for (let i = 0; i < 1_000 && (pong as { nonce: number }).nonce !== nonce; i++)
            pong = await client.next('PONG')
          expect(pong).toEqual({ type: 'PONG', nonce })
        }
        expect(honestDrops).toBe(0)
        expect(victim.status).toBe('running')
        expect(crashes).toEqual([])
        for (const e of reported) {
          expect(e).toBeInstanceOf(PeerError)
          // The cause is the peer's reading of the bytes, never a TypeError from its own code.
          if (e.cause !== undefined) expect(e.cause).not.toBeInstanceOf(TypeError)
        }
      } finally {
        client.conn.abort()
      }
    })

    const ex = (ops: Op[]) => [{ ops, splits: Array(12).fill(1) }] as [{ ops: Op[]; splits: number[] }]
    const textMsg = (t: string): Message => ({
      type: 'TEXT',
      stream: 'ab'.repeat(8),
      seq: 1,
      sentAt: 1,
      text: t,
    })
    await fc.assert(property, {
      numRuns: Number(process.env.PARLEY_FUZZ_RUNS ?? 80),
      examples: [
        ex([{ kind: 'frame', msg: textMsg('before HELLO') }]),
        ex([{ kind: 'hello' }, { kind: 'hello' }]),
        ex([
          { kind: 'hello' },
          { kind: 'frame', msg: { type: 'ACK', stream: 'cd'.repeat(8), seq: 1, status: 0 } },
        ]),
        ex([{ kind: 'hello' }, { kind: 'frame', msg: { type: 'PEERS', peers: [] } }]),
        ex([{ kind: 'hello' }, { kind: 'flood', count: 400 }]),
        ex([{ kind: 'hello' }, { kind: 'oversized', length: 0xffff_ffff }]),
        ex([{ kind: 'hello' }, { kind: 'truncated', msg: textMsg('cut short'), keep: 7 }]),
        ex([
          { kind: 'frame', msg: textMsg('early') },
          { kind: 'frame', msg: textMsg('and more') },
        ]),
        ex([{ kind: 'impostor' }]),
        ex([{ kind: 'future' }, { kind: 'hello' }]),
      ],
    })

    // No connection of the attackers outlives them on the victim's side: only the honest one is left.
    await expect.poll(() => net.network.connections, { timeout: 5_000 }).toBe(1)
    expect(victim.peers().connected.map((p) => p.id)).toEqual([honest.id])
    expect(reported.some((e) => e.cause instanceof ProtocolError)).toBe(true)

    /** Writes the script, waiting for the answer to an accepted HELLO like a compliant client. */
    async function play(client: SecureClient, ops: Op[], splits: number[]): Promise<Verdict> {
      let state = 'handshaking' as Verdict
      let spent = 0
      const become = (v: Verdict) => {
        if (state === 'handshaking' || state === 'open') state = v
      }
      for (const [i, o] of ops.entries()) {
        const predictable = state === 'handshaking' || state === 'open'
        let bytes: Uint8Array
        switch (o.kind) {
          case 'hello':
          case 'impostor':
          case 'future': {
            const hello = { ...client.hello(), ...(o.kind === 'impostor' ? { peerId: honest.id } : {}) }
            bytes = frameStandard(o.kind === 'future' ? { ...hello, version: PROTOCOL_VERSION + 1 } : hello)
            if (state === 'handshaking') become(o.kind === 'hello' ? 'open' : 'closed')
            else become('closed')
            break
          }
          case 'frame':
            bytes = frameStandard(o.msg)
            if (state === 'handshaking') become('closed')
            else if (['WELCOME', 'REJECT', 'GOODBYE'].includes(o.msg.type)) become('closed')
            else if (!['ACK', 'ACK_UPTO', 'PONG'].includes(o.msg.type)) spent++
            break
          case 'flood':
            bytes = flood(o.count)
            if (state === 'handshaking') become('closed')
            spent += o.count
            break
          case 'random':
            bytes = o.bytes
            become('unknown')
            break
          case 'mutated': {
            const frame = Buffer.from(frameStandard(o.msg))
            frame[o.at % frame.length]! ^= o.xor
            bytes = frame
            become('unknown')
            break
          }
          case 'truncated': {
            const frame = frameStandard(o.msg)
            bytes = frame.subarray(0, o.keep % frame.length)
            become('unknown')
            break
          }
          case 'oversized':
            bytes = prefix(o.length)
            become('closed')
            break
          case 'empty':
            bytes = prefix(0)
            become('closed')
            break
        }
        write(client, bytes, splits[i] ?? 1)
        if (predictable && state === 'open' && o.kind === 'hello') {
          // A compliant client waits for WELCOME before it talks (PROTOCOL.md, connection sequence).
          expect(await client.next('WELCOME')).toMatchObject({ peerId: victim.id })
        }
      }
      if (state === 'open') {
        // The bucket refills during the run, so only a clear excess is sure to be cut off.
        if (spent > BURST + 100) state = 'closed'
        else if (spent > BURST - 10) state = 'unknown'
      }
      return state
    }
  })

  it('a flood right after HELLO, before WELCOME, is held (up to a bound) or cut off, never a crash', async () => {
    const net = await createTestNetwork({ size: 1, names: ['victim'] })
    onTestFinished(() => net.stop())
    const victim = net.peers[0]!
    const client = await secureClient(memoryTransport(net.network, { host: 'eager' }), victim.addresses[0]!)
    onTestFinished(() => client.conn.abort())
    const got: string[] = []
    victim.on('message', (m) => got.push(m.text))
    // A few frames pipelined behind HELLO are tolerated (a dialer races its first TEXT after WELCOME)...
    const texts = Array.from({ length: 10 }, (_, i) =>
      frameStandard({ type: 'TEXT', stream: '00'.repeat(8), seq: i + 1, sentAt: i, text: `early ${i}` }),
    )
    client.sendRaw(Buffer.concat([frameStandard(client.hello()), ...texts]))
    expect(await client.next('WELCOME')).toMatchObject({ peerId: victim.id })
    expect(await client.next('ACK_UPTO')).toMatchObject({ seq: 10 })
    expect(got).toHaveLength(10)
    // ...but an unbounded pile is not: a second client pipelining 1,000 frames is cut off.
    const greedy = await secureClient(memoryTransport(net.network, { host: 'greedy' }), victim.addresses[0]!)
    onTestFinished(() => greedy.conn.abort())
    const cut = waitFor(victim, 'error', (e) => e.code === 'REJECTED')
    greedy.sendRaw(Buffer.concat([frameStandard(greedy.hello()), flood(1_000)]))
    await cut
    await greedy.closed
    client.send({ type: 'PING', nonce: 1 })
    expect(await client.next('PONG')).toMatchObject({ nonce: 1 })
  })
})

function rejectAfter(ms: number, why: string): Promise<never> {
  return new Promise((_, reject) =>
    AbortSignal.timeout(ms).addEventListener('abort', () => reject(new Error(why))),
  )
}

function write(client: SecureClient, bytes: Uint8Array, pieces: number): void {
  if (bytes.length === 0) return
  const size = Math.max(1, Math.ceil(bytes.length / pieces))
  for (let at = 0; at < bytes.length; at += size) client.sendRaw(bytes.subarray(at, at + size))
}
