#!/usr/bin/env node
// The `parley` command. A committed file rather than dist/main.js itself, so that installing the
// workspace can link it before the first build (pnpm warned on every fresh install otherwise).
import '../dist/main.js'
