import type { Prompt, Resource, ResourceTemplate, ServerCapabilities, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedMcpServer } from '../config/mcp.js';
import type { McpBackend } from './backend.js';
import { NameMap, type Route } from './names.js';

// What the gateway's backends offer, as its clients see it: every server's tools, resources and
// prompts under their exposed names, and capabilities merged honestly (one only if a backend has it).

/** What one server offers, as its latest instance said. */
export interface Offer {
  tools: readonly Tool[];
  resources: readonly Resource[];
  resourceTemplates: readonly ResourceTemplate[];
  prompts: readonly Prompt[];
  capabilities: ServerCapabilities;
  instructions: string | undefined;
}

/** Tools a gateway cannot serve: those that require MCP tasks, which it does not proxy. */
function servable(t: Tool): boolean {
  return (t.execution as { taskSupport?: string } | undefined)?.taskSupport !== 'required';
}

/** The lists clients see, under their exposed names. */
export interface Exposed {
  tools: Tool[];
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
}

export class Catalog {
  readonly #servers: readonly ResolvedMcpServer[];
  readonly #offers = new Map<string, Offer>();
  readonly tools: NameMap;
  readonly prompts: NameMap;
  /** Exposed lists, rebuilt when an offer changes. */
  #exposed: Exposed = { tools: [], resources: [], resourceTemplates: [], prompts: [] };
  #uriOwner = new Map<string, string>();

  constructor(servers: readonly ResolvedMcpServer[]) {
    this.#servers = servers;
    this.tools = new NameMap(servers);
    this.prompts = new NameMap(servers);
  }

  /** Learn what `backend` offers now (its server's offer is replaced). */
  learn(backend: McpBackend): void {
    this.#offers.set(backend.name, {
      tools: backend.tools,
      resources: backend.resources,
      resourceTemplates: backend.resourceTemplates,
      prompts: backend.prompts,
      capabilities: backend.capabilities,
      instructions: backend.instructions,
    });
    this.#rebuild();
  }

  offer(server: string): Offer | undefined {
    return this.#offers.get(server);
  }

  /** The backend's tool named `name` of `server`, for its annotations. */
  tool(server: string, name: string): Tool | undefined {
    return this.#offers.get(server)?.tools.find((t) => t.name === name);
  }

  get exposed(): Readonly<Exposed> {
    return this.#exposed;
  }

  /**
   * Capabilities of the gateway: tools, resources and prompts when a backend has them (with
   * `listChanged`: the gateway tells its sessions when a backend's lists change or it restarts),
   * resource subscriptions, completions and logging only when a backend has them. Never tasks:
   * the gateway does not proxy them.
   */
  capabilities(): ServerCapabilities {
    const caps: ServerCapabilities = { tools: { listChanged: true } };
    const offers = [...this.#offers.values()];
    if (offers.some((o) => o.capabilities.resources !== undefined)) {
      caps.resources = { listChanged: true, ...(offers.some((o) => o.capabilities.resources?.subscribe === true) && { subscribe: true }) };
    }
    if (offers.some((o) => o.capabilities.prompts !== undefined)) caps.prompts = { listChanged: true };
    if (offers.some((o) => o.capabilities.completions !== undefined)) caps.completions = {};
    if (offers.some((o) => o.capabilities.logging !== undefined)) caps.logging = {};
    return caps;
  }

  /** One server's instructions as they are; several under their servers' names. */
  instructions(): string | undefined {
    const parts = this.#servers.flatMap((s) => {
      const text = this.#offers.get(s.name)?.instructions;
      return text ? [{ name: s.name, text }] : [];
    });
    if (parts.length === 0) return undefined;
    if (this.#servers.length === 1) return parts[0]!.text;
    return parts.map((p) => `## ${p.name}\n${p.text}`).join('\n\n');
  }

  /** The server a resource URI belongs to: a listed resource, else the template whose fixed start it has, else the only server. */
  resourceOwner(uri: string): string | null {
    const listed = this.#uriOwner.get(uri);
    if (listed !== undefined) return listed;
    let best: { server: string; length: number } | null = null;
    for (const s of this.#servers) {
      for (const t of this.#offers.get(s.name)?.resourceTemplates ?? []) {
        const fixed = t.uriTemplate.split('{')[0]!;
        if (fixed.length > 0 && uri.startsWith(fixed) && (best === null || fixed.length > best.length)) best = { server: s.name, length: fixed.length };
      }
    }
    if (best !== null) return best.server;
    const withResources = this.#servers.filter((s) => this.#offers.get(s.name)?.capabilities.resources !== undefined);
    return withResources.length === 1 ? withResources[0]!.name : null;
  }

  route(kind: 'tools' | 'prompts', exposed: string): Route | null {
    return this[kind].resolve(exposed);
  }

  #rebuild(): void {
    const out: Exposed = { tools: [], resources: [], resourceTemplates: [], prompts: [] };
    const owners = new Map<string, string>();
    for (const s of this.#servers) {
      const o = this.#offers.get(s.name);
      if (o === undefined) continue;
      for (const t of o.tools) {
        const name = servable(t) ? this.tools.expose(s, t.name) : null;
        if (name !== null) out.tools.push(name === t.name ? t : { ...t, name });
      }
      for (const p of o.prompts) {
        const name = this.prompts.expose(s, p.name);
        if (name !== null) out.prompts.push(name === p.name ? p : { ...p, name });
      }
      // URIs are what clients read with, so they stay as the server gave them; the display name is prefixed.
      for (const r of o.resources) {
        if (owners.has(r.uri)) continue;
        owners.set(r.uri, s.name);
        out.resources.push(s.prefix ? { ...r, name: `${s.name}__${r.name}` } : r);
      }
      for (const t of o.resourceTemplates) out.resourceTemplates.push(s.prefix ? { ...t, name: `${s.name}__${t.name}` } : t);
    }
    this.tools.learn((server) => (this.#offers.get(server)?.tools ?? []).filter(servable).map((t) => t.name));
    this.prompts.learn((server) => (this.#offers.get(server)?.prompts ?? []).map((p) => p.name));
    this.#exposed = out;
    this.#uriOwner = owners;
  }
}
