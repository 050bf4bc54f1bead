/**
 * Errors carry a stable `code`; callers branch on the class or the code, never on message text.
 */

/** Stable error codes. Values are part of the public contract. */
export type GuildErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'BUDGET_UNSATISFIABLE'
  | 'USAGE'
  | 'STORE'
  | 'PROBE'
  | 'CACHE'
  /** A running Guild's dashboard could not be reached or refused the token (`guild status`). */
  | 'UNAVAILABLE'
  /** No such run in the history (`guild report`). */
  | 'NOT_FOUND'
  /** Another live run holds the folder's run lock (`guild run --no-wait`, `runWorkflow({ wait: false })`). */
  | 'LOCKED';

export class GuildError extends Error {
  readonly code: GuildErrorCode;
  constructor(code: GuildErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Where in a user's file a problem sits. `line` and `column` are 1-based. */
export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
  /** Dotted key path, e.g. `agents.analyzer.memory` or `tasks[3].needs`. */
  key?: string;
}

/** A config problem: names the file, the line and the key. */
export class ConfigError extends GuildError {
  readonly location: SourceLocation;
  constructor(location: SourceLocation, message: string, options?: { cause?: unknown; code?: GuildErrorCode }) {
    super(options?.code ?? 'CONFIG_INVALID', formatLocated(location, message), options);
    this.location = location;
  }
}

/** Several config problems found in one pass, reported together. */
export class ConfigErrors extends GuildError {
  readonly errors: readonly ConfigError[];
  constructor(errors: readonly ConfigError[]) {
    // In file order, as a reader goes through the file.
    const sorted = [...errors].sort((a, b) => (a.location.line ?? 0) - (b.location.line ?? 0) || (a.location.column ?? 0) - (b.location.column ?? 0));
    super('CONFIG_INVALID', sorted.map((e) => e.message).join('\n'));
    this.errors = sorted;
  }
}

export function formatLocated(loc: SourceLocation, message: string): string {
  let where = loc.file;
  if (loc.line !== undefined) where += `:${loc.line}`;
  if (loc.column !== undefined) where += `:${loc.column}`;
  return loc.key ? `${where}: ${loc.key}: ${message}` : `${where}: ${message}`;
}

/** Thrown by the CLI for bad flags or arguments (exit 2). */
export class UsageError extends GuildError {
  constructor(message: string) {
    super('USAGE', message);
  }
}
