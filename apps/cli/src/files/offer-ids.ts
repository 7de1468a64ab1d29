/** The fewest hex digits of a root users type: short enough to type, long enough to rarely collide. */
const MIN_ID = 8

/**
 * The id shown for `root`: its shortest prefix of at least 8 hex digits that no other root in `roots`
 * starts with. A peer can offer any root (it need not have the content), so it can copy the first
 * digits of another offer; the id then grows until it names one offer again.
 */
export function offerId(root: string, roots: readonly string[]): string {
  let len = MIN_ID
  for (const other of roots) {
    if (other === root) continue
    let same = 0
    while (same < root.length && root[same] === other[same]) same++
    len = Math.max(len, same + 1)
  }
  return root.slice(0, Math.min(len, root.length))
}

/** The offers `id` names: the one whose root it is exactly, else every one whose root starts with it. */
export function offersNamed<T extends { root: string }>(offers: readonly T[], id: string): T[] {
  const want = id.toLowerCase()
  const exact = offers.filter((o) => o.root === want)
  return exact.length > 0 ? exact : offers.filter((o) => o.root.startsWith(want))
}
