import { closeSync, read } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { deserialize } from 'node:v8';
import { ConfigError, ConfigErrors, formatLocated, GuildError, UsageError, type GuildErrorCode, type SourceLocation } from '../errors.js';
import type { LoadConfigOptions } from './load-config.js';
import type { ResolvedConfig } from './resolve.js';
import { envList, nativeAddon, type NativeAddon } from '../system/native.js';

// Loading a workflow file in a short-lived child process. What loads a configuration (YAML, zod,
// the schema, the config modules) is start-up work, and an ES module is never unloaded: loaded in
// the process of `guild run`, it would stay in its memory for the whole run (8-9 MB of a waiting
// run's RSS; bench/startup.ts). A worker thread leaves 3-4 MB behind (its malloc arena, the pages
// of Node's code it ran); a child process leaves nothing. The child runs `loadConfig` as it is and
// sends back, by structured clone over IPC, the resolved configuration (plain data, with what the
// clone drops: which objects have no prototype and which are frozen) or the error, rebuilt here as
// the same class with the same message and code. It runs no agent and exits once it has answered.
// Where Guild's native addon is built, the child is started by it and answers on a pipe that is
// its stdout (V8's serializer, as Node's 'advanced' IPC uses): node:child_process, and the net,
// dgram and stream modules it loads, then never enter the run's process (~1 MB of a waiting run's
// RSS; a task's process starts through the addon too). Elsewhere it is forked with an IPC channel.

/** What the child sends back. */
export type LoadAnswer = { ok: true; config: ResolvedConfig; shape: Shape } | { ok: false; error: WireError };

type Path = (string | number)[];

/**
 * What structured clone does not carry: the objects without a prototype (an agent named
 * `constructor`, env maps) and the frozen ones, by their path from the root.
 */
export interface Shape {
  nullPrototype: Path[];
  frozen: Path[];
}

/**
 * The child's side: the shape of a configuration. Throws on what would not arrive as it is (a
 * function, a class instance): the child then fails, and the file is loaded in this process.
 */
export function shapeOf(root: unknown): Shape {
  const shape: Shape = { nullPrototype: [], frozen: [] };
  const seen = new Set<object>();
  const walk = (v: unknown, path: Path): void => {
    if (typeof v === 'function') throw new TypeError(`a function at ${path.join('.')} cannot be sent`);
    if (v === null || typeof v !== 'object' || seen.has(v)) return; // an alias arrives as one object
    seen.add(v);
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto === null) shape.nullPrototype.push(path);
    else if (proto !== Object.prototype && proto !== Array.prototype) throw new TypeError(`an instance of a class at ${path.join('.')} cannot be sent as it is`);
    if (Object.isFrozen(v)) shape.frozen.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(root, []);
  return shape;
}

/** This side: gives the cloned configuration its shape back (prototypes first: a frozen object cannot change its own). */
function reshape<T>(root: T, shape: Shape): T {
  const at = (path: Path): object => path.reduce<object>((o, k) => (o as Record<string | number, object>)[k]!, root as object);
  for (const p of shape.nullPrototype) Object.setPrototypeOf(at(p), null);
  for (const p of shape.frozen) Object.freeze(at(p));
  return root;
}

/** An error as plain data (structured clone keeps neither the class nor `code` nor `location`). */
export type WireError =
  | { kind: 'config'; errors: WireConfigError[] }
  | { kind: 'configs'; errors: WireConfigError[] }
  | { kind: 'guild'; name: string; code: GuildErrorCode; message: string; stack: string | undefined }
  | { kind: 'other'; name: string; message: string; stack: string | undefined };

interface WireConfigError {
  location: SourceLocation;
  message: string;
  code: GuildErrorCode;
}

/** The child's side: an error thrown by `loadConfig`, as data. */
export function toWire(e: unknown): WireError {
  const one = (c: ConfigError): WireConfigError => ({ location: { ...c.location }, message: c.message, code: c.code });
  if (e instanceof ConfigErrors) return { kind: 'configs', errors: e.errors.map(one) };
  if (e instanceof ConfigError) return { kind: 'config', errors: [one(e)] };
  if (e instanceof GuildError) return { kind: 'guild', name: e.name, code: e.code, message: e.message, stack: e.stack };
  if (e instanceof Error) return { kind: 'other', name: e.name, message: e.message, stack: e.stack };
  return { kind: 'other', name: 'Error', message: String(e), stack: undefined };
}

/** This side: the error `loadConfig` threw in the child, as the same class, message and code. */
export function fromWire(w: WireError): Error {
  // A ConfigError's message is formatLocated(location, what): what is the rest after that prefix.
  const one = (c: WireConfigError): ConfigError => new ConfigError(c.location, c.message.slice(formatLocated(c.location, '').length), { code: c.code });
  switch (w.kind) {
    case 'configs':
      return new ConfigErrors(w.errors.map(one));
    case 'config':
      return one(w.errors[0]!);
    case 'guild': {
      const e = w.name === 'UsageError' ? new UsageError(w.message) : new GuildError(w.code, w.message);
      if (w.stack !== undefined) e.stack = w.stack;
      return e;
    }
    case 'other': {
      const e = new Error(w.message);
      e.name = w.name;
      if (w.stack !== undefined) e.stack = w.stack;
      return e;
    }
  }
}

const CHILD = fileURLToPath(new URL('./load-isolated-child.js', import.meta.url));

/**
 * `loadConfig(file, options)` in a child process: the same configuration, or the same error,
 * without loading the configuration's code into this process. Should the child itself fail (it
 * could not start, or ended without answering), the file is loaded here instead.
 */
export function loadConfigIsolated(file: string, options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  return new Promise<ResolvedConfig>((resolve, reject) => {
    let answered = false;
    const inProcess = (): void => {
      if (answered) return;
      answered = true;
      import('./load-config.js').then(({ loadConfig }) => resolve(loadConfig(file, options)), reject);
    };
    const settle = (m: LoadAnswer): void => {
      answered = true;
      if (m.ok) resolve(reshape(m.config, m.shape));
      else reject(fromWire(m.error));
    };
    const addon = nativeAddon();
    if (addon) return void overPipe(addon, file, options, settle, inProcess);
    // No execArgv: the child needs none of this process's flags (an --inspect would clash on its port).
    const { fork } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    const child = fork(CHILD, [file, JSON.stringify(options)], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    child.once('message', (m: LoadAnswer) => {
      if (child.connected) child.disconnect();
      settle(m);
    });
    child.once('error', inProcess);
    // 'close', not 'exit': it comes after the last message, which 'exit' may overtake.
    child.once('close', inProcess);
  });
}

/**
 * The child started by the addon, its answer read from its stdout until EOF (the child has
 * exited or closed it). Nothing read, or what cannot be read back: `failed`.
 */
function overPipe(addon: NativeAddon, file: string, options: LoadConfigOptions, settle: (m: LoadAnswer) => void, failed: () => void): void {
  const [readFd, writeFd] = addon.pipe();
  try {
    addon.spawn(process.execPath, [process.execPath, CHILD, file, JSON.stringify(options), ANSWER_ON_STDOUT], envList(process.env), process.cwd(), writeFd, 2, () => undefined, []);
  } catch {
    closeSync(readFd);
    return failed();
  } finally {
    closeSync(writeFd); // the child holds its own copy: EOF comes when it is done
  }
  const chunks: Buffer[] = [];
  const next = (): void => {
    const buf = Buffer.allocUnsafe(64 * 1024);
    read(readFd, buf, 0, buf.length, null, (err, n) => {
      if (!err && n > 0) {
        chunks.push(buf.subarray(0, n));
        return next();
      }
      closeSync(readFd);
      let answer: LoadAnswer;
      try {
        if (err || chunks.length === 0) throw err ?? new Error('no answer');
        answer = deserialize(Buffer.concat(chunks)) as LoadAnswer;
      } catch {
        return failed();
      }
      settle(answer);
    });
  };
  next();
}

/** The child's fifth argument when it answers on its stdout instead of over IPC. */
export const ANSWER_ON_STDOUT = '--answer-on-stdout';
