/**
 * Guild's public API. Everything a library user may import is named here; the rest is internal.
 */
import { gatewayServices } from './gateway/run-services.js';
import { runWorkflow as runWorkflowOnly, type RunWorkflowOptions, type WorkflowDefinition as Definition } from './workflow/run-workflow.js';
import type { RunReport as Report } from './workflow/report.js';
import type { Standalone, StandaloneOptions } from './gateway/standalone.js';
import type { BenchOptions } from './regression/runner.js';
import type { BenchResult } from './regression/types.js';
export { runResolved, type RunWorkflowOptions } from './workflow/run-workflow.js';

/**
 * Loads, validates and runs a workflow; a workflow with `mcp:` gets its MCP gateway for the run
 * (`GUILD_MCP_URL` in every task). Resolves with the run's report whatever the tasks did; rejects
 * only on bad configuration or an unusable store.
 *
 * @example
 * const report = await runWorkflow('guild.yaml', { budget: '2GB' });
 * if (!report.ok) console.log(report.tasks.filter((t) => t.status !== 'succeeded'));
 */
export function runWorkflow(input: string | Definition, options: RunWorkflowOptions = {}): Promise<Report> {
  return runWorkflowOnly(input, { services: (config) => gatewayServices(config), ...options });
}
// The MCP gateway: `guild mcp serve` as a function, a run's gateway, and what they report.
export type { StandaloneOptions as GatewayOptions, Standalone as RunningGateway } from './gateway/standalone.js';

/**
 * `guild mcp serve` as a function: a gateway of its own (probe, supervisor, cache, telemetry) for
 * the MCP servers `options.file` declares. The MCP SDK loads with the first call, not with the
 * import of Guild (it is most of what the gateway costs: 12 MB; `bench/startup.ts`).
 */
export async function startGateway(options: StandaloneOptions): Promise<Standalone> {
  const { startStandalone } = await import('./gateway/standalone.js');
  return startStandalone(options);
}
export { gatewayServices } from './gateway/run-services.js';
export type { BenchOptions, BenchProgress } from './regression/runner.js';

/**
 * `guild bench` as a function: runs the benchmark; resolves with every scenario's verdict
 * (exitCode 0 pass, 1 regression, 2 not enough baseline). Its modules load with the first call.
 */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const { runBench: run } = await import('./regression/runner.js');
  return run(options);
}
export type { BenchResult, ScenarioResult, Comparison, BenchRunRecord, MetricKind, Verdict, Severity } from './regression/types.js';
export type { GatewayStatus, McpBackendStatus, McpServerStatus, McpLatencyStatus, McpCallEvent, McpCallOutcome } from './telemetry/mcp-status.js';
export type { RunServices, RunServiceContext, StartedServices } from './workflow/execute-options.js';
export { loadConfig, type LoadConfigOptions, type WorkflowDefinition } from './config/load-config.js';
export type { RunReport, TaskReport, TaskStatus, LowerBound, WorkerReport } from './workflow/report.js';
export type { RunEvent, RunningTaskView } from './workflow/events.js';
export type { ResolvedConfig, AgentProfile, TaskSpec, BudgetSource } from './config/resolve.js';
export { PRIORITIES, type Priority } from './config/schema.js';
export { Scheduler, type SchedulerJob, type SchedulerOptions, type SchedulerStats } from './scheduler/scheduler.js';
export type { TaskContext, TaskFunction } from './executors/function-executor.js';
// The supervisor: any owner's executions started, measured, limited, governed and reaped; the injected clock.
export { Supervisor, type SupervisorOptions, type SupervisorGovernance, type Measurement } from './supervisor/supervisor.js';
export type { Supervised, StopReason } from './supervisor/supervised.js';
export type { WatchOptions, PressurePolicy, KillNotice } from './supervisor/watch.js';
export type { Executors, Starter } from './supervisor/executors.js';
export { realClock, type Clock, type Timer } from './supervisor/clock.js';
export type { RunExecutors } from './workflow/execute-options.js';
export type { Executor, Execution, ExecOutcome, ExecRequest, KillReason } from './executors/executor.js';
export type { ProcessRequest } from './executors/process-executor.js';
export type { FunctionRequest } from './executors/function-executor.js';
export { createSystemProbe, type SystemProbe, type MemorySnapshot, type MemorySource, type CpuInfo, type PsiSnapshot } from './system/probe.js';
export type { TreeSample } from './system/process-tree.js';
export { GuildError, ConfigError, ConfigErrors, UsageError, EXIT_CODE_OF, type GuildErrorCode, type SourceLocation } from './errors.js';
export { FolderLock, RunLockedError, describeLockHolder, type RunLockHolder } from './store/lease.js';
export { parseSize, parseDuration, formatBytes, formatDuration } from './util/units.js';
export { inspectSystem, type SystemReport } from './config/doctor.js';
export { agentProfiles, type ProfileReport } from './workflow/profiles.js';
export { Governor, type GovernorOptions, type GovernorTarget, type GovernedAgent, type GovernorAction, type PressureReading, type AdmissionRule, type CacheMode } from './governor/governor.js';
export { LEVELS, DEFAULT_THRESHOLDS, type PressureLevel, type Thresholds } from './governor/levels.js';
export type { MemoryConsumer } from './governor/governor.js';
// The cache: tiers, the layered cache, task memoization, routing, the Keyv adapter.
export type { CacheTier, CacheEntry, TierName, TierStats, NamespaceStats, PruneResult, MaybePromise } from './cache/tier.js';
export { MemoryTier, type MemoryTierOptions } from './cache/memory-tier.js';
export { SqliteTier, type SqliteTierOptions } from './cache/sqlite-tier.js';
export { RedisTier, connectRedis, type RedisTierOptions } from './cache/redis-tier.js';
export { RedisLock, type RedisLockOptions } from './cache/redis-lock.js';
export { LayeredCache, type LayeredCacheOptions, type DistributedLock, type Claim, type GetOrComputeOptions, type LayerStats, type CacheStatsReport } from './cache/layered-cache.js';
export { openCache, type OpenCacheOptions } from './cache/open.js';
export { DEFAULT_NAMESPACES, CONTEXT_PRESETS, PRESET_OVERRIDES, presetForBranch, type NamespacePolicy, type ContextPreset } from './config/cache-policy.js';
export { TaskMemo, CACHE_FORMAT_VERSION, type MemoEntry, type Fingerprint } from './cache/memo.js';
export { RoutingCache, type RoutingOptions, type RouteDecision, type RouteRule, type RoutingRules, type RoutingStats } from './cache/routing.js';
export { openRouter, type Router } from './cache/router.js';
export { GuildKeyvStore, type GuildKeyvStoreOptions } from './cache/keyv-store.js';
export { cacheStats, clearCache, pruneCache, type CacheStatsDocument } from './cache/admin.js';
export type { ResolvedCache } from './config/resolve.js';
export type { CacheReport, TaskCacheReport } from './workflow/report.js';
export type { CacheRequests } from './cache/layered-cache.js';
// Telemetry: metrics, KPIs, alerts, history, the dashboard.
export { RunTelemetry, type RunTelemetryOptions } from './telemetry/run-telemetry.js';
export { GuildMetrics } from './telemetry/metrics.js';
export { evaluateKpis, KPI_MINIMUMS, KPI_POINTS, KPI_THRESHOLDS, type KpiInput, type KpiThresholds } from './telemetry/kpi.js';
export { KpiRecorder, KPI_WINDOWS, type KpiRecorderOptions, type KpiWindows } from './telemetry/kpi-recorder.js';
export { MovingAverage } from './telemetry/moving-average.js';
export { AlertManager, type AlertManagerOptions, type AlertInput } from './telemetry/alerts.js';
export { WebhookSender, type WebhookOptions, type WebhookPayload } from './telemetry/webhook.js';
export { slowExecution, highMemory, lowCacheHitRate, agentFailure } from './telemetry/alert-rules.js';
export { TelemetryHistory, AmbiguousRunIdError, type PruneOptions as HistoryPruneOptions } from './store/telemetry.js';
export { renderReportMarkdown, type ReportDocument } from './telemetry/report-markdown.js';
export { readReport } from './telemetry/reports.js';
export type { DashboardState, TickEvent, SeriesPoint, TaskRow, AgentRow, RunInfo, RunSummary, KpiReport, KpiScore, Score, ComponentKind, AlertRecord, AlertRule, WorkerRow, WorkersSnapshot } from './telemetry/state.js';
export { startDashboard, type DashboardSource, type DashboardOptions, type DashboardServer } from './dashboard/server.js';
export { HistorySource } from './dashboard/history-source.js';
export { fetchState } from './dashboard/client.js';
export type { ResolvedTelemetry } from './config/resolve.js';
// Distributed mode's shapes (types only: importing Guild does not load BullMQ; `guild worker` and
// `guild run --redis` are the entry points).
export type { JobPayload, JobResult, WorkerBeat } from './distributed/job.js';
