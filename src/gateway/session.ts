import { statSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListRootsResultSchema,
  ListToolsRequestSchema,
  RootsListChangedNotificationSchema,
  type ServerNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { GuildError } from '../errors.js';
import { MAX_REQUEST_TIMEOUT_MS } from './backend.js';
import type { Gateway, SessionPeer } from './gateway.js';

// One client session: a low-level SDK `Server` with the gateway's merged capabilities, whose
// handlers hand every request to the gateway verbatim (loose schemas: the SDK's own would strip
// fields they do not know), and the session's project, learned once it is needed.

/** Requests forwarded as they are; `params` loose so nothing is dropped on the way. */
const forwarded = (method: string, key: 'name' | 'uri' | 'ref') =>
  z.object({ method: z.literal(method), params: z.looseObject({ [key]: key === 'ref' ? z.looseObject({ type: z.string() }) : z.string() }) });

const FORWARDED = [
  forwarded('tools/call', 'name'),
  forwarded('prompts/get', 'name'),
  forwarded('resources/read', 'uri'),
  forwarded('resources/subscribe', 'uri'),
  forwarded('resources/unsubscribe', 'uri'),
  forwarded('completion/complete', 'ref'),
] as const;

/** How long a client gets to answer `roots/list` before its project is the default one. */
const ROOTS_TIMEOUT_MS = 5000;

export interface SessionOptions {
  /** From the URL's `?project=`: wins over the client's roots. Checked already (an existing folder). */
  project: string | null;
  /** Guild's name and version in `initialize`. */
  serverInfo: { name: string; version: string };
}

/** A session's server and its peer in the gateway. `id` is set once the transport knows it. */
export class GatewaySession implements SessionPeer {
  readonly server: Server;
  readonly subscriptions = new Set<string>();
  id = '';
  readonly #gateway: Gateway;
  readonly #fixed: string | null;
  #project: Promise<string> | null = null;

  constructor(gateway: Gateway, o: SessionOptions) {
    this.#gateway = gateway;
    this.#fixed = o.project;
    const instructions = gateway.catalog.instructions();
    this.server = new Server(o.serverInfo, {
      capabilities: gateway.catalog.capabilities(),
      ...(instructions !== undefined && { instructions }),
      debouncedNotificationMethods: ['notifications/tools/list_changed', 'notifications/resources/list_changed', 'notifications/prompts/list_changed'],
    });
    const caps = gateway.catalog.capabilities();
    this.server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: gateway.catalog.exposed.tools }));
    if (caps.resources !== undefined) {
      this.server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: gateway.catalog.exposed.resources }));
      this.server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: gateway.catalog.exposed.resourceTemplates }));
    }
    if (caps.prompts !== undefined) this.server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: gateway.catalog.exposed.prompts }));
    for (const schema of FORWARDED) {
      const method = schema.shape.method.value;
      if (method.startsWith('resources/') && caps.resources === undefined) continue;
      if ((method === 'resources/subscribe' || method === 'resources/unsubscribe') && caps.resources?.subscribe !== true) continue;
      if (method === 'prompts/get' && caps.prompts === undefined) continue;
      if (method === 'completion/complete' && caps.completions === undefined) continue;
      this.server.setRequestHandler(schema, async (req, extra) => {
        const params = req.params as Record<string, unknown>;
        const result = await gateway.forward({ session: this, project: await this.project(extra), method, params, extra });
        if (method === 'resources/subscribe') this.subscriptions.add(String(params.uri));
        if (method === 'resources/unsubscribe') this.subscriptions.delete(String(params.uri));
        return result as never;
      });
    }
    // The client's roots moved: its project is learned again at the next call.
    this.server.setNotificationHandler(RootsListChangedNotificationSchema, () => {
      this.#project = null;
    });
  }

  clientCapabilities(): ReturnType<Server['getClientCapabilities']> {
    return this.server.getClientCapabilities();
  }

  listChanged(kind: 'tools' | 'resources' | 'prompts'): void {
    const send = kind === 'tools' ? () => this.server.sendToolListChanged() : kind === 'resources' ? () => this.server.sendResourceListChanged() : () => this.server.sendPromptListChanged();
    send().catch(() => undefined);
  }

  notify(n: ServerNotification): void {
    this.server.notification(n).catch(() => undefined);
  }

  request(req: Parameters<SessionPeer['request']>[0], schema: Parameters<SessionPeer['request']>[1], signal: AbortSignal): Promise<never> {
    return this.server.request(req, schema, { signal, timeout: MAX_REQUEST_TIMEOUT_MS }) as Promise<never>;
  }

  /**
   * The project this session's calls are served for: the URL's `?project=`, else the first
   * `file://` root the client lists (asked within the first call that needs it: a request sent
   * before the client opened its stream would be lost), else the gateway's default project.
   */
  project(extra: RequestHandlerExtra<any, any>): Promise<string> {
    if (this.#fixed !== null) return Promise.resolve(this.#fixed);
    this.#project ??= this.#fromRoots(extra);
    return this.#project;
  }

  async #fromRoots(extra: RequestHandlerExtra<any, any>): Promise<string> {
    if (this.server.getClientCapabilities()?.roots === undefined) return this.#gateway.defaultProject;
    try {
      const { roots } = await extra.sendRequest({ method: 'roots/list' }, ListRootsResultSchema, { timeout: ROOTS_TIMEOUT_MS });
      for (const root of roots) {
        if (!root.uri.startsWith('file://')) continue;
        const dir = await checkedProject(fileURLToPath(root.uri)).catch(() => null);
        if (dir !== null) return dir;
      }
    } catch {
      // A client that declared roots but does not answer: the default project, asked again next call.
      this.#project = null;
    }
    return this.#gateway.defaultProject;
  }
}

/** An absolute path to an existing folder, as its real path; else a GuildError saying what is wrong. */
export async function checkedProject(path: string): Promise<string> {
  if (!isAbsolute(path)) throw new GuildError('INVALID_OPTION', `project must be an absolute path, got ${JSON.stringify(path)}`);
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new GuildError('NOT_FOUND', `project ${JSON.stringify(path)} does not exist`);
  }
  if (!statSync(real).isDirectory()) throw new GuildError('INVALID_OPTION', `project ${JSON.stringify(path)} is not a folder`);
  return real;
}
