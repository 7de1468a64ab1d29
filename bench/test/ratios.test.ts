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

describe('targets judged on another Parley setting', () => {
  it("judge the AESGCM bulk target on Parley with cipher: 'AESGCM', and the default one on the defaults", () => {
    const mb = (mbPerSec: number): JobOutcome => ({ ok: true, values: { mbPerSec } })
    const r = new Map([
      ['parley', new Map([['bulk', [mb(500), mb(500), mb(500)]]])],
      ['parley-aesgcm', new Map([['bulk', [mb(900), mb(900), mb(900)]]])],
      ['tls', new Map([['bulk', [mb(1000), mb(1000), mb(1000)]]])],
    ]) as Results
    const bulk = verdicts(r).filter((v) => v.what.startsWith('bulk'))
    expect(bulk.map((v) => [v.what, v.met])).toEqual([
      ['bulk ≥ 80 % of TLS 1.3', false],
      ["bulk ≥ 80 % of TLS 1.3, with cipher: 'AESGCM'", true],
    ])
  })
})
