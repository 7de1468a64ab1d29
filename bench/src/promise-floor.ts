/**
 * The floor under the eager-sender scenario, with no Parley code: N promises made at once, each kept
 * with its resolver until it is settled with a fresh result, all awaited with `Promise.all`, against
 * the same N made 2,000 at a time. Settlement comes 1,000 per macrotask, as acknowledgements would.
 * What the eager mode costs above the windowed one here, any promise-per-send API pays too.
 *
 * `node dist/promise-floor.js [--count N] [--rounds R]`
 */
import { parseArgs } from 'node:util'

type Settle = (value: { id: string; ackedAt: number }) => void

let captured: Settle = () => {}
function capture(resolve: Settle): void {
  captured = resolve
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

async function eager(n: number): Promise<void> {
  const settle: (Settle | undefined)[] = new Array(n)
  const promises: Promise<unknown>[] = new Array(n)
  for (let i = 0; i < n; i++) {
    promises[i] = new Promise(capture)
    settle[i] = captured
  }
  const all = Promise.all(promises)
  for (let i = 0; i < n; ) {
    for (const end = Math.min(n, i + 1_000); i < end; i++) {
      settle[i]!({ id: `m${i}`, ackedAt: Date.now() })
      settle[i] = undefined
    }
    await tick()
  }
  await all
}

async function windowed(n: number, window = 2_000): Promise<void> {
  const inFlight: Settle[] = []
  let done = 0
  for (let sent = 0; sent < n || inFlight.length > 0; ) {
    while (inFlight.length < window && sent < n) {
      void new Promise(capture).then(() => {
        done++
      })
      inFlight.push(captured)
      sent++
    }
    for (const settle of inFlight.splice(0, 1_000)) settle({ id: `m${done}`, ackedAt: Date.now() })
    await tick()
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { count: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '2' } },
  })
  const n = Number(values.count)
  const rounds = Number(values.rounds)
  if (!Number.isInteger(n) || n < 1 || n > 5_000_000) throw new Error('--count must be 1…5,000,000')
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new Error('--rounds must be 1…10')
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of [
      ['windowed', windowed],
      ['eager', eager],
    ] as const) {
      const cpu = process.cpuUsage()
      const started = performance.now()
      await run(n)
      const used = process.cpuUsage(cpu)
      const wall = ((performance.now() - started) * 1000) / n
      console.log(
        `${name.padEnd(8)} ${n.toLocaleString('en')} promises: ${wall.toFixed(2)} µs wall, ${((used.user + used.system) / n).toFixed(2)} µs CPU each`,
      )
    }
  }
}

await main()
