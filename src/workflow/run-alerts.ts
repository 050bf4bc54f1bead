import type { GovernorAction } from '../governor/governor.js';
import type { AlertRule } from '../telemetry/state.js';
import type { RunEvent } from './events.js';
import type { Alert, ResponseRecord } from './report.js';
import { round } from './run-report.js';

/** At most this many governor responses are kept for the report (the events carry all). */
const MAX_RESPONSES = 1000;

/** The run's alerts and the governor's responses, kept for the report and emitted as events. */
export class RunAlerts {
  readonly alerts: Alert[] = [];
  readonly responses: ResponseRecord[] = [];
  readonly #emit: (e: RunEvent) => void;
  readonly #now: () => number;

  constructor(emit: (e: RunEvent) => void, now: () => number) {
    this.#emit = emit;
    this.#now = now;
  }

  raise(severity: Alert['severity'], message: string, rule: AlertRule, key: string): void {
    const alert: Alert = { at_ms: round(this.#now())!, severity, message, rule };
    this.alerts.push(alert);
    this.#emit({ type: 'alert', t: alert.at_ms, severity, message, rule, key });
  }

  /** A governor response; reaching critical or emergency also alerts. `projected`: where the governor sees memory heading. */
  response(a: GovernorAction, at: number, projected: number): void {
    const rec = { at_ms: round(at)!, ...a } as ResponseRecord;
    if (this.responses.length < MAX_RESPONSES) this.responses.push(rec);
    this.#emit({ type: 'governor', t: at, action: a });
    if (a.type === 'level' && (a.to === 'critical' || a.to === 'emergency')) {
      const heading = projected > a.fraction + 0.005 ? `, heading for ${Math.round(projected * 100)}%` : '';
      this.raise(a.to === 'emergency' ? 'critical' : 'warning', `memory pressure ${a.to} (${Math.round(a.fraction * 100)}% of the limit${heading})`, 'memory-pressure', `memory-pressure:${a.to}`);
    }
  }
}
