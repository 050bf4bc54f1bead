import { realpathSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedMcpServer } from '../config/mcp.js';

// What makes a tool call cacheable, and the parts of its key that are not plain strings: the
// arguments as canonical JSON, and the state of the files its path arguments name.

/** How a cacheable tool is keyed: `paths` are the (top-level) arguments that name files. */
export interface CacheRule {
  readonly paths: readonly string[];
}

const NO_PATHS: CacheRule = Object.freeze({ paths: Object.freeze([]) });

/**
 * The tool's cache rule, or null when its results must not be cached. A tool is cacheable when
 * the server's `cacheable` lists it (by the backend's name, with its path arguments), or when it
 * is annotated both `readOnlyHint` and `idempotentHint` (no path arguments then: a server that
 * reads files should list its tools with `paths`). `tool` is the backend's description of it,
 * undefined when the backend does not list it.
 */
export function cacheRuleOf(server: Pick<ResolvedMcpServer, 'cacheable'>, name: string, tool: Tool | undefined): CacheRule | null {
  for (const c of server.cacheable) if (c.tool === name) return c.paths.length === 0 ? NO_PATHS : { paths: c.paths };
  const a = tool?.annotations;
  return a?.readOnlyHint === true && a.idempotentHint === true ? NO_PATHS : null;
}

/**
 * Whether a call of this tool may change what the server's other tools answer, so that it must
 * drop the server's cached results (`ToolResultCache.write`): every tool that is neither annotated
 * `readOnlyHint` nor listed in `cacheable` (listing a tool there says it has no side effects),
 * and any tool the backend does not list.
 */
export function writesTo(server: Pick<ResolvedMcpServer, 'cacheable'>, name: string, tool: Tool | undefined): boolean {
  return tool?.annotations?.readOnlyHint !== true && cacheRuleOf(server, name, tool) === null;
}

/**
 * `v` as JSON with every object's keys sorted (recursively), so that arguments that differ only
 * in key order have one key. It follows JSON.stringify, which is what the backend receives:
 * `undefined`, functions and symbols are dropped from objects and null in arrays, non-finite
 * numbers are null, `toJSON` is honoured. Throws on a BigInt and on nesting past 256 levels
 * (a cycle), as JSON.stringify would on either.
 */
export function canonicalJson(v: unknown): string {
  return canon(v, 0) ?? 'null';
}

function canon(v: unknown, depth: number): string | undefined {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null'; // as JSON.stringify: String(-0) is "0"
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('Do not know how to serialize a BigInt');
    case 'object':
      break;
    default:
      return undefined; // undefined, function, symbol
  }
  if (v === null) return 'null';
  if (depth > 256) throw new RangeError('arguments nested deeper than 256 levels');
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return canon(toJSON.call(v), depth + 1);
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + (canon(v[i], depth + 1) ?? 'null');
    return out + ']';
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const c = canon(o[k], depth + 1);
    if (c === undefined) continue;
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + c;
    first = false;
  }
  return out + '}';
}

/** Why a call of a cacheable tool was not cached this time. */
export type SkipReason =
  /** A path argument resolves outside the project folder (lexically or through a symlink), or is `~…` or a non-file URI. */
  | 'outside-project'
  /** A path argument is neither a string nor an array of strings. */
  | 'path-type'
  /** A named file changed too recently for its timestamps to tell the next change apart (see `racyMs`). */
  | 'racy-file'
  /** A named file or the project folder could not be examined (permissions, a symlink loop, no project folder). */
  | 'stat-error'
  /** A per-session server's call without a session. */
  | 'no-session'
  /** Arguments JSON cannot encode (BigInt, a cycle). */
  | 'arguments'
  /** `isError: true`. */
  | 'error-result'
  /** Larger than `maxResultBytes`, once encoded. */
  | 'too-large'
  /** A result JSON cannot encode. */
  | 'unserializable'
  /** A write to the server began after the call's key was made (its result may predate the write). */
  | 'stale'
  /** The cache failed to read or store (the call itself is unaffected). */
  | 'cache-error';

/** Resolves and examines the files of one call; real project folders are remembered. */
export class FileStamper {
  /** Project folder → its real path. */
  readonly #roots = new Map<string, string>();
  readonly #now: () => number;
  readonly #racyMs: number;

  constructor(now: () => number, racyMs: number) {
    this.#now = now;
    this.#racyMs = racyMs;
  }

  /**
   * One string for the state of every file `rule.paths` names in `args`, or why the call cannot be
   * cached. A file is its device, inode, size, mtime and ctime (ns), and whether it is a directory
   * (a directory's times change when entries are added, removed or renamed in it, not when a file
   * deeper down changes: list a tree-walking tool with care); a missing file is `missing`.
   *
   * Synchronous on purpose: a local stat costs ~2 µs and a realpath ~5 µs, while one call through
   * libuv's thread pool costs ~35 µs, and a cache hit should cost well under a millisecond.
   */
  stamps(rule: CacheRule, args: Readonly<Record<string, unknown>> | undefined, project: string): string | SkipReason {
    if (rule.paths.length === 0) return '';
    const root = this.#realRoot(project);
    if (root === null) return 'stat-error';
    let out = '';
    for (const name of rule.paths) {
      const v = args !== undefined && Object.hasOwn(args, name) ? args[name] : undefined;
      out += `${name.length}:${name}=`;
      if (v === undefined) out += '-;';
      else if (typeof v === 'string') {
        const s = this.#stamp(v, project, root);
        if (!s.startsWith('#')) return s as SkipReason;
        out += s + ';';
      } else if (Array.isArray(v)) {
        out += `[${v.length}]`;
        for (const p of v) {
          if (typeof p !== 'string') return 'path-type';
          const s = this.#stamp(p, project, root);
          if (!s.startsWith('#')) return s as SkipReason;
          out += s + ',';
        }
        out += ';';
      } else return 'path-type';
    }
    return out;
  }

  /** `#…` for a file inside the project, else the reason it cannot be keyed. */
  #stamp(arg: string, project: string, root: string): string {
    let path: string;
    if (arg.startsWith('~')) return 'outside-project'; // servers expand it to a home folder
    if (/^[A-Za-z][A-Za-z0-9+.-]+:/.test(arg)) {
      // A URI (one letter would be a Windows drive). Only file: URIs name local files.
      if (!arg.startsWith('file:')) return 'outside-project';
      try {
        path = fileURLToPath(arg);
      } catch {
        return 'outside-project';
      }
    } else path = resolve(project, arg);
    // Lexically inside first, so that nothing outside the project is ever examined by name.
    if (!within(path, project) && !within(path, root)) return 'outside-project';
    let real: string;
    try {
      real = realpathSync.native(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ENOTDIR' ? '#missing' : 'stat-error';
    }
    if (!within(real, root)) return 'outside-project'; // a symlink out of the project
    const st = statSync(real, { bigint: true, throwIfNoEntry: false });
    if (st === undefined) return '#missing'; // removed between the two calls
    // Racy file (as git's index calls it): timestamps have a granularity (a tick of the kernel's
    // coarse clock, 1 s on ext3, 2 s on FAT), so two writes within one tick of equal size leave
    // equal stamps. A file changed within racyMs of now is not cached; any later change then
    // gets a later ctime. ctime, since a writer may set mtime back but never ctime.
    if (this.#now() - Number(st.ctimeMs) < this.#racyMs) return 'racy-file';
    return `#${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.isDirectory() ? 'd' : 'f'}`;
  }

  #realRoot(project: string): string | null {
    const known = this.#roots.get(project);
    if (known !== undefined) return known;
    try {
      const r = realpathSync.native(project);
      this.#roots.set(project, r);
      return r;
    } catch {
      return null; // not remembered: the folder may appear
    }
  }
}

/** `path` is `dir` or inside it (both absolute and normalized). */
function within(path: string, dir: string): boolean {
  if (path === dir) return true;
  return path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}
