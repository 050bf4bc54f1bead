import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { ConfigError, ConfigErrors } from '../errors.js';

/** A key path inside a YAML document: map keys and sequence indexes. */
export type KeyPath = readonly (string | number)[];

/** Keys quoted in a key path (`env["A=B"]`, `env[""]`): empty, spaces around, or a character that would blur the path. */
const QUOTED_KEY_RE = /^$|^\s|\s$|[.[\]"'=\\\x00-\x1f\x7f]/;

/** Renders a key path as users read it: `agents.analyzer.memory`, `tasks[3].needs`, `tasks[0].env[""]`. */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (QUOTED_KEY_RE.test(seg)) out += `[${JSON.stringify(seg)}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

/**
 * Where configuration data came from, so that every stage can report a problem where the user
 * wrote it: a YAML file (file, line, key) or an object handed to the library (its key path).
 */
export interface ConfigSource {
  /** What error messages name: a file, or `<definition>` for an object. */
  readonly file: string;
  /** The data to validate: plain values, lists and maps only (see `plainCopy`). */
  readonly data: unknown;
  /** A ConfigError that names the source, the line of `path` where there is one, and the key. */
  error(path: KeyPath, message: string, opts?: { key?: boolean }): ConfigError;
}

/** Maps and lists nested deeper than this are refused: no configuration needs it, and walking it could exhaust the stack. */
export const MAX_DEPTH = 64;
/** YAML aliases may add at most this many values to a document (an alias bomb adds billions). */
export const MAX_ALIAS_VALUES = 100_000;
/** A definition object may hold at most this many values (a shared sub-object counts at every use). */
export const MAX_VALUES = 1_000_000;

/**
 * A parsed YAML text that remembers where each key stands, so that any later stage can name
 * the line of a problem. `lineOffset` shifts lines for YAML embedded in another file.
 */
export class YamlSource implements ConfigSource {
  readonly file: string;
  readonly data: unknown;
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #lineOffset: number;

  private constructor(file: string, doc: Document, lines: LineCounter, lineOffset: number) {
    this.file = file;
    this.#doc = doc;
    this.#lines = lines;
    this.#lineOffset = lineOffset;
    this.#checkStructure();
    let raw: unknown;
    try {
      // Aliases were bounded above (their expansion, not their count: one anchor may serve many tasks).
      raw = doc.toJS({ maxAliasCount: -1 });
    } catch (e) {
      throw new ConfigErrors([this.error([], `invalid YAML: ${(e as Error).message}`)]);
    }
    this.data = plainCopy(this, raw);
  }

  /** Parses YAML text; syntax errors become ConfigErrors with their line and column. */
  static parse(file: string, text: string, lineOffset = 0): YamlSource {
    const lines = new LineCounter();
    // logLevel error: warnings (a map used as a key, an unknown tag) are reported as errors below, not printed.
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
    if (doc.errors.length > 0) {
      throw new ConfigErrors(
        doc.errors.map((e) => {
          const pos = lines.linePos(e.pos[0]);
          return new ConfigError({ file, line: pos.line + lineOffset, column: pos.col }, `invalid YAML: ${e.message.split('\n')[0]}`);
        }),
      );
    }
    return new YamlSource(file, doc, lines, lineOffset);
  }

  /**
   * Before anything becomes a JavaScript value: nesting depth, keys that are maps or lists, and
   * aliases — unknown, cyclic (`&a [*a]`), or expanding the document past `MAX_ALIAS_VALUES`
   * (each alias counts as the values its anchor stands for, so a bomb is caught before it is
   * expanded). Walks in document order, as the YAML library resolves an alias to the latest
   * anchor of its name before it.
   */
  #checkStructure(): void {
    // Size of each anchored node once walked; undefined while the walk is inside it.
    const anchors = new Map<string, number | undefined>();
    let added = 0;
    let firstAlias: YamlNode | null = null;
    const fail = (node: unknown, message: string): never => {
      throw new ConfigErrors([this.#errorAt(node, message)]);
    };
    const walk = (node: unknown, depth: number): number => {
      if (node === null || node === undefined) return 1;
      if (depth > MAX_DEPTH) fail(node, `Expected maps and lists nested at most ${MAX_DEPTH} deep`);
      if (isAlias(node)) {
        firstAlias ??= node;
        if (!anchors.has(node.source)) fail(node, `unknown alias *${node.source} (an anchor &${node.source} must come before it)`);
        const size = anchors.get(node.source);
        if (size === undefined) fail(node, `alias *${node.source} is inside its own anchor (a cycle)`);
        added += size!;
        if (added > MAX_ALIAS_VALUES) {
          fail(firstAlias, `YAML aliases expand this document by more than ${MAX_ALIAS_VALUES} values (an alias bomb?); write the values out or nest fewer aliases`);
        }
        return size!;
      }
      const anchor = (node as { anchor?: string }).anchor;
      if (anchor !== undefined) anchors.set(anchor, undefined);
      let size = 1;
      if (isMap(node) || isSeq(node)) {
        for (const item of node.items) {
          if (isPair(item)) {
            if (isMap(item.key) || isSeq(item.key)) fail(item.key, `Expected a name as a key, got a ${isMap(item.key) ? 'map' : 'list'}`);
            size += walk(item.key, depth + 1) + walk(item.value, depth + 1);
          } else size += walk(item, depth + 1);
        }
      }
      if (anchor !== undefined) anchors.set(anchor, size);
      return size;
    };
    walk(this.#doc.contents, 0);
  }

  #errorAt(node: unknown, message: string): ConfigError {
    const range = (node as YamlNode | undefined)?.range;
    const pos = range ? this.#lines.linePos(range[0]) : { line: 1, col: 1 };
    return new ConfigError({ file: this.file, line: pos.line + this.#lineOffset, column: pos.col }, message);
  }

  /**
   * Line and column of the value at `path` (or of its key when `key` is true). Falls back to the
   * nearest ancestor that exists, so a missing key points at the map that lacks it.
   */
  locate(path: KeyPath, key = false): { line: number; column: number } | undefined {
    let node: unknown = this.#doc.contents;
    let keyNode: unknown;
    let best: unknown = node;
    for (const seg of path) {
      keyNode = undefined;
      if (isAlias(node)) node = node.resolve(this.#doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
        if (!pair) break;
        keyNode = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
      } else {
        break;
      }
      if (node === undefined || node === null) {
        best = keyNode ?? best;
        break;
      }
      best = key && keyNode ? keyNode : node;
    }
    const range = (best as YamlNode | undefined)?.range;
    if (!range) return undefined;
    const pos = this.#lines.linePos(range[0]);
    return { line: pos.line + this.#lineOffset, column: pos.col };
  }

  /** A ConfigError that names this file, the line of `path` (line 1 when the document is empty) and the key. */
  error(path: KeyPath, message: string, opts: { key?: boolean } = {}): ConfigError {
    const pos = this.locate(path, opts.key ?? false) ?? { line: 1 + this.#lineOffset, column: 1 };
    return new ConfigError({ file: this.file, line: pos.line, column: pos.column, key: path.length ? formatKeyPath(path) : undefined }, message);
  }
}

/**
 * An object handed to the library (`runWorkflow({ agents, tasks })`): validated as it is, never
 * through YAML, so errors name its key path (`<definition>: tasks[3].agent: …`) and no line.
 */
export class ObjectSource implements ConfigSource {
  readonly file: string;
  readonly data: unknown;

  /** Copies `input` to plain data (see `plainCopy`); anything else in it is a ConfigError. */
  constructor(input: unknown, file = '<definition>') {
    this.file = file;
    this.data = plainCopy(this, input);
  }

  error(path: KeyPath, message: string): ConfigError {
    return new ConfigError({ file: this.file, key: path.length ? formatKeyPath(path) : undefined }, message);
  }
}

/** A short phrase for any value, for "Expected X, got Y"; never throws (BigInt, Symbol, proxies). */
export function describeValue(v: unknown): string {
  try {
    if (v === undefined) return 'nothing';
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'a list';
    if (typeof v === 'function') return 'a function';
    if (typeof v === 'symbol') return 'a symbol';
    if (typeof v === 'bigint') return `bigint ${v}n`;
    if (typeof v === 'object') {
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto === null || proto === Object.prototype) return 'a map';
      const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
      return typeof name === 'string' && name ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}` : 'an object';
    }
    if (typeof v === 'string' && v.length > 80) return `string ${JSON.stringify(`${v.slice(0, 77)}...`)}`;
    return `${typeof v} ${JSON.stringify(v)}`;
  } catch {
    return 'a value that cannot be read';
  }
}

const PLAIN = 'Expected a string, number, boolean, list or map';

/**
 * A copy of `input` made of plain values only: strings, numbers, booleans, null, undefined,
 * functions and symbols as leaves (the schema says which it takes), lists, and maps that own
 * their keys. Refused, each as a ConfigError at its key path: a `__proto__` key (it would set
 * the prototype instead of a key), symbol keys, getters, objects of a class (a Date, a Set, a
 * YAML `!!binary`), cycles, nesting past `MAX_DEPTH`, more than `MAX_VALUES` values. Copied
 * maps have no prototype, so no key reaches Object.prototype; reading is done once, here, so a
 * getter or a proxy cannot change the data after it was checked.
 */
export function plainCopy(source: ConfigSource, input: unknown): unknown {
  const errors: ConfigError[] = [];
  const path: (string | number)[] = [];
  const open = new Set<object>();
  let count = 0;
  let stopped = false;
  const report = (message: string, key = false): undefined => {
    errors.push(source.error([...path], message, { key }));
    return undefined;
  };
  const copy = (v: unknown): unknown => {
    if (stopped) return undefined;
    if (++count > MAX_VALUES) {
      stopped = true;
      return report(`Expected at most ${MAX_VALUES} values in all, got more`);
    }
    if (v === null || typeof v !== 'object') return v;
    if (path.length > MAX_DEPTH) {
      stopped = true;
      return report(`Expected maps and lists nested at most ${MAX_DEPTH} deep`);
    }
    if (open.has(v)) return report('Expected plain data, got a reference to a map or list that contains it (a cycle)');
    const depth = path.length;
    try {
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) return report(`${PLAIN}, got ${describeValue(v)}`);
        if (v.length > MAX_VALUES) return report(`Expected at most ${MAX_VALUES} items, got ${v.length}`);
        open.add(v);
        const out: unknown[] = [];
        for (let i = 0; i < v.length && !stopped; i++) {
          path.push(i);
          const d = Object.getOwnPropertyDescriptor(v, i);
          out.push(d && !('value' in d) ? report('Expected a value, got a getter') : copy(d?.value));
          path.pop();
        }
        open.delete(v);
        return out;
      }
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto !== null && proto !== Object.prototype) return report(`${PLAIN}, got ${describeValue(v)}`);
      open.add(v);
      const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      for (const key of Reflect.ownKeys(v)) {
        if (stopped) break;
        if (typeof key === 'symbol') {
          report(`Expected names as keys, got the symbol ${String(key.description ?? '')}`);
          continue;
        }
        const d = Object.getOwnPropertyDescriptor(v, key);
        if (!d || !d.enumerable) continue;
        path.push(key);
        if (key === '__proto__') report('`__proto__` cannot be a name', true);
        else if (!('value' in d)) report('Expected a value, got a getter', true);
        else out[key] = copy(d.value);
        path.pop();
      }
      open.delete(v);
      return out;
    } catch (e) {
      // A proxy whose traps throw, or the like: nothing in it can be trusted.
      path.length = depth;
      open.delete(v);
      return report(`cannot read this value (${describeError(e)})`);
    }
  };
  const out = copy(input);
  if (errors.length > 0) throw new ConfigErrors(errors);
  return out;
}

function describeError(e: unknown): string {
  try {
    return e instanceof Error ? e.message : String(e);
  } catch {
    return 'unreadable error';
  }
}
