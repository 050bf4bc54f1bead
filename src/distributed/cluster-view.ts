import type { Redis } from 'ioredis';
import { connectRedis } from '../cache/redis-tier.js';
import type { WorkersSnapshot } from '../telemetry/state.js';
import type { WorkerBeat } from './job.js';
import { workersSnapshot } from '../telemetry/workers.js';
import { clusterKeys, DEFAULT_QUEUE } from './names.js';

/**
 * A cluster's live workers straight from their heartbeats, with no run (`guild status --redis`):
 * what each measured and counted itself; `tasks` is null (no run to count for). Rejects with code
 * CACHE when Redis is not reachable.
 */
export async function readClusterWorkers(redisUrl: string, queue: string = DEFAULT_QUEUE): Promise<WorkersSnapshot> {
  const client = await connectRedis(redisUrl);
  try {
    return workersSnapshot(queue, await liveWorkers(client, clusterKeys(queue)), Date.now(), null);
  } finally {
    client.disconnect();
  }
}

/** The workers whose heartbeat has not expired. */
export async function liveWorkers(client: Redis, keys: ReturnType<typeof clusterKeys>): Promise<WorkerBeat[]> {
  const names = await client.smembers(keys.workers);
  const out: WorkerBeat[] = [];
  for (const name of names) {
    const h = await client.hgetall(keys.worker(name));
    if (!h.name) {
      await client.srem(keys.workers, name);
      continue;
    }
    out.push({
      name: h.name,
      host: h.host ?? '',
      pid: Number(h.pid),
      budgetBytes: Number(h.budgetBytes),
      freeBytes: Number(h.freeBytes),
      running: Number(h.running),
      pressure: h.pressure ?? 'optimal',
      peakBytes: Number(h.peakBytes),
      rejected: Number(h.rejected),
      jobs: (h.jobs ?? '').split(' ').filter(Boolean),
      at: Number(h.at),
    });
  }
  return out;
}
