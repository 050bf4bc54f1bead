import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityAlive, selfIdentity, type ProcessIdentity } from './process-identity.js';

// The machine-wide bench lock: while `guild bench` measures, other Guild runs on the machine wait,
// so what it measures is its own work. A file created exclusively (a link, which fails if the name exists) names its holder by
// pid and start time; a holder that died (kill -9) is recognised and its lock taken over. The
// holder exports GUILD_BENCH_LOCK_HELD, so a `guild run` started by the benchmark itself (a
// scenario's command) does not wait for its own parent.

/** Who holds the lock. */
export interface BenchLockHolder extends ProcessIdentity {
  host: string;
  startedAt: number;
}

/** The lock file: `$GUILD_BENCH_LOCK`, else `guild-bench.lock` in the machine's temporary folder. */
export const benchLockFile = (): string => process.env.GUILD_BENCH_LOCK ?? join(tmpdir(), 'guild-bench.lock');

/** The environment variable a holder sets for its children: `pid:startTime` of the holder. */
export const HELD_ENV = 'GUILD_BENCH_LOCK_HELD';

function readHolder(file: string): BenchLockHolder | null {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<BenchLockHolder>;
    if (typeof h.pid !== 'number' || typeof h.startTime !== 'number') return null;
    return { pid: h.pid, startTime: h.startTime, host: String(h.host ?? ''), startedAt: Number(h.startedAt ?? 0) };
  } catch {
    return null;
  }
}

/**
 * The live holder of the lock, or null when it is free. A lock file whose holder is dead, or that
 * cannot be read, is stale and is removed (the file is created whole, by a link, so a live holder's
 * file is never half written).
 */
export function benchLockHolder(file = benchLockFile()): BenchLockHolder | null {
  const h = readHolder(file);
  if (h !== null && identityAlive(h)) return h;
  const now = readHolder(file);
  // Remove only what was judged: a new holder may have taken it meanwhile.
  if (now === null ? h === null : h !== null && now.pid === h.pid && now.startTime === h.startTime) {
    try {
      unlinkSync(file);
    } catch {
      /* gone already */
    }
  }
  return null;
}

/** Creates the lock file holding `me`, whole or not at all: written aside, then linked into place (link fails if the name exists). */
function tryCreate(file: string, me: BenchLockHolder): boolean {
  const aside = `${file}.${me.pid}.${me.startTime}`;
  writeFileSync(aside, JSON.stringify(me), { mode: 0o644 });
  try {
    linkSync(aside, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  } finally {
    unlinkSync(aside);
  }
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export interface BenchLockOptions {
  /** Wait for a live holder; else fail at once. @default true */
  wait?: boolean;
  /** Called when a wait begins, and again when the holder changes. */
  onWait?: (holder: BenchLockHolder) => void;
  pollMs?: number;
  signal?: AbortSignal;
  file?: string;
}

/** Takes the lock, waiting while another live process holds it. Release it in a `finally`. */
export async function acquireBenchLock(o: BenchLockOptions = {}): Promise<{ release(): void; file: string }> {
  const file = o.file ?? benchLockFile();
  const me: BenchLockHolder = { ...selfIdentity(), host: hostname(), startedAt: Date.now() };
  let last: BenchLockHolder | null = null;
  for (;;) {
    if (tryCreate(file, me)) {
      const previous = process.env[HELD_ENV];
      process.env[HELD_ENV] = `${me.pid}:${me.startTime}`;
      let released = false;
      return {
        file,
        release(): void {
          if (released) return;
          released = true;
          if (previous === undefined) delete process.env[HELD_ENV];
          else process.env[HELD_ENV] = previous;
          const h = readHolder(file);
          if (h !== null && h.pid === me.pid && h.startTime === me.startTime) {
            try {
              unlinkSync(file);
            } catch {
              /* gone already */
            }
          }
        },
      };
    }
    const holder = benchLockHolder(file);
    if (holder === null) continue;
    // Started by the holder (a scenario's command that runs `guild bench` itself): measuring
    // inside its parent's measurement, it must not wait for the parent to finish.
    if (process.env[HELD_ENV] === `${holder.pid}:${holder.startTime}`) return { file, release: () => undefined };
    if (o.wait === false) throw new Error(`the bench lock ${file} is held by pid ${holder.pid}`);
    if (last === null || last.pid !== holder.pid || last.startTime !== holder.startTime) o.onWait?.(holder);
    last = holder;
    await sleep(o.pollMs ?? 200, o.signal);
  }
}

/** The live holder of the lock unless it is this process or the benchmark that started it (see HELD_ENV); null when free. */
export function foreignBenchHolder(file = benchLockFile()): BenchLockHolder | null {
  const h = benchLockHolder(file);
  return h === null || h.pid === process.pid || process.env[HELD_ENV] === `${h.pid}:${h.startTime}` ? null : h;
}

/**
 * Resolves once no other process holds the bench lock (at once when none does, or when the holder
 * is this process or the one that started it: see HELD_ENV). For `guild run`, which must not
 * disturb a measurement in progress.
 */
export async function waitWhileBenchLocked(o: { onWait?: (holder: BenchLockHolder) => void; pollMs?: number; signal?: AbortSignal; file?: string } = {}): Promise<void> {
  const file = o.file ?? benchLockFile();
  let last: BenchLockHolder | null = null;
  for (;;) {
    const holder = foreignBenchHolder(file);
    if (holder === null) return;
    if (last === null || last.pid !== holder.pid || last.startTime !== holder.startTime) o.onWait?.(holder);
    last = holder;
    await sleep(o.pollMs ?? 200, o.signal);
  }
}
