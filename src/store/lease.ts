import { hostname } from 'node:os';
import { GuildError } from '../errors.js';
import { describeEnded, endLeftovers, type LeftoverLease, type LeftoverOptions, type LeftoversEnded } from '../system/leftovers.js';
import { identityAlive, selfIdentity, type ProcessIdentity } from '../system/process-identity.js';
import { shareDatabase, type Db } from './db.js';

/**
 * The run lease, which is also the folder's run lock.
 *
 * Invariant: in one store, at most one run is `running` with a live owner. A run row is inserted
 * as `running` only inside a `BEGIN IMMEDIATE` transaction that first found no live owner among
 * the `running` rows, and SQLite lets one such transaction run at a time; so two starts can never
 * both see the folder free. A row stays `running` until its run finishes (`RunHistory.finishRun`),
 * its lease is released, or a later start finds its owner dead and marks it `crashed`.
 *
 * "Live" is judged from /proc: the owner's pid exists, is not a zombie, and has the start time
 * recorded (a reused pid has another). An owner on another host cannot be judged from here and is
 * taken as live: a lock is never broken on a guess.
 */

/** Who owns a run: a process on a host. */
export interface LeaseOwner extends ProcessIdentity {
  host: string;
}

/** What holds a folder's lock (a run, or a maintenance command), as a waiting start sees it. */
export interface RunLockHolder {
  /** The run's id; for a maintenance command, the id of its lock row. */
  runId: string;
  /** `run`, or the command that holds the lock: `cache clear`, `cache prune`. */
  purpose: string;
  /** null for a run recorded before leases existed (it is never live). */
  pid: number | null;
  host: string | null;
  /** Unix ms. */
  startedAt: number;
}

/** Another live run holds the folder's run lock. Code `LOCKED`. */
export class RunLockedError extends GuildError {
  readonly holder: RunLockHolder;
  constructor(holder: RunLockHolder, why = 'holds the run lock of this folder') {
    super('LOCKED', `${describeLockHolder(holder)} ${why}`);
    this.holder = holder;
  }
}

/** The row a run starts with (`RunHistory.startRun`'s fields). */
export interface NewRun {
  id: string;
  workflow: string;
  name: string;
  budget_bytes: number;
  /** Unix ms. @default when the lock is taken */
  started_at?: number;
}

/** A run whose owner was found dead and whose leftovers this start ended. */
export interface CrashedRun {
  id: string;
  owner: { pid: number | null; host: string | null };
  ended: LeftoversEnded;
  /** What the store's `note` says, one line. */
  note: string;
}

export interface AcquireOptions {
  /** While another live run holds the lock: wait for it (true) or throw `RunLockedError` (false). @default true */
  wait?: boolean;
  /** Called once, when the start first has to wait. */
  onWait?: (holder: RunLockHolder) => void;
  /** Aborting stops a wait: the start throws `RunLockedError`. */
  signal?: AbortSignal;
  /** How often a waiting start looks again. @default 250 */
  pollMs?: number;
  /** @default this process on this host */
  owner?: LeaseOwner;
  /** @default '/proc' */
  procRoot?: string;
  /** How dead runs' leftovers are ended (tests inject a fake /proc and kill). */
  leftovers?: LeftoverOptions;
  /**
   * The run this process is a task of, if any: waiting for that run would wait for ourselves, so
   * a start inside one of its tasks is refused at once. @default process.env.GUILD_RUN_ID
   */
  insideRun?: string;
}

/** This process as a run's owner. */
export function selfOwner(procRoot = '/proc'): LeaseOwner {
  return { ...selfIdentity(procRoot), host: hostname() };
}

interface RunningRow {
  id: string;
  started_at: number;
  owner_pid: number | null;
  owner_start_time: number | null;
  owner_host: string | null;
}

const DEFAULT_POLL_MS = 250;

/**
 * A run's hold on its folder: taken by `RunLease.acquire` before the run starts, each attempt's
 * lease recorded as it starts, released when the run ends.
 */
export class RunLease {
  readonly runId: string;
  /** Runs found dead at the start, and what was ended of each. */
  readonly crashed: readonly CrashedRun[];
  readonly #db: Db;
  readonly #ownsDb: boolean;
  readonly #record;
  readonly #owner: LeaseOwner;
  #released = false;

  private constructor(db: Db, ownsDb: boolean, runId: string, owner: LeaseOwner, crashed: CrashedRun[]) {
    this.#db = db;
    this.#ownsDb = ownsDb;
    this.runId = runId;
    this.#owner = owner;
    this.crashed = crashed;
    this.#record = db.prepare(
      `INSERT OR REPLACE INTO task_leases (run_id, task_id, attempt, cgroups, pid, start_time) VALUES (?, ?, ?, ?, ?, ?)`,
    );
  }

  /**
   * Takes the folder's run lock and inserts `run` as `running`, owned by this process; first
   * waits (polling: SQLite cannot tell one process when another's owner dies, only /proc can)
   * while another live run holds it, or throws `RunLockedError` with `wait: false`. Runs whose
   * owner is dead are taken over at once: their leftovers are ended and they are marked `crashed`
   * before this resolves, so nothing of theirs runs beside the new run.
   * @param store the store's file (a connection is opened and closed with the lease) or an open one
   */
  static async acquire(store: string | Db, run: NewRun, options: AcquireOptions = {}): Promise<RunLease> {
    const owner = options.owner ?? selfOwner(options.procRoot);
    const insertRun = (db: Db): void => {
      db.prepare(
        `INSERT INTO runs (id, workflow, name, status, started_at, budget_bytes, owner_pid, owner_start_time, owner_host)
         VALUES (@id, @workflow, @name, 'running', @started_at, @budget_bytes, @owner_pid, @owner_start_time, @owner_host)`,
      ).run({
        id: run.id,
        workflow: run.workflow,
        name: run.name,
        started_at: run.started_at ?? Date.now(),
        budget_bytes: run.budget_bytes,
        owner_pid: owner.pid,
        owner_start_time: owner.startTime,
        owner_host: owner.host,
      });
    };
    return withLock(store, insertRun, { ...options, owner }, async (db, dead) => {
      const crashed: CrashedRun[] = [];
      for (const d of dead) crashed.push(await takeOver(db, d, `run ${run.id}`, options.leftovers));
      return new RunLease(db, typeof store === 'string', run.id, owner, crashed);
    });
  }

  /**
   * Whether this run still holds the folder's lock: its row is `running` and owned by this
   * process. False after release, or when another start took the run over as dead (a store
   * shared with a host that judged wrong): then nothing it made may be stored as a result.
   */
  holds(): boolean {
    if (this.#released) return false;
    const row = this.#db.prepare(`SELECT status, owner_pid, owner_start_time, owner_host FROM runs WHERE id = ?`).get(this.runId) as
      | { status: string; owner_pid: number | null; owner_start_time: number | null; owner_host: string | null }
      | undefined;
    return row !== undefined && row.status === 'running' && row.owner_pid === this.#owner.pid && row.owner_start_time === this.#owner.startTime && row.owner_host === this.#owner.host;
  }

  /**
   * Records where an attempt runs, as soon as it started. A Guild killed between the spawn and
   * this write still leaves its tasks findable: they carry GUILD_RUN_ID.
   */
  recordAttempt(taskId: string, attempt: number, lease: LeftoverLease): void {
    if (this.#released) return;
    this.#record.run(this.runId, taskId, attempt, JSON.stringify(lease.cgroups), lease.pid, lease.startTime);
  }

  /** One line per crashed run taken over, for the run's warnings. */
  get notes(): string[] {
    return this.crashed.map((c) => {
      const who = c.owner.pid === null ? 'no owner recorded' : `${describeHolder({ runId: c.id, purpose: 'run', pid: c.owner.pid, host: c.owner.host, startedAt: 0 })} gone`;
      return `run ${c.id} had crashed (${who}): ${describeEnded(c.ended)}`;
    });
  }

  /**
   * Lets the lock go. The run normally finished first (its row is no longer `running`); a row
   * still `running` here means the run ended without finishing (an error inside Guild), and is
   * marked `crashed` with `why`. Idempotent.
   */
  release(why = 'the run ended without finishing (an error inside Guild)'): void {
    if (this.#released) return;
    this.#released = true;
    try {
      this.#db.transaction(() => {
        this.#db.prepare(`DELETE FROM task_leases WHERE run_id = ?`).run(this.runId);
        this.#db.prepare(`UPDATE runs SET status = 'crashed', ended_at = ?, note = ? WHERE id = ? AND status = 'running'`).run(Date.now(), why, this.runId);
      })();
    } finally {
      if (this.#ownsDb) this.#db.close();
    }
  }
}

/**
 * The folder's lock held by a maintenance command (`guild cache clear|prune`) rather than a run:
 * it excludes runs and other holders exactly as a run does, and records no run.
 */
export class FolderLock {
  readonly id: string;
  readonly purpose: string;
  readonly #db: Db;
  readonly #ownsDb: boolean;
  #released = false;

  private constructor(db: Db, ownsDb: boolean, id: string, purpose: string) {
    this.#db = db;
    this.#ownsDb = ownsDb;
    this.id = id;
    this.purpose = purpose;
  }

  /**
   * Takes the folder's lock for `purpose`, waiting while a live run (or another holder) has it,
   * as `RunLease.acquire` does. Runs found dead are taken over (their leftovers ended, marked
   * `crashed`) before this resolves.
   */
  static async acquire(store: string | Db, purpose: string, options: AcquireOptions = {}): Promise<FolderLock> {
    const owner = options.owner ?? selfOwner(options.procRoot);
    const id = `${purpose.replace(/\W+/g, '-')}-${owner.pid}-${Date.now().toString(36)}`;
    const insert = (db: Db): void => {
      db.prepare(`INSERT INTO folder_locks (id, purpose, started_at, owner_pid, owner_start_time, owner_host) VALUES (?, ?, ?, ?, ?, ?)`).run(
        id,
        purpose,
        Date.now(),
        owner.pid,
        owner.startTime,
        owner.host,
      );
    };
    return withLock(store, insert, { ...options, owner }, async (db, dead) => {
      for (const d of dead) await takeOver(db, d, `guild ${purpose}`, options.leftovers);
      return new FolderLock(db, typeof store === 'string', id, purpose);
    });
  }

  /** Lets the lock go. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      this.#db.prepare(`DELETE FROM folder_locks WHERE id = ?`).run(this.id);
    } finally {
      if (this.#ownsDb) this.#db.close();
    }
  }
}

/**
 * Takes the lock (`insert` records the new holder inside the same transaction that found it
 * free), waiting or refusing as `options` say, then hands the dead runs found to `taken`.
 */
async function withLock<T>(
  store: string | Db,
  insert: (db: Db) => void,
  options: AcquireOptions & { owner: LeaseOwner },
  taken: (db: Db, dead: RunningRow[]) => Promise<T>,
): Promise<T> {
  const db = typeof store === 'string' ? shareDatabase(store) : store;
  try {
    const procRoot = options.procRoot ?? '/proc';
    let waited = false;
    for (;;) {
      let r;
      try {
        r = takeLock(db, insert, options.owner, procRoot);
      } catch (e) {
        // Another connection held the write lock past busy_timeout (a long write): look again.
        if ((e as { code?: unknown }).code !== 'SQLITE_BUSY') throw e;
        if (!(await pause(options.pollMs ?? DEFAULT_POLL_MS, options.signal))) throw e;
        continue;
      }
      if (r.holder === null) return await taken(db, r.dead);
      if (options.wait === false) throw new RunLockedError(r.holder);
      if (r.holder.runId === (options.insideRun ?? process.env.GUILD_RUN_ID)) {
        throw new RunLockedError(r.holder, 'holds the run lock of this folder, and this is one of its tasks: waiting would never end (run it in another folder)');
      }
      if (!waited) options.onWait?.(r.holder);
      waited = true;
      if (!(await pause(options.pollMs ?? DEFAULT_POLL_MS, options.signal))) {
        throw new RunLockedError(r.holder, 'still holds the run lock of this folder: stopped waiting (interrupted)');
      }
    }
  } catch (e) {
    if (typeof store === 'string') db.close();
    throw e;
  }
}

interface LockRow {
  id: string;
  purpose: string;
  started_at: number;
  owner_pid: number;
  owner_start_time: number;
  owner_host: string;
}

/**
 * One look at the lock, in one IMMEDIATE transaction: the live holder (a run, or a maintenance
 * command's row), or the lock taken by `insert` (and the dead runs to take over; dead lock rows
 * are simply deleted, since a maintenance command leaves no processes behind).
 */
function takeLock(db: Db, insert: (db: Db) => void, owner: LeaseOwner, procRoot: string): { holder: RunLockHolder; dead: [] } | { holder: null; dead: RunningRow[] } {
  return db
    .transaction(() => {
      const running = db.prepare(`SELECT id, started_at, owner_pid, owner_start_time, owner_host FROM runs WHERE status = 'running' ORDER BY started_at`).all() as RunningRow[];
      const dead: RunningRow[] = [];
      for (const row of running) {
        if (ownerAlive(row, owner, procRoot)) {
          return { holder: { runId: row.id, purpose: 'run', pid: row.owner_pid, host: row.owner_host, startedAt: row.started_at }, dead: [] as [] };
        }
        dead.push(row);
      }
      const locks = db.prepare(`SELECT id, purpose, started_at, owner_pid, owner_start_time, owner_host FROM folder_locks ORDER BY started_at`).all() as LockRow[];
      for (const row of locks) {
        if (ownerAlive(row, owner, procRoot)) {
          return { holder: { runId: row.id, purpose: row.purpose, pid: row.owner_pid, host: row.owner_host, startedAt: row.started_at }, dead: [] as [] };
        }
        db.prepare(`DELETE FROM folder_locks WHERE id = ?`).run(row.id);
      }
      insert(db);
      return { holder: null, dead };
    })
    .immediate();
}

/**
 * A run row without an owner was written before leases existed (or by `RunHistory.startRun`
 * alone): no Guild that could still be running it records runs that way any more, so it is dead.
 */
function ownerAlive(row: Pick<RunningRow, 'owner_pid' | 'owner_start_time' | 'owner_host'>, self: LeaseOwner, procRoot: string): boolean {
  if (row.owner_pid === null || row.owner_start_time === null) return false;
  if (row.owner_host !== self.host) return true;
  return identityAlive({ pid: row.owner_pid, startTime: row.owner_start_time }, procRoot);
}

/** Ends what a dead run left and marks it `crashed` with a note of what was ended. */
async function takeOver(db: Db, dead: RunningRow, by: string, leftovers: LeftoverOptions | undefined): Promise<CrashedRun> {
  const rows = db.prepare(`SELECT cgroups, pid, start_time FROM task_leases WHERE run_id = ?`).all(dead.id) as { cgroups: string; pid: number | null; start_time: number | null }[];
  const leases: LeftoverLease[] = rows.map((r) => ({ cgroups: parseDirs(r.cgroups), pid: r.pid, startTime: r.start_time }));
  const ended = await endLeftovers(dead.id, leases, leftovers);
  const holder = { runId: dead.id, purpose: 'run', pid: dead.owner_pid, host: dead.owner_host, startedAt: dead.started_at };
  const who = dead.owner_pid === null ? 'no owner recorded (started by a Guild before leases)' : `${describeHolder(holder)} was gone`;
  const note = `crashed: ${who} when ${by} started; ${describeEnded(ended)}`;
  db.transaction(() => {
    db.prepare(`UPDATE runs SET status = 'crashed', ended_at = ?, note = ? WHERE id = ? AND status = 'running'`).run(Date.now(), note, dead.id);
    db.prepare(`DELETE FROM task_leases WHERE run_id = ?`).run(dead.id);
  })();
  return { id: dead.id, owner: { pid: dead.owner_pid, host: dead.owner_host }, ended, note };
}

function parseDirs(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((d): d is string => typeof d === 'string') : [];
  } catch {
    return [];
  }
}

function holderName(h: RunLockHolder): string {
  return h.purpose === 'run' ? `run ${h.runId}` : `guild ${h.purpose}`;
}

/** The holder as a waiting command says it: `run 2026… (pid 123)`, `guild cache clear (pid 9 on build-2)`. */
export function describeLockHolder(h: RunLockHolder): string {
  return `${holderName(h)} (${describeHolder(h)})`;
}

function describeHolder(h: RunLockHolder): string {
  if (h.pid === null) return 'no owner recorded';
  return h.host !== null && h.host !== hostname() ? `pid ${h.pid} on ${h.host}` : `pid ${h.pid}`;
}

/** Waits `ms`; false when `signal` aborted (at once if it already had). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
