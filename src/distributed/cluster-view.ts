import { connectRedis } from '../cache/redis-tier.js';
import type { WorkersSnapshot } from '../telemetry/state.js';
import { workersSnapshot } from '../telemetry/workers.js';
import { liveWorkers } from './cluster-run.js';
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
