// poolReport moved to config/pools.ts (guild doctor needs it below the workflow). Kept for the
// modules of this layer that still import it from here (run.ts).
export { poolReport } from '../config/pools.js';
