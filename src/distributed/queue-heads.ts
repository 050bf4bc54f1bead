import type { Redis } from 'ioredis';
import { BULL_PREFIX, typeQueueName } from './names.js';

/** The job a type's queue would give next, as a worker weighs it before fetching. */
export interface QueueHead {
  /** BullMQ priority; 0 for its unprioritized wait list, which BullMQ takes first. */
  rank: number;
  /** Order among equal ranks (BullMQ's counter). */
  ts: number;
  /** When BullMQ added it (epoch ms); now when unknown. */
  since: number;
}

/**
 * The heads of agent types' queues in family `queue` (null for an empty queue), read in two
 * round trips whatever the number of types: the heads, then when each was added. BullMQ's
 * prioritized score is priority × 2^32 + a counter: the counter orders by age.
 */
export async function queueHeads(client: Redis, queue: string, agents: readonly string[]): Promise<(QueueHead | null)[]> {
  if (agents.length === 0) return [];
  const base = (agent: string): string => `${BULL_PREFIX}:${typeQueueName(queue, agent)}`;
  const first = client.pipeline();
  for (const a of agents) first.lindex(`${base(a)}:wait`, -1).zrange(`${base(a)}:prioritized`, 0, 0, 'WITHSCORES');
  const got = (await first.exec()) ?? [];
  const heads = agents.map((_, i) => {
    const [waitErr, waiting] = got[2 * i] ?? [];
    const [topErr, top] = got[2 * i + 1] ?? [];
    if (waitErr || topErr) throw waitErr ?? topErr;
    if (typeof waiting === 'string') return { id: waiting, rank: 0, ts: 0 };
    const t = top as string[];
    if (t.length < 2) return null;
    const score = Number(t[1]);
    return { id: t[0]!, rank: Math.floor(score / 2 ** 32), ts: score % 2 ** 32 };
  });
  const second = client.pipeline();
  heads.forEach((h, i) => h && second.hget(`${base(agents[i]!)}:${h.id}`, 'timestamp'));
  const stamps = heads.some(Boolean) ? ((await second.exec()) ?? []) : [];
  let k = 0;
  return heads.map((h) => {
    if (h === null) return null;
    const ts = Number(stamps[k++]?.[1]);
    return { rank: h.rank, ts: h.ts, since: Number.isFinite(ts) && ts > 0 ? ts : Date.now() };
  });
}
