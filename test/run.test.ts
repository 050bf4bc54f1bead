import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runWorkflow } from '../src/index.js';
import type { RunReport } from '../src/workflow/report.js';
import type { RunEvent } from '../src/workflow/events.js';
import { alive, hog, maxOverlap, MB, sleep, tempDir, writeWorkflow } from './helpers.js';

const byId = (r: RunReport) => new Map(r.tasks.map((t) => [t.id, t]));
const readPids = (file: string): number[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number)
    : [];

describe('memory hogs under a 600 MB budget', () => {
  it('peak measured RSS stays within the budget, per-type concurrency holds, every task succeeds', async () => {
    const dir = tempDir();
    const tasks = [
      ...Array.from({ length: 6 }, (_, i) => `  - { id: small-${i}, agent: small, run: "${hog(50, 700)}" }`),
      ...Array.from({ length: 4 }, (_, i) => `  - { id: mid-${i}, agent: mid, run: "${hog(140, 900)}" }`),
    ];
    const file = writeWorkflow(
      `budget: 600MB
agents:
  small: { memory: 110MB, cpu: 0.1, concurrency: 2 }
  mid: { memory: 200MB, cpu: 0.1 }
tasks:
${tasks.join('\n')}
`,
      dir,
    );
    const samples: number[] = [];
    const r = await runWorkflow(file, {
      onEvent: (e) => e.type === 'sample' && samples.push(e.totalRssBytes),
    });
    assert.equal(r.ok, true, JSON.stringify(r.tasks.filter((t) => t.status !== 'succeeded')));
    assert.equal(r.budget_bytes, 600 * MB);
    assert.ok(r.peak_rss_bytes > 200 * MB, `something was measured: ${r.peak_rss_bytes / MB} MB`);
    assert.ok(r.peak_rss_bytes <= r.budget_bytes, `peak ${r.peak_rss_bytes / MB} MB > budget`);
    assert.equal(Math.max(...samples), r.peak_rss_bytes);
    for (const t of r.tasks) assert.ok(t.peak_rss_bytes !== null && t.peak_rss_bytes > 40 * MB, `${t.id} peak measured`);
    const small = r.tasks.filter((t) => t.agent === 'small').map((t) => ({ start: t.started_ms!, end: t.ended_ms! }));
    assert.ok(maxOverlap(small) <= 2, 'at most 2 small tasks at once (scheduler view)');
    assert.ok(maxOverlap(r.tasks.map((t) => ({ start: t.started_ms!, end: t.ended_ms! }))) >= 3, 'and things did run in parallel');
    assert.ok(r.lower_bound_ms > 0 && r.makespan_ms >= r.lower_bound_ms * 0.95, `makespan ${r.makespan_ms} vs lower bound ${r.lower_bound_ms}`);
    // History in the embedded store.
    const db = new Database(join(dir, '.guild', 'guild.db'), { readonly: true });
    const run = db.prepare('SELECT status, peak_rss_bytes, report FROM runs WHERE id = ?').get(r.run_id) as { status: string; peak_rss_bytes: number; report: string };
    assert.equal(run.status, 'succeeded');
    assert.equal(run.peak_rss_bytes, r.peak_rss_bytes);
    assert.equal(JSON.parse(run.report).run_id, r.run_id);
    const rows = db.prepare('SELECT id, status, peak_rss_bytes FROM tasks WHERE run_id = ?').all(r.run_id) as { status: string }[];
    assert.equal(rows.length, 10);
    assert.ok(rows.every((x) => x.status === 'succeeded'));
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
  });

  it('per-type concurrency also holds as the processes themselves saw it', async () => {
    const dir = tempDir();
    const log = join(dir, 'hog.log');
    const tasks = Array.from({ length: 6 }, (_, i) => `  - { id: t${i}, agent: capped, env: { HOG_LOG: "${log}" }, run: "${hog(10, 400)}" }`);
    const file = writeWorkflow(
      `budget: 2GB\nagents:\n  capped: { memory: 80MB, cpu: 0.01, concurrency: 2 }\ntasks:\n${tasks.join('\n')}\n`,
      dir,
    );
    const r = await runWorkflow(file, { store: false, onEvent: () => undefined });
    assert.equal(r.ok, true);
    // Each hog logged its own start and end (after allocating, before exiting).
    const spans = new Map<string, { start: number; end: number }>();
    for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
      const [id, what, ts] = line.split(' ');
      const span = spans.get(id!) ?? { start: 0, end: 0 };
      span[what as 'start' | 'end'] = Number(ts);
      spans.set(id!, span);
    }
    assert.equal(spans.size, 6);
    assert.equal(maxOverlap([...spans.values()]), 2);
    assert.match(readFileSync(r.tasks[0]!.log_file!, 'utf8'), /holding 10 MB/);
  });
});

describe('ordering', () => {
  it('keeps priority order when only one task may run', async () => {
    const dir = tempDir();
    const order = join(dir, 'order');
    const prios = ['low', 'medium', 'critical', 'high', 'low', 'critical', 'medium', 'high'];
    const tasks = prios.map((p, i) => `  - { id: ${p}-${i}, agent: a, priority: ${p}, run: "echo ${p}-${i} >> ${order}" }`);
    const file = writeWorkflow(`max_parallel: 1\nagents: { a: { memory: 10MB } }\ntasks:\n${tasks.join('\n')}\n`, dir);
    const r = await runWorkflow(file, { store: false });
    assert.equal(r.ok, true);
    const ran = readFileSync(order, 'utf8').trim().split('\n');
    assert.deepEqual(ran, ['critical-2', 'critical-5', 'high-3', 'high-7', 'medium-1', 'medium-6', 'low-0', 'low-4']);
  });

  it('does not starve the head of the queue with backfill', async () => {
    const dir = tempDir();
    const smalls = Array.from({ length: 8 }, (_, i) => `  - { id: small-${i}, agent: small, priority: low, run: "${hog(5, 1200)}" }`);
    const file = writeWorkflow(
      `budget: 600MB
agents:
  mid: { memory: 250MB, cpu: 0.1, duration: 2s }
  big: { memory: 400MB, cpu: 0.1, duration: 1s }
  small: { memory: 80MB, cpu: 0.05, duration: 10s }
tasks:
  - { id: mid, agent: mid, priority: critical, run: "${hog(150, 2000)}" }
  - { id: head, agent: big, priority: high, run: "${hog(200, 500)}" }
${smalls.join('\n')}
`,
      dir,
    );
    const r = await runWorkflow(file, { store: false });
    assert.equal(r.ok, true);
    const t = byId(r);
    const mid = t.get('mid')!;
    const head = t.get('head')!;
    // The head needs 480 MB free and waits only for `mid`: it starts as soon as mid is gone.
    assert.ok(head.started_ms! <= mid.ended_ms! + 600, `head started ${head.started_ms} ms, mid ended ${mid.ended_ms} ms`);
    // Before the head starts, only what fits in the memory it will leave spare may jump ahead:
    // 600 − 1.2 × 400 = 120 MB, room for one 80 MB small task at a time.
    const before = r.tasks
      .filter((x) => x.agent === 'small' && x.started_ms! < head.started_ms!)
      .map((x) => ({ start: x.started_ms!, end: Math.min(x.ended_ms!, head.started_ms!) }));
    assert.ok(before.length >= 1, 'backfill did happen');
    assert.ok(maxOverlap(before) <= 1, `${maxOverlap(before)} small tasks at once ahead of the head`);
    assert.ok(r.peak_rss_bytes <= r.budget_bytes);
  });
});

describe('timeouts, retries, failures', () => {
  it('a timeout kills the whole tree, grandchildren included', async () => {
    const dir = tempDir();
    const pidfile = join(dir, 'pids');
    const file = writeWorkflow(
      `kill_grace: 500ms
agents: { a: { memory: 50MB, timeout: 1500ms } }
tasks:
  - id: stuck
    agent: a
    env: { HOG_PIDFILE: "${pidfile}" }
    run: "${hog(5, 60000, '0 --grandchild 60000')} & wait"
`,
      dir,
    );
    const r = await runWorkflow(file, { store: false });
    const t = r.tasks[0]!;
    assert.equal(t.status, 'failed');
    assert.match(t.error!, /timed out after 1\.5s/);
    assert.equal(t.signal, 'SIGTERM');
    const pids = readPids(pidfile);
    assert.equal(pids.length, 2, 'hog and grandchild wrote their pids');
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} survived`);
    assert.equal(r.ok, false);
  });

  it('a finished task leaves no background process behind', async () => {
    const dir = tempDir();
    const pidfile = join(dir, 'pid');
    const file = writeWorkflow(`agents: { a: {} }\ntasks:\n  - { id: bg, agent: a, run: "sleep 60 & echo $! > ${pidfile}" }\n`, dir);
    const r = await runWorkflow(file, { store: false });
    assert.equal(r.ok, true);
    const [pid] = readPids(pidfile);
    assert.ok(pid);
    assert.equal(alive(pid), false);
  });

  it('retries with backoff and records the attempts', async () => {
    const dir = tempDir();
    const marker = join(dir, 'marker');
    const file = writeWorkflow(
      `agents: { flaky: { retries: 2 } }\ntasks:\n  - { id: f, agent: flaky, run: "test -f ${marker} || { touch ${marker}; echo first try fails; exit 3; }" }\n`,
      dir,
    );
    const events: RunEvent[] = [];
    const r = await runWorkflow(file, { store: false, onEvent: (e) => events.push(e) });
    const t = r.tasks[0]!;
    assert.equal(t.status, 'succeeded');
    assert.equal(t.attempts, 2);
    const ends = events.filter((e) => e.type === 'task-end');
    assert.deepEqual(
      ends.map((e) => (e.type === 'task-end' ? [e.status, e.exitCode] : [])),
      [
        ['retrying', 3],
        ['succeeded', 0],
      ],
    );
    assert.match(readFileSync(t.log_file!, 'utf8'), /first try fails\n\n--- guild: attempt 2 of f ---/);
  });

  it('fails fast: dependents skipped, unstarted tasks cancelled, running ones finish', async () => {
    const dir = tempDir();
    const file = writeWorkflow(
      `max_parallel: 2
agents: { a: { memory: 10MB } }
tasks:
  - { id: bad, agent: a, priority: critical, run: "exit 4" }
  - { id: slow, agent: a, priority: high, run: "sleep 1" }
  - { id: after-bad, agent: a, needs: [bad], run: "true" }
  - { id: later, agent: a, priority: low, run: "true" }
`,
      dir,
    );
    const r = await runWorkflow(file, { store: false });
    const t = byId(r);
    assert.equal(t.get('bad')!.status, 'failed');
    assert.equal(t.get('bad')!.exit_code, 4);
    assert.equal(t.get('bad')!.error, 'exited with code 4');
    assert.equal(t.get('slow')!.status, 'succeeded');
    assert.equal(t.get('after-bad')!.status, 'skipped');
    assert.match(t.get('after-bad')!.error!, /dependency 'bad' failed/);
    assert.equal(t.get('later')!.status, 'cancelled');
    assert.equal(r.ok, false);
  });

  it('--keep-going runs everything that does not depend on the failure', async () => {
    const dir = tempDir();
    const file = writeWorkflow(
      `agents: { a: { memory: 10MB } }
tasks:
  - { id: bad, agent: a, run: "exit 1" }
  - { id: after-bad, agent: a, needs: [bad], run: "true" }
  - { id: after-after, agent: a, needs: [after-bad], run: "true" }
  - { id: other, agent: a, run: "sleep 0.3" }
  - { id: after-other, agent: a, needs: [other], run: "true" }
`,
      dir,
    );
    const r = await runWorkflow(file, { store: false, keepGoing: true });
    assert.deepEqual(
      r.tasks.map((t) => [t.id, t.status]),
      [
        ['bad', 'failed'],
        ['after-bad', 'skipped'],
        ['after-after', 'skipped'],
        ['other', 'succeeded'],
        ['after-other', 'succeeded'],
      ],
    );
    assert.deepEqual(r.counts, { succeeded: 2, cached: 0, failed: 1, skipped: 2, cancelled: 0 });
  });

  it('an abort kills running trees and cancels the rest, keeping finished results', async () => {
    const dir = tempDir();
    const pidfile = join(dir, 'pids');
    const file = writeWorkflow(
      `max_parallel: 2
agents: { a: { memory: 50MB } }
tasks:
  - { id: quick, agent: a, run: "true" }
  - { id: long, agent: a, needs: [quick], env: { HOG_PIDFILE: "${pidfile}" }, run: "${hog(5, 60000, '0 --grandchild 60000')}" }
  - { id: never, agent: a, needs: [long], run: "true" }
`,
      dir,
    );
    const ac = new AbortController();
    const p = runWorkflow(file, { signal: ac.signal });
    for (let i = 0; i < 100 && readPids(pidfile).length < 2; i++) await sleep(50);
    ac.abort();
    const r = await p;
    assert.equal(r.interrupted, true);
    assert.deepEqual(
      r.tasks.map((t) => [t.id, t.status]),
      [
        ['quick', 'succeeded'],
        ['long', 'cancelled'],
        ['never', 'cancelled'],
      ],
    );
    for (const pid of readPids(pidfile)) assert.equal(alive(pid), false, `pid ${pid} survived`);
    const db = new Database(join(dir, '.guild', 'guild.db'), { readonly: true });
    assert.equal((db.prepare('SELECT status FROM runs').get() as { status: string }).status, 'interrupted');
    assert.equal((db.prepare(`SELECT status FROM tasks WHERE id = 'quick'`).get() as { status: string }).status, 'succeeded');
    db.close();
  });
});

describe('library use', () => {
  it('runs in-process functions and shell commands from a definition object', async () => {
    const dir = tempDir();
    const seen: string[] = [];
    const r = await runWorkflow(
      {
        budget: '256MB',
        agents: { fn: { memory: '1MB', concurrency: 1 }, sh: { memory: '20MB' } },
        tasks: [
          { id: 'one', agent: 'fn', run: async () => void seen.push('one') },
          { id: 'two', agent: 'fn', needs: ['one'], run: () => void seen.push('two') },
          { id: 'three', agent: 'sh', needs: ['two'], run: `echo ok > ${join(dir, 'out')}` },
          {
            id: 'boom',
            agent: 'fn',
            needs: ['three'],
            run: () => {
              throw new Error('kaput');
            },
          },
        ],
      },
      { dir, store: false },
    );
    assert.deepEqual(seen, ['one', 'two']);
    assert.equal(readFileSync(join(dir, 'out'), 'utf8'), 'ok\n');
    const boom = byId(r).get('boom')!;
    assert.equal(boom.status, 'failed');
    assert.equal(boom.error, 'kaput');
    assert.equal(byId(r).get('one')!.peak_rss_bytes, null, 'no per-task RSS is invented for functions');
  });

  it('a function that times out gets its signal aborted', async () => {
    let aborted = false;
    const r = await runWorkflow(
      {
        agents: { fn: { timeout: '100ms' } },
        tasks: [
          {
            id: 'slow',
            agent: 'fn',
            run: ({ signal }) =>
              new Promise<void>((resolve) => {
                signal.addEventListener('abort', () => {
                  aborted = true;
                  resolve();
                });
              }),
          },
        ],
      },
      { dir: tempDir(), store: false },
    );
    assert.equal(r.tasks[0]!.status, 'failed');
    assert.match(r.tasks[0]!.error!, /timed out after 100ms/);
    assert.equal(aborted, true);
  });
});

