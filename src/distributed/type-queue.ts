import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { TypeProfile } from './job.js';
import { BULL_PREFIX, typeQueueName } from './names.js';

/** One agent type's queue as a worker serves it: BullMQ's Worker (manual fetching) and the worker's own count. */
export interface TypeQueue {
  agent: string;
  worker: Worker;
  profile: TypeProfile;
  running: number;
  /** A job of this type was handed back for not fitting: skip the type until memory is released or this time (epoch ms) passes. */
  skipUntil: number;
  /** When this worker last started a job of this type (epoch ms; 0: never). A type it serves is not starving. */
  lastStarted: number;
}

/**
 * Opens the queue of one agent type for manual fetching: no processor, no automatic lock renewal
 * (the worker extends each job's lock itself), and BullMQ's stalled-job check started by hand
 * (run() would have started it). Stalls are a worker that died: Guild counts them, so BullMQ must
 * not fail the job for them (maxStalledCount high).
 */
export function openTypeQueue(o: { client: Redis; queue: string; agent: string; profile: TypeProfile; lockDurationMs: number; workerName: string; log: (line: string) => void }): TypeQueue {
  const worker = new Worker(typeQueueName(o.queue, o.agent), null, {
    connection: o.client,
    prefix: BULL_PREFIX,
    autorun: false,
    lockDuration: o.lockDurationMs,
    stalledInterval: o.lockDurationMs,
    maxStalledCount: 1000,
    skipLockRenewal: true,
    name: o.workerName,
  });
  worker.on('error', (e) => o.log(`queue ${o.agent}: ${e.message}`));
  void worker.startStalledCheckTimer().catch(() => undefined);
  return { agent: o.agent, worker, profile: o.profile, running: 0, skipUntil: 0, lastStarted: 0 };
}
