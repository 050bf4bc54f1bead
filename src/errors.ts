/**
 * Errors carry a stable `code`; callers branch on the class or the code, never on message text.
 */

/** Stable error codes. Values are part of the public contract. */
export type GuildErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'BUDGET_UNSATISFIABLE'
  /** Bad CLI flags or arguments. */
  | 'USAGE'
  /** A library caller passed an option or argument of the wrong type or range. */
  | 'INVALID_OPTION'
  /** A method called in a state that does not allow it (a closing supervisor, a duplicate id). */
  | 'INVALID_STATE'
  /** A prefix or name matches more than one thing (`guild report <prefix>`): give more of it. */
  | 'AMBIGUOUS'
  /** The port a server was asked to listen on is taken. */
  | 'PORT_IN_USE'
  /** A server cannot listen on the address asked for (privileges, not an address of this machine, unresolvable). */
  | 'LISTEN_FAILED'
  /** A path a task left behind (a symlink out of the project) or a restore would write outside the project. */
  | 'UNSAFE_PATH'
  | 'STORE'
  | 'PROBE'
  | 'CACHE'
  /** A running Guild's dashboard could not be reached or refused the token (`guild status`). */
  | 'UNAVAILABLE'
  /** No such run in the history (`guild report`). */
  | 'NOT_FOUND'
  /** Another live run holds the folder's run lock (`guild run --no-wait`, `runWorkflow({ wait: false })`). */
  | 'LOCKED'
  /** Distributed mode: no cluster key (GUILD_CLUSTER_KEY) to sign or check jobs with, or one too short. */
  | 'CLUSTER_KEY'
  /** Distributed mode: a job whose signature is missing or does not match its payload (never run). */
  | 'JOB_SIGNATURE'
  /** Distributed mode: a task's files (outputs, log) could not travel through Redis: the pack is gone or does not decode. */
  | 'BUNDLE';

/**
 * How the CLI exits for each code: 2 for input the user can correct (flags, config, a port), 1
 * for a failure or something missing or busy. Every code is listed, so a new one must choose.
 */
export const EXIT_CODE_OF: Readonly<Record<GuildErrorCode, 1 | 2>> = {
  CONFIG_INVALID: 2,
  CONFIG_NOT_FOUND: 2,
  BUDGET_UNSATISFIABLE: 2,
  USAGE: 2,
  INVALID_OPTION: 2,
  AMBIGUOUS: 2,
  PORT_IN_USE: 2,
  LISTEN_FAILED: 2,
  INVALID_STATE: 1,
  UNSAFE_PATH: 1,
  STORE: 1,
  PROBE: 1,
  CACHE: 1,
  UNAVAILABLE: 1,
  NOT_FOUND: 1,
  LOCKED: 1,
  CLUSTER_KEY: 2,
  JOB_SIGNATURE: 1,
  BUNDLE: 1,
};

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
