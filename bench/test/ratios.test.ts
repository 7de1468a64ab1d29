import { describe, expect, it } from 'vitest'
import { perRoundRatios, type Results, verdicts } from '../src/ratios.js'
import type { JobOutcome } from '../src/runner.js'

const ok = (msgsPerSec: number): JobOutcome => ({ ok: true, values: { msgsPerSec } })
const failed: JobOutcome = { ok: false, reason: 'time cap' }

function results(parley: JobOutcome[], raw: JobOutcome[]): Results {
  return new Map([
    ['parley', new Map([['oneway', parley]])],
    ['raw', new Map([['oneway', raw]])],
  ]) as Results
}

describe('per-round ratios', () => {
  it('pair each round with the same round of the reference, skipping rounds where either failed', () => {
    const r = results([ok(100), ok(300), ok(200)], [ok(1000), failed, ok(400)])
    expect(perRoundRatios(r, 'parley', 'raw', 'oneway', 'msgsPerSec')).toEqual([0.1, 0.5])
  })

  it('decide a target by the median of the per-round ratios, not by the ratio of medians', () => {
    // Medians: Parley 300, raw 1,000 → 0.30, which would read as met; per round: 0.1, 0.25, 0.5 → 0.25.
    const r = results([ok(100), ok(300), ok(500)], [ok(1000), ok(1200), ok(1000)])
    const target = verdicts(r).find((v) => v.what === '64 B msgs ≥ 30 % of raw')!
    expect(target.met).toBe(false)
    expect(target.roundsMet).toBe(1)
    expect(target.short).toBeCloseTo(1.2)
  })
})
