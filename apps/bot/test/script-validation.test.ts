import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseScript, ScriptValidationError, validateScript } from '../src/index.js'

/** The problems a script text produces, exactly as the CLI prints them. */
function problems(text: string, source = 'script.yaml'): readonly string[] {
  try {
    parseScript(text, { source })
  } catch (err) {
    expect(err).toBeInstanceOf(ScriptValidationError)
    expect((err as ScriptValidationError).code).toBe('SCRIPT_INVALID')
    return (err as ScriptValidationError).problems
  }
  throw new Error('the script was accepted')
}

const yaml = (...lines: string[]) => `${lines.join('\n')}\n`

describe('script validation', () => {
  it('names a missing field by path and line', () => {
    const text = yaml(
      'steps:', //
      '  - start: { name: a }',
      '  - connect: 127.0.0.1:4000',
      '  - send:',
      '      text: hi',
    )
    expect(problems(text)).toEqual(['script.yaml line 4: steps[2].send.to is required'])
  })

  it('checks the file steps like the others: offer needs to and path, wait-file takes name, from, timeout', () => {
    const text = yaml(
      'steps:', //
      '  - connect: 127.0.0.1:4000',
      '  - offer:',
      '      to: bob',
      '  - offer: { to: bob, file: a.txt, size: 3 }',
      '  - wait-file: { name: a.txt, timeout: -1 }',
      '  - wait-file: { from: bob, tiemout: 5 }',
      '  - wait-flie',
    )
    expect(problems(text)).toEqual([
      'script.yaml line 3: steps[1].offer.file is required',
      'script.yaml line 5: steps[2].offer.size is not a known field (allowed: to, file, name, timeout)',
      'script.yaml line 6: steps[3].wait-file.timeout must be a whole number of milliseconds from 1 to 3600000, not the number -1',
      'script.yaml line 7: steps[4].wait-file.tiemout is not a known field (allowed: name, from, timeout)',
      'script.yaml line 8: steps[5] has unknown step "wait-flie" (did you mean "wait-file"?)',
    ])
    const ok = parseScript(
      yaml('steps:', '  - offer: { to: bob, file: a.txt, name: b.txt }', '  - wait-file', '  - quit'),
    )
    expect(ok.steps.map((s) => s.kind)).toEqual(['offer', 'wait-file', 'quit'])
    expect(ok.steps[0]).toMatchObject({ to: 'bob', file: 'a.txt', name: 'b.txt', line: 2 })
  })

  it('reports the YAML line of a problem deep in the file', () => {
    const text = yaml(
      '# a comment',
      'name: demo',
      'steps:',
      '  - connect: 127.0.0.1:4000',
      '',
      '  - wait: { peers: 1 }',
      '  - send:',
      '      to: bob',
      '      txt: hi',
    )
    expect(problems(text)).toEqual([
      'script.yaml line 7: steps[2].send.text is required',
      'script.yaml line 9: steps[2].send.txt is not a known field (allowed: to, text, timeout)',
    ])
  })

  it('rejects an unknown step, suggesting the closest one', () => {
    expect(problems(yaml('steps:', '  - sned: { to: b, text: c }'))).toEqual([
      'script.yaml line 2: steps[0] has unknown step "sned" (did you mean "send"?)',
    ])
    expect(problems(yaml('steps:', '  - dance'))).toEqual([
      'script.yaml line 2: steps[0] has unknown step "dance"',
    ])
  })

  it('rejects a value of the wrong type', () => {
    expect(problems(yaml('steps:', '  - wait: { peers: two }'))).toEqual([
      'script.yaml line 2: steps[0].wait.peers must be a whole number from 0 to 100000, not the string "two"',
    ])
    expect(problems(yaml('steps:', '  - connect: 5', '  - send: hi', '  - peers: { print: yes }'))).toEqual([
      'script.yaml line 2: steps[0].connect must be a mapping or an address, not the number 5',
      'script.yaml line 3: steps[1].send must be a mapping, not the string "hi"',
      'script.yaml line 4: steps[2].peers.print must be true or false, not the string "yes"',
    ])
    expect(problems(yaml('steps:', '  - start: { port: 70000 }'))).toEqual([
      'script.yaml line 2: steps[0].start.port must be a whole number from 0 to 65535, not the number 70000',
    ])
  })

  it('rejects unknown fields everywhere', () => {
    expect(problems(yaml('steps:', '  - wait: { ms: 5, time: 3 }', 'extra: 1'))).toEqual([
      'script.yaml line 2: steps[0].wait.time is not a known field (allowed: peer, peers, message, regex, from, ms, timeout)',
      'script.yaml line 3: extra is not a known field (allowed: name, vars, timeout, steps)',
    ])
    expect(problems(yaml('steps:', '  - quit: { now: true }'))).toEqual([
      'script.yaml line 2: steps[0].quit.now is not a known field (quit takes no fields)',
    ])
  })

  it('checks the rules between fields of wait and assert', () => {
    const text = yaml(
      'steps:',
      '  - wait: { peer: a, ms: 4 }',
      '  - wait: { regex: "(" }',
      '  - wait: {}',
      '  - wait: { ms: 10, timeout: 5 }',
      '  - assert: { from: x }',
      '  - assert: { message: a, regex: b }',
    )
    expect(problems(text)).toEqual([
      'script.yaml line 2: steps[0].wait must have only one of peer, peers, message, regex, ms (found peer, ms)',
      'script.yaml line 3: steps[1].wait.regex is not a valid regular expression (Unterminated group)',
      'script.yaml line 4: steps[2].wait needs one of peer, peers, message, regex, ms',
      'script.yaml line 5: steps[3].wait.timeout does not apply to ms (the wait is the duration)',
      'script.yaml line 6: steps[4].assert needs at least one of peers, names, messages, message, regex',
      'script.yaml line 6: steps[4].assert.from only applies to message or regex',
      'script.yaml line 7: steps[5].assert must have only one of message, regex',
    ])
  })

  it('checks the shape of the step list', () => {
    const text = yaml(
      'steps:',
      '  - {}',
      '  - { send: { to: a, text: b }, quit: null }',
      '  - 42',
      '  - start: {}',
      '  - quit',
      '  - peers',
    )
    expect(problems(text)).toEqual([
      'script.yaml line 2: steps[0] is empty; write one step such as "send: { to: bob, text: hi }"',
      'script.yaml line 3: steps[1] must hold exactly one step, found 2: send, quit',
      'script.yaml line 4: steps[2] must be a step name or a mapping like "send: { to: bob, text: hi }", not the number 42',
      'script.yaml line 5: steps[3].start must be the first step',
      'script.yaml line 7: steps[5] comes after quit (steps[4]) and would never run',
    ])
    expect(problems(yaml('- quit'))).toEqual([
      'script.yaml line 1: the script must be a mapping with a steps list (put the list under "steps:")',
    ])
    expect(problems('')).toEqual(['script.yaml: the script must be a mapping with a steps list'])
    expect(problems(yaml('steps: []'))).toEqual(['script.yaml line 1: steps must not be empty'])
    expect(problems(yaml('name: x'))).toEqual(['script.yaml line 1: steps is required'])
  })

  it('reports YAML syntax errors with their line', () => {
    expect(problems(yaml('steps:', '  - quit', 'steps: []'))).toEqual([
      'script.yaml line 3: invalid YAML (Map keys must be unique)',
    ])
  })

  it('gives JSON scripts line numbers too', () => {
    const json =
      '{\n  "steps": [\n    { "connect": "127.0.0.1:4000" },\n    { "send": { "text": "hi" } }\n  ]\n}\n'
    expect(problems(json, 'script.json')).toEqual(['script.json line 4: steps[1].send.to is required'])
    const broken = '{\n  "steps": [\n    { "quit": null },\n  ]\n}\n'
    expect(problems(broken, 'script.json')).toHaveLength(1)
    // V8 gives a position for some JSON errors only, so the line is there when Node reports it.
    expect(problems(broken, 'script.json')[0]).toMatch(
      /^script\.json( line 4)?: invalid JSON \(Unexpected token '?\]'?.*\)$/,
    )
    expect(problems('{ "steps": [ { "quit": null } ] ', 'script.json')[0]).toMatch(
      /^script\.json( line 1)?: invalid JSON \(.+\)$/,
    )
  })

  it('accepts every step in its long and short forms', () => {
    const script = parseScript(
      yaml(
        'name: all steps',
        'vars: { peer: "127.0.0.1:4000", n: 3 }',
        'timeout: 2000',
        'steps:',
        '  - start: { name: "{{me}}", port: 0 }',
        '  - connect: "{{peer}}"',
        '  - connect: { address: "{{peer}}", timeout: 100 }',
        '  - wait: 50',
        '  - wait: { peer: bob }',
        '  - wait: { peers: 2, timeout: 100 }',
        '  - wait: { message: hi, from: bob }',
        '  - wait: { regex: "^h" }',
        '  - send: { to: bob, text: hi }',
        '  - broadcast: hi all',
        '  - broadcast: { text: hi, timeout: 10 }',
        '  - peers',
        '  - peers: { query: bob, print: false }',
        '  - connect-all',
        '  - assert: { peers: 2, names: bob, messages: 1, message: hi, from: bob }',
        '  - assert: { names: [bob, carol], regex: "h.$" }',
        '  - quit',
      ),
      { source: 'all.yaml' },
    )
    expect(script.name).toBe('all steps')
    expect(script.vars).toEqual({ peer: '127.0.0.1:4000', n: '3' })
    expect(script.timeout).toBe(2000)
    expect(script.steps.map((s) => s.kind)).toEqual([
      'start',
      'connect',
      'connect',
      'wait',
      'wait',
      'wait',
      'wait',
      'wait',
      'send',
      'broadcast',
      'broadcast',
      'peers',
      'peers',
      'connect-all',
      'assert',
      'assert',
      'quit',
    ])
    expect(script.steps[3]).toEqual({
      kind: 'wait',
      path: 'steps[3]',
      line: 8,
      until: { type: 'duration', ms: 50 },
    })
    expect(script.steps[6]).toMatchObject({ until: { type: 'message', text: 'hi', from: 'bob' } })
    expect(script.steps[11]).toMatchObject({ kind: 'peers', print: true })
    expect(script.steps[14]).toMatchObject({ kind: 'assert', names: ['bob'], peers: 2 })
  })

  it('never fails with anything but a ScriptValidationError, whatever the value (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          validateScript(value)
        } catch (err) {
          return err instanceof ScriptValidationError && err.problems.length > 0 && err.problems.length <= 20
        }
        return true
      }),
    )
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.constantFrom('quit', 'peers', 'send', 'wait'),
            fc.dictionary(fc.string(), fc.jsonValue()),
          ),
          {
            maxLength: 8,
          },
        ),
        (steps) => {
          try {
            validateScript({ steps })
          } catch (err) {
            return err instanceof ScriptValidationError
          }
          return true
        },
      ),
    )
  })
})
