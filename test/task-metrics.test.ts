/**
 * What a result costs: tasks report tokens and money through GUILD_METRICS (or Claude Code's
 * final JSON with `usage: claude-json`), malformed lines are counted and never fatal, totals reach
 * the report, the summary and /metrics, a cache hit credits what the stored run spent, and a
 * money budget stops admission and fails the run.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GuildMetrics } from '../src/telemetry/metrics.js';
import { evaluateKpis } from '../src/telemetry/kpi.js';
import { parseClaudeUsage, parseMetricLines } from '../src/workflow/task-metrics.js';
import type { RunReport } from '../src/workflow/report.js';
import { runWorkflow } from '../src/workflow/run-workflow.js';
import { guild, ROOT, tempDir, writeWorkflow } from './helpers.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'claude-result.json');

describe('parsing what tasks report', () => {
  it('GUILD_METRICS lines add up; a line that is not a JSON object of numbers is counted, not fatal', () => {
    const m = parseMetricLines(
      ['{"tokens_in": 100, "tokens_out": 20, "cost_usd": 0.1}', '', 'not json', '{"tokens_in": 50, "cost_usd": 0.2, "model": "x"}', '[1,2]', '{"note": "no numbers"}', '{"files_changed": 3}'].join('\n'),
    );
    assert.deepEqual(m.values, { tokens_in: 150, tokens_out: 20, cost_usd: 0.3, files_changed: 3 });
    assert.equal(m.malformed, 3);
  });

  it("Claude Code's final JSON: input (with cache writes), output, cache reads and cost; two results add up; other output is ignored", () => {
    const line = readFileSync(FIXTURE, 'utf8').trim();
    const m = parseClaudeUsage(`starting\n${line}\nsome other text "result"\n${line}\n`);
    assert.deepEqual(m.values, { tokens_in: 2 * (19 + 8213), tokens_out: 2 * 1422, tokens_cache_read: 2 * 41277, cost_usd: 0.146843 });
    assert.equal(m.malformed, 0);
    assert.equal(parseClaudeUsage('{"type": "result", "usage": {').malformed, 1);
  });
});

const SPENDERS = `agents:
  coder: { memory: 32MB }
  reviewer: { memory: 32MB }
tasks:
  - id: lines
    agent: coder
    run: |
      echo '{"tokens_in": 1000, "tokens_out": 200, "cost_usd": 0.012}' >> "$GUILD_METRICS"
      echo '{"tokens_in": 500, "tokens_out": 100, "cost_usd": 0.006, "files": 2}' >> "$GUILD_METRICS"
    inputs: [guild.yaml]
  - id: claude
    agent: reviewer
    run: cat claude-result.json
    usage: claude-json
    inputs: [guild.yaml, claude-result.json]
  - id: garbage
    agent: coder
    run: |
      printf 'tokens: lots\\n{"tokens_in": 7}\\n{broken\\n' >> "$GUILD_METRICS"
`;

describe('tasks report what they spent, for real', () => {
  it('totals per task, per agent and for the run; garbage counted; a cached re-run credits exactly the first run’s tokens and cost as saved', async () => {
    const file = writeWorkflow(SPENDERS);
    const dir = join(file, '..');
    copyFileSync(FIXTURE, join(dir, 'claude-result.json'));
    const first = await runWorkflow(file, { telemetry: false });
    assert.equal(first.ok, true, JSON.stringify(first.tasks.map((t) => t.error)));
    const by = Object.fromEntries(first.tasks.map((t) => [t.id, t]));
    assert.deepEqual(by.lines!.metrics, { tokens_in: 1500, tokens_out: 300, cost_usd: 0.018, files: 2 });
    assert.deepEqual(by.claude!.metrics, { tokens_in: 8232, tokens_out: 1422, tokens_cache_read: 41277, cost_usd: 0.0734215 });
    assert.deepEqual(by.garbage!.metrics, { tokens_in: 7 });
    assert.equal(by.garbage!.metrics_malformed, 2);
    assert.equal(by.garbage!.status, 'succeeded', 'garbage is never fatal');
    assert.deepEqual(first.metrics, { tokens_in: 9739, tokens_out: 1722, cost_usd: 0.0914215, files: 2, tokens_cache_read: 41277 });
    assert.deepEqual(first.spend.by_agent.reviewer, by.claude!.metrics);
    assert.equal(first.spend.malformed_lines, 2);
    assert.deepEqual(first.saved, { time_ms: 0, tokens: 0, cost_usd: 0 });
    assert.ok(existsSync(join(first.log_dir!, 'lines.metrics.jsonl')), 'the metrics file sits beside the log');

    const second = await runWorkflow(file, { telemetry: false });
    const hits = second.tasks.filter((t) => t.status === 'cached').map((t) => t.id).sort();
    assert.deepEqual(hits, ['claude', 'lines']);
    const again = Object.fromEntries(second.tasks.map((t) => [t.id, t]));
    assert.deepEqual(again.lines!.cache.saved_metrics, by.lines!.metrics);
    assert.deepEqual(again.claude!.cache.saved_metrics, by.claude!.metrics);
    assert.deepEqual(again.lines!.metrics, {}, 'a hit spends nothing');
    assert.equal(second.saved.tokens, 1500 + 300 + 8232 + 1422);
    assert.equal(second.saved.cost_usd, 0.0914215);
    assert.deepEqual(second.cache.saved_metrics, { tokens_in: 9732, tokens_out: 1722, cost_usd: 0.0914215, files: 2, tokens_cache_read: 41277 });
    assert.deepEqual(second.metrics, { tokens_in: 7 }, 'only the uncached task spent');
  });

  it('a money budget stops admission once reached and the run exits 1 saying so; what finished is kept', async () => {
    const file = writeWorkflow(`limits: { cost_usd: 0.05 }
max_parallel: 1
agents: { a: { memory: 16MB } }
tasks:
  - { id: first, agent: a, priority: high, run: "echo '{\\"cost_usd\\": 0.06}' >> \\"$GUILD_METRICS\\"", inputs: [guild.yaml] }
  - { id: second, agent: a, run: "echo never", needs: [first] }
  - { id: third, agent: a, priority: low, run: "true", needs: [first] }
`);
    const r = await guild(['run', file, '--json', '--no-telemetry']);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as RunReport;
    const by = Object.fromEntries(report.tasks.map((t) => [t.id, t]));
    assert.equal(by.first!.status, 'succeeded');
    assert.equal(by.second!.status, 'cancelled');
    assert.equal(by.third!.status, 'cancelled');
    assert.equal(report.ok, false);
    assert.equal(report.spend.limits.exceeded, 'cost_usd');
    assert.match(r.stderr, /the run's cost limit of \$0\.05 is reached \(\$0\.0600 spent\): no new task is started/);
    assert.ok(report.warnings.some((w) => /cost limit of \$0\.05 was reached/.test(w)));
    // What finished is kept: the next run (limit raised) serves it from the cache.
    const again = await runWorkflow(file, { telemetry: false });
    assert.equal(again.tasks.find((t) => t.id === 'first')!.status, 'cached');
  });
});

describe('spend in telemetry', () => {
  it('/metrics counts tokens by agent and kind, cost by agent, and what hits saved', async () => {
    const m = new GuildMetrics({ agents: ['coder'], processMetrics: false });
    const end = { type: 'task-end', t: 1, id: 'x', agent: 'coder', attempt: 1, exitCode: 0, signal: null, durationMs: 5, peakRssBytes: null, error: null, killedBy: null } as const;
    m.onEvent({ ...end, status: 'retrying', metrics: { tokens_in: 100, tokens_out: 10, cost_usd: 0.5 } });
    m.onEvent({ ...end, status: 'succeeded', metrics: { tokens_in: 50, tokens_cache_read: 7, cost_usd: 0.25 } });
    m.onEvent({ ...end, status: 'cached', savedMetrics: { tokens_in: 1000, tokens_out: 1, cost_usd: 2 } });
    const { body } = await m.text();
    assert.match(body, /guild_task_tokens_total\{agent="coder",kind="in"\} 150/);
    assert.match(body, /guild_task_tokens_total\{agent="coder",kind="out"\} 10/);
    assert.match(body, /guild_task_tokens_total\{agent="coder",kind="cache_read"\} 7/);
    assert.match(body, /guild_task_cost_usd_total\{agent="coder"\} 0\.75/);
    assert.match(body, /guild_cache_saved_tokens_total\{agent="coder"\} 1001/);
    assert.match(body, /guild_cache_saved_cost_usd_total\{agent="coder"\} 2/);
  });

  it('the token-efficiency KPI: saved / (spent + saved), 32.3 % the line of good; not scored without tokens or on a cold cache', () => {
    const base = {
      agents: [],
      kinds: [],
      queueWait: { samples: 0, meanMs: null, p90Ms: null },
      cacheServe: { samples: 0, meanMs: null, p90Ms: null },
      throughput: { serialMs: 0, makespanMs: 0, chainMs: 0, tasks: 0 },
      errors: { finished: 0, failed: 0 },
      cache: { hits: 1, misses: 1, cold: false },
      memory: { samples: 0, seconds: 0, lowestFreeShare: null },
      cpu: { samples: 0, seconds: 0, mean: null, machine: null, guild: null, cores: null },
    };
    // 10 tasks reported them: above the minimum of evidence (KPI_MINIMUMS.token_efficiency).
    const score = (tokens: { spent: number; saved: number } | undefined, cold = false) =>
      evaluateKpis({ ...base, cache: { ...base.cache, cold }, ...(tokens && { tokens: { ...tokens, tasks: 10 } }) }).scores.find((s) => s.kpi === 'token_efficiency')!;
    assert.equal(score({ spent: 670, saved: 330 }).score, 'good');
    assert.equal(score({ spent: 680, saved: 320 }).score, 'poor');
    assert.equal(score({ spent: 400, saved: 600 }).score, 'excellent');
    assert.equal(score({ spent: 0, saved: 0 }).score, null);
    assert.equal(score(undefined).score, null);
    assert.equal(score({ spent: 100, saved: 0 }, true).score, null);
  });
});
