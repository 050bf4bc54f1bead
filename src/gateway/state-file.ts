import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { identityAlive, readProcStat, readStartTime } from '../system/process-identity.js';

/**
 * The state file of a running gateway, `<config dir>/.guild/mcp-gateway.json`: how `guild mcp
 * stdio` and `guild mcp status` find the gateway serving a folder. Written when the gateway
 * serves, removed when it exits; one left by a gateway that died names a dead process (or a pid
 * since reused by another, which `pidStart` tells apart) and counts as absent.
 *
 * It may hold the gateway's token, so it is created with mode 0600 and replaced atomically (a
 * reader sees the old file or the new one, never half of one).
 */
export interface GatewayState {
  /** The gateway's process. */
  pid: number;
  /**
   * The process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot), so that a
   * reused pid never passes for the gateway; null where /proc could not be read.
   * @default read from /proc by `writeGatewayState`
   */
  pidStart?: number | null;
  /** The streamable HTTP endpoint, `http://127.0.0.1:PORT/mcp`. */
  url: string;
  /** The config file served, absolute. */
  configFile: string;
  /** ISO 8601. */
  startedAt: string;
  /** The bearer token clients must send, or null when none is required. */
  token: string | null;
}

const STATE_FILE = 'mcp-gateway.json';

const stateSchema = z.object({
  pid: z.number().int().positive(),
  pidStart: z.number().int().nonnegative().nullable().optional(),
  url: z.string().min(1),
  configFile: z.string(),
  startedAt: z.string(),
  token: z.string().nullable(),
});

/** Where the state file of the gateway serving `dir` (its config file's folder) lives. */
export function gatewayStatePath(dir: string): string {
  return join(dir, '.guild', STATE_FILE);
}

/**
 * Writes the state file atomically (a temporary file in the same folder, then a rename), mode
 * 0600, creating `.guild/` if missing. `pidStart` is read from /proc when the state has none.
 */
export function writeGatewayState(dir: string, state: GatewayState): void {
  const guildDir = join(dir, '.guild');
  mkdirSync(guildDir, { recursive: true });
  const full: GatewayState = { ...state, pidStart: state.pidStart ?? readStartTime(state.pid) };
  const tmp = join(guildDir, `.${STATE_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  // 'wx' with mode 0600: the token is never readable by others, not even between open and rename.
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, `${JSON.stringify(full, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, gatewayStatePath(dir));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** The state file's content, or null when it is missing, unreadable, or not a gateway's state. */
export function readGatewayState(dir: string): GatewayState | null {
  let text: string;
  try {
    text = readFileSync(gatewayStatePath(dir), 'utf8');
  } catch {
    return null;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = stateSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}

/**
 * The state of the gateway serving `dir` if that gateway is still running: its pid answers signal
 * 0 (EPERM, a process of another user, counts as running) and, where /proc tells, it is that very
 * process (same start time, not a zombie). Null when there is no state file or it is stale.
 */
export function liveGatewayState(dir: string, procRoot = '/proc'): GatewayState | null {
  const state = readGatewayState(dir);
  return state !== null && gatewayAlive(state, procRoot) ? state : null;
}

/**
 * Removes the state file, but only while it still names `pid`: a gateway exiting never removes
 * the file of another that has taken the folder over since. (Read-then-unlink is not atomic; a
 * new gateway writing in between the two is the one case this cannot tell.)
 */
export function removeGatewayState(dir: string, pid: number): void {
  const state = readGatewayState(dir);
  if (state === null || state.pid !== pid) return;
  try {
    unlinkSync(gatewayStatePath(dir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function gatewayAlive(state: GatewayState, procRoot: string): boolean {
  try {
    process.kill(state.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // Written where /proc was unreadable: the pid is all there is to judge by.
  if (state.pidStart === null || state.pidStart === undefined) return true;
  // No /proc here (this very process has no stat): trust the signal.
  if (readProcStat(process.pid, procRoot) === null) return true;
  return identityAlive({ pid: state.pid, startTime: state.pidStart }, procRoot);
}
