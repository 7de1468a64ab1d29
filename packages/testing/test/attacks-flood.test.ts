import { randomBytes } from 'node:crypto'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type AttackScene,
  type AttackSession,
  attackerHost,
  attackScene,
  attackSession,
  attackWire,
  frameFor,
} from '../src/index.js'

// Issue 11: a peer that floods TEXT is cut off for breaking the rate limit, and comes straight back
// under a fresh key (free to make) to flood again. The second round must cost the attacker: the
// victim's user must not get a second full flood of spam.

const wire = attackWire()
/** Both rounds come from one attacker address (not 127.0.0.1, where the honest peers are). */
const ATTACKER_HOST = attackerHost(0)
/** TEXTs per round at most (the victim's default rate is 5,000/s with a burst of 10,000). */
const TEXTS_PER_ROUND = 40_000
const BATCH = 500

let scene: AttackScene | undefined
const sessions: AttackSession[] = []
afterEach(async () => {
  for (const s of sessions.splice(0)) s.abort()
  await scene?.close()
  scene = undefined
})

/**
 * One round: a fresh identity connects and sends TEXTs as fast as the victim reads them, until the
 * victim cuts it off or the round's budget is spent. Resolves with how many the victim's user got.
 */
async function floodRound(address: string, signal: AbortSignal): Promise<number> {
  let session: AttackSession
  try {
    session = await attackSession({ address, wire, name: 'flooder', sourceHost: ATTACKER_HOST })
  } catch {
    return 0 // refused at the door: nothing of this round reaches the user
  }
  sessions.push(session)
  const stream = randomBytes(8).toString('hex')
  let seq = 0
  while (seq < TEXTS_PER_ROUND && !session.isClosed() && !signal.aborted) {
    const frames: Uint8Array[] = []
    for (let i = 0; i < BATCH; i++) {
      frames.push(
        frameFor(wire, { type: 'TEXT', stream, seq: ++seq, sentAt: Date.now(), text: `spam ${seq}` }),
      )
    }
    if (!session.sendRaw(Buffer.concat(frames))) await session.drained()
    await yieldToLoop()
  }
  session.abort()
  await session.closed
  const stats = await scene!.victim.stats({ from: [session.identity.peerId] })
  return stats.from[session.identity.peerId] ?? 0
}

describe('attack: a TEXT flood, then again under a fresh identity', () => {
  it('the second round gets at most half the first one through, and honest peers are served throughout', async () => {
    scene = await attackScene({ wire })
    const address = scene.victim.address
    let first = 0
    let second = 0
    const report = await scene.during(async (signal) => {
      first = await floodRound(address, signal)
      second = await floodRound(address, signal)
    })
    expect(report.probes).toBeGreaterThan(0)
    // Round one shows the flood did reach the user before the cut-off, so round two can be compared.
    expect(first, 'TEXTs of round one delivered to the victim user').toBeGreaterThan(0)
    expect(second, 'TEXTs of round two delivered to the victim user').toBeLessThanOrEqual(first / 2)
    await scene.probeNewPeer()
    await scene.probeMessage('after the floods')
    scene.checkMemory('after the floods')
    expect(await scene.victim.terminate()).toBe(0)
  }, 60_000)
})
