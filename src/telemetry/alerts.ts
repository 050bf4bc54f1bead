import { DEFAULTS } from '../config/defaults.js';
import { GuildError } from '../errors.js';
import type { AlertRecord, AlertRule } from './state.js';
import { describeValue } from '../util/describe.js';
import { checkMs, WebhookSender, type WebhookOptions } from './webhook.js';

/** What the run raises; the rules in `alert-rules.ts` return exactly this. */
export interface AlertInput {
  rule: AlertRule;
  /** De-duplication key (rule + subject, e.g. `agent-failure:analyzer`). @default the rule */
  key?: string;
  severity: AlertRecord['severity'];
  message: string;
}

/** Options of {@link AlertManager}. */
export interface AlertManagerOptions {
  /** A key sent less than this long ago (ms) is not sent again; its record counts the repeat instead. @default 300_000 (5 min) */
  cooldownMs?: number;
  /** Wall clock, epoch ms. @default Date.now */
  now?: () => number;
  /** The run's start, epoch ms; `at_ms` is measured from it. @default now() when the manager is built */
  runStart?: number;
  /**
   * Called synchronously with each alert actually sent (suppressed repeats are not); this is how
   * the log and the dashboard get alerts. It receives a copy. @default ignore
   */
  onAlert?: (record: AlertRecord) => void;
  /** Also POST each sent alert to this webhook, in the background. @default null (no webhook) */
  webhook?: WebhookOptions | null;
  /** Identifies the run in webhook payloads. @default null (`run_id` and `workflow` are null) */
  runInfo?: { run_id: string; workflow: string } | null;
}

/** The defaults of {@link AlertManagerOptions}, from `config/defaults.ts`. */
export const ALERT_DEFAULTS = Object.freeze({ cooldownMs: DEFAULTS.telemetry.alertCooldownMs });

const SEVERITY_RANK: Readonly<Record<AlertRecord['severity'], number>> = { warning: 0, critical: 1 };

/**
 * Sends alerts once per key per cooldown: to `onAlert` (the log, the dashboard) at once and to an
 * optional webhook in the background. Invariants:
 * - a raise whose key was sent less than `cooldownMs` ago is suppressed and bumps `repeats` of
 *   that key's last record, unless it is more severe than that record (an escalation from warning
 *   to critical is always sent);
 * - the cooldown runs from the last *sent* alert, so a steady storm yields one record per
 *   cooldown, each counting the repeats it absorbed;
 * - `alerts()` lists sent records in the order they were sent.
 */
export class AlertManager {
  readonly #cooldownMs: number;
  readonly #now: () => number;
  readonly #runStart: number;
  readonly #onAlert: (record: AlertRecord) => void;
  readonly #runInfo: { run_id: string; workflow: string } | null;
  readonly #webhook: WebhookSender | null;
  readonly #sent: AlertRecord[] = [];
  /** Per key: its last sent record (live; repeats are counted on it). */
  readonly #last = new Map<string, AlertRecord>();

  constructor(options: AlertManagerOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new GuildError('INVALID_OPTION', `Expected alert options as an object, got ${describeValue(options)}`);
    const now = options.now ?? Date.now;
    if (typeof now !== 'function') throw new GuildError('INVALID_OPTION', `Expected now to be a function returning epoch ms, got ${describeValue(now)}`);
    const onAlert = options.onAlert ?? (() => undefined);
    if (typeof onAlert !== 'function') throw new GuildError('INVALID_OPTION', `Expected onAlert to be a function, got ${describeValue(onAlert)}`);
    this.#cooldownMs = options.cooldownMs ?? ALERT_DEFAULTS.cooldownMs;
    checkMs('cooldownMs', this.#cooldownMs, 0);
    this.#now = now;
    this.#runStart = options.runStart ?? now();
    checkMs('runStart', this.#runStart, 0);
    this.#onAlert = onAlert;
    this.#runInfo = options.runInfo ?? null;
    this.#webhook = options.webhook ? new WebhookSender(options.webhook) : null;
  }

  /**
   * Sends an alert, or counts it as a repeat. Returns a copy of the record sent, or null when the
   * cooldown suppressed it. An exception thrown by `onAlert` propagates (the record is kept and
   * the webhook delivery is already queued).
   */
  raise(input: AlertInput): AlertRecord | null {
    const at = this.#now();
    const key = input.key ?? input.rule;
    const last = this.#last.get(key);
    if (last && at - last.at < this.#cooldownMs && SEVERITY_RANK[input.severity] <= SEVERITY_RANK[last.severity]) {
      last.repeats++;
      return null;
    }
    const record: AlertRecord = { at_ms: at - this.#runStart, at, rule: input.rule, severity: input.severity, message: input.message, key, repeats: 0 };
    this.#sent.push(record);
    this.#last.set(key, record);
    this.#webhook?.send({ source: 'guild', run_id: this.#runInfo?.run_id ?? null, workflow: this.#runInfo?.workflow ?? null, alert: { ...record } });
    this.#onAlert({ ...record });
    return { ...record };
  }

  /** The alerts sent so far, in order, with the repeats each has absorbed (copies). */
  alerts(): AlertRecord[] {
    return this.#sent.map((r) => ({ ...r }));
  }

  /**
   * Resolves true once the webhook deliveries queued so far have finished (delivered or failed),
   * false when `timeoutMs` passed first; true at once without a webhook. Never rejects.
   */
  flush(timeoutMs: number): Promise<boolean> {
    checkMs('flush timeoutMs', timeoutMs, 0);
    return this.#webhook ? this.#webhook.flush(timeoutMs) : Promise.resolve(true);
  }

  /** Stops webhook deliveries (pending ones are dropped and reported). Raising still records and calls `onAlert`. */
  close(): void {
    this.#webhook?.close();
  }
}

/** One line for the log or the summary: the message, with `(×n)` when it happened n > 1 times. */
export function alertText(record: { message: string; repeats?: number | undefined }): string {
  return record.repeats ? `${record.message} (×${record.repeats + 1})` : record.message;
}
