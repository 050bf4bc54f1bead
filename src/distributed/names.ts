import type { Priority } from '../config/schema.js';

/**
 * Where a cluster lives in Redis. BullMQ's own keys are `guild-bull:<queue>.<agent type>:…`, one
 * queue per agent type (getNextJob takes the head of one queue and cannot filter, so a worker
 * picks the types it can admit by picking queues). Guild's own keys sit beside them under
 * `guild-cluster:<queue>:…`: the registry of agent types (written by submitters), the workers'
 * heartbeats and each run's two pub/sub channels.
 */

/** `guild worker --queue` and `distributed.queue` when not given. */
export const DEFAULT_QUEUE = 'guild';
/** BullMQ's key prefix for Guild's queues. */
export const BULL_PREFIX = 'guild-bull';
const OWN = 'guild-cluster';

/** The BullMQ queue of one agent type (BullMQ forbids ':' in queue names; agent names may hold any printable character). */
export function typeQueueName(queue: string, agent: string): string {
  return `${queue}.${encodeURIComponent(agent)}`;
}

/** Guild's own keys of a queue family. */
export function clusterKeys(queue: string) {
  return {
    /** Hash: agent type → JSON `TypeProfile`; a worker polls the queues of the types listed here. */
    registry: `${OWN}:${queue}:types`,
    /** Set of worker names that heartbeat (a member whose hash expired is gone). */
    workers: `${OWN}:${queue}:workers`,
    /** Hash of one worker's capacity, expiring unless refreshed. */
    worker: (name: string) => `${OWN}:${queue}:worker:${name}`,
    /** Pub/sub channel of one run from its workers to its submitter: starts, samples, log lines, results. */
    run: (runId: string) => `${OWN}:${queue}:run:${runId}`,
    /**
     * Pub/sub channel of one run from its submitter to the workers: cancels and "work enqueued".
     * Apart from `run` so that a worker does not receive (and parse) every other worker's messages.
     */
    control: (runId: string) => `${OWN}:${queue}:ctl:${runId}`,
    /** A task's files (outputs, log), packed, by the SHA-256 of the pack (distributed/outputs.ts). */
    bundle: (sha: string) => `${OWN}:${queue}:bundle:${sha}`,
    /** Pattern of every run's control channel (a worker listens to all: a cancel may come before its job). */
    controls: `${OWN}:${queue}:ctl:*`,
  };
}

/** BullMQ priority of a Guild priority: 1 is taken first. */
export function bullPriority(p: Priority): number {
  return p === 'critical' ? 1 : p === 'high' ? 2 : p === 'medium' ? 3 : 4;
}
