import { once } from 'node:events'
import {
  type Connection,
  generateIdentity,
  type Identity,
  noiseUpgrader,
  type SecureConnection,
  type Transport,
  tcpTransport,
} from '@parley/core'
import { FrameDecoder, type Message } from '@parley/protocol'
import { sourceTransport } from './source-transport.js'
import { CONTROL_CHANNEL, decodeBody, frameFor, helloFor, type WireVersion } from './wire.js'

/** Options of {@link attackSession} and {@link secureDial}. */
export interface AttackSessionInit {
  /** The victim's `host:port`. */
  address: string
  /** @default 3 */
  wire?: WireVersion
  /** Source address to dial from (see attackerHost), through sourceTransport. @default 127.0.0.1 */
  sourceHost?: string
  /** Overrides `sourceHost`. @default core's tcpTransport */
  transport?: Transport
  /** @default a fresh identity: attackers are free to make as many as they like */
  identity?: Identity
  name?: string
  /** Announced in HELLO. @default none */
  listenAddrs?: string[]
  /** Answer the victim's PINGs with PONGs, so the session looks alive. @default true */
  answerPings?: boolean
  /** Time allowed for the TCP dial, the Noise handshake and the HELLO/WELCOME exchange. @default 10_000 ms */
  timeout?: number
}

/** An authenticated session with the victim, driven by hand. */
export interface AttackSession {
  readonly conn: SecureConnection
  readonly identity: Identity
  readonly wire: WireVersion
  /** Messages received, by type (counted while reading; a paused session counts nothing). */
  readonly counts: Map<string, number>
  /** Resolves when the connection closes, whoever closed it. */
  readonly closed: Promise<void>
  isClosed(): boolean
  /** Frames and sends one message (on its wire-3 channel unless `channel` is given). False: wait for drain. */
  send(msg: Message, channel?: number): boolean
  /** Sends plaintext bytes inside the secure channel, as one record (up to 65519 bytes). */
  sendRaw(bytes: Uint8Array): boolean
  /**
   * Sends `bytes` as records of `recordSize` plaintext bytes each (1: a record per byte). The records
   * sealed in one tick leave in one socket write, so a million one-byte records cost the attacker
   * little more than the encryption.
   */
  sendRecords(bytes: Uint8Array, recordSize?: number): boolean
  /** Resolves when the write buffer has drained, or the connection closed. */
  drained(): Promise<void>
  /** Stop reading: the victim's answers pile up on its side. */
  pause(): void
  resume(): void
  /** Ends now (TCP reset). Idempotent. */
  abort(): void
}

/**
 * Dials `address` and completes the Noise handshake, nothing more: the victim now waits for a HELLO.
 * @throws whatever the dial or the handshake throws
 */
export async function secureDial(init: AttackSessionInit): Promise<SecureConnection> {
  const identity = init.identity ?? generateIdentity()
  const transport =
    init.transport ?? (init.sourceHost !== undefined ? sourceTransport(init.sourceHost) : tcpTransport())
  const signal = AbortSignal.timeout(init.timeout ?? 10_000)
  const raw = coalesce(await transport.dial(init.address, { signal }))
  const upgrader = noiseUpgrader({
    identity,
  })
  return upgrader.upgrade(raw, { role: 'initiator', signal })
}

/**
 * Dials the victim, completes the Noise handshake, sends HELLO and waits for WELCOME.
 * @throws Error when the victim answers with anything but WELCOME, closes, or takes longer than `timeout`
 */
export async function attackSession(init: AttackSessionInit): Promise<AttackSession> {
  const wire = init.wire ?? 3
  const identity = init.identity ?? generateIdentity()
  const conn = await secureDial({ ...init, identity })
  const counts = new Map<string, number>()
  const decoder = new FrameDecoder({ maxFrameSize: 16 * 1024 * 1024 })
  const answerPings = init.answerPings ?? true
  let closed = false
  let onFirst: ((msg: Message | Error) => void) | undefined
  const closedPromise = once(conn, 'close').then(
    () => {
      closed = true
      onFirst?.(new Error('the victim closed the connection during HELLO'))
    },
    () => {},
  )
  conn.on('data', (chunk) => {
    for (const body of decoder.push(chunk)) {
      const got = decodeBody(wire, body)
      const type = got?.msg.type ?? 'UNDECODABLE'
      counts.set(type, (counts.get(type) ?? 0) + 1)
      if (got === undefined) continue
      if (onFirst) onFirst(got.msg)
      else if (got.msg.type === 'PING' && answerPings && conn.status === 'open') {
        conn.send(frameFor(wire, { type: 'PONG', nonce: got.msg.nonce }, got.channel))
      }
    }
    // A decoder error means the victim speaks something else; counted, the session keeps going.
    if (decoder.error) counts.set('UNDECODABLE', (counts.get('UNDECODABLE') ?? 0) + 1)
  })
  conn.on('end', () => void conn.close().catch(() => {}))

  const timeout = init.timeout ?? 10_000
  const first = await new Promise<Message | Error>((resolve) => {
    const timer = setTimeout(() => resolve(new Error(`no WELCOME within ${timeout} ms`)), timeout)
    onFirst = (msg) => {
      clearTimeout(timer)
      onFirst = undefined
      resolve(msg)
    }
    conn.send(
      frameFor(
        wire,
        helloFor(wire, identity.peerId, {
          name: init.name ?? 'attacker',
          listenAddrs: init.listenAddrs ?? [],
        }),
        CONTROL_CHANNEL,
      ),
    )
  })
  if (first instanceof Error || first.type !== 'WELCOME') {
    conn.abort()
    const why =
      first instanceof Error
        ? first.message
        : first.type === 'REJECT'
          ? `REJECT ${first.code}: ${first.reason}`
          : first.type
    throw new Error(`the victim did not welcome the attacker: ${why}`)
  }

  const session: AttackSession = {
    conn,
    identity,
    wire,
    counts,
    closed: closedPromise,
    isClosed: () => closed,
    send: (msg, channel) => session.sendRaw(frameFor(wire, msg, channel)),
    sendRaw: (bytes) => (conn.status === 'open' ? conn.send(bytes) : false),
    sendRecords(bytes, recordSize = 1) {
      let flowing = true
      for (let i = 0; i < bytes.length && conn.status === 'open'; i += recordSize) {
        flowing = conn.send(bytes.subarray(i, i + recordSize))
      }
      return flowing && conn.status === 'open'
    },
    drained: () =>
      new Promise<void>((resolve) => {
        if (closed || conn.status !== 'open') return resolve()
        const done = () => {
          conn.off('drain', done)
          conn.off('close', done)
          resolve()
        }
        conn.on('drain', done)
        conn.on('close', done)
      }),
    pause: () => conn.pause(),
    resume: () => conn.resume(),
    abort: () => conn.abort(),
  }
  return session
}

/**
 * Opens `count` sessions, at most `concurrency` handshakes at a time. A session the victim refuses
 * is left out (the result may be shorter than `count`); `onSession` sees each one as it opens.
 * @throws Error with the first refusal when `requireAll` is set and any session was refused
 */
export async function attackSessions(
  count: number,
  init: (i: number) => AttackSessionInit,
  options: { concurrency?: number; onSession?: (s: AttackSession) => void; requireAll?: boolean } = {},
): Promise<{ sessions: AttackSession[]; refused: Error[] }> {
  const sessions: AttackSession[] = []
  const refused: Error[] = []
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      try {
        const s = await attackSession(init(i))
        sessions.push(s)
        options.onSession?.(s)
      } catch (err) {
        refused.push(err as Error)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(count, options.concurrency ?? 16) }, worker))
  if (options.requireAll && refused.length > 0) {
    for (const s of sessions) s.abort()
    throw new Error(
      `the victim refused ${refused.length} of ${count} attacker sessions; first: ${refused[0]!.message}`,
    )
  }
  return { sessions, refused }
}

/**
 * Makes `conn.send` gather what is sent in one tick into a single write. The secure channel writes
 * every record separately; an attacker sending a record per byte would otherwise make a syscall per
 * byte. Returns the same connection.
 */
function coalesce(conn: Connection): Connection {
  const send = conn.send.bind(conn)
  let pending: Uint8Array[] = []
  let flowing = true
  const flush = () => {
    const chunks = pending
    pending = []
    if (conn.status !== 'open') return
    flowing = send(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
  }
  conn.send = (bytes: Uint8Array): boolean => {
    if (pending.length === 0) queueMicrotask(flush)
    pending.push(bytes)
    return flowing
  }
  return conn
}
