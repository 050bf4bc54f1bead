import type { Registry } from 'prom-client';
import type { ResolvedConfig } from '../config/resolve.js';
import type { GatewayStatus } from '../telemetry/mcp-status.js';
import type { ResolvedMcp } from '../config/mcp.js';
import type { RunServices } from '../workflow/execute-options.js';

/**
 * The MCP gateway of a run (`mcp:` in a workflow with tasks): started under the run's supervisor
 * before any task, on a free loopback port; its backends count on the run's budget beside the
 * tasks (each admitted against what the other holds); every task gets `GUILD_MCP_URL`; the
 * report gets `mcp` (servers, backends with pid, project, peak RSS, calls, cache hits, restarts,
 * recycles). Null when the config declares no servers.
 */
export interface GatewayServicesOptions {
  /** The run's metrics registry: the gateway's metrics join it (the run's /metrics serves them). */
  registry?: Registry;
  /** Once the gateway serves: how to read its status (the run's dashboard panel). */
  onStarted?: (status: () => GatewayStatus) => void;
}

export function gatewayServices(config: ResolvedConfig, options: GatewayServicesOptions = {}): RunServices | null {
  const mcp: ResolvedMcp | null = config.mcp;
  if (mcp === null || mcp.servers.length === 0) return null;
  return {
    async start(ctx) {
      // The MCP SDK loads only for a run that has servers.
      const { serveGateway } = await import('./serve.js');
      const running = await serveGateway({
        mcp,
        dir: config.dir,
        supervisor: ctx.supervisor,
        budget: { budgetBytes: config.budgetBytes, headroom: config.headroom, otherBytes: ctx.tasksBytes },
        cache: ctx.cache,
        port: 0,
        runId: ctx.runId,
        ...(options.registry !== undefined && { registry: options.registry }),
      });
      options.onStarted?.(() => running.status());
      return {
        env: { GUILD_MCP_URL: running.url },
        bytes: () => running.gateway.reservedBytes(),
        report: () => ({ mcp: running.status() }),
        close: () => running.close(),
      };
    },
  };
}
