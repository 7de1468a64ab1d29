import { Limits } from '@parley/protocol'
import { sanitize } from './view/format.js'

/** What the caller knows that the error may not say: the address or peer it was talking to. */
export interface ErrorContext {
  /** The address being dialed or listened on. */
  address?: string
  /** How the user named the peer (name, fingerprint, id or address). */
  target?: string
  /** The --port value, for the "port in use" advice. */
  port?: number
  /** The address whose key change `/trust <address>` would accept. */
  keyAddress?: string
}

/** An error the CLI explains in one sentence; `code` is the stable code it was mapped from. */
export interface Explained {
  code: string
  sentence: string
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function causeOf(err: unknown): unknown {
  return (err as { cause?: unknown } | null)?.cause
}

/**
 * Maps an error to one sentence a user can act on. Matches on `code` (PeerError, TransportError,
 * Node's errno codes), never on message text; the message is only the last resort.
 */
export function explain(err: unknown, ctx: ErrorContext = {}): Explained {
  const { code, sentence } = explainRaw(err, ctx)
  // Sentences may quote what a peer chose (its name in a KEY_CHANGED, a reason): never the controls.
  return { code, sentence: sanitize(sentence) }
}

function explainRaw(err: unknown, ctx: ErrorContext): Explained {
  const code = codeOf(err) ?? 'UNEXPECTED'
  // Transport codes are coarse (every listen failure but EADDRINUSE is INVALID_ADDRESS; a DNS
  // failure dials as CONNECTION_REFUSED): the OS errno underneath says more, when there is one.
  if (code === 'DIAL_FAILED' || code === 'INVALID_ADDRESS' || code === 'CONNECTION_REFUSED') {
    const errno = innermostErrno(err)
    if (errno !== undefined && errno !== 'ECONNREFUSED')
      return { code, sentence: explain({ code: errno }, ctx).sentence }
  }
  const at = ctx.address ?? ctx.target ?? 'the peer'
  const peer = ctx.target ?? ctx.address ?? 'the peer'
  const say = (sentence: string): Explained => ({ code, sentence })
  switch (code) {
    // ---- listening ----
    case 'ADDRESS_IN_USE':
    case 'EADDRINUSE':
      return say(
        ctx.port !== undefined && ctx.port !== 0
          ? `port ${ctx.port} is in use — pick another with --port (0 picks any free port)`
          : `${at} is in use — pick another port with --port`,
      )
    case 'EADDRNOTAVAIL':
      return say(`${at} is not an address of this machine — check --host`)
    case 'EACCES':
    case 'EPERM':
      return ctx.port !== undefined
        ? say(`not allowed to listen on ${at} — ports below 1024 need privileges; pick another with --port`)
        : say(`permission denied${pathOf(err)}`)
    // ---- dialing ----
    case 'DIAL_FAILED': {
      const inner = codeOf(causeOf(err))
      if (inner === undefined || inner === 'DIAL_FAILED') return say(`could not reach ${at}`)
      return { code, sentence: explain(causeOf(err), ctx).sentence }
    }

    case 'CONNECTION_REFUSED':
    case 'ECONNREFUSED':
      return say(`${at} refused the connection — is a peer listening there?`)
    case 'DIAL_TIMEOUT':
    case 'ETIMEDOUT':
      return say(`${at} did not answer in time — check the address and any firewall`)
    case 'INVALID_ADDRESS':
      if (ctx.port !== undefined) return say(`cannot listen on ${at} — check --host and --port`)
      return say(`"${at}" is not a valid address — use host:port, e.g. 127.0.0.1:4000 or [::1]:4000`)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return say(
        `cannot find the host of ${at} — check the spelling${ctx.port !== undefined ? ' of --host' : ''}`,
      )
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return say(`${at} cannot be reached from this network`)
    case 'CONNECTION_RESET':
    case 'ECONNRESET':
    case 'CONNECTION_CLOSED':
      return say(`the connection to ${at} broke`)
    case 'REJECTED':
      return say(`${at} refused the connection`)
    case 'SELF_CONNECT':
      return say(`${at} is this peer itself`)
    case 'INCOMPATIBLE_VERSION':
      return say(`${at} speaks an incompatible Parley protocol version`)
    case 'WRONG_PEER':
      // Core's sentence names both fingerprints.
      return say(`${firstLine(err)}; nothing was sent to it`)
    case 'IDENTITY_MISMATCH':
      return say(`the peer at ${at} could not prove its identity`)
    case 'KEY_CHANGED': {
      // Core's sentence names both fingerprints; it is shown as is, with how to accept the change.
      const accept = ctx.keyAddress ?? ctx.address
      const how =
        accept === undefined
          ? 'if the peer really has a new key, /trust (or the trust command) lists the change to accept'
          : `if the peer really has a new key, accept it with /trust ${accept} (trust ${accept} without the chat view)`
      return say(`${firstLine(err)} — ${how}`)
    }
    case 'LIMIT_EXCEEDED':
      return say(`${at} went over a limit of this peer (${firstLine(err)}) and was cut off`)
    case 'NOT_SUPPORTED':
      return say(`${peer} does not support that (${firstLine(err)})`)
    case 'DENIED':
      return say(`${at} does not accept a connection from this peer now`)
    case 'TOO_MANY_CONNECTIONS':
      return say(`too many connections open — ${at} was not connected`)
    case 'HANDSHAKE_TIMEOUT':
      return say(`${at} did not complete the handshake in time — is it a Parley peer?`)
    case 'HANDSHAKE_FAILED':
      return say(`the handshake with ${at} failed — is it a Parley peer on the same network secret?`)
    // ---- messages ----
    case 'NOT_CONNECTED':
    case 'UNKNOWN_PEER':
      return say(`no connected peer matches "${peer}" — use a name, fingerprint, peer id or host:port`)
    case 'PEER_GONE':
      return say(`${peer} disconnected before acknowledging the message`)
    case 'ACK_TIMEOUT':
      return say(`${peer} did not acknowledge the message in time`)
    case 'REFUSED':
      return say(`${peer} refused the message`)
    case 'MESSAGE_TOO_LONG':
      return say(`the message is too long — the limit is ${Limits.textBytes} bytes`)
    case 'INVALID_NAME':
      return say(`that name cannot be used: ${firstLine(err)}`)
    case 'INVALID_TEXT':
      return say('the message holds a broken character (a lone UTF-16 surrogate) and cannot be sent')
    case 'QUEUE_FULL':
      return say(`too many messages are waiting for ${peer} — try again when it catches up`)
    case 'QUERY_TIMEOUT':
      return say(`${peer} did not answer the peer query in time`)
    case 'NOT_RUNNING':
    case 'STOPPED':
      return say('this peer is shutting down')
    case 'ABORTED':
      return say('cancelled')
    // ---- identity ----
    case 'KEY_FILE_INSECURE':
      return say(`the identity key in ${at} is readable by other users — run: chmod 600 ${at}/identity.pem`)
    case 'KNOWN_PEERS_INVALID':
      return say(
        `${ctx.address !== undefined ? `${ctx.address}/known-peers.json` : 'the known-peers file'} is damaged (your identity key is fine) — move that file away to start it afresh; each peer is then trusted again on first contact`,
      )
    case 'KNOWN_PEERS_WRITE_FAILED': {
      const cause = causeOf(err)
      const why = cause === undefined ? firstLine(err) : explain(cause).sentence
      return say(
        `could not save a peer's key to the known-peers file (${why}) — the key is trusted for this run only; check the data dir's free space and permissions`,
      )
    }
    case 'IDENTITY_INVALID':
      return say(`${at}/identity.pem is not a valid Parley identity key — move it away to create a new one`)
    case 'ENOTDIR':
    case 'EEXIST':
      return say(`${at} is not a directory`)
    default: {
      const message = err instanceof Error ? err.message : String(err)
      return say(message.split('\n')[0] || 'something went wrong')
    }
  }
}

/** The deepest `E...` errno code in the cause chain (bounded: causes can be cyclic in theory). */
function innermostErrno(err: unknown): string | undefined {
  let found: string | undefined
  let e: unknown = err
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    const c = codeOf(e)
    if (c !== undefined && /^E[A-Z]+$/.test(c)) found = c
    const errors = (e as { errors?: unknown }).errors
    e = causeOf(e) ?? (Array.isArray(errors) ? errors[0] : undefined)
  }
  return found
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n')[0] ?? ''
}

function pathOf(err: unknown): string {
  const path = (err as { path?: unknown } | null)?.path
  return typeof path === 'string' ? ` on ${path}` : ''
}
