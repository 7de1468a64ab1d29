import { describe, expect, it } from 'vitest'
import { type EagerRound, renderEager } from '../src/eager.js'

const round = (windowed: number, eager: number, bursts: number, batch: number): EagerRound => ({
  windowed,
  eager,
  bursts,
  batch,
  windowedCpuUs: 1,
  eagerCpuUs: 4,
  burstsCpuUs: 3,
  batchCpuUs: 1,
})

describe('the eager-sender report', () => {
  it('puts each mode in its own column and takes medians per round, the middle two averaged', () => {
    const text = renderEager({
      count: 1000,
      rounds: [round(1000, 400, 500, 1200), round(1000, 600, 700, 1000)],
    })
    const rows = text.split('\n').filter((line) => line.startsWith('| 1 |') || line.startsWith('| 2 |'))
    // Windowed, eager, bursts, batch; then their ratios to windowed.
    expect(rows[0]).toMatch(/^\| 1 \| 1 k \| 0 k \| 1 k \| 1 k \| 0\.40× \| 0\.50× \| 1\.20× \|/)
    expect(text).toContain('eager ÷ windowed: median 0.50× (0.40–0.60)')
    expect(text).toContain(
      '÷ windowed: median 0.60× (0.50–0.70). Batch ÷ windowed: median 1.10× (1.00–1.20).',
    )
  })
})
