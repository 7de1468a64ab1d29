import { connect, createServer, type Socket } from 'node:net'
import SecretStream from '@hyperswarm/secret-stream'
import { closeServer, portOf } from './net-util.js'
import type { Channel, Payload, System, SystemFactory } from './types.js'

/**
 * @hyperswarm/secret-stream over node:net: its Noise XX handshake (Ed25519), then libsodium's
 * secretstream. It frames messages itself (one `write` is one message), so no bench framer here.
 */
export const createSecretStreamSystem: SystemFactory = async () => {
  const system: System = {
    dialConcurrency: 16,
    payload: (bytes) => Buffer.alloc(bytes, 'x'),
    async listen(onChannel) {
      const keyPair = SecretStream.keyPair()
      const server = createServer({ noDelay: true }, (socket) => {
        const stream = new SecretStream(false, socket, { keyPair })
        // The channel is handed out once the handshake is done, as for the other systems.
        const channel = new SecretStreamChannel(stream, socket)
        stream.opened.then((ok) => ok && onChannel(channel))
      })
      const port = await portOf(server)
      return { port, close: () => closeServer(server) }
    },
    async dialer() {
      const keyPair = SecretStream.keyPair()
      return {
        prepare: async () => {},
        async dial(port) {
          const socket = connect({ host: '127.0.0.1', port, noDelay: true })
          const stream = new SecretStream(true, socket, { keyPair })
          const channel = new SecretStreamChannel(stream, socket)
          if (!(await stream.opened)) throw new Error('the secret-stream handshake failed')
          return channel
        },
        close: async () => {},
      }
    },
  }
  return system
}

class SecretStreamChannel implements Channel {
  onMessage: ((msg: Payload) => void) | undefined
  readonly #stream: SecretStream
  readonly #socket: Socket
  #blocked = false
  #failure: Error | undefined
  #waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = []

  constructor(stream: SecretStream, socket: Socket) {
    this.#stream = stream
    this.#socket = socket
    stream.on('data', (data) => this.onMessage?.(data))
    stream.on('drain', () => {
      this.#blocked = false
      this.#wake()
    })
    stream.on('error', (err) => this.#fail(err))
    stream.on('close', () => this.#fail(new Error('the connection closed')))
  }

  #fail(err: Error): void {
    this.#failure ??= err
    this.#wake(err)
  }

  #wake(err?: Error): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) {
      if (err) w.reject(err)
      else w.resolve()
    }
  }

  send(msg: Payload): boolean {
    if (this.#failure) throw this.#failure
    if (!this.#stream.write(msg as Uint8Array)) this.#blocked = true
    return !this.#blocked
  }

  ready(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure)
    if (!this.#blocked) return Promise.resolve()
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  async settled(): Promise<void> {
    await this.ready()
    // Then wait for the socket underneath to hand everything to the kernel.
    await new Promise<void>((resolve, reject) =>
      this.#socket.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve())),
    )
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#socket.destroyed) return resolve()
      this.#socket.once('close', () => resolve())
      this.#stream.end()
      setTimeout(() => this.#stream.destroy(), 2_000).unref()
    })
  }
}
