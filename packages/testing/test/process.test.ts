import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { createPeer, tcpTransport } from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitFor } from '../src/index.js'

const fixture = new URL('./fixtures/echo-peer.mjs', import.meta.url)

async function startEchoProcess(): Promise<{ child: ChildProcess; id: string; address: string }> {
  const child = spawn(process.execPath, [fixture.pathname], { stdio: ['ignore', 'pipe', 'inherit'] })
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const lines = createInterface({ input: child.stdout! })
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('the echo peer exited before printing its address')
    }),
  ])) as [string]
  return { child, ...JSON.parse(line) }
}

describe('peers in separate OS processes over TCP', () => {
  it('exchange messages, then a SIGTERM makes the other process say goodbye', async () => {
    const remote = await startEchoProcess()
    const peer = createPeer({ transport: tcpTransport(), name: 'tester' })
    onTestFinished(() => peer.stop())
    await peer.start()
    const info = await peer.connect(remote.address)
    expect(info.id).toBe(remote.id)
    const reply = waitFor(peer, 'message')
    await peer.send(remote.id, 'ping across processes')
    expect((await reply).text).toBe('echo: ping across processes')

    const gone = waitFor(peer, 'peer:disconnect')
    remote.child.kill('SIGTERM')
    expect((await gone).reason).toBe('goodbye')
    const [code] = await once(remote.child, 'exit')
    expect(code).toBe(0)
  })

  it('notices a process that is killed without a goodbye', async () => {
    const remote = await startEchoProcess()
    const peer = createPeer({ transport: tcpTransport(), name: 'tester' })
    onTestFinished(() => peer.stop())
    await peer.start()
    await peer.connect(remote.address)
    const gone = waitFor(peer, 'peer:disconnect')
    remote.child.kill('SIGKILL')
    expect((await gone).reason).toBe('connection-lost')
    expect(peer.peers().connected).toEqual([])
  })
})
