import type { Result, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedMcpServer } from '../config/mcp.js';

/** Which arguments of a cacheable tool name files (their size and mtime are part of the key). */
export interface CacheRule {
  readonly paths: readonly string[];
}

/** What makes one cached result: the key. */
export interface ResultKeyInput {
  server: string;
  tool: string;
  args: Record<string, unknown> | undefined;
  /** Absolute project folder (`*` for a shared server). */
  project: string;
  /** The session, for per-session servers; else null. */
  session: string | null;
  rule: CacheRule;
}

/** The gateway's cache of tool results (tool-cache.ts implements it over the layered cache). */
export interface ResultCache {
  /** Null: the tool's results are never cached (not listed in `cacheable`, not read-only and idempotent). */
  ruleOf(server: ResolvedMcpServer, tool: Tool | undefined): CacheRule | null;
  /** A call to this tool may change what the server's reads return (not read-only, or unknown). */
  writesTo(tool: Tool | undefined): boolean;
  /** Null: not cacheable this time (a path argument outside the project). */
  key(input: ResultKeyInput): Promise<string | null>;
  /** A fresh copy of the cached result, or null. */
  get(key: string): Promise<Result | null>;
  /** False when not stored (`isError`, too large). */
  set(key: string, result: Result): Promise<boolean>;
  /** Drop the server's cached results for one project. */
  invalidate(server: string, project: string): Promise<void>;
  readonly counts: { hits: number; misses: number; stores: number; invalidations: number; skipped: number };
}
