// The DAG algorithms moved to util/dag.ts (config and telemetry need them, both below the
// workflow). Kept for the modules of this layer that still import them from here.
export { findCycle, longestChain, topologicalOrder, type DagNode } from '../util/dag.js';
