import { Governor, type GovernorOptions, type GovernorTarget } from '../governor/governor.js';
import type { Clock } from './clock.js';

/** The governor a supervisor feeds, and the owner's side of its responses. */
export interface SupervisorGovernance {
  /** The governor's settings; the supervisor supplies `target` (the executions it watches) and `now` (its clock). */
  options: Omit<GovernorOptions, 'target' | 'now'>;
  /** What the owner does with the responses that are not about a running execution. */
  admission: Pick<GovernorTarget, 'setCap' | 'setAdmission' | 'setCaching'>;
  /** The agents' budget, bytes. */
  budgetBytes: number;
}

/**
 * The governor of a supervisor: the owner's settings and admission side, the supervisor's
 * executions (`agents`, `pause`, `resume`, `kill`) and clock. The governor owns no process.
 */
export function governorFor(g: SupervisorGovernance, clock: Clock, executions: Pick<GovernorTarget, 'agents' | 'pause' | 'resume' | 'kill'>): Governor {
  return new Governor({
    ...g.options,
    now: () => clock.now(),
    target: {
      ...executions,
      setCap: (cap) => g.admission.setCap(cap),
      setAdmission: (rule) => g.admission.setAdmission(rule),
      setCaching: (mode) => g.admission.setCaching(mode),
    },
  });
}
