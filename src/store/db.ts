import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
