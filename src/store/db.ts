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
  try {
    mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return db;
  } catch (cause) {
    if (cause instanceof GuildError) throw cause;
    throw new GuildError('STORE', `cannot open the store at ${file}: ${(cause as Error).message}`, { cause });
  }
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new GuildError('STORE', `the store is at schema version ${current}, newer than this Guild (${MIGRATIONS.length}); upgrade Guild`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
