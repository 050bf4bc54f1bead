import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { GuildError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

/** The store of a workflow folder. */
export const storeFile = (dir: string): string => join(dir, '.guild', 'guild.db');

/**
 * Opens (creating if needed) the embedded store: WAL so readers never block the run that writes,
 * synchronous=NORMAL (durable across a crash of Guild; at most the last transaction lost on power
 * loss), foreign keys on, then migrations up to the newest version.
 */
export function openDatabase(file: string): Db {
  const deadline = Date.now() + OPEN_BUSY_MS;
  for (;;) {
    let db: Db | null = null;
    try {
      mkdirSync(dirname(file), { recursive: true });
      db = new Database(file);
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return db;
    } catch (cause) {
      db?.close();
      if (cause instanceof GuildError) throw cause;
      // Two processes creating one store together: switching a new file to WAL can answer BUSY at
      // once, without the busy handler. Opening again a moment later finds it done.
      if ((cause as { code?: string }).code === 'SQLITE_BUSY' && Date.now() < deadline) {
        Atomics.wait(SLEEPER, 0, 0, 25);
        continue;
      }
      throw new GuildError('STORE', `cannot open the store at ${file}: ${(cause as Error).message}`, { cause });
    }
  }
}

/**
 * The store of `file` as one connection for everything in this process that opens it this way (a
 * run's lease, its history and its telemetry): one SQLite connection instead of one each. Each
 * caller gets a handle of its own; its `close()` gives back that caller's share (a second call
 * does nothing), and the connection closes with the last share. Sharing is safe: the process has
 * one thread, and every transaction here is synchronous (better-sqlite3's `transaction`), so no
 * caller's statements can land inside another's transaction. Measured on a waiting `guild run`:
 * 0.3-0.8 MB less RSS than three connections (SQLite's caches and lookaside, the WAL index map).
 */
export function shareDatabase(file: string): Db {
  const key = resolve(file);
  let entry = shared.get(key);
  if (entry === undefined || !entry.db.open) {
    entry = { db: openDatabase(file), users: 0 };
    shared.set(key, entry);
  }
  const e = entry;
  e.users++;
  let closed = false;
  const close = (): Db => {
    if (closed) return handle;
    closed = true;
    if (--e.users === 0) {
      if (shared.get(key) === e) shared.delete(key);
      e.db.close();
    }
    return handle;
  };
  const handle: Db = new Proxy(e.db, {
    get(target, prop) {
      if (prop === 'close') return close;
      if (closed && prop === 'open') return false;
      if (closed && prop !== 'name' && prop !== 'memory' && prop !== 'readonly' && prop !== 'inTransaction') throw new TypeError('The database connection is not open');
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return handle;
}

const shared = new Map<string, { db: Db; users: number }>();

/** How long opening keeps retrying a store another process is creating. */
const OPEN_BUSY_MS = 10_000;
/** A synchronous sleep (opening is synchronous): Atomics.wait on a cell nobody notifies. */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * Brings the schema to the newest version. Two processes may open a new store at once (two runs
 * started together): each step re-reads the version inside an IMMEDIATE transaction, which takes
 * the write lock first, so a step is applied once and the other process sees it done.
 */
function migrate(db: Db): void {
  const tooNew = (v: number): GuildError =>
    new GuildError('STORE', `the store is at schema version ${v}, newer than this Guild (${MIGRATIONS.length}); upgrade Guild`);
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) throw tooNew(current);
  if (current === MIGRATIONS.length) return;
  const step = db.transaction((): boolean => {
    const v = db.pragma('user_version', { simple: true }) as number;
    if (v > MIGRATIONS.length) throw tooNew(v);
    if (v === MIGRATIONS.length) return false;
    db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${v + 1}`);
    return true;
  });
  while (step.immediate()) {
    /* one migration per transaction, until none is left */
  }
}
