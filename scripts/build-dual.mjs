// Builds a library package twice from one source: ES modules into dist/esm (tsconfig.build.json) and
// CommonJS into dist/cjs (tsconfig.cjs.json), each with its own declarations, so `import` and `require`
// both get code and types. dist/cjs/package.json marks that folder CommonJS for Node and TypeScript.
// Run from the package folder: `node ../../scripts/build-dual.mjs`.
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const tsc = createRequire(`${process.cwd()}/`).resolve('typescript/bin/tsc')
// A clean dist: a file deleted from src must not linger in the package.
rmSync('dist', { recursive: true, force: true })
for (const config of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  const { status } = spawnSync(process.execPath, [tsc, '-p', config], { stdio: 'inherit' })
  if (status !== 0) process.exit(status ?? 1)
}
mkdirSync('dist/cjs', { recursive: true })
writeFileSync('dist/cjs/package.json', `${JSON.stringify({ type: 'commonjs' })}\n`)
