import type { ExecOutcome } from '../executors/executor.js';
import type { KillNotice } from '../supervisor/watch.js';
import { formatSize } from '../util/units.js';
import type { BackendExit, BackendStopReason } from './backend-types.js';

// How a backend ended, in words: from what Guild did to it and how its process went.

export interface ExitFacts {
  pid: number | null;
  stopReason: BackendStopReason | null;
  notice: KillNotice | null;
  lost: boolean;
  killedForLoss: boolean;
  lastError: Error | null;
}

/** Why it ended, from what Guild did to it and how the process went. */
export function classify(o: ExecOutcome, f: ExitFacts): BackendExit {
  const base = { pid: f.pid, exitCode: o.exitCode, signal: o.signal, outcome: o };
  const recycledBy = f.notice?.reason ?? (o.killedBy === 'recycle' || o.killedBy === 'limit' || o.killedBy === 'pressure' ? o.killedBy : null);
  if (recycledBy !== null) {
    return { ...base, why: 'recycled', reason: recycledBy, message: f.notice ? noticeMessage(f.notice) : `recycled (${recycledBy})` };
  }
  // A stop that came after the server had already gone (a failed start) reports the crash.
  if (f.stopReason !== null && !f.lost) {
    return { ...base, why: f.stopReason === 'recycle' ? 'recycled' : 'stopped', reason: f.stopReason, message: stopMessage(f.stopReason) };
  }
  if (o.killedBy === 'cancelled' && !f.killedForLoss) return { ...base, why: 'stopped', reason: 'shutdown', message: stopMessage('shutdown') };
  if (f.killedForLoss) {
    const detail = f.lastError ? `: ${f.lastError.message}` : '';
    return { ...base, why: 'crashed', reason: 'protocol', message: `crashed: closed its connection without exiting${detail}, and was stopped` };
  }
  const how = o.error ?? (o.signal ? `killed by ${o.signal}` : `exited with code ${o.exitCode}`);
  return { ...base, why: 'crashed', reason: o.signal ? 'signal' : 'exited', message: `crashed: ${how}` };
}

export function noticeMessage(n: KillNotice): string {
  const bytes = n.bytes === null ? '' : ` at ${formatSize(n.bytes)}`;
  if (n.reason === 'limit') return `recycled: above its memory limit${bytes}`;
  if (n.reason === 'pressure') return `recycled under memory pressure${n.level ? ` (${n.level})` : ''}${bytes}`;
  return 'recycled';
}

export function stopMessage(reason: BackendStopReason): string {
  if (reason === 'recycle') return 'recycled by its owner';
  if (reason === 'idle') return 'stopped after being idle';
  if (reason === 'failed') return 'stopped: it failed to start';
  return 'stopped';
}
