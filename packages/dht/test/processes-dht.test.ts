import { type ChildProcess, fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { useTestnet } from './helpers.js'

// Two peers in two processes, as two CLIs on one machine would be. The child runs the built package
// (dist), since a forked process cannot load the TypeScript sources (turbo builds it before the tests).
// This failed in about one run in four (a 40 s hang in the handshake) until the DHT upgrader stopped
// losing the bytes that arrive right behind the network proof: see "two processes on one loopback" in
// docs/DHT.md.
const script = fileURLToPath(new URL('./fixtures/dht-peer-process.mjs', import.meta.url))
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url))

const testnet = useTestnet()

interface Event {
  event: string
  id?: string
  text?: string
  from?: string
  message?: string
}

function startPeer(secret: string | undefined): {
  child: ChildProcess
  events: Event[]
  next: (event: string) => Promise<Event>
} {
  const { host, port } = testnet.bootstrap[0]!
  const child = fork(script, [`${host}:${port}`, secret ?? '-'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const events: Event[] = []
  const waiters: Array<{ event: string; resolve: (e: Event) => void; reject: (err: Error) => void }> = []
  child.on('message', (msg: Event) => {
    events.push(msg)
    for (const w of waiters.filter((w) => w.event === msg.event)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(msg)
    }
  })
  child.on('exit', (code) => {
    for (const w of waiters.splice(0))
      w.reject(new Error(`the peer process exited (${code}) before ${w.event}`))
  })
  onTestFinished(async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    child.send({ stop: true })
    await exited
    clearTimeout(killer)
  })
  const next = (event: string) =>
    new Promise<Event>((resolve, reject) => {
      const seen = events.find((e) => e.event === event)
      if (seen !== undefined) return resolve(seen)
      waiters.push({ event, resolve, reject })
    })
  return { child, events, next }
}

describe('peers in two processes over the DHT', () => {
  it.each([
    ['without a network secret', undefined],
    ['with a network secret', 'apples'],
  ])('one dials the other by dht:<peer id> and they exchange messages (%s)', async (_, secret) => {
    expect(existsSync(built), 'build the package first: pnpm --filter @parley/dht... build').toBe(true)
    const one = startPeer(secret)
    const two = startPeer(secret)
    const [idOne, idTwo] = await Promise.all([one.next('ready'), two.next('ready')])
    one.child.send({ dial: `dht:${idTwo.id}` })
    const outcome = await Promise.race([one.next('connected'), one.next('dial-failed')])
    expect(outcome).toEqual({ event: 'connected', id: idTwo.id })
    expect(await two.next('message')).toMatchObject({ text: 'hello from another process', from: idOne.id })
    expect(await one.next('message')).toMatchObject({
      text: 'echo: hello from another process',
      from: idTwo.id,
    })
  })
})
