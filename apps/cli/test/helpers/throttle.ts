import { connect, createServer, type Server, type Socket } from 'node:net'
import { onTestFinished } from 'vitest'

/**
 * A TCP proxy on 127.0.0.1 that forwards to `target` and paces what flows back (target → client) to
 * `bytesPerSecond`, so a transfer over loopback lasts long enough to act in the middle of it (kill a
 * peer, send a message). Bytes are never dropped or changed. Closing either side closes the other.
 */
export async function throttlingProxy(target: { host: string; port: number }, bytesPerSecond: number) {
  const sockets = new Set<Socket>()
  let paused = false
  const held = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    sockets.add(client).add(upstream)
    const start = Date.now()
    let sent = 0
    upstream.on('data', (buf: Buffer) => {
      sent += buf.length
      client.write(buf)
      const ahead = (sent / bytesPerSecond) * 1000 - (Date.now() - start)
      if (paused) {
        upstream.pause()
        held.add(upstream)
      } else if (ahead > 0) {
        upstream.pause()
        setTimeout(() => {
          if (!paused) upstream.resume()
          else held.add(upstream)
        }, ahead)
      }
    })
    client.pipe(upstream)
    const close = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('close', close).on('error', close)
    upstream.on('close', close).on('error', close)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const stop = async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  onTestFinished(stop)
  return {
    address: `127.0.0.1:${port}`,
    stop,
    /** Holds what flows back to clients (after at most one more chunk) until `resume()`. */
    pause() {
      paused = true
    },
    resume() {
      paused = false
      for (const s of held) s.resume()
      held.clear()
    },
  }
}
