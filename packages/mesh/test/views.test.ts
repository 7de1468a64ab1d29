import { describe, expect, it } from 'vitest'
import { seededRandom } from '../src/random.js'
import { Views } from '../src/views.js'

const now = Date.now()

function viewsOf(passiveSize: number, neighbours: readonly string[]): Views {
  const views = new Views(passiveSize, 600_000, seededRandom(7), () => 'self')
  for (const id of neighbours) views.active.set(id, `${id}:1`)
  return views
}

function add(views: Views, via: string, ids: readonly string[]): void {
  for (const id of ids) views.addPassive(id, `${id}:1`, now, via === '' ? 'firsthand' : 'hearsay', via)
}

const held = (views: Views, prefix: string) => [...views.passive.keys()].filter((id) => id.startsWith(prefix))

describe('the passive view, full', () => {
  it('forgets from the neighbour whose hearsay holds the most, not the first-hand candidates', () => {
    const views = viewsOf(9, ['n1', 'n2', 'n3'])
    add(views, '', ['f0', 'f1', 'f2'])
    add(views, 'n1', ['a0', 'a1', 'a2'])
    add(views, 'n2', ['b0', 'b1', 'b2'])
    add(views, 'n3', ['c0', 'c1', 'c2'])
    expect(views.passive.size).toBe(9)
    expect(held(views, 'f')).toEqual(['f0', 'f1', 'f2'])
    for (const prefix of ['a', 'b', 'c']) expect(held(views, prefix).length).toBeGreaterThanOrEqual(1)
  })

  it("one network's first-hand candidates (its identities joined and left) hold a third of the view at most", () => {
    const views = viewsOf(9, [])
    for (let i = 0; i < 9; i++) views.addPassive(`honest${i}`, `10.${i}.0.1:4000`, now, 'firsthand')
    // 24 identities on one /16, each at its own port: they take turns in one third of the view.
    for (let i = 0; i < 24; i++) views.addPassive(`sybil${i}`, `203.0.113.${i}:${4000 + i}`, now, 'firsthand')
    expect(held(views, 'sybil').length).toBeGreaterThanOrEqual(1)
    expect(held(views, 'sybil').length).toBeLessThanOrEqual(3)
    expect(held(views, 'honest').length).toBeGreaterThanOrEqual(6)
    // Hearsay that becomes first-hand (the peer refused our request) counts in its network's share too.
    const heard = viewsOf(9, ['n1', 'n2'])
    for (let i = 0; i < 6; i++) {
      heard.addPassive(`heard${i}`, `203.0.113.${i}:4000`, now, 'hearsay', i < 3 ? 'n1' : 'n2')
    }
    for (let i = 0; i < 6; i++) heard.addPassive(`heard${i}`, `203.0.113.${i}:4000`, now, 'firsthand')
    expect(held(heard, 'heard').length).toBeLessThanOrEqual(3)
    // On this machine (loopback) each candidate counts on its own: local peers are not one operator.
    const local = viewsOf(9, [])
    for (let i = 0; i < 9; i++) local.addPassive(`p${i}`, `127.0.0.1:${4000 + i}`, now, 'firsthand')
    expect(local.passive.size).toBe(9)
  })

  it('counts the hearsay of neighbours that left as one source: identities taking turns get one share between them', () => {
    const views = viewsOf(9, ['d1', 'd2', 'd3', 'n'])
    add(views, 'd1', ['x0', 'x1'])
    add(views, 'd2', ['x2', 'x3'])
    add(views, 'd3', ['x4', 'x5'])
    for (const id of ['d1', 'd2', 'd3']) views.removeActive(id)
    add(views, 'n', ['n0', 'n1', 'n2'])
    views.active.set('m', 'm:1')
    add(views, 'm', ['m0', 'm1'])
    expect(held(views, 'n')).toEqual(['n0', 'n1', 'n2'])
    expect(held(views, 'm')).toEqual(['m0', 'm1'])
    expect(held(views, 'x')).toHaveLength(4)
  })
})
