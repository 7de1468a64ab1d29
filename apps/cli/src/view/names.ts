/**
 * Look-alike names. A name is only a label a peer chose: `bob\u200b` (a zero-width space) or `bоb`
 * (Cyrillic о) print like `bob`. Names are compared by a skeleton — NFKC, invisible characters
 * removed, common Cyrillic and Greek homoglyphs mapped to Latin, lower case — in the spirit of
 * Unicode TR39's confusable skeletons, with a small table instead of the full data file.
 */

/** Zero-width and other invisible format characters, bidi controls, the BOM, soft hyphen, fillers. */
const INVISIBLE =
  /[\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0]|\u034f|\u180b|\u180c|\u180d|\u180f|\ufe00|\ufe01|\ufe02|\ufe03|\ufe04|\ufe05|\ufe06|\ufe07|\ufe08|\ufe09|\ufe0a|\ufe0b|\ufe0c|\ufe0d|\ufe0e|\ufe0f/gu

/** Cyrillic and Greek letters that look like Latin ones (lower case; the skeleton is lower-cased first). */
const HOMOGLYPHS: Readonly<Record<string, string>> = {
  // Cyrillic
  а: 'a',
  в: 'b',
  с: 'c',
  ԁ: 'd',
  е: 'e',
  ё: 'e',
  һ: 'h',
  і: 'i',
  ї: 'i',
  ј: 'j',
  к: 'k',
  ӏ: 'l',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  ԛ: 'q',
  г: 'r',
  ѕ: 's',
  т: 't',
  у: 'y',
  ѡ: 'w',
  х: 'x',
  ԝ: 'w',
  ь: 'b',
  ү: 'y',
  // Greek
  α: 'a',
  β: 'b',
  ϲ: 'c',
  ε: 'e',
  η: 'n',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  γ: 'y',
  ω: 'w',
  ϳ: 'j',
  ζ: 'z',
}

/**
 * Controls the terminal never shows (C0, DEL, C1, the line and paragraph separators): the wire refuses
 * them in names, but a name saved by an older version, or a legacy peer's, may still hold them.
 */
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/gu

/** The form two names share when they look alike. */
export function skeleton(name: string): string {
  const plain = name.normalize('NFKC').replace(INVISIBLE, '').replace(CONTROL, '').toLowerCase()
  let out = ''
  for (const ch of plain) out += HOMOGLYPHS[ch] ?? ch
  // `rn` reads as `m`, `vv` as `w`, `0` as `o`, `1`/`|` as `l`: the classic look-alikes in Latin itself.
  return out.replace(/rn/g, 'm').replace(/vv/g, 'w').replace(/0/g, 'o').replace(/[1|]/g, 'l').trim()
}

const SCRIPTS = ['Latin', 'Cyrillic', 'Greek', 'Armenian', 'Cherokee'] as const

/**
 * Why a name may be meant to pass for another, or undefined: it holds invisible characters, it mixes
 * letters of scripts that share shapes (Latin with Cyrillic, Greek, …), or it starts with a symbol,
 * as the screen's own lines do.
 */
export function suspiciousName(name: string): 'invisible' | 'mixed-scripts' | 'symbol-first' | undefined {
  INVISIBLE.lastIndex = 0
  CONTROL.lastIndex = 0
  if (INVISIBLE.test(name) || CONTROL.test(name)) return 'invisible'
  // The screen's own lines start with a mark (`+ bob joined`, `- bob left`, `✔ you → bob`): a name that
  // starts with one could print a message that passes for such a line.
  if (name !== '' && !/^[\p{L}\p{N}]/u.test(name)) return 'symbol-first'
  const used = SCRIPTS.filter((s) => new RegExp(`\\p{Script=${s}}`, 'u').test(name))
  return used.length > 1 ? 'mixed-scripts' : undefined
}

/** The marker a suspicious name carries on screen. */
export const LOOKALIKE_MARK = '⚠'

/** Whether a name is spelled as it reads: its skeleton is its own lower case (no homoglyph, no hidden character). */
function plain(name: string): boolean {
  return skeleton(name) === name.normalize('NFKC').toLowerCase().trim()
}

/**
 * `name ⚠ (look-alike of bob)`, `name ⚠ (hidden characters)`, or undefined when `name` is neither
 * suspicious nor a look-alike (same skeleton, different spelling) of one of `others`. Of two names that
 * look alike, the one spelled as it reads (`bob`) is not marked for the other (`bоb`, Cyrillic о): the
 * imitation is.
 */
export function lookalikeNote(name: string, others: Iterable<string>): string | undefined {
  const mine = skeleton(name)
  const asItReads = plain(name)
  for (const other of others) {
    if (other === name || skeleton(other) !== mine) continue
    if (asItReads && !plain(other)) continue
    return `${LOOKALIKE_MARK} (look-alike of ${visible(other)})`
  }
  const why = suspiciousName(name)
  if (why === 'invisible') return `${LOOKALIKE_MARK} (hidden characters)`
  if (why === 'mixed-scripts') return `${LOOKALIKE_MARK} (mixed scripts)`
  if (why === 'symbol-first') return `${LOOKALIKE_MARK} (starts with a symbol)`
  return undefined
}

/**
 * A name with its invisible and control characters shown as `<U+200B>`, so the user sees them (and a
 * terminal gets none of them: this is what a look-alike note prints of the other name).
 */
export function visible(name: string): string {
  const shown = (c: string) => `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`
  return name.replace(INVISIBLE, shown).replace(CONTROL, shown)
}
