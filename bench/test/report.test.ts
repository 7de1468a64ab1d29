import { describe, expect, it } from 'vitest'
import { SMOKE_PLAN } from '../src/plan.js'
import type { Results } from '../src/ratios.js'
import { type Environment, type Run, renderReport } from '../src/report.js'
import type { JobOutcome } from '../src/runner.js'

const ok = (msgsPerSec: number): JobOutcome => ({ ok: true, values: { msgsPerSec } })

function run(node: string, parley: number[], raw: number[]): Run {
  const env: Environment = {
    date: '2026-12-03T00:00:00Z',
    node,
    cpu: 'test CPU × 2',
    os: 'Linux',
    load: '0',
    versions: {},
    libp2p: `on this Node (${node}), natively`,
  }
  const results = new Map([
    ['parley', new Map([['oneway', parley.map(ok)]])],
    ['raw', new Map([['oneway', raw.map(ok)]])],
  ]) as Results
  return { rounds: parley.length, seconds: 1, results, env }
}

describe('the report', () => {
  it('puts each Node version’s verdicts side by side and gives each version its own section', () => {
    const report = renderReport({
      quick: true,
      plan: SMOKE_PLAN,
      systems: ['parley', 'raw'],
      runs: [run('v20.20.2', [400, 300], [1000, 1000]), run('v24.22.3', [200, 200], [1000, 1000])],
    })
    const row = report.split('\n').find((l) => l.startsWith('| 64 B msgs ≥ 30 % of raw |'))
    expect(row).toContain('0.35× (0.30×–0.40×): met (2 of 2 rounds)')
    expect(row).toContain('0.20×: **missed**, 1.50× short (0 of 2 rounds met)')
    expect(report).toContain('## Node 20')
    expect(report).toContain('## Node 24')
    expect(report).toContain('js-libp2p: on this Node (v24.22.3), natively')
  })
})
