import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { GuildError } from '../errors.js';
import { openDatabase, storeFile } from '../store/db.js';
import { TelemetryHistory } from '../store/telemetry.js';
import { renderReportMarkdown, type ReportDocument } from './report-markdown.js';

/**
 * A past run's report from a workflow's history (`guild report`): `ref` is a run id, a unique
 * prefix of one, or `last` (the newest finished run of that workflow).
 */
export function readReport(workflowFile: string, ref: string): { id: string; json: ReportDocument; markdown: string } {
  const file = resolve(workflowFile);
  const store = storeFile(dirname(file));
  if (!existsSync(store)) throw new GuildError('NOT_FOUND', `no run history for ${workflowFile}: ${store} does not exist (run it first)`);
  const db = openDatabase(store);
  try {
    const history = new TelemetryHistory(db);
    const id = history.resolveRunId(ref, ref === 'last' ? file : undefined);
    const r = id ? storedReport(history, id) : null;
    if (id && !r) {
      // A run whose Guild died never wrote a report; say what the next start found.
      const crashed = db.prepare(`SELECT note FROM runs WHERE id = ? AND status = 'crashed'`).get(id) as { note: string | null } | undefined;
      if (crashed) throw new GuildError('NOT_FOUND', `run ${id} crashed and left no report (${crashed.note ?? 'its owner died'})`);
    }
    if (!id || !r) throw new GuildError('NOT_FOUND', ref === 'last' ? `no finished run of ${workflowFile} in ${store}` : `no run '${ref}' with a stored report in ${store} (reports are kept for the newest runs only)`);
    return { id, ...r };
  } finally {
    db.close();
  }
}

/**
 * A run's stored report with its Markdown: as stored, or rendered from the JSON for runs stored
 * before the Markdown existed (the store keeps what it was given and renders nothing).
 * @returns null when the run is unknown, still running, or its report was pruned.
 */
export function storedReport(history: TelemetryHistory, runId: string): { json: ReportDocument; markdown: string } | null {
  const r = history.report(runId);
  if (!r) return null;
  return { json: r.json, markdown: r.markdown ?? renderReportMarkdown(r.json, { name: r.name, startedAt: r.startedAt }) };
}
