import { describe, expect, it } from 'vitest'
import { type CpuProfile, summarize } from '../src/profile.js'

const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 })

/** Root, a Parley function, Node's socket write and idle; the timings are the test's. */
function profile(samples: number[], timeDeltas: number[], endTime?: number): CpuProfile {
  return {
    nodes: [
      { id: 1, callFrame: frame('(root)') },
      { id: 2, callFrame: frame('onData', 'file:///x/packages/core/dist/esm/link-reader.js') },
      { id: 3, callFrame: frame('writeBuffer') },
      { id: 4, callFrame: frame('(idle)') },
    ],
    startTime: 0,
    ...(endTime === undefined ? {} : { endTime }),
    samples,
    timeDeltas,
  }
}

describe('summarize', () => {
  it('charges each sample the interval after it, not the profiler start before the first', () => {
    // 50 ms pass before the first sample (the profiler starting), then 1 ms between samples.
    const s = summarize(profile([2, 3, 3, 4], [50_000, 1_000, 1_000, 1_000], 54_000))
    expect(s.totalMs).toBe(4)
    expect(s.busyMs).toBe(3)
    const share = Object.fromEntries(s.functions.map((f) => [f.name.split(' ')[0], f.share]))
    expect(share.onData).toBeCloseTo(1 / 3)
    expect(share.writeBuffer).toBeCloseTo(2 / 3)
  })

  it('gives the last sample nothing when the profile has no end time', () => {
    const s = summarize(profile([2, 3], [5_000, 2_000]))
    expect(s.totalMs).toBe(2)
    expect(s.functions.map((f) => f.name)).toEqual(['onData core/dist/esm/link-reader.js:1', 'writeBuffer'])
  })
})

describe('layers', () => {
  it('times each layer with everything it calls, and its own work apart', () => {
    const read = { functionName: 'onStreamRead', url: 'node:internal/stream_base_commons', lineNumber: 0 }
    const open = frame('consume', 'file:///x/packages/core/dist/esm/secure/channel-records.js')
    const s = summarize({
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2] },
        { id: 2, callFrame: read, children: [3] },
        { id: 3, callFrame: open },
      ],
      samples: [2, 3, 3, 3],
      timeDeltas: [0, 1_000, 1_000, 1_000],
      startTime: 0,
      endTime: 4_000,
    })
    const layer = (name: string) => s.layers.find((l) => l.name === name)!
    expect(layer('socket read (node:net)')).toMatchObject({ ms: 4, ownMs: 1 })
    expect(layer('secure channel: records opened')).toMatchObject({ ms: 3, ownMs: 3 })
    expect(layer('`write` system call')).toMatchObject({ ms: 0, ownMs: 0 })
  })
})
