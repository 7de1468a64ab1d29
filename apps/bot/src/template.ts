/** Variables a template may use: `{{name}}` is replaced by `vars.name`. */
export type Vars = Readonly<Record<string, string>>

const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}/g

/** The variable names `template` refers to, in order of first use. */
export function variablesIn(template: string): string[] {
  const names = new Set<string>()
  for (const m of template.matchAll(VARIABLE)) names.add(m[1]!)
  return [...names]
}

/**
 * Replaces every `{{name}}` in `template` with `vars[name]`. Text that is not a variable reference is left
 * as it is, so `{` and `}` need no escaping.
 *
 * @throws RangeError naming the first variable that `vars` lacks (callers turn it into their own error).
 */
export function render(template: string, vars: Vars): string {
  return template.replace(VARIABLE, (_, name: string) => {
    const value = Object.hasOwn(vars, name) ? vars[name] : undefined
    if (value === undefined) throw new RangeError(name)
    return value
  })
}
