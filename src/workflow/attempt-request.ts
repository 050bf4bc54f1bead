import type { ResolvedConfig } from '../config/resolve.js';
import type { ExecRequest } from '../executors/executor.js';
import type { ProcessRequest } from '../executors/process-executor.js';
import { metricsFileFor } from './task-metrics.js';
import type { TaskState } from './task-state.js';

/** What every attempt of a task asks for, whatever runs it. */
export function baseRequest(s: TaskState, config: ResolvedConfig): ExecRequest {
  return {
    taskId: s.id,
    attempt: s.attempts,
    timeoutMs: s.spec.timeoutMs,
    killGraceMs: config.killGraceMs,
    placement: { agent: s.type, priority: s.priority, memoryBytes: s.memoryBytes, cpu: s.cpu, limitBytes: s.profile.limitBytes },
  };
}

/**
 * An attempt of a shell task: its command in the workflow's folder, output to its log, in a
 * cgroup named for the run (with the kernel's backstop above the task's own limit), and
 * GUILD_METRICS naming the file where it may report what it spent (beside its log).
 */
export function processRequest(s: TaskState, config: ResolvedConfig, runId: string, logFile: string, services: Readonly<Record<string, string>> = {}, metrics = true): ProcessRequest {
  const env = { ...taskEnv(s, runId, services), ...(metrics && { GUILD_METRICS: metricsFileFor(logFile) }) };
  return { ...baseRequest(s, config), command: s.spec.run, cwd: config.dir, env, logFile, runId, limitBytes: s.profile.limitBytes };
}

/** The child's whole environment: Guild's, the task's own, the run's services (`GUILD_MCP_URL`), and who it is. */
export function taskEnv(s: TaskState, runId: string, services: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...s.spec.env, ...services, GUILD_RUN_ID: runId, GUILD_TASK_ID: s.id, GUILD_ATTEMPT: String(s.attempts) };
  // node_heap: V8 collects before the agent's hard limit is reached, instead of growing into it.
  if (s.profile.nodeHeapMb !== null) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --max-old-space-size=${s.profile.nodeHeapMb}`.trim();
  return env;
}
