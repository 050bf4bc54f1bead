import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import type { ExecOutcome } from '../executors/executor.js';
import type { ProcessRequest } from '../executors/process-executor.js';
import { metricsFileFor } from '../workflow/task-metrics.js';
import type { JobPayload, JobResult } from './job.js';
import type { clusterKeys } from './names.js';
import { storeBundle, type Bundle } from './outputs.js';
import { CLUSTER_KEY_ENV } from './signing.js';

/**
 * One job's attempt on a worker, the parts that need nothing of the worker's state: where its log
 * goes, the request the supervisor starts, and what travels back when it ends.
 */

/** The attempt's log file in the job's folder, where a local run would write it. */
export const jobLogFile = (folder: string, payload: JobPayload): string => join(folder, '.guild', 'runs', payload.runId, `${payload.taskId}.log`);

/** Whether the submitter reads this very log file (same host and path): then nothing of the log needs to travel. */
export function submitterReadsLog(payload: JobPayload, logFile: string): boolean {
  const at = payload.logAt;
  return at != null && at.host === hostname() && at.path === resolve(logFile);
}

/**
 * The process request of a job: the worker's environment plus the task's own entries, its metrics
 * file, the run's gateway here (`mcp:`), and never the cluster key (a task that could read it could
 * make the cluster run anything).
 */
export function jobRequest(payload: JobPayload, folder: string, logFile: string, mcpUrl: string | null): ProcessRequest {
  const env: NodeJS.ProcessEnv = { ...process.env, ...payload.env, GUILD_METRICS: metricsFileFor(logFile), ...(mcpUrl !== null && { GUILD_MCP_URL: mcpUrl }) };
  delete env[CLUSTER_KEY_ENV];
  return {
    taskId: payload.taskId,
    attempt: payload.attempt,
    timeoutMs: payload.timeoutMs,
    killGraceMs: payload.killGraceMs,
    command: payload.command,
    cwd: folder,
    env,
    logFile,
    runId: payload.runId,
    limitBytes: payload.limitBytes,
  };
}

/**
 * Packs what an ended attempt leaves for its submitter (outputs/pack format of outputs.ts): the
 * declared outputs after a success, and the log unless the submitter reads this very file. A
 * success whose outputs cannot travel is not a success where it counts: the outcome then says so.
 */
export async function carryBack(
  client: Redis,
  keys: ReturnType<typeof clusterKeys>,
  job: { payload: JobPayload; folder: string; logFile: string; worker: string },
  outcome: ExecOutcome,
): Promise<{ outcome: ExecOutcome; bundle: Bundle | null }> {
  const ownLog = submitterReadsLog(job.payload, job.logFile);
  const outputs = outcome.error === null ? (job.payload.outputs ?? []) : [];
  if (outputs.length === 0 && ownLog) return { outcome, bundle: null };
  try {
    return { outcome, bundle: await storeBundle(client, keys, job.folder, job.payload.taskId, outputs, ownLog ? null : job.logFile) };
  } catch (e) {
    if (outcome.error !== null) return { outcome, bundle: null };
    return { outcome: { ...outcome, error: `outputs not carried back from worker ${job.worker}: ${(e as Error).message}` }, bundle: null };
  }
}

/** The result a job completes with (its return value, and the `ended` message). */
export function jobResult(worker: { name: string; budgetBytes: number; peakBytes: number }, o: ExecOutcome, peakBytes: number | null, bundle: Bundle | null): JobResult {
  return {
    worker: worker.name,
    exitCode: o.exitCode,
    signal: o.signal,
    killedBy: o.killedBy,
    error: o.error,
    durationMs: o.durationMs,
    peakBytes,
    workerBudgetBytes: worker.budgetBytes,
    workerPeakBytes: worker.peakBytes,
    bundle,
  };
}
