import { appendFile } from 'node:fs/promises';
import type { Execution, ExecOutcome, KillReason, MemorySample } from '../executors/executor.js';
import type { JobPayload } from './job.js';

/** After a cancel, how long past the kill grace a worker has to confirm before the attempt ends here without it. */
const CONFIRM_MS = 10_000;

/** One attempt handed to the cluster, as the run's supervisor holds it. */
export class RemoteExecution implements Execution {
  readonly pid = null;
  readonly canPause = false;
  readonly canKill = true;
  readonly remote = true;
  readonly stdio = null;
  readonly lease = { cgroups: [], pid: null, startTime: null };
  readonly done: Promise<ExecOutcome>;
  readonly jobId: string;
  readonly payload: JobPayload;
  /** The worker that took it; null while it waits. */
  worker: string | null = null;
  queued = false;
  /** Its result arrived and its files are being restored. */
  ending = false;
  settled = false;
  killedBy: KillReason | null = null;
  unplaceableSince: number | null = null;
  /** Since when Redis has not known it while no worker ran it. */
  vanishedSince: number | null = null;
  checkedAt = Date.now();
  readonly #cancel: (e: RemoteExecution) => Promise<void>;
  readonly #logFile: string | null;
  /** Its last memory sample from its worker; null before the first. */
  sample: MemorySample | null = null;
  /** Streamed log text, appended in order. */
  logWritten: Promise<void> = Promise.resolve();
  #resolve!: (o: ExecOutcome) => void;
  #confirm: NodeJS.Timeout | null = null;

  constructor(jobId: string, payload: JobPayload, logFile: string | null, cancel: (e: RemoteExecution) => Promise<void>) {
    this.jobId = jobId;
    this.payload = payload;
    this.#logFile = logFile;
    this.#cancel = cancel;
    this.done = new Promise((r) => (this.#resolve = r));
  }

  settle(o: ExecOutcome): void {
    if (this.settled) return;
    this.settled = true;
    if (this.#confirm) clearTimeout(this.#confirm);
    this.#resolve(this.killedBy !== null && o.killedBy === null && o.exitCode !== 0 ? { ...o, killedBy: this.killedBy } : o);
  }

  kill(reason: KillReason): void {
    if (this.settled || this.killedBy !== null) return;
    this.killedBy = reason;
    void this.#cancel(this);
    // A worker that died or lost Redis never confirms: the run must still end.
    const wait = this.payload.killGraceMs + CONFIRM_MS;
    this.#confirm = setTimeout(() => this.settle({ exitCode: null, signal: null, killedBy: reason, durationMs: 0, error: `cancelled; ${this.worker ? `worker ${this.worker} did not confirm it` : 'no worker confirmed it'} within ${Math.round(wait / 1000)} s` }), wait);
  }

  pause(): boolean {
    return false;
  }

  resume(): void {}

  /** As measured on its worker, streamed (its worker's governor acts on it, never this machine's). */
  memory(): MemorySample | null {
    return this.settled ? null : this.sample;
  }

  appendLog(text: string): void {
    const file = this.#logFile;
    if (this.settled || file === null) return;
    this.logWritten = this.logWritten.then(() => appendFile(file, text)).catch(() => undefined);
  }
}
