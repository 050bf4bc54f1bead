import { createHmac, timingSafeEqual } from 'node:crypto';
import { GuildError } from '../errors.js';

/**
 * Jobs are signed: a worker runs the shell commands it receives over Redis, so anyone who can
 * write the queues could otherwise run code on every worker. The signature is HMAC-SHA256 with
 * the cluster key over a canonical form of the payload (keys sorted at every depth, no
 * whitespace), so the same payload signs the same whatever order its keys were written in, and
 * any change to any value (the command, the env, the folder, the job's id) breaks it.
 */

/** The environment variable that holds the cluster key. */
export const CLUSTER_KEY_ENV = 'GUILD_CLUSTER_KEY';
/** A key shorter than this is refused: it could be guessed. */
export const MIN_KEY_LENGTH = 16;
/** Domain separation: a signature made for something else with the same key never passes as a job's. */
const CONTEXT = 'guild-job-v1\n';

/** A payload with its signature, as it travels in a BullMQ job's data. */
export interface SignedEnvelope<P> {
  payload: P;
  /** Hex HMAC-SHA256 of the canonical payload. */
  sig: string;
}

/**
 * The cluster key from `env`, or a `GuildError` with code CLUSTER_KEY (a worker refuses to start,
 * a submitter to enqueue, without one).
 */
export function clusterKey(env: NodeJS.ProcessEnv = process.env): string {
  const key = env[CLUSTER_KEY_ENV];
  if (key === undefined || key === '') {
    throw new GuildError('CLUSTER_KEY', `Expected a cluster key in ${CLUSTER_KEY_ENV} (the same secret on the submitter and every worker; jobs are signed with it), got none`);
  }
  if (key.length < MIN_KEY_LENGTH) throw new GuildError('CLUSTER_KEY', `Expected a cluster key of at least ${MIN_KEY_LENGTH} characters in ${CLUSTER_KEY_ENV}, got ${key.length}`);
  return key;
}

/** JSON with object keys sorted at every depth; `undefined` members are left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    // undefined, functions and symbols have no JSON form: they cannot be signed unambiguously.
    if (s === undefined) throw new GuildError('INVALID_OPTION', `Expected a JSON value to sign, got ${typeof value}`);
    return s;
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

function mac(payload: unknown, key: string): Buffer {
  return createHmac('sha256', key).update(CONTEXT).update(canonicalJson(payload)).digest();
}

/** Signs a payload with the cluster key. */
export function signJob<P>(payload: P, key: string): SignedEnvelope<P> {
  return { payload, sig: mac(payload, key).toString('hex') };
}

/**
 * The payload of a correctly signed envelope, or a `GuildError` with code JOB_SIGNATURE saying
 * what is wrong (not an envelope, no signature, a signature that does not match). The comparison
 * is constant-time.
 */
export function verifyJob<P>(data: unknown, key: string): P {
  if (data === null || typeof data !== 'object' || !('payload' in data)) throw new GuildError('JOB_SIGNATURE', 'rejected: not a Guild job (no signed payload)');
  const { payload, sig } = data as { payload: unknown; sig?: unknown };
  if (typeof sig !== 'string' || sig === '') throw new GuildError('JOB_SIGNATURE', 'rejected: unsigned job');
  const expected = mac(payload, key);
  const given = /^[0-9a-f]+$/i.test(sig) && sig.length === expected.length * 2 ? Buffer.from(sig, 'hex') : null;
  // timingSafeEqual needs equal lengths; a malformed signature is compared against itself so the time does not say which check failed.
  const ok = given !== null ? timingSafeEqual(given, expected) : (timingSafeEqual(expected, expected), false);
  if (!ok) throw new GuildError('JOB_SIGNATURE', 'rejected: the signature does not match the payload (altered, or signed with another cluster key)');
  return payload as P;
}
