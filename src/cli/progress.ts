import type { RunEvent } from '../workflow/events.js';
import { formatBytes, formatDuration } from '../util/units.js';

const stamp = (t: number): string => `[${(t / 1000).toFixed(1).padStart(6)}s]`;
const PLAIN_STATUS_EVERY_MS = 5000;

/**
 * Progress for a terminal: finished tasks scroll by as lines, and a live block at the bottom
 * shows each running task with its measured RSS and elapsed time, the queue and memory vs budget.
 * Without a TTY it prints plain lines only (one per start and end, a status line every 5 s).
 */
export function createProgress(out: NodeJS.WriteStream, tty: boolean): (e: RunEvent) => void {
  let blockLines = 0;
  let lastPlainStatus = 0;
  const clearBlock = (): void => {
    if (blockLines > 0) out.write(`\x1b[${blockLines}F\x1b[J`);
    blockLines = 0;
  };
  const line = (text: string): void => {
    if (tty) clearBlock();
    out.write(`${text}\n`);
  };
  return (e) => {
    switch (e.type) {
      case 'run-start':
        line(`guild: run ${e.runId}: ${e.tasks} tasks, budget ${formatBytes(e.budgetBytes)}${e.logDir ? `, logs in ${e.logDir}` : ''}`);
        if (e.instructionsFile) line(`guild: instructions from ${e.instructionsFile}`);
        for (const w of e.warnings) line(`guild: warning: ${w}`);
        break;
      case 'task-start':
        if (!tty) line(`${stamp(e.t)} start ${e.id} (${e.agent})${e.attempt > 1 ? ` attempt ${e.attempt}` : ''}${e.pid ? ` pid ${e.pid}` : ''}`);
        break;
      case 'task-end': {
        const what = { succeeded: 'ok   ', cached: 'cache', retrying: 'retry', requeued: 'requeue', cancelled: 'cancel', failed: 'FAIL ', skipped: 'skip ' }[e.status];
        if (e.status === 'cached') {
          line(`${stamp(e.t)} ${what} ${e.id} restored in ${formatDuration(e.durationMs)} (ran ${formatDuration(e.savedMs ?? null)} when stored)`);
          break;
        }
        const peak = e.peakRssBytes !== null ? `, peak ${formatBytes(e.peakRssBytes)}` : '';
        line(`${stamp(e.t)} ${what} ${e.id} ${formatDuration(e.durationMs)}${peak}${e.error ? ` — ${e.error}` : ''}`);
        break;
      }
      case 'governor': {
        const a = e.action;
        const text =
          a.type === 'level'
            ? `memory pressure ${a.from} → ${a.to} (${Math.round(a.fraction * 100)}%)`
            : a.type === 'cap'
              ? `concurrency cap ${a.cap ?? 'lifted'}`
              : a.type === 'admission'
                ? `admitting ${a.rule}`
                : a.type === 'caching'
                  ? `caches: ${a.mode}`
                  : a.type === 'kill'
                    ? `kill ${a.id} (${a.level}, ${formatBytes(a.rssBytes)})`
                    : `${a.type} ${a.id}`;
        line(`${stamp(e.t)} governor: ${text}`);
        break;
      }
      case 'alert':
        line(`${stamp(e.t)} ALERT (${e.severity}): ${e.message}`);
        break;
      case 'run-stopping':
        line(`${stamp(e.t)} stopping: ${e.detail}`);
        break;
      case 'sample': {
        const status = `running ${e.running.length}, queued ${e.queued}, done ${e.done}/${e.total}, memory ${formatBytes(e.totalRssBytes)} measured, ${formatBytes(e.reservedBytes)} reserved of ${formatBytes(e.budgetBytes)}${
          e.blocked ? `, waiting for ${e.blocked.reason}: ${e.blocked.id}` : ''
        }${e.level !== 'optimal' ? `, pressure ${e.level}` : ''}${e.paused > 0 ? `, ${e.paused} paused` : ''}`;
        if (!tty) {
          if (e.t - lastPlainStatus >= PLAIN_STATUS_EVERY_MS) {
            lastPlainStatus = e.t;
            line(`${stamp(e.t)} ${status}`);
          }
          break;
        }
        clearBlock();
        const rows = e.running.map(
          (r) => `  ▶ ${r.id.padEnd(24)} ${r.agent.padEnd(12)} ${formatBytes(r.rssBytes).padStart(9)}  ${formatDuration(r.elapsedMs).padStart(7)}`,
        );
        // Lines longer than the terminal would wrap and break the cursor arithmetic: cut them.
        const width = Math.max(20, (out.columns || 120) - 1);
        const text = [`${stamp(e.t)} ${status}`, ...rows].map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
        out.write(`${text.join('\n')}\n`);
        blockLines = text.length;
        break;
      }
      case 'run-end':
        if (tty) clearBlock();
        break;
      default:
        break;
    }
  };
}
