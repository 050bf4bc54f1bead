#!/usr/bin/env node
// The `guild` command. The CLI is compiled to dist/ by `npm install` (the "prepare" script).
if (process.argv[2] === 'run') {
  // A run spends its life waiting on agents. V8's compilers page in Node's own code and fill code
  // space the first time they compile anything, which Node's module loading does within a second
  // of start; the run then holds it for its whole life: ~4 MB for the optimizing compiler
  // (TurboFan), ~0.8 MB more for the baseline compiler (Sparkplug). Without them a run's JS stays
  // in V8's interpreter: Guild's own CPU time over a 400-task run was the same (1.8-2.0 s either
  // way, taking turns; bench/startup.ts measures the footprint). Set before any module loads;
  // library users and the other commands keep V8's defaults.
  (await import('node:v8')).setFlagsFromString('--max-opt=0');
}
// `guild run` with an ordinary command line does not load commander (src/cli/run-main.ts).
await import(process.argv[2] === 'run' ? '../dist/src/cli/run-main.js' : '../dist/src/cli/main.js');
