import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { DEFAULT_MAX_FRAME_SIZE, MessageType } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type AttackScene,
  type AttackSession,
  attackerHost,
  attackScene,
  attackSessions,
  attackWire,
  CHAT_CHANNEL,
  prefixed,
} from '../src/index.js'

// Issue 11: sessions announce a legal frame of the victim's largest size and send it one byte per
// encrypted record, never finishing. Each one-byte record must not cost the victim more than its byte.

const wire = attackWire()
const SESSIONS = 8
/** Bytes of the unfinished frame each session sends: ~2 M one-byte records in all. */
const BYTES_PER_SESSION = 256 * 1024
/** Bytes sent per session per turn, one record each (a single socket write). */
const SLICE = 4 * 1024

let scene: AttackScene | undefined
let sessions: AttackSession[] = []
afterEach(async () => {
  for (const s of sessions) s.abort()
  sessions = []
  await scene?.close()
  scene = undefined
})

describe('attack: a frame of the largest legal size, one byte per encrypted record', () => {
  it('keeps the victim within its memory budget and serving honest peers', async () => {
    scene = await attackScene({ wire })
    const address = scene.victim.address
    const opened = await attackSessions(SESSIONS, (i) => ({ address, wire, sourceHost: attackerHost(i) }), {
      concurrency: SESSIONS,
      requireAll: true,
    })
    sessions = opened.sessions

    // The header of a TEXT frame whose length is the victim's maximum (1 MiB by default): legal until the
    // victim decodes the body, which never completes.
    const head = wire === 3 ? [CHAT_CHANNEL, MessageType.TEXT] : [MessageType.TEXT]
    const header = prefixed(new Uint8Array(head)).subarray(0, 4 + head.length)
    new DataView(header.buffer, header.byteOffset).setUint32(0, DEFAULT_MAX_FRAME_SIZE)
    for (const s of sessions) s.sendRaw(header)
    const slice = new Uint8Array(SLICE).fill(0x61)

    const report = await scene.during(async (signal) => {
      for (let sent = 0; sent < BYTES_PER_SESSION && !signal.aborted; sent += SLICE) {
        for (const s of sessions) if (!s.sendRecords(slice, 1)) await s.drained()
        // Let the honest peer's acknowledgements through this process's event loop too.
        await yieldToLoop()
      }
    })
    expect(report.probes).toBeGreaterThan(0)

    // The attackers are still there, frames unfinished; a newcomer gets in, and the victim's memory
    // is still within budget once they leave.
    await scene.probeNewPeer()
    for (const s of sessions) s.abort()
    await Promise.all(sessions.map((s) => s.closed))
    await scene.probeMessage('after the attack')
    scene.checkMemory('after the attackers left')
    expect(await scene.victim.terminate()).toBe(0)
  }, 60_000)
})
