import type { Priority } from './schema.js';

const RANK: Readonly<Record<Priority, number>> = Object.freeze({ critical: 0, high: 1, medium: 2, low: 3 });

/** 0 for critical … 3 for low. The scheduler's queue keys and the governor's choice of victim both rank by it. */
export const priorityRank = (p: Priority): number => RANK[p];
