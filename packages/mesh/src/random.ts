/** A source of uniform numbers in [0, 1): `Math.random`, or a seeded one for reproducible runs. */
export type Random = () => number

/**
 * A small seeded generator (mulberry32): the same seed gives the same choices, so a simulation can be
 * replayed. Not for anything secret.
 */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [0, n). */
export function pick(random: Random, n: number): number {
  return Math.floor(random() * n)
}

/** Up to `k` distinct items of `items`, in random order (partial Fisher–Yates on a copy). */
export function sample<T>(random: Random, items: readonly T[], k: number): T[] {
  const copy = items.slice()
  const n = Math.min(k, copy.length)
  for (let i = 0; i < n; i++) {
    const j = i + pick(random, copy.length - i)
    const t = copy[i]!
    copy[i] = copy[j]!
    copy[j] = t
  }
  copy.length = n
  return copy
}

/** `ms` scaled by a random factor in [1 - spread, 1 + spread]: timers of many peers do not line up. */
export function jitter(random: Random, ms: number, spread = 0.5): number {
  return Math.max(1, Math.round(ms * (1 - spread + 2 * spread * random())))
}
