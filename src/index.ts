/**
 * Guild's public API. Everything a library user may import is named here; the rest is internal.
 */
export { runWorkflow, runResolved, loadConfig, type RunWorkflowOptions, type WorkflowDefinition } from './workflow/run-workflow.js';
export type { RunReport, TaskReport, TaskStatus, LowerBound } from './workflow/report.js';
export type { RunEvent, RunningTaskView } from './workflow/events.js';
export type { ResolvedConfig, AgentProfile, TaskSpec, BudgetSource } from './config/resolve.js';
export { PRIORITIES, type Priority } from './config/schema.js';
export { Scheduler, type SchedulerJob, type SchedulerOptions, type SchedulerStats } from './scheduler/scheduler.js';
export type { TaskContext, TaskFunction } from './executors/function-executor.js';
export { createSystemProbe, type SystemProbe, type MemorySnapshot, type MemorySource, type CpuInfo, type PsiSnapshot } from './system/probe.js';
export type { TreeSample } from './system/process-tree.js';
export { GuildError, ConfigError, ConfigErrors, UsageError, type GuildErrorCode, type SourceLocation } from './errors.js';
export { parseSize, parseDuration, formatBytes, formatDuration } from './util/units.js';
export { inspectSystem, type SystemReport } from './system/doctor.js';
export { agentProfiles, type ProfileReport } from './workflow/profiles.js';
export { Governor, type GovernorOptions, type GovernorTarget, type GovernedAgent, type GovernorAction, type PressureReading, type AdmissionRule, type CacheMode } from './governor/governor.js';
export { LEVELS, DEFAULT_THRESHOLDS, type PressureLevel, type Thresholds } from './governor/levels.js';
export type { MemoryConsumer } from './workflow/run.js';
