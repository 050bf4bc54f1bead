/**
 * Shared by the gateway's tests: published MCP servers from node_modules, a gateway started
 * in-process from a real config file, and real SDK clients over streamable HTTP.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startStandalone, type Standalone } from '../src/gateway/standalone.js';
import type { GatewayStatus } from '../src/telemetry/mcp-status.js';
import { ROOT, sleep } from './helpers.js';

const SERVERS = join(ROOT, 'node_modules', '@modelcontextprotocol');
export const EVERYTHING = join(SERVERS, 'server-everything', 'dist', 'index.js');
export const MEMORY = join(SERVERS, 'server-memory', 'dist', 'index.js');
export const FILESYSTEM = join(SERVERS, 'server-filesystem', 'dist', 'index.js');

/** YAML of one server entry (indented for `mcp.servers`). */
export function serverYaml(name: string, script: string, args: string[] = [], more = ''): string {
  const list = [script, ...args].map((a) => JSON.stringify(a)).join(', ');
  return `    ${name}:\n      command: ${JSON.stringify(process.execPath)}\n      args: [${list}]\n${more.replace(/^/gm, '      ')}\n`;
}

/** Writes `<dir>/guild.yaml` with these servers and starts a gateway on a free port. */
export async function gateway(dir: string, servers: string, options: { budget?: string; extra?: string } = {}): Promise<Standalone> {
  const file = join(dir, 'guild.yaml');
  writeFileSync(file, `${options.extra ?? ''}mcp:\n  servers:\n${servers}`);
  return startStandalone({ file, port: 0, token: null, ...(options.budget !== undefined && { budget: options.budget }) });
}

export interface ClientOptions {
  project?: string;
  capabilities?: ConstructorParameters<typeof Client>[1];
}

/** An SDK client connected to the gateway (with `?project=` when given). */
export async function connect(url: string, o: ClientOptions = {}): Promise<Client> {
  const u = new URL(url);
  if (o.project !== undefined) u.searchParams.set('project', o.project);
  const c = new Client({ name: 'guild-test', version: '1' }, o.capabilities ?? {});
  await c.connect(new StreamableHTTPClientTransport(u));
  return c;
}

/** Ends the client's session as a well-behaved client does (HTTP DELETE), then closes it. */
export async function endSession(c: Client): Promise<void> {
  await (c.transport as StreamableHTTPClientTransport | undefined)?.terminateSession();
  await c.close();
}

export function text(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('');
}

/** The backends of `server` (all projects) in the gateway's status. */
export function backendsOf(status: GatewayStatus, server: string): GatewayStatus['backends'] {
  return status.backends.filter((b) => b.server === server);
}

export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
