import { afterEach, describe, expect, it } from 'vitest'
import {
  type AttackScene,
  type AttackSession,
  attackerHost,
  attackScene,
  attackSessions,
  attackWire,
  type HalfOpenSockets,
  halfOpenSockets,
} from '../src/index.js'

// Issue 11: an attacker holds every inbound slot, with authenticated sessions that answer PINGs or with
// TCP connections that never finish their handshake. A new honest peer must still get in.

const wire = attackWire()
/** More than the victim's default inbound limit (256): every slot, and then some. */
const IDENTITIES = 300
const HALF_OPEN = 2_000

let scene: AttackScene | undefined
let sessions: AttackSession[] = []
let sockets: HalfOpenSockets | undefined
afterEach(async () => {
  for (const s of sessions) s.abort()
  sessions = []
  sockets?.destroy()
  sockets = undefined
  await scene?.close()
  scene = undefined
})

describe('attack: slot exhaustion', () => {
  it('authenticated identities that answer every PING do not lock a new honest peer out', async () => {
    scene = await attackScene({ wire })
    const address = scene.victim.address
    let refusal = ''
    const report = await scene.during(async () => {
      const opened = await attackSessions(
        IDENTITIES,
        (i) => ({ address, wire, name: `squatter-${i}`, sourceHost: attackerHost(i) }),
        {
          concurrency: 16,
        },
      )
      sessions = opened.sessions
      refusal = opened.refused[0]?.message ?? ''
    })
    expect(report.probes).toBeGreaterThan(0)
    // The victim took as many as it would; the attackers keep those alive (they answer PINGs).
    expect(sessions.length, `no squatter was welcomed: ${refusal}`).toBeGreaterThan(0)
    await scene.probeNewPeer()
    await scene.probeMessage('after the newcomer')
    scene.checkMemory('with the squatters connected')
    expect(await scene.victim.terminate()).toBe(0)
  }, 60_000)

  it('thousands of half-open TCP connections do not lock a new honest peer out', async () => {
    scene = await attackScene({ wire })
    const address = scene.victim.address
    const report = await scene.during(async () => {
      sockets = await halfOpenSockets({ address, count: HALF_OPEN, send: 'mixed', sourceHost: attackerHost })
    })
    expect(report.probes).toBeGreaterThan(0)
    await scene.probeNewPeer()
    await scene.probeMessage('after the newcomer')
    scene.checkMemory('with the half-open connections')
    expect(await scene.victim.terminate()).toBe(0)
  }, 60_000)
})
