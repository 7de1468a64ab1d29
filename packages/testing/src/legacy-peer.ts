import { EventEmitter } from 'node:events'
import { createConnection, createServer, type Socket } from 'node:net'

/** One string a {@link FakeLegacyPeer} received, as its single `recv` saw it. */
export interface LegacyReceived {
  /** The decoded string, or undefined when the bytes were not UTF-8. */
  readonly raw: string | undefined
  /** The three parts, when the string had them. */
  readonly address?: string
  readonly name?: string
  readonly text?: string
  /** `connect`, `exit`, `chat`, or `error` when the original would have failed on it. */
  readonly kind: 'connect' | 'exit' | 'chat' | 'error'
}

export interface FakeLegacyPeerInit {
  name: string
  /** @default '127.0.0.1' */
  host?: string
}

/**
 * A stand-in for the original course peer, written from the description alone (it shares
 * no code with the bridge, so the two check each other): its own TCP listener; one connection per
 * message; each connection read with a single `recv` of at most 1024 bytes and then closed;
 * `"<ip>:<port> <name> <message>"` split on the first two spaces; `connect`/`exit` compared
 * case-insensitively to the whole message; a peer list keyed by address.
 */
export interface FakeLegacyPeer {
  /** Where it listens (`127.0.0.1:<port>`). */
  readonly address: string
  readonly name: string
  /** The original's peer list: address → name. */
  readonly peers: Map<string, string>
  /** Everything received, in order. */
  readonly received: LegacyReceived[]
  /** Chat messages only. */
  messages(): Array<{ address: string; name: string; text: string }>
  /** Resolves with the first received string (already there or arriving) that matches. */
  next(predicate: (r: LegacyReceived) => boolean, options?: { timeout?: number }): Promise<LegacyReceived>
  /** Sends one message the original's way: connect, write the string, close. */
  send(address: string, text: string): Promise<void>
  /** Writes raw bytes on a fresh connection, then closes (for malformed input). */
  sendRaw(address: string, bytes: Uint8Array | string, options?: { keepOpen?: boolean }): Promise<Socket>
  /** "Connect to active peers": `connect` to every listed peer. */
  connectAll(): Promise<void>
  /** Quit as the original does: `exit` to every listed peer, then stop listening. */
  quit(): Promise<void>
  /** Stops listening (no `exit`). */
  close(): Promise<void>
}

/** Starts a {@link FakeLegacyPeer} on `host:0`. */
export async function startFakeLegacyPeer(init: FakeLegacyPeerInit): Promise<FakeLegacyPeer> {
  const host = init.host ?? '127.0.0.1'
  const peers = new Map<string, string>()
  const received: LegacyReceived[] = []
  const events = new EventEmitter<{ received: [LegacyReceived] }>()
  const sockets = new Set<Socket>()
  const record = (r: LegacyReceived) => {
    received.push(r)
    events.emit('received', r)
  }

  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let got = false
    // data = conn.recv(1024): one read, whatever it holds, then close.
    socket.once('data', (chunk: Buffer) => {
      got = true
      const data = chunk.subarray(0, 1024)
      socket.destroy()
      let raw: string
      try {
        raw = new TextDecoder('utf-8', { fatal: true }).decode(data)
      } catch {
        return record({ raw: undefined, kind: 'error' })
      }
      // addr, name, msg = data.split(' ', 2)
      const first = raw.indexOf(' ')
      const second = first < 0 ? -1 : raw.indexOf(' ', first + 1)
      if (second < 0) return record({ raw, kind: 'error' })
      const address = raw.slice(0, first)
      const name = raw.slice(first + 1, second)
      const text = raw.slice(second + 1)
      if (text.toLowerCase() === 'connect') {
        peers.set(address, name)
        record({ raw, address, name, text, kind: 'connect' })
      } else if (text.toLowerCase() === 'exit') {
        peers.delete(address)
        record({ raw, address, name, text, kind: 'exit' })
      } else {
        peers.set(address, name)
        record({ raw, address, name, text, kind: 'chat' })
      }
    })
    socket.on('end', () => {
      if (!got) {
        socket.destroy()
        record({ raw: '', kind: 'error' })
      }
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port: 0 }, () => resolve())
  })
  const bound = server.address()
  if (bound === null || typeof bound === 'string') throw new Error('expected a TCP address')
  const address = `${host}:${bound.port}`

  const sendRaw = (to: string, bytes: Uint8Array | string, options: { keepOpen?: boolean } = {}) =>
    new Promise<Socket>((resolve, reject) => {
      const colon = to.lastIndexOf(':')
      const socket = createConnection({
        host: to.slice(0, colon).replace(/^\[|\]$/g, ''),
        port: Number(to.slice(colon + 1)),
      })
      let connected = false
      // Before connect: the peer is unreachable. After: a reset is the receiver's business, as for the original.
      socket.on('error', (err) => {
        if (!connected) reject(err)
      })
      socket.once('connect', () => {
        connected = true
        socket.write(bytes)
        if (options.keepOpen) return resolve(socket)
        socket.end()
        socket.on('close', () => resolve(socket))
        // The receiver may close first; whatever it does, this message is done.
        socket.on('data', () => {})
      })
    })
  const send = async (to: string, text: string) => {
    await sendRaw(to, `${address} ${init.name} ${text}`)
  }
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  return {
    address,
    name: init.name,
    peers,
    received,
    messages: () =>
      received
        .filter((r) => r.kind === 'chat')
        .map((r) => ({ address: r.address!, name: r.name!, text: r.text! })),
    next(predicate, options = {}) {
      const found = received.find(predicate)
      if (found) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('received', listener)
          reject(new Error(`fake legacy peer ${init.name}: no matching message in time`))
        }, options.timeout ?? 5_000)
        const listener = (r: LegacyReceived) => {
          if (!predicate(r)) return
          clearTimeout(timer)
          events.off('received', listener)
          resolve(r)
        }
        events.on('received', listener)
      })
    },
    send,
    sendRaw,
    async connectAll() {
      await Promise.all([...peers.keys()].map((to) => send(to, 'connect')))
    },
    async quit() {
      await Promise.allSettled([...peers.keys()].map((to) => send(to, 'exit')))
      await close()
    },
    close,
  }
}
