/**
 * A connection flood on the dashboard of a real `guild run` under a 1,024-descriptor limit: 1,100
 * raw TCP connections that never send a byte. The run must keep its descriptors (the dashboard
 * holds at most its cap), finish with its report, exit 0 and leave no run `running` in the store;
 * the dashboard drops the half-open connections by itself and then answers again.
 *
 * (Before the cap, the 1,100 accepted sockets took every descriptor and the next sample's
 * `process.memoryUsage.rss()` threw EMFILE: exit 1, no report, the run left `running`.)
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { DashboardState } from '../src/telemetry/state.js';
import type { RunReport } from '../src/workflow/report.js';
import { freePort, GUILD, ROOT, sleep, tempDir, writeWorkflow } from './helpers.js';

const FD_LIMIT = 1024;
const FLOOD = 1100;

/** Why the test cannot run here, or null. */
function cannotRun(): string | null {
  if (spawnSync('prlimit', ['--version']).status !== 0) return 'prlimit (util-linux) is not installed: cannot run guild under a 1,024-descriptor limit';
  const own = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  if (own && Number(own[1]) < FLOOD + 200) return `this test process may open only ${own[1]} files: it needs ${FLOOD + 200} for the flood's own sockets`;
  return null;
}

async function getState(port: number): Promise<{ status: number; state: DashboardState | null }> {
  const res = await fetch(`http://127.0.0.1:${port}/api/state`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, state: res.status === 200 ? (JSON.parse(text) as DashboardState) : null };
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | null> | T | null): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve()
      .then(probe)
      .catch(() => null);
    if (v !== null && v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

interface Half {
  sock: Socket;
  connected: boolean;
  closed: boolean;
  /** Bytes the server sent (a 408 at most: these connections never send a request). */
  got: number;
}

/** A TCP connection that sends nothing, ever. */
function halfOpen(port: number): Half {
  const sock = connect(port, '127.0.0.1');
  const h: Half = { sock, connected: false, closed: false, got: 0 };
  sock.on('connect', () => (h.connected = true));
  sock.on('data', (d: Buffer) => (h.got += d.length));
  sock.on('error', () => undefined); // a reset is a close here
  sock.on('close', () => (h.closed = true));
  return h;
}

const reason = cannotRun();

describe('the dashboard bounds itself under a connection flood', { skip: reason ?? false }, () => {
  it(`${FLOOD} half-open connections under --nofile=${FD_LIMIT}: the run keeps its descriptors, finishes, reports and exits 0`, async () => {
    const dir = tempDir('guild-flood-');
    const release = join(dir, 'release');
    // The last task waits for the test: the run is still running whatever the machine's speed.
    const file = writeWorkflow(
      `name: flood
agents: { a: { memory: 20MB } }
tasks:
  - { id: s1, agent: a, run: "sleep 2" }
  - { id: s2, agent: a, run: "sleep 2" }
  - { id: s3, agent: a, needs: [s1], run: "sleep 2" }
  - { id: gate, agent: a, needs: [s2], timeout: 180s, run: "while [ ! -e '${release}' ]; do sleep 0.1; done" }
`,
      dir,
    );
    const port = await freePort();
    // prlimit execs node: child.pid is Guild's own pid.
    const child = spawn('prlimit', [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, process.execPath, GUILD, 'run', file, '--json', '--progress', 'none', '--no-cache', '--dashboard', String(port)], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    let exitCode: number | null | undefined;
    void exited.then((c) => (exitCode = c));
    const flood: Half[] = [];
    const killer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    try {
      await until('the dashboard of the running run', 30_000, async () => {
        if (exitCode !== undefined) throw new Error(`guild exited early (${exitCode}): ${stderr}`);
        const r = await getState(port);
        return r.state?.run?.status === 'running' ? r : null;
      }).catch((e: Error) => assert.fail(`${e.message}\n${stderr}`));

      for (let i = 0; i < FLOOD; i++) flood.push(halfOpen(port));
      // Every connection reaches the server: accepted and held, or accepted and closed over the cap.
      await until('every flood connection to be accepted or refused', 60_000, () => (flood.every((h) => h.connected || h.closed) ? true : null));
      await sleep(1000); // several sampling instants with the flood in place

      assert.equal(exitCode, undefined, `guild died under the flood: ${stderr}`);
      const fds = readdirSync(`/proc/${child.pid}/fd`).length;
      const held = flood.filter((h) => !h.closed).length;
      assert.ok(held <= FD_LIMIT / 2, `the dashboard holds ${held} of the ${FLOOD} connections: at most its cap`);
      assert.ok(fds < FD_LIMIT / 2, `Guild has ${fds} descriptors open under the flood; most of the ${FD_LIMIT} stay the run's`);

      // Half-open connections are dropped by the headers timeout, not kept until the client gives up.
      await until('the dashboard to drop every half-open connection', 90_000, () => (flood.every((h) => h.closed) ? true : null));
      assert.equal(exitCode, undefined, `guild died under the flood: ${stderr}`);
      assert.ok(flood.every((h) => h.got === 0 || h.got < 200), 'at most a 408 on a connection that never asked anything');

      const after = await getState(port);
      assert.equal(after.status, 200, 'the dashboard answers once the flood is gone');
      assert.equal(after.state?.run?.status, 'running');

      writeFileSync(release, '');
      const code = await exited;
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout) as RunReport;
      assert.equal(report.ok, true);
      assert.deepEqual(report.tasks.map((t) => [t.id, t.status]).sort(), [['gate', 'succeeded'], ['s1', 'succeeded'], ['s2', 'succeeded'], ['s3', 'succeeded']]);

      const db = new Database(join(dirname(file), '.guild', 'guild.db'), { readonly: true });
      try {
        const rows = db.prepare('SELECT id, status FROM runs').all() as { id: string; status: string }[];
        assert.deepEqual(rows, [{ id: report.run_id, status: 'succeeded' }], 'the run is stored as finished, not left running');
      } finally {
        db.close();
      }
    } finally {
      clearTimeout(killer);
      for (const h of flood) h.sock.destroy();
      writeFileSync(release, '');
      if (exitCode === undefined) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });
});
