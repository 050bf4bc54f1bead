import type { GatewayStatus } from '../telemetry/mcp-status.js';
export function formatGatewayStatus(s: GatewayStatus): string {
  return JSON.stringify(s, null, 2);
}
