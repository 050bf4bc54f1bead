import type { ResolvedConfig } from '../config/resolve.js';
import type { TaskFunction } from '../executors/function-executor.js';
import type { SystemProbe } from '../system/probe.js';
import { RunTelemetry } from '../telemetry/run-telemetry.js';
import type { RunEvent } from './events.js';
import type { RunReport } from './report.js';
import { executeWorkflow } from './run.js';
import type { RunWorkflowOptions } from './run-workflow.js';

// Running a configuration already resolved, apart from loading one (run-workflow.ts): `guild run`
// has its configuration loaded in a worker thread, so this module must not import the loader
// (zod, YAML), which would stay in the process for the whole run.

/**
 * Runs a configuration that `loadConfig` already resolved (what `guild run` does, so that every
 * config error surfaces before anything starts, and the file is read once).
 */
export async function runResolved(config: ResolvedConfig, options: Omit<RunWorkflowOptions, 'budget' | 'maxParallel' | 'keepGoing' | 'noCache' | 'dir'> & { probe: SystemProbe }, functions?: ReadonlyMap<string, TaskFunction>): Promise<RunReport> {
  const given = options.telemetry instanceof RunTelemetry ? options.telemetry : null;
  const telemetry = given ?? (options.telemetry !== false && config.telemetry.enabled ? new RunTelemetry(config, { store: options.store !== false }) : null);
  const user = options.onEvent;
  const onEvent = telemetry
    ? (e: RunEvent): void => {
        telemetry.onEvent(e);
        user?.(e);
      }
    : user;
  const services = typeof options.services === 'function' ? options.services(config) : options.services;
  try {
    const report = await executeWorkflow(config, {
      probe: options.probe,
      ...(functions ? { functions } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(onEvent ? { onEvent } : {}),
      ...(options.store !== undefined ? { store: options.store } : {}),
      ...(options.cache ? { cache: options.cache } : {}),
      ...(options.executors ? { executors: options.executors } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.wait !== undefined ? { wait: options.wait } : {}),
      ...(options.onWait ? { onWait: options.onWait } : {}),
      ...(services ? { services } : {}),
      ...(options.taskMetrics === false ? { taskMetrics: false } : {}),
      ...(options.remoteAdmission === true ? { remoteAdmission: true } : {}),
    });
    return telemetry ? await telemetry.finish(report) : report;
  } finally {
    if (telemetry && !given) telemetry.close();
  }
}
