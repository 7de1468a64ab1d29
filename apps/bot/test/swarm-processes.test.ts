import { describe, expect, it } from 'vitest'
import { BotError, runProcessSwarm } from '../src/index.js'

describe('swarm over processes', () => {
  it('30 mesh bots in 3 processes over TCP form one overlay and every broadcast reaches every bot', async () => {
    const lines: string[] = []
    const summary = await runProcessSwarm({
      count: 30,
      processes: 3,
      broadcasts: 2,
      timeLimit: 90_000,
      onProgress: (line) => lines.push(line),
    })
    expect(summary, lines.join('\n')).toMatchObject({ bots: 30, processes: 3, completed: true })
    expect(summary.reach).toEqual([1, 1])
    expect(summary.formationSeconds).toBeGreaterThan(0)
    // Bounded degree: the mesh keeps at most 6 neighbours; sessions stay far below "everyone".
    expect(summary.maxActive).toBeLessThanOrEqual(6)
    expect(summary.fds).toHaveLength(3)
    for (const fds of summary.fds) expect(fds).toBeGreaterThan(0)
    expect(summary.rssPerPeerMB).toBeGreaterThan(0)
  }, 120_000)

  it('refuses a bad number of processes before starting any', async () => {
    await expect(runProcessSwarm({ count: 4, processes: 5 })).rejects.toThrow(BotError)
    await expect(runProcessSwarm({ count: 1, processes: 1 })).rejects.toThrow(/2 to/)
  })
})
