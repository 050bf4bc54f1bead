import { createRequire } from 'node:module';

/**
 * Guild's native addon (native/: spawn.c, memory.cc), built by node-gyp at `npm install`
 * (scripts/build-native.mjs). It is an optimisation: where it is not built (not Linux, no compiler
 * at install) this is null and Guild does without it (Node's spawn; V8's own memory reducer).
 */
export interface NativeAddon {
  /** See native/spawn.c. `signal` is a signal number. */
  spawn(file: string, argv: readonly string[], env: readonly string[], cwd: string, stdoutFd: number, stderrFd: number, onExit: (code: number | null, signal: number | null) => void, procs: readonly string[]): number;
  /** V8's LowMemoryNotification on this thread's isolate: full collections that shrink the heap (native/memory.cc). */
  reduceMemory(): void;
  /** A pipe, [readFd, writeFd], both close-on-exec (spawn dups the write end onto a child's stdout). */
  pipe(): [number, number];
}

/** The built addon, relative to dist/src/system/ (and src/system/ under a TS runner). */
const ADDON = '../../../native/build/Release/guild_spawn.node';

let addon: NativeAddon | null | undefined;

/** The addon, or null where it is not built. Loaded once. */
export function nativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux') return addon;
  try {
    addon = createRequire(import.meta.url)(ADDON) as NativeAddon;
  } catch {
    // not built here
  }
  return addon;
}

/** An environment object as posix_spawn's "K=V" list (undefined values left out, as Node does). */
export function envList(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const k in env) {
    const v = env[k];
    if (v !== undefined) out.push(`${k}=${v}`);
  }
  return out;
}
