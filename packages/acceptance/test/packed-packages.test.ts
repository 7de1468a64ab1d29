/**
 * Acceptance: what a user gets from npm. Packs @parley/protocol, core, dht, files, mesh and @parley/cli as
 * `pnpm publish` would (workspace:* replaced by versions, `files` applied), installs the tarballs into
 * an empty project outside the workspace (from the pnpm store; the registry only for what it lacks),
 * then runs an ES module and a CommonJS script that exchange a message between two peers over TCP on
 * 127.0.0.1, runs the `parley` command, and type-checks a consumer under moduleResolution node16 and
 * bundler.
 */
import { execFile, type SpawnSyncOptions, type SpawnSyncReturns, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url))
const packageDir = (name: string) => fileURLToPath(new URL(`../../${name}/`, import.meta.url))
const require = createRequire(import.meta.url)
const versions = {
  typescript: (require('typescript/package.json') as { version: string }).version,
  typesNode: (require('@types/node/package.json') as { version: string }).version,
}

// A child pnpm must not think it runs a script of this workspace.
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^(npm_|pnpm_|PNPM_|TURBO_|VITEST|NODE_OPTIONS)/.test(key)),
)
const pnpmCli = process.env.npm_execpath?.includes('pnpm') ? process.env.npm_execpath : undefined

function run(command: string, args: string[], options: SpawnSyncOptions): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { encoding: 'utf8', env: cleanEnv, timeout: 240_000, ...options })
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.status ?? result.signal}\n${result.stdout}\n${result.stderr}`,
    )
  }
  return result as SpawnSyncReturns<string>
}
const pnpm = (args: string[], cwd: string) =>
  pnpmCli ? run(process.execPath, [pnpmCli, ...args], { cwd }) : run('pnpm', args, { cwd })

let root = ''
let app = ''

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'parley-acceptance-'))
  // Packing runs each package's prepack (a turbo build, a cache hit after `^build`).
  for (const name of ['protocol', 'core', 'dht', 'files', 'mesh', '../apps/cli'])
    pnpm(['pack', '--pack-destination', root], packageDir(name))
  const tarballs = readdirSync(root).filter((f) => f.endsWith('.tgz'))
  const tarball = (name: string) => {
    const file = tarballs.find((f) => f.startsWith(`parley-${name}-`))
    if (!file) throw new Error(`no tarball for ${name} in ${tarballs.join(', ')}`)
    return `file:${join(root, file)}`
  }
  app = join(root, 'app')
  run('mkdir', [app], {})
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'parley-consumer',
      private: true,
      dependencies: {
        '@parley/core': tarball('core'),
        '@parley/protocol': tarball('protocol'),
        '@parley/cli': tarball('cli'),
        '@parley/dht': tarball('dht'),
        '@parley/files': tarball('files'),
        '@parley/mesh': tarball('mesh'),
        typescript: versions.typescript,
        '@types/node': versions.typesNode,
      },
      // core's dependency on @parley/protocol@<version> resolves to the tarball, not the registry.
      pnpm: {
        overrides: {
          '@parley/protocol': tarball('protocol'),
          '@parley/core': tarball('core'),
          '@parley/dht': tarball('dht'),
          '@parley/files': tarball('files'),
          '@parley/mesh': tarball('mesh'),
        },
      },
    }),
  )
  for (const file of ['two-peers.mjs', 'two-peers.cjs', 'consumer.mts', 'consumer.cts']) {
    copyFileSync(join(fixtures, file), join(app, file))
  }
  pnpm(['install', '--prefer-offline', '--ignore-workspace', '--config.confirmModulesPurge=false'], app)
})

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true })
})

describe('the packed packages in an empty project', () => {
  it('ship built code, types and the sources their maps point at, and no tests', () => {
    const result = run('tar', ['-tzf', join(root, readdirSync(root).find((f) => f.includes('core'))!)], {})
    const files = result.stdout.split('\n')
    expect(files).toContain('package/dist/esm/index.js')
    expect(files).toContain('package/dist/cjs/index.js')
    expect(files).toContain('package/dist/cjs/index.d.ts')
    expect(files).toContain('package/src/index.ts')
    expect(files).toContain('package/LICENSE')
    expect(files).toContain('package/README.md')
    expect(files.filter((f) => f.includes('/test/'))).toEqual([])
  })

  it('an ES module runs two peers over TCP that exchange an acknowledged message', () => {
    const result = run(process.execPath, ['two-peers.mjs'], { cwd: app, timeout: 60_000 })
    expect(JSON.parse(result.stdout)).toEqual({
      text: 'hello from an ES module',
      from: 'alice',
      ackedBy: 'bob',
      protocolError: 'function',
    })
  })

  it('a CommonJS script does the same through require()', () => {
    const result = run(process.execPath, ['two-peers.cjs'], { cwd: app, timeout: 60_000 })
    expect(JSON.parse(result.stdout)).toEqual({
      text: 'hello from CommonJS',
      from: 'alice',
      ackedBy: 'bob',
      protocolError: 'function',
    })
  })

  // One at a time: each is a full tsc run over @types/node (skipLibCheck is off to check our
  // declarations), and the other packages' tests run beside this one.
  it('the CLI package installs the parley command', () => {
    const result = run(join(app, 'node_modules', '.bin', 'parley'), ['--help'], { cwd: app, timeout: 60_000 })
    expect(result.stdout).toMatch(/^Usage: parley /)
  })

  it.each([
    ['node16', 'Node16', ['consumer.mts', 'consumer.cts']],
    ['bundler', 'ESNext', ['consumer.mts']],
  ])(
    'type-checks with moduleResolution %s',
    { timeout: 300_000 },
    async (moduleResolution, module, files) => {
      const config = `tsconfig.${moduleResolution}.json`
      writeFileSync(
        join(app, config),
        JSON.stringify({
          compilerOptions: {
            module,
            moduleResolution,
            target: 'ES2022',
            strict: true,
            noEmit: true,
            // The published declarations are checked too.
            skipLibCheck: false,
            types: ['node'],
          },
          files,
        }),
      )
      const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc')
      const result = await promisify(execFile)(process.execPath, [tsc, '-p', config], {
        cwd: app,
        env: cleanEnv,
      }).then(
        ({ stdout, stderr }) => ({ output: stdout + stderr, failed: false }),
        (err: { stdout: string; stderr: string }) => ({ output: err.stdout + err.stderr, failed: true }),
      )
      expect(result).toEqual({ output: '', failed: false })
    },
  )
})
