/** How a swarm's bots are wired. */
export const TOPOLOGIES = ['ring', 'star', 'random', 'mesh'] as const
export type Topology = (typeof TOPOLOGIES)[number]

/** One connection to make: bot `from` dials bot `to`. */
export type Edge = readonly [from: number, to: number]

/** Type guard for user input. */
export function isTopology(name: string): name is Topology {
  return (TOPOLOGIES as readonly string[]).includes(name)
}

/**
 * The connections of `topology` over `count` bots, each pair once, lower index first where it matters:
 * - ring: i — i+1, and the last back to the first (from 3 bots on);
 * - star: every bot dials bot 0;
 * - mesh: every pair;
 * - random: a random spanning tree (so everyone is reachable) plus about count/2 extra links,
 *   drawn from `random` (seed it for repeatable runs).
 */
export function edges(topology: Topology, count: number, random: () => number = Math.random): Edge[] {
  const out: Edge[] = []
  if (count < 2) return out
  switch (topology) {
    case 'ring':
      for (let i = 0; i + 1 < count; i++) out.push([i, i + 1])
      if (count > 2) out.push([count - 1, 0])
      return out
    case 'star':
      for (let i = 1; i < count; i++) out.push([i, 0])
      return out
    case 'mesh':
      for (let i = 0; i < count; i++) for (let j = i + 1; j < count; j++) out.push([i, j])
      return out
    case 'random': {
      const has = new Set<string>()
      const add = (a: number, b: number) => {
        const key = a < b ? `${a}-${b}` : `${b}-${a}`
        if (a === b || has.has(key)) return false
        has.add(key)
        out.push([a, b])
        return true
      }
      for (let i = 1; i < count; i++) add(i, Math.floor(random() * i))
      const maxEdges = (count * (count - 1)) / 2
      const extra = Math.min(Math.floor(count / 2), maxEdges - out.length)
      // Bounded: each try adds a link with probability >= 1/2 while fewer than half the pairs are taken.
      for (let added = 0, tries = 0; added < extra && tries < 20 * count; tries++) {
        if (add(Math.floor(random() * count), Math.floor(random() * count))) added++
      }
      return out
    }
  }
}

/** A small seeded PRNG (mulberry32), so `--seed` gives the same random topology every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
