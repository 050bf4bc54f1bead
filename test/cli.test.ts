import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { alive, GUILD, guild, hog, sleep, tempDir, writeWorkflow } from './helpers.js';

/** Pids of every process whose environment says it belongs to `runId`. */
function processesOfRun(runId: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, 'latin1').includes(`GUILD_RUN_ID=${runId}\0`) && alive(Number(e))) out.push(Number(e));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

describe('guild run (CLI)', () => {
  it('--json prints exactly one JSON document on stdout, progress on stderr, exit 0', async () => {
    const file = writeWorkflow(`agents: { a: { memory: 20MB } }\ntasks:\n  - { id: one, agent: a, run: "echo hi" }\n  - { id: two, agent: a, needs: [one], run: "echo there" }\n`);
    const r = await guild(['run', file, '--json', '--budget', '200MB']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as Record<string, unknown> & { tasks: Record<string, unknown>[] };
    for (const k of ['ok', 'makespan_ms', 'lower_bound_ms', 'budget_bytes', 'peak_rss_bytes', 'tasks']) assert.ok(k in doc, k);
    assert.equal(doc.ok, true);
    assert.equal(doc.budget_bytes, 200 * 1024 * 1024);
    for (const k of ['id', 'agent', 'status', 'exit_code', 'signal', 'started_ms', 'ended_ms', 'peak_rss_bytes', 'attempts', 'error']) {
      assert.ok(k in doc.tasks[0]!, `tasks[].${k}`);
    }
    assert.match(r.stderr, /start one/);
    assert.match(r.stderr, /ok {4}two/);
  });

  it('--json through a pipe: a report longer than the pipe holds comes out whole', async () => {
    const tasks = Array.from({ length: 220 }, (_, i) => `  - { id: task-with-a-rather-long-name-${i}, agent: a, run: "true" }`).join('\n');
    const file = writeWorkflow(`agents: { a: { memory: 1MB } }\ntasks:\n${tasks}\n`);
    const r = await guild(['run', file, '--json', '--progress', 'none', '--no-telemetry', '--budget', '200MB']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 128 * 1024, `${r.stdout.length} bytes`);
    assert.equal((JSON.parse(r.stdout) as { tasks: unknown[] }).tasks.length, 220);
  });

  it('exit 1 when a task fails, with the summary on stdout', async () => {
    const file = writeWorkflow(`agents: { a: {} }\ntasks:\n  - { id: broken, agent: a, run: "exit 7" }\n`);
    const r = await guild(['run', file, '--progress', 'none']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAILED: 1 tasks: 1 failed/);
    assert.match(r.stdout, /broken\s+a\s+failed .*exited with code 7/);
    assert.equal(r.stderr, '');
  });

  it('after SIGINT no process of the run survives, finished results are kept, exit 130', async () => {
    const dir = tempDir();
    const pidfile = join(dir, 'pids');
    const long = Array.from({ length: 3 }, (_, i) => `  - { id: long-${i}, agent: a, needs: [quick], env: { HOG_PIDFILE: "${pidfile}" }, run: "${hog(20, 60000, '0 --grandchild 60000')}" }`);
    const file = writeWorkflow(`agents: { a: { memory: 100MB } }\ntasks:\n  - { id: quick, agent: a, run: "true" }\n${long.join('\n')}\n  - { id: last, agent: a, needs: [long-0], run: "true" }\n`, dir);
    const child = spawn(process.execPath, [GUILD, 'run', file, '--json', '--budget', '1GB'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const pids = (): number[] => (existsSync(pidfile) ? readFileSync(pidfile, 'utf8').split('\n').filter(Boolean).map(Number) : []);
    for (let i = 0; i < 200 && pids().length < 6; i++) await sleep(50);
    assert.equal(pids().length, 6, 'three hogs and three grandchildren are up');
    const runId = /run (\S+):/.exec(stderr)?.[1];
    assert.ok(runId, stderr);
    assert.ok(processesOfRun(runId).length >= 6);

    child.kill('SIGINT');
    const code = await closed;
    assert.equal(code, 130, stderr);
    for (const pid of pids()) assert.equal(alive(pid), false, `pid ${pid} survived`);
    assert.deepEqual(processesOfRun(runId), []);
    const doc = JSON.parse(stdout) as { interrupted: boolean; tasks: { id: string; status: string }[] };
    assert.equal(doc.interrupted, true);
    assert.deepEqual(
      doc.tasks.map((t) => `${t.id}:${t.status}`),
      ['quick:succeeded', 'long-0:cancelled', 'long-1:cancelled', 'long-2:cancelled', 'last:cancelled'],
    );
  });
});

describe('guild init, doctor, --version, --help', () => {
  it('init writes a starter workflow that runs', async () => {
    const dir = tempDir();
    const init = await guild(['init'], { cwd: dir });
    assert.equal(init.code, 0);
    assert.ok(existsSync(join(dir, 'guild.yaml')));
    const again = await guild(['init'], { cwd: dir });
    assert.equal(again.code, 2, 'refuses to overwrite');
    const run = await guild(['run', 'guild.yaml', '--json'], { cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { ok: boolean }).ok, true);
  });

  it('doctor --json shows the memory source in force and the default budget', async () => {
    const r = await guild(['doctor', '--json']);
    assert.equal(r.code, 0);
    const d = JSON.parse(r.stdout) as { memory: { source: string; default_budget_bytes: number; effective_limit_bytes: number }; cpu: { cores: number } };
    assert.ok(['cgroup-v1', 'cgroup-v2', 'meminfo'].includes(d.memory.source));
    assert.equal(d.memory.default_budget_bytes, Math.floor(d.memory.effective_limit_bytes * 0.75));
    assert.ok(d.cpu.cores >= 1);
    const human = await guild(['doctor']);
    assert.match(human.stdout, /source in force\s+(cgroup-v1|cgroup-v2|meminfo)/);
  });

  it('--version and --help exit 0; an unknown command exits 2', async () => {
    const v = await guild(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
    const h = await guild(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /run \[options\] <file>/);
    const bad = await guild(['frobnicate']);
    assert.equal(bad.code, 2);
  });
});
