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
  const core = (name: string, file: string) => frame(name, `file:///x/packages/core/dist/esm/${file}`)
  /** A profile of one stack per sample, 1 ms each: `stacks[i]` is the frames from the root down. */
  function stacks(...list: ReturnType<typeof frame>[][]): CpuProfile {
    const nodes: CpuProfile['nodes'] = [{ id: 1, callFrame: frame('(root)'), children: [] }]
    const samples: number[] = []
    for (const stack of list) {
      let at = nodes[0]!
      for (const callFrame of stack) {
        const child = (at.children ?? [])
          .map((id) => nodes.find((n) => n.id === id)!)
          .find((n) => n.callFrame === callFrame)
        if (child) {
          at = child
          continue
        }
        const node = { id: nodes.length + 1, callFrame, children: [] as number[] }
        nodes.push(node)
        at.children!.push(node.id)
        at = node
      }
      samples.push(at.id)
    }
    const timeDeltas = samples.map(() => 1_000)
    return { nodes, samples, timeDeltas, startTime: 0, endTime: (samples.length + 1) * 1_000 }
  }
  const layer = (profile: CpuProfile, name: string) => summarize(profile).layers.find((l) => l.name === name)!

  const read = { functionName: 'onStreamRead', url: 'node:internal/stream_base_commons', lineNumber: 0 }
  const open = core('consume', 'secure/channel-records.js')
  const linkReader = core('onData', 'link-reader.js')
  const event = core('onMessage', 'peer.js')
  const send = core('send', 'peer.js')
  const flush = frame('#flushBatch', 'file:///x/packages/protocol/dist/esm/frame-writer.js')
  const seal = core('send', 'secure/channel-records.js')
  const syscall = frame('writeBuffer')

  it('times each layer with everything it calls, and its own work apart', () => {
    const p = stacks([read], [read, open], [read, open], [read, open])
    expect(layer(p, 'socket read (node:net)')).toMatchObject({ ms: 4, ownMs: 1 })
    expect(layer(p, 'secure channel: records opened')).toMatchObject({ ms: 3, ownMs: 3 })
    expect(layer(p, 'socket write system call')).toMatchObject({ ms: 0, ownMs: 0 })
  })

  it("keeps an echo's send() out of the message event's own time", () => {
    const p = stacks([read, event], [read, event, send], [read, event, send, flush, seal])
    expect(layer(p, '`message` event and its handler')).toMatchObject({ ms: 3, ownMs: 1 })
    expect(layer(p, '`send()`, to the frame writer')).toMatchObject({ ms: 2, ownMs: 1 })
    expect(layer(p, 'secure channel: records sealed')).toMatchObject({ ms: 1, ownMs: 1 })
  })

  it("charges a large frame's sealing to sealing, not to the writer's batch it skipped", () => {
    // Large frames go from send() straight to the channel: no #flushBatch on the stack.
    const p = stacks([send, seal], [send, seal, syscall], [send, flush])
    expect(layer(p, 'frame writer: batch to the link')).toMatchObject({ ms: 1, ownMs: 1 })
    expect(layer(p, 'secure channel: records sealed')).toMatchObject({ ms: 2, ownMs: 1 })
    expect(layer(p, 'socket write system call')).toMatchObject({ ms: 1, ownMs: 1 })
    expect(layer(p, '`send()`, to the frame writer')).toMatchObject({ ms: 3, ownMs: 0 })
  })

  it("counts a read's acknowledgement, written from the link reader, as writing", () => {
    const p = stacks([read, open, linkReader], [read, open, linkReader, flush, seal, syscall])
    expect(layer(p, 'link reader: frames, limits')).toMatchObject({ ms: 2, ownMs: 1 })
    expect(layer(p, 'socket write system call')).toMatchObject({ ms: 1, ownMs: 1 })
    const own = summarize(p).layers.reduce((sum, l) => sum + l.ownMs, 0)
    expect(own).toBe(2)
  })

  it('counts a layer once per sample when it recurses', () => {
    const p = stacks([send, seal, send])
    expect(layer(p, '`send()`, to the frame writer')).toMatchObject({ ms: 1, ownMs: 1 })
    expect(layer(p, 'secure channel: records sealed')).toMatchObject({ ms: 1, ownMs: 0 })
  })
})
