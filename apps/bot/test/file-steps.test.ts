import { EventEmitter } from 'node:events'
import type { Peer } from '@parley/core'
import type { AcceptOptions, FileService, IncomingOffer } from '@parley/files'
import { describe, expect, it } from 'vitest'
import { ScriptFiles } from '../src/scripts/file-steps.js'
import type { WaitFileStep } from '../src/scripts/types.js'

const ID = 'ab12cd34ef56'.padEnd(64, '0')

/** An offer whose download never finishes; it records the signal it was accepted with. */
function fakeOffer(fromName: string, offeredName: string) {
  const accepted: AcceptOptions[] = []
  const offer = {
    status: 'pending',
    name: 'safe.txt',
    offeredName,
    size: 3,
    from: { id: ID, name: fromName },
    accept: async (options: AcceptOptions = {}) => {
      accepted.push(options)
      return { finished: new Promise(() => {}) }
    },
  }
  return { offer: offer as unknown as IncomingOffer, accepted }
}

function setup() {
  const service = new EventEmitter()
  const lines: string[] = []
  const files = new ScriptFiles(service as unknown as FileService, {} as Peer, (l) => lines.push(l))
  return { service, lines, files }
}

const step = (from: string): WaitFileStep =>
  ({ kind: 'wait-file', from, line: 1, path: 'steps[0]' }) as WaitFileStep

describe('wait-file', () => {
  it('prints a hostile sender name and offered name without terminal controls', () => {
    const { service, lines } = setup()
    service.emit('offer', fakeOffer('ev\u001b]0;pwned\u0007il', 'a\u202etxt.exe\u001b[2J').offer)
    expect(lines).toEqual(['⇣ ev]0;pwnedil offers atxt.exe[2J (3 bytes)'])
  })

  it('a timed-out wait-file cancels the download it accepted', async () => {
    const { service, files } = setup()
    const { offer, accepted } = fakeOffer('alice', 'a.txt')
    service.emit('offer', offer)
    await expect(files.waitFile(step('alice'), 30)).rejects.toMatchObject({ code: 'TIMEOUT' })
    expect(accepted).toHaveLength(1)
    expect(accepted[0]!.signal?.aborted).toBe(true)
  })

  it('from matches an exact name or an id prefix of at least 8 hex digits, nothing shorter', async () => {
    const { service, files } = setup()
    const { offer, accepted } = fakeOffer('alice', 'a.txt')
    service.emit('offer', offer)
    for (const from of ['a', 'ab12', 'ab12cd3', 'alic']) {
      await expect(files.waitFile(step(from), 20)).rejects.toMatchObject({ code: 'TIMEOUT' })
    }
    expect(accepted).toHaveLength(0)
    await expect(files.waitFile(step('ab12cd34'), 20)).rejects.toMatchObject({ code: 'TIMEOUT' })
    expect(accepted).toHaveLength(1)
  })
})
