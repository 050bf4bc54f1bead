import type { z } from 'zod';
import { ConfigError, ConfigErrors } from '../errors.js';
import { didYouMean } from '../util/did-you-mean.js';
import type { KeyPath, YamlSource } from './source.js';

/** Keys each schema object accepts, for did-you-mean on unknown keys. */
function knownKeys(schema: z.ZodType, path: KeyPath): string[] {
  let s: unknown = schema;
  for (const seg of path) {
    s = unwrap(s);
    const def = (s as { def?: Record<string, unknown> }).def;
    if (!def) return [];
    if (def.type === 'object') s = (def.shape as Record<string, unknown>)[String(seg)];
    else if (def.type === 'record') s = def.valueType;
    else if (def.type === 'array') s = def.element;
    else return [];
  }
  s = unwrap(s);
  const def = (s as { def?: Record<string, unknown> }).def;
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
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

const describe = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
};

function valueAt(data: unknown, path: KeyPath): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/**
 * Validates `source.data` against `schema` once; every problem becomes a ConfigError naming the
 * file, the line and the key, in "Expected X, got Y" form. Throws ConfigErrors when any.
 */
export function validateSource<S extends z.ZodType>(source: YamlSource, schema: S, data: unknown = source.data, basePath: KeyPath = []): z.output<S> {
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
          errors.push(source.error([...full, k], `unknown key${hint ? `; did you mean '${hint}'?` : ''}`, { key: true }));
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
      default:
        errors.push(source.error(full, issue.message.replace(/^Invalid input: /, '')));
    }
  }
  throw new ConfigErrors(errors);
}
