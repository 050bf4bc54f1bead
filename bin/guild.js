#!/usr/bin/env node
// The `guild` command. The CLI is compiled to dist/ by `npm install` (the "prepare" script).
if (process.argv[2] === 'run') {
  // A run spends its life waiting on agents. V8's optimizing compiler (TurboFan) pages in about
  // 4 MB of Node's own code the first time it optimizes anything, which Node's module loading does
  // within a second of start; the run then holds them for its whole life. Without it a run's JS
  // stays in the interpreter and the baseline compiler: Guild's CPU time over a 400-task run was
  // the same (bench/startup.ts measures the footprint). Set before any module loads; library
  // users and the other commands keep V8's defaults.
  (await import('node:v8')).setFlagsFromString('--max-opt=1');
}
await import('../dist/src/cli/main.js');
