import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type AttackScene,
  type AttackSession,
  attackerHost,
  attackScene,
  attackSessions,
  attackWire,
  longAddress,
  repeatFrame,
} from '../src/index.js'

// Issue 11: throwaway identities fill the victim's peer list with the largest addresses the protocol
// allows, so every peer-exchange answer is big; then sessions that never read ask for it over and over.
// A peer that does not read must get no more answers.

const wire = attackWire()
/** Identities that each announce 16 addresses of 255 bytes: ~4 KiB of answer apiece. */
const IDENTITIES = 130
const SESSIONS = 6
const REQUESTS_PER_SESSION = 20_000
/** Requests per session per round, and the pause between rounds: a steady stream, not one burst. */
const BATCH = 50
const ROUND_MS = 10

let scene: AttackScene | undefined
let sessions: AttackSession[] = []
afterEach(async () => {
  for (const s of sessions) s.abort()
  sessions = []
  await scene?.close()
  scene = undefined
})

describe('attack: peer-exchange requests from sessions that never read', () => {
  it('keeps the victim within its memory budget, serving honest peers, and stoppable', async () => {
    scene = await attackScene({ wire })
    const address = scene.victim.address

    const announced = await attackSessions(
      IDENTITIES,
      (i) => ({
        address,
        wire,
        name: `throwaway-${i}`,
        sourceHost: attackerHost(i),
        listenAddrs: Array.from({ length: 16 }, (_, j) => longAddress(i * 16 + j)),
      }),
      { concurrency: 8, onSession: (s) => s.abort(), requireAll: true },
    )
    expect(announced.sessions).toHaveLength(IDENTITIES)

    const opened = await attackSessions(
      SESSIONS,
      (i) => ({ address, wire, sourceHost: attackerHost(IDENTITIES + i) }),
      { concurrency: SESSIONS, requireAll: true },
    )
    sessions = opened.sessions
    for (const s of sessions) s.pause()
    const batch = repeatFrame(wire, { type: 'PEERS_REQUEST' }, BATCH)

    const report = await scene.during(async (signal) => {
      for (let sent = 0; sent < REQUESTS_PER_SESSION && !signal.aborted; sent += BATCH) {
        for (const s of sessions) s.sendRaw(batch)
        await delay(ROUND_MS)
      }
    })
    expect(report.probes).toBeGreaterThan(0)

    await scene.probeNewPeer()
    await scene.probeMessage('after the attack')
    scene.checkMemory('after the attack')
    // The attackers are still connected and still not reading: the victim must stop all the same.
    expect(await scene.victim.terminate()).toBe(0)
  }, 60_000)
})
