import { afterEach, describe, expect, it } from 'vitest'
import {
  type AttackScene,
  attackerHost,
  attackScene,
  attackWire,
  type Storm,
  startStorm,
} from '../src/index.js'

// Issue 11: hundreds of simultaneous dials, each a full Noise handshake and a HELLO, again and again.
// The victim's event loop must stay responsive: honest messages still go through, every probe acknowledged.

const wire = attackWire()
const CONCURRENCY = 1000
const TOTAL = 20_000
const DURATION_MS = 6_000

let scene: AttackScene | undefined
let storm: Storm | undefined
afterEach(async () => {
  storm?.kill()
  storm = undefined
  await scene?.close()
  scene = undefined
})

describe('attack: a handshake storm', () => {
  it('leaves the victim responsive to honest peers, and it does not crash', async () => {
    scene = await attackScene({ wire })
    const address = scene.victim.address
    let dialed = 0
    let welcomed = 0
    const report = await scene.during(async (signal) => {
      storm = startStorm({
        address,
        wire,
        concurrency: CONCURRENCY,
        total: TOTAL,
        durationMs: DURATION_MS,
        sources: Array.from({ length: 200 }, (_, i) => attackerHost(i)),
      })
      signal.addEventListener('abort', () => storm?.kill(), { once: true })
      // A new honest peer arriving in the middle of the storm gets in.
      const newcomer = storm.started.then(() => scene!.probeNewPeer())
      const [counts] = await Promise.all([storm.done, newcomer])
      if (process.env.PARLEY_ATTACK_MEASURE === '1') console.info(`storm: ${JSON.stringify(counts)}`)
      dialed = counts.dialed
      welcomed = counts.welcomed
    })
    expect(report.probes).toBeGreaterThan(0)
    expect(dialed).toBeGreaterThanOrEqual(CONCURRENCY)
    // The victim did take full sessions from the storm: it was really handshaking, not refusing at once.
    expect(welcomed).toBeGreaterThan(0)
    await scene.probeNewPeer()
    await scene.probeMessage('after the storm')
    scene.checkMemory('after the storm')
    expect(await scene.victim.terminate()).toBe(0)
  }, 60_000)
})
