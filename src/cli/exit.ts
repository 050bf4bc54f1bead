import { closeSync } from 'node:fs';
import { ConfigErrors, EXIT_CODE_OF, GuildError } from '../errors.js';

/**
 * How the `guild` command ends: the exit codes, a failure's message, and exit itself (the CLI's
 * only calls of process.exit are here and in its commands' actions).
 *
 * Exit codes: 0 all tasks succeeded; 1 a task failed (or the store, a probe, the cache, a
 * dashboard, a run or the folder's run lock — LOCKED, `run --no-wait` — was unavailable);
 * 2 usage or config error; 130 / 143 interrupted by SIGINT / SIGTERM (SIGHUP counts as SIGTERM).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export function fail(e: unknown): never {
  if (e instanceof GuildError) {
    process.stderr.write(`guild: ${e instanceof ConfigErrors && e.errors.length > 1 ? `invalid configuration:\n${indent(e.message)}` : e.message}\n`);
    exit(EXIT_CODE_OF[e.code]);
  }
  process.stderr.write(`guild: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  exit(EXIT.failed);
}

const indent = (s: string): string =>
  s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

/**
 * After SIGHUP the terminal may be gone: every write to it fails with EIO, and Node's exit (which
 * restores the terminal's modes) aborts when tcsetattr fails. So the errors are swallowed, and
 * before exiting the standard descriptors are closed: Node leaves closed ones alone.
 */
let hungUp = false;
const ignoreStreamError = (): void => undefined;
export function onHangup(): void {
  if (hungUp) return;
  hungUp = true;
  process.stdout.on('error', ignoreStreamError);
  process.stderr.on('error', ignoreStreamError);
}
export function exit(code: number): never {
  if (hungUp) {
    for (const fd of [0, 1, 2]) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
  }
  process.exit(code);
}

/**
 * Writes to stdout and waits until it is written. Into a pipe, stdout takes what fits and queues
 * the rest, which exit() would drop: a --json report of a few hundred tasks came out cut at 64 KiB.
 * A reader that went away (EPIPE, `| head`) ends the wait; its error is ignored, as before.
 */
export function writeOut(text: string): Promise<void> {
  process.stdout.on('error', ignoreStreamError);
  return new Promise((resolve) => process.stdout.write(text, () => resolve()));
}
