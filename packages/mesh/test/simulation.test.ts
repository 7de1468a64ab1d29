import { describe, expect, it } from 'vitest'
import { simulateMesh } from '../src/simulation.js'

// The simulation (`pnpm sim`) at a size CI can afford, over several seeds: any change to membership or
// gossip must keep every one whole. The seeds are ones where, before newcomers asked their contact
// for candidates, a late joiner was left alone with only dead addresses, or a pair of peers below the
// floor was refused by full peers for good (4 of 16 seeds at 150 peers). Timing still varies between
// runs, so these are not replays; a failure says which phase did not finish.
describe('150 peers with 20 % churn, several seeds', () => {
  for (const seed of [3, 5, 10, 11]) {
    it(`seed ${seed}: forms, is whole again after churn, and every broadcast reaches every live peer`, async () => {
      const result = await simulateMesh({ peers: 150, churn: 0.2, broadcasts: 3, seed, timeLimit: 90_000 })
      expect({ completed: result.completed, phase: result.phase, reach: result.reach.min }).toEqual({
        completed: true,
        phase: 'done',
        reach: 1,
      })
    }, 120_000)
  }
})
