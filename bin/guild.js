#!/usr/bin/env node
// The `guild` command. The CLI is compiled to dist/ by `npm install` (the "prepare" script).
import { setFlagsFromString } from 'node:v8';

// V8 doubles the young generation whenever more bytes have survived scavenges than it holds.
// Loading Guild's modules is nothing but survivors, so by the time a run waits on its agents the
// young generation has grown from 1 MB to 8 MB per semi-space: 5-6 MB of RSS that a waiting run
// does not use (bench/startup.ts). --max-semi-space-size cannot change once V8 runs; the growth
// factor is read at each growth, so 1 keeps the young generation at its initial size. Set here,
// for the CLI's own process only: importing the library never changes its host's V8 flags.
setFlagsFromString('--semi-space-growth-factor=1');
await import('../dist/src/cli/main.js');
