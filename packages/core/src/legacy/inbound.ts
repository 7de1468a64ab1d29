/**
 * Inbound legacy connections: each carries one message, taken when the sender closes (or goes quiet),
 * bounded in size, in time and in how many are handled at once.
 */
import type { Connection } from '../transport.js'
import type { LegacyDropCode } from './errors.js'
import { LEGACY_MAX_MESSAGE_BYTES } from './format.js'

/** The bridge's bounds for inbound connections, and where their outcomes go. */
export interface LegacyInboundInit {
  maxConnections: number
  readTimeout: number
  quietTime: number
  lingerTime: number
  /** The bytes of one whole message, not yet parsed. */
  onMessage: (bytes: Uint8Array, remoteAddress: string) => void
  onDrop: (code: LegacyDropCode, reason: string, remoteAddress: string, bytes: number) => void
}

export class LegacyInbound {
  readonly #init: LegacyInboundInit
  readonly #open = new Set<Connection>()

  constructor(init: LegacyInboundInit) {
    this.#init = init
  }

  /** Resets every connection in progress. */
  abortAll(reason: Error): void {
    for (const conn of this.#open) conn.abort(reason)
    this.#open.clear()
  }

  accept(conn: Connection, first: Uint8Array): void {
    if (this.#open.size >= this.#init.maxConnections) {
      conn.abort()
      this.#init.onDrop(
        'TOO_MANY_CONNECTIONS',
        `already ${this.#open.size} legacy connections at once (the limit)`,
        conn.remoteAddress,
        first.length,
      )
      return
    }
    this.#open.add(conn)
    const chunks: Uint8Array[] = []
    let size = 0
    let finished = false
    let quiet: ReturnType<typeof setTimeout> | undefined
    const deadline = setTimeout(() => {
      stop()
      conn.abort()
      this.#init.onDrop(
        'TIMEOUT',
        `the legacy sender kept the connection open past ${this.#init.readTimeout} ms`,
        conn.remoteAddress,
        size,
      )
    }, this.#init.readTimeout)
    deadline.unref?.()

    const stop = () => {
      finished = true
      clearTimeout(deadline)
      clearTimeout(quiet)
      conn.off('data', onData)
      conn.off('end', onEnd)
    }
    const complete = () => {
      if (finished) return
      stop()
      this.#linger(conn)
      this.#init.onMessage(concat(chunks, size), conn.remoteAddress)
    }
    const onData = (chunk: Uint8Array) => {
      if (finished) return
      size += chunk.length
      // Bounded before buffering more: one byte over the limit is enough to know.
      if (size > LEGACY_MAX_MESSAGE_BYTES) {
        stop()
        conn.abort()
        this.#init.onDrop(
          'TOO_LONG',
          `more than ${LEGACY_MAX_MESSAGE_BYTES} bytes: a legacy message is one recv of at most ${LEGACY_MAX_MESSAGE_BYTES}`,
          conn.remoteAddress,
          size,
        )
        return
      }
      chunks.push(chunk)
      clearTimeout(quiet)
      quiet = setTimeout(complete, this.#init.quietTime)
      quiet.unref?.()
    }
    const onEnd = () => complete()
    conn.on('data', onData)
    conn.on('end', onEnd)
    conn.once('close', () => {
      this.#open.delete(conn)
      // Reset right after writing: what arrived is still the message (the original's recv got it too).
      if (!finished) complete()
    })
    onData(first)
  }

  /** Ends our side; a sender that never closes its own is reset after `lingerTime`. */
  #linger(conn: Connection): void {
    if (conn.status === 'closed') return
    const limit = setTimeout(() => conn.abort(), this.#init.lingerTime)
    limit.unref?.()
    conn.close().then(
      () => clearTimeout(limit),
      () => clearTimeout(limit),
    )
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}
