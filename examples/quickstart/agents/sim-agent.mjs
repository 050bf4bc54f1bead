#!/usr/bin/env node
// A stand-in for an AI coding agent, in plain Node (no dependencies), so the quickstart runs
// anywhere without API keys yet behaves like the real thing where Guild can see it:
//   - it holds a working set (the model context, a code index) that is really resident: every
//     page is written, so the process tree's RSS shows it;
//   - it spends most of its time waiting on a "model" (a timer), not on the CPU;
//   - between waits it does real work on real files: counts lines, exports and TODOs, hashes
//     them, and carries forward findings from upstream agents' result files;
//   - it writes its result as JSON under out/, which downstream tasks read.
//
//   node agents/sim-agent.mjs [--role R] [--mem MB] [--steps N] [--think MS] [--grow]
//                             [--out FILE] [--markdown FILE] [input files...]
//
// Flags win; otherwise SIM_ROLE, SIM_MEM_MB, SIM_STEPS, SIM_THINK_MS, SIM_GROW (env) apply.
// SIM_FAIL_ATTEMPTS=n makes the first n attempts (Guild's GUILD_ATTEMPT) fail like a
// rate-limited model API, so the workflow can show a retry.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const env = process.env;
const { values: opt, positionals: inputs } = parseArgs({
  allowPositionals: true,
  options: {
    role: { type: 'string', default: env.SIM_ROLE ?? 'agent' },
    mem: { type: 'string', default: env.SIM_MEM_MB ?? '64' },
    steps: { type: 'string', default: env.SIM_STEPS ?? '3' },
    think: { type: 'string', default: env.SIM_THINK_MS ?? '500' },
    grow: { type: 'boolean', default: env.SIM_GROW === '1' },
    out: { type: 'string' },
    markdown: { type: 'string' },
  },
});
const task = env.GUILD_TASK_ID ?? opt.role;
const memMb = Number(opt.mem);
const steps = Math.max(1, Number(opt.steps));
const thinkMs = Number(opt.think);
const t0 = performance.now();
const log = (msg) => console.log(`[${task}] ${((performance.now() - t0) / 1000).toFixed(1)}s ${msg}`);

// Working memory in 8 MB chunks. Buffer.allocUnsafe + fill writes every page; Buffer.alloc would
// map zero pages that RSS never counts, and the agent would look smaller than it is.
const CHUNK = 8 * 1024 * 1024;
const held = [];
let heldBytes = 0;
function holdUpTo(bytes) {
  while (heldBytes < bytes) {
    const b = Buffer.allocUnsafe(Math.min(CHUNK, bytes - heldBytes));
    b.fill(held.length & 0xff);
    held.push(b);
    heldBytes += b.length;
  }
}
const mb = (n) => `${Math.round(n / 1024 / 1024)} MB`;

/** Real work on one input: a source file, or an upstream agent's JSON result. */
function analyze(path) {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const todos = [];
  lines.forEach((l, i) => {
    const m = /\bTODO\b:?\s*(.*)/.exec(l);
    if (m && !path.endsWith('.json')) todos.push(`${basename(path)}:${i + 1} ${m[1].trim()}`);
  });
  const file = {
    path,
    bytes: Buffer.byteLength(text),
    lines: lines.length,
    exports: lines.filter((l) => /^export\s/.test(l)).length,
    todos,
    sha256: createHash('sha256').update(text).digest('hex'),
  };
  // Findings flow downstream: a reviewer sees what the analyzers found.
  const upstream = path.endsWith('.json') ? JSON.parse(text) : null;
  const inherited = upstream ? [...(upstream.findings ?? []), ...(upstream.files ?? []).flatMap((f) => f.todos ?? [])] : [];
  return { file, inherited };
}

log(`${opt.role} starting: ${memMb} MB working set${opt.grow ? ' (grows per step)' : ''}, ${steps} steps, ${thinkMs} ms per model call, ${inputs.length} inputs`);
if (!opt.grow) holdUpTo(memMb * 1024 * 1024);

const attempt = Number(env.GUILD_ATTEMPT ?? 1);
const files = [];
const findings = new Set();
for (let step = 1; step <= steps; step++) {
  if (opt.grow) holdUpTo(Math.round((memMb * 1024 * 1024 * step) / steps));
  await sleep(thinkMs); // waiting on the model: no CPU, memory still held
  if (step === 1 && attempt <= Number(env.SIM_FAIL_ATTEMPTS ?? 0)) {
    console.error(`[${task}] model API answered 429 (rate limited) on attempt ${attempt}; giving up this attempt`);
    process.exit(75); // EX_TEMPFAIL: worth a retry
  }
  // Each step handles its share of the inputs, as an agent reads files between model calls.
  const mine = inputs.filter((_, i) => i % steps === step - 1);
  for (const path of mine) {
    const { file, inherited } = analyze(path);
    files.push(file);
    for (const f of [...file.todos, ...inherited]) findings.add(f);
  }
  const rss = process.memoryUsage().rss;
  log(`step ${step}/${steps}: holding ${mb(heldBytes)} (rss ${mb(rss)}), read ${mine.map((p) => basename(p)).join(', ') || 'nothing'}`);
}

const result = {
  role: opt.role,
  task,
  attempt,
  model: env.SIM_MODEL ?? 'sim-1',
  working_set_mb: memMb,
  steps,
  think_ms: thinkMs,
  elapsed_ms: Math.round(performance.now() - t0),
  rss_mb: Math.round(process.memoryUsage().rss / 1024 / 1024),
  totals: {
    files: files.length,
    lines: files.reduce((n, f) => n + f.lines, 0),
    exports: files.reduce((n, f) => n + f.exports, 0),
    findings: findings.size,
  },
  // One digest over all inputs: equal inputs give an equal digest, run after run.
  digest: createHash('sha256').update(files.map((f) => f.sha256).join('\n')).digest('hex'),
  findings: [...findings].sort(),
  files,
};
if (opt.out) {
  mkdirSync(dirname(opt.out), { recursive: true });
  writeFileSync(opt.out, `${JSON.stringify(result, null, 2)}\n`);
}
if (opt.markdown) {
  const md = [
    `# ${opt.role} report (${task})`,
    '',
    `${files.length} result files, ${result.totals.lines} lines read, digest \`${result.digest.slice(0, 16)}\``,
    '',
    '## Findings',
    '',
    ...(result.findings.length ? result.findings.map((f) => `- ${f}`) : ['- none']),
    '',
    '## Inputs',
    '',
    ...files.map((f) => `- \`${f.path}\` ${f.lines} lines, sha256 ${f.sha256.slice(0, 12)}`),
    '',
  ];
  mkdirSync(dirname(opt.markdown), { recursive: true });
  writeFileSync(opt.markdown, md.join('\n'));
}
log(`done: ${files.length} files, ${findings.size} findings${opt.out ? `, wrote ${opt.out}` : ''}`);
