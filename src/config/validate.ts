import type { z } from 'zod';
import { ConfigError, ConfigErrors } from '../errors.js';
import { didYouMean } from '../util/did-you-mean.js';
import { describeValue, type ConfigSource, type KeyPath } from './source.js';

/** Keys each schema object accepts, for did-you-mean on unknown keys. */
function knownKeys(schema: z.ZodType, path: KeyPath): string[] {
  let s: unknown = schema;
  for (const seg of path) {
    s = objectOf(unwrap(s), seg);
    const def = (s as { def?: Record<string, unknown> }).def;
    if (!def) return [];
    if (def.type === 'object') s = Object.hasOwn(def.shape as object, String(seg)) ? (def.shape as Record<string, unknown>)[String(seg)] : undefined;
    else if (def.type === 'record') s = def.valueType;
    else if (def.type === 'array') s = def.element;
    else return [];
  }
  const def = (objectOf(unwrap(s), undefined) as { def?: Record<string, unknown> } | undefined)?.def;
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
}

/** A union (`cacheable: [name | { tool, paths }]`) stands for its object member: the one with `seg` as a key, else the first. */
function objectOf(s: unknown, seg: string | number | undefined): unknown {
  const def = (s as { def?: { type?: string; options?: unknown[] } }).def;
  if (def?.type !== 'union' || !def.options) return s;
  const objects = def.options.map(unwrap).filter((o) => (o as { def?: { type?: string } }).def?.type === 'object');
  const shapeOf = (o: unknown): object => (o as { def: { shape: object } }).def.shape;
  return (seg !== undefined ? objects.find((o) => Object.hasOwn(shapeOf(o), String(seg))) : undefined) ?? objects[0] ?? s;
}

function unwrap(s: unknown): unknown {
  for (let i = 0; i < 10; i++) {
    const def = (s as { def?: { type?: string; innerType?: unknown; in?: unknown } }).def;
    if (!def) return s;
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else return s;
  }
  return s;
}

const describe = describeValue;

/** The value at `path` in plain data (own keys only: `toString` is no key of a map that lacks it). */
function valueAt(data: unknown, path: KeyPath): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, seg)) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/**
 * Validates `source.data` against `schema` once; every problem becomes a ConfigError naming the
 * file, the line and the key, in "Expected X, got Y" form. Throws ConfigErrors when any.
 */
export function validateSource<S extends z.ZodType>(source: ConfigSource, schema: S, data: unknown = source.data, basePath: KeyPath = []): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const errors: ConfigError[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    const full = [...basePath, ...path];
    const got = valueAt(data, path);
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const k of issue.keys) {
          const hint = didYouMean(k, knownKeys(schema, path));
          const fn = typeof valueAt(data, [...path, k]) === 'function' ? ` (it holds a function; only a task's \`run\` may be one)` : '';
          errors.push(source.error([...full, k], `unknown key${fn}${hint ? `; did you mean '${hint}'?` : ''}`, { key: true }));
        }
        break;
      case 'invalid_type':
        errors.push(source.error(full, got === undefined ? `required key is missing (expected ${issue.expected})` : `Expected ${issue.expected}, got ${describe(got)}`));
        break;
      case 'invalid_value':
        errors.push(source.error(full, `Expected one of ${issue.values.map((v) => String(v)).join(', ')}, got ${describe(got)}`));
        break;
      case 'too_small':
        errors.push(
          source.error(
            full,
            issue.origin === 'array'
              ? `Expected at least ${String(issue.minimum)} item(s), got ${Array.isArray(got) ? got.length : 0}`
              : issue.origin === 'string'
                ? `Expected a non-empty string`
                : `Expected a number >= ${String(issue.minimum)}, got ${describe(got)}`,
          ),
        );
        break;
      case 'invalid_union':
        // Each union in the schema names what it takes (its `error`); zod's default says nothing.
        errors.push(source.error(full, `Expected ${issue.message === 'Invalid input' ? 'another value' : issue.message}, got ${describe(got)}`));
        break;
      case 'invalid_key': {
        // A record's key failed its own schema: say what a key must be (its first issue, custom messages first).
        const inner = issue.issues.find((i) => i.code === 'custom' || i.code === 'invalid_format') ?? issue.issues[0];
        const what = issue.message !== 'Invalid key in record' ? issue.message : inner?.code === 'too_small' ? 'Expected a non-empty name' : (inner?.message ?? issue.message);
        errors.push(source.error(full, `${what.replace(/^Invalid input: /, '')}, got ${JSON.stringify(full[full.length - 1])}`, { key: true }));
        break;
      }
      default:
        errors.push(source.error(full, issue.message.replace(/^Invalid input: /, '')));
    }
  }
  throw new ConfigErrors(errors);
}
