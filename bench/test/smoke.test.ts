/**
 * Runs every system's harness through every scenario with a handful of messages, in real worker
 * processes (the compiled dist/worker.js; the package's `test` script builds it first), so the
 * bench cannot rot. Asserts that each job completes with the counts it was asked for — never timing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { selfSignedCertificate } from '../src/cert.js'
import { runFiles } from '../src/files.js'
import { SMOKE_PLAN } from '../src/plan.js'
import type { CpuProfile } from '../src/profile.js'
import { runJob } from '../src/runner.js'
import { SCENARIOS } from '../src/scenarios.js'
import { SYSTEMS } from '../src/systems/index.js'

const options = { tls: selfSignedCertificate() }

describe.each(SYSTEMS)('%s', (system) => {
  it.each(SCENARIOS)('%s completes with every message counted', async (scenario) => {
    const params = SMOKE_PLAN[scenario]
    const outcome = await runJob({ system, scenario, params, options }, { slackMs: 20_000 })
    expect(outcome).toMatchObject({ ok: true, values: { count: params.count } })
    // The ping-pongs also report the pinging side's CPU per round trip, which a round trip cannot do without.
    if (outcome.ok && (scenario === 'pingpong' || scenario === 'pingcold'))
      expect(outcome.values.cpuUsPerRoundTrip).toBeGreaterThan(0)
  })
})

describe('profiled jobs', () => {
  it("profiles each worker's job, without Node's start-up and module loading", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-bench-prof-test-'))
    try {
      // Enough round trips (≈ 0.2–0.5 s cold) that the 1 ms sampler lands in the chat service on each side
      // dozens of times, not by luck.
      const params = { count: 2_000, size: 64, timeCapMs: 20_000, warmup: 20 }
      const outcome = await runJob(
        { system: 'parley', scenario: 'pingpong', params, options },
        { cpuProfDir: dir, slackMs: 20_000 },
      )
      expect(outcome).toMatchObject({ ok: true, values: { count: params.count } })
      for (const role of ['client', 'server']) {
        const file = join(dir, `${role}-parley-pingpong.cpuprofile`)
        const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
        const names = profile.nodes.map((node) => node.callFrame.functionName)
        // The job ran: the chat service handled frames. ESM loading did not: it was over before the job.
        expect(names).toContain('onFrame')
        expect(names).not.toContain('compileSourceTextModule')
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('failures are reported, not thrown', () => {
  it('a worker that cannot start', async () => {
    const outcome = await runJob(
      { system: 'raw', scenario: 'pingpong', params: SMOKE_PLAN.pingpong, options },
      { workerPath: '/nonexistent/worker.js', slackMs: 10_000 },
    )
    expect(outcome).toMatchObject({ ok: false, reason: expect.stringContaining('exited') })
  })

  it('a loop stopped by its time cap', async () => {
    // 100,000 round trips cannot fit in 20 ms: the job fails, naming the cap — with the count reached when
    // the loop was running, or while it still waited for the connection on a loaded machine.
    const params = { count: 100_000, size: 64, timeCapMs: 20 }
    const outcome = await runJob(
      { system: 'raw', scenario: 'pingpong', params, options },
      { slackMs: 10_000 },
    )
    expect(outcome).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/time cap (.* of 100,000 round trips|of 20 ms reached)/),
    })
  })
})

describe('file transfer', () => {
  it('a 2 MiB file goes from one process to another and is checked, with both peak RSS reported', async () => {
    const [run] = await runFiles([2])
    expect(run).toMatchObject({ sizeMiB: 2, sender: { maxRssKiB: expect.any(Number) } })
    expect(run).not.toHaveProperty('failed')
  }, 60_000)
})
