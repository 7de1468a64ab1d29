import { describe, expect, it } from 'vitest'
import { simulateMesh } from '../src/simulation.js'

describe('mesh simulation', () => {
  it('200 peers with 10 % churn: every broadcast reaches every live peer over a bounded degree', async () => {
    const result = await simulateMesh({
      peers: 200,
      churn: 0.1,
      broadcasts: 5,
      seed: 7,
      upgrader: 'plaintext',
      timeLimit: 50_000,
      onProgress: (line) => process.env.MESH_SIM_VERBOSE && console.error(line),
    })
    expect(result.completed).toBe(true)
    expect(result.reach.min).toBe(1)
    expect(result.maxActive).toBeLessThanOrEqual(6)
    // Sessions include requests in flight besides neighbours; the issue bounds the degree at 30.
    expect(result.maxDegree).toBeLessThanOrEqual(30)
  }, 60_000)
})
