/**
 * The dashboard page as ES modules: no module keeps mutable state at its top level except
 * model.js (a check over every module's top-level declarations, itself tested against bad
 * samples); no module grows past ~300 lines; the server serves every module the page imports, as
 * JavaScript, under a CSP that lets it run; the package ships them; and in headless Chromium the
 * page draws the pressure bands, KPI points and KPI period a source gives the server, and a KPI
 * that was not scored as its note with no grade.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import ts from 'typescript';
import { startDashboard, type DashboardServer, type DashboardSettings, type DashboardSource } from '../src/dashboard/server.js';
import { KPI_MINIMUMS } from '../src/telemetry/kpi.js';
import type { DashboardState, KpiReport } from '../src/telemetry/state.js';
import { ROOT } from './helpers.js';

const PAGE_DIR = join(ROOT, 'src', 'dashboard', 'page');
const MODULES = readdirSync(PAGE_DIR).filter((f) => f.endsWith('.js')).sort();
/** The one module allowed to hold the page's state. */
const MODEL = 'model.js';
const MAX_LINES = 300;

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

// ---------------------------------------------------------------------------------------------
// The check: top-level mutable state

/**
 * Whether a value bound at the top level can never change: primitives and what computes them,
 * functions, references to other bindings (checked where they are declared), and
 * `Object.freeze` of an object or array literal whose values are all of these (freeze is
 * shallow, so a nested literal must be frozen too). Anything else (`new`, another call, a bare
 * literal, a property read, a spread) might be or hold a mutable object.
 */
function immutable(e: ts.Expression): boolean {
  if (ts.isParenthesizedExpression(e)) return immutable(e.expression);
  if (ts.isStringLiteral(e) || ts.isNumericLiteral(e) || ts.isBigIntLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e) || ts.isTemplateExpression(e)) return true;
  if (e.kind === ts.SyntaxKind.TrueKeyword || e.kind === ts.SyntaxKind.FalseKeyword || e.kind === ts.SyntaxKind.NullKeyword) return true;
  // A global or sticky regular expression carries lastIndex from one use to the next.
  if (ts.isRegularExpressionLiteral(e)) return !/[gy][a-z]*$/.test(e.text.slice(e.text.lastIndexOf('/')));
  if (ts.isIdentifier(e) || ts.isArrowFunction(e) || ts.isFunctionExpression(e)) return true;
  if (ts.isPrefixUnaryExpression(e) || ts.isTypeOfExpression(e) || ts.isVoidExpression(e)) return true;
  if (ts.isConditionalExpression(e)) return immutable(e.whenTrue) && immutable(e.whenFalse);
  if (ts.isBinaryExpression(e)) {
    const op = e.operatorToken.kind;
    if (op >= ts.SyntaxKind.FirstAssignment && op <= ts.SyntaxKind.LastAssignment) return false;
    // These yield one of their operands; every other operator yields a primitive.
    const passesOperand = op === ts.SyntaxKind.AmpersandAmpersandToken || op === ts.SyntaxKind.BarBarToken || op === ts.SyntaxKind.QuestionQuestionToken || op === ts.SyntaxKind.CommaToken;
    return !passesOperand || (immutable(e.left) && immutable(e.right));
  }
  if (ts.isCallExpression(e) && e.expression.getText() === 'Object.freeze' && e.arguments.length === 1) return frozenLiteral(e.arguments[0]!);
  return false;
}

function frozenLiteral(e: ts.Expression): boolean {
  if (ts.isArrayLiteralExpression(e)) return e.elements.every((x) => !ts.isSpreadElement(x) && (ts.isOmittedExpression(x) || immutable(x)));
  if (ts.isObjectLiteralExpression(e)) {
    return e.properties.every((p) => {
      if (ts.isPropertyAssignment(p)) return immutable(p.initializer);
      return ts.isShorthandPropertyAssignment(p) || ts.isMethodDeclaration(p) || ts.isGetAccessorDeclaration(p);
    });
  }
  return false;
}

/**
 * What keeps state at a module's top level: `let`, `var` (and `using`), a `const` bound to
 * something mutable, a class's static field, an assignment (to a global, say). One line per
 * finding, `file:line: what`.
 */
function topLevelState(source: string, file: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const at = (n: ts.Node): string => `${file}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`;
  const found: string[] = [];
  for (const st of sf.statements) {
    if (ts.isVariableStatement(st)) {
      const scope = st.declarationList.flags & ts.NodeFlags.BlockScoped;
      const kind = scope === ts.NodeFlags.Const ? 'const' : scope === ts.NodeFlags.Let ? 'let' : scope === 0 ? 'var' : 'using';
      for (const d of st.declarationList.declarations) {
        const name = d.name.getText(sf);
        if (kind !== 'const') found.push(`${at(d)}: top-level ${kind} ${name}`);
        else if (d.initializer === undefined || !immutable(d.initializer)) found.push(`${at(d)}: top-level const ${name} holds a mutable value: ${d.initializer?.getText(sf).slice(0, 60)}`);
      }
    } else if (ts.isClassDeclaration(st)) {
      for (const m of st.members) {
        if ((ts.isPropertyDeclaration(m) || ts.isClassStaticBlockDeclaration(m)) && (ts.isClassStaticBlockDeclaration(m) || m.modifiers?.some((x) => x.kind === ts.SyntaxKind.StaticKeyword))) {
          found.push(`${at(m)}: static state in class ${st.name?.text ?? '(anonymous)'}`);
        }
      }
    } else if (ts.isExpressionStatement(st) && ts.isBinaryExpression(st.expression)) {
      const op = st.expression.operatorToken.kind;
      if (op >= ts.SyntaxKind.FirstAssignment && op <= ts.SyntaxKind.LastAssignment) found.push(`${at(st)}: top-level assignment to ${st.expression.left.getText(sf)}`);
    }
  }
  return found;
}

describe('the page keeps its state in model.js only', () => {
  it('the check finds every kind of top-level state in a bad sample', () => {
    const bad = [
      'let live = null;',
      'var count = 0;',
      'export let view = { kind: "live" };',
      'const charts = { mem: null };',
      'const rows = [];',
      'const byId = new Map();',
      'const seen = new Set();',
      'const cache = new WeakMap();',
      'const state = makeState();',
      'const nested = Object.freeze({ inner: [] });',
      'const shallow = Object.freeze([[1, 2]]);',
      'const spread = Object.freeze([...others]);',
      'const alias = window.__guild;',
      'const fallback = options || {};',
      'const pick = flag ? [] : null;',
      'const iife = (() => ({ n: 0 }))();',
      'const re = /tick/g;',
      'class Store { static items = []; }',
      'window.__guild = {};',
      'let a = 1, b = 2;',
    ];
    for (const line of bad) assert.notDeepEqual(topLevelState(line, 'bad.js'), [], `the check misses: ${line}`);
    assert.equal(topLevelState('let a = 1, b = 2;', 'bad.js').length, 2, 'one finding per binding');
    const sample = bad.join('\n');
    assert.equal(topLevelState(sample, 'bad.js').length, bad.length + 1);
    assert.match(topLevelState(sample, 'bad.js')[0]!, /^bad\.js:1: top-level let live$/);
  });

  it('the check passes what cannot change', () => {
    const good = `
      import { x } from "./x.js";
      export const N = 1024;
      const M = N * 1024 + -1;
      const NAME = \`guild-\${N}\`;
      const HEX = /^[0-9a-f]+$/i;
      const ON = !x;
      const FLAGS = Object.freeze({ a: 1, b: "two", c: null, d: Object.freeze([1, 2, Object.freeze({ e: true })]), f() {}, x });
      const LIST = Object.freeze(["a", "b"]);
      const pick = N > 1 ? "big" : "small";
      const byId = (id) => document.getElementById(id);
      export function create() { const rows = new Map(); let n = 0; return { add() { rows.set(n++, 1); } }; }
      class Shape { area() { return 0; } }
      boot();
    `;
    assert.deepEqual(topLevelState(good, 'good.js'), []);
  });

  it(`no module of the page but ${MODEL} keeps mutable state at its top level`, () => {
    assert.ok(MODULES.length >= 10, `the page is split into modules: ${MODULES.join(', ')}`);
    const found = MODULES.filter((f) => f !== MODEL).flatMap((f) => topLevelState(readFileSync(join(PAGE_DIR, f), 'utf8'), f));
    assert.deepEqual(found, []);
    // The exemption is real: the check sees the model's state (and would fail it anywhere else).
    assert.ok(topLevelState(readFileSync(join(PAGE_DIR, MODEL), 'utf8'), MODEL).length > 0);
  });

  it(`no module is over ${MAX_LINES} lines`, () => {
    for (const f of MODULES) {
      const lines = readFileSync(join(PAGE_DIR, f), 'utf8').split('\n').length;
      assert.ok(lines <= MAX_LINES, `${f}: ${lines} lines`);
    }
  });

  it('the page copies none of the server settings (pressure bands, KPI points, KPI period)', () => {
    for (const f of MODULES) {
      const text = readFileSync(join(PAGE_DIR, f), 'utf8');
      assert.doesNotMatch(text, /\b0\.(7|8|9|95|98)\b|\bexcellent:\s*\d|\bevery 2 s\b/, f);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Serving the modules

/** The relative and absolute imports of a module (static and dynamic), as written. */
function importsOf(source: string, file: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const specs: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) specs.push(n.moduleSpecifier.text);
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) specs.push(n.arguments[0].text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return specs;
}

const EMPTY_STATE: DashboardState = {
  version: 1,
  mode: 'run',
  run: null,
  memory: null,
  pressure: null,
  queue: { queued: 0, running: 0, paused: 0, done: 0, total: 0, blocked: null },
  tasks: [],
  agents: [],
  series: [],
  cache: { hits: 0, misses: 0, hit_rate: null, saved_ms: 0 },
  kpis: null,
  alerts: [],
  guild: { rss_bytes: 50 * 1024 * 1024, event_loop_delay_p99_ms: null, gc_pause_total_ms: 0 },
};

describe('the server serves the page as modules', () => {
  let server: DashboardServer;
  before(async () => {
    server = await startDashboard({ source: testSource(() => EMPTY_STATE, () => ({})), port: 0, token: null });
  });
  after(() => server.close());

  it('index.html loads one module script from its own origin, and nothing inline', async () => {
    const res = await fetch(server.url);
    const html = await res.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.deepEqual(scripts.map((m) => m[1]!.trim()), ['type="module" src="/app.js"']);
    assert.ok(scripts.every((m) => m[2]!.trim() === ''), 'no inline script (the CSP would refuse it)');
    assert.match(String(res.headers.get('content-security-policy')), /(^|; )script-src 'self'(;|$)/);
  });

  it('every module is served as JavaScript, every import resolves to one, and every module is imported', async () => {
    const reached = new Set<string>();
    const queue = ['/app.js'];
    while (queue.length > 0) {
      const path = queue.shift()!;
      if (reached.has(path)) continue;
      reached.add(path);
      const res = await fetch(new URL(path, server.url));
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8', path);
      assert.match(String(res.headers.get('content-security-policy')), /script-src 'self'/, path);
      const source = await res.text();
      if (path.startsWith('/vendor/')) continue;
      for (const spec of importsOf(source, path)) {
        assert.ok(spec.startsWith('./') || spec.startsWith('/'), `${path} imports ${spec}: only same-origin paths load without a build step`);
        queue.push(new URL(spec, `http://page${path}`).pathname);
      }
    }
    assert.deepEqual([...reached].filter((p) => !p.startsWith('/vendor/')).sort(), MODULES.map((f) => `/${f}`).sort(), 'every module is part of the page');
    assert.ok(reached.has('/vendor/uPlot.esm.js'), "uPlot's ES build is imported");
  });

  it('the package ships the page folder', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    assert.ok(pkg.files.includes('src/dashboard/page'), JSON.stringify(pkg.files));
    assert.equal(existsSync(join(ROOT, '.npmignore')), false, 'no .npmignore drops files from "files"');
  });
});

// ---------------------------------------------------------------------------------------------
// In a browser: the settings come from the server

function testSource(state: () => DashboardState, settings: () => Partial<DashboardSettings>): DashboardSource & { emit(event: string, data: unknown): void } {
  const listeners = new Set<(event: string, data: string) => void>();
  return {
    state,
    settings,
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' }),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    runs: () => [],
    run: () => null,
    emit(event, data) {
      for (const l of listeners) l(event, JSON.stringify(data));
    },
  };
}

const GB = 1024 ** 3;
const RUNNING: DashboardState = {
  ...EMPTY_STATE,
  run: { id: 'r-settings', workflow: 'guild.yaml', name: 'settings', started_at: Date.now(), elapsed_ms: 2000, status: 'running', total_tasks: 1, cores: 2 },
  series: [0, 1000, 2000].map((t) => ({ t, used_bytes: 3 * GB, limit_bytes: 4 * GB, agents_rss_bytes: 0, reserved_bytes: 0, budget_bytes: 3 * GB, level: 'high' as const, running: 0, queued: 1, paused: 0, done: 0, cpu: 0.1, guild_rss_bytes: 50e6, cache_hit_rate: null })),
};

const NOT_SCORED = 'not scored: too little data (2 samples, 5 needed)';
const REPORT: KpiReport = {
  overall: { score: 'good', points: 71 },
  scores: [
    { kpi: 'cpu', subject: null, label: 'CPU use', value: 0.7, unit: 'ratio', score: 'good', thresholds: { good: 0.6, acceptable: 0.8, poor: 0.95, higher_is_better: false }, samples: 12, note: null },
    { kpi: 'memory_efficiency', subject: null, label: 'memory efficiency', value: 0.4, unit: 'ratio', score: null, thresholds: { good: 0.15, acceptable: 0.05, poor: 0.02, higher_is_better: true }, samples: 2, note: NOT_SCORED },
  ],
  recommendations: [],
};

describe('the page draws with the settings the server sends', () => {
  let settings: DashboardSettings = {
    thresholds: { moderate: 0.61, high: 0.72, critical: 0.83, emergency: 0.9, kill: 0.97 },
    kpi_points: { excellent: 93, good: 71, poor: 37, critical: 3 },
    kpi_minimums: KPI_MINIMUMS,
    kpi_interval_ms: 1500,
  };
  const source = testSource(() => RUNNING, () => settings);
  let server: DashboardServer;
  let browser: Browser | null = null;
  before(async () => {
    server = await startDashboard({ source, port: 0, token: null });
  });
  after(async () => {
    await browser?.close();
    await server.close();
  });

  it('pressure bands, KPI points and the KPI period from a source; an unscored KPI as its note, with no grade', { timeout: 60_000 }, async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip('chromium not installed: apt-get install -y chromium');
      return;
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.stack ?? e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource: net::ERR_/.test(m.text())) errors.push(`console.error: ${m.text()}`);
    });
    const legend = (): Promise<string[]> => page.locator('[data-testid=band-legend] [data-band]').allTextContents();

    await page.goto(server.url);
    await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: 10_000 });
    await page.waitForFunction(() => (globalThis as unknown as { __guild: { points: number } }).__guild.points === 3, null, { timeout: 5_000 });
    assert.deepEqual(await legend(), ['moderate 61%', 'high 72%', 'critical 83%', 'emergency 90%', 'kill 97%']);
    assert.equal(await page.textContent('[data-testid=kpi-empty]'), 'KPIs are scored every 1.5 s while a run is live, and at its end.');

    // A KPI report arrives: grades with the server's points, the overall out of the best grade's.
    source.emit('kpis', REPORT);
    await page.waitForSelector('[data-testid=kpis] [data-kpi=cpu]', { timeout: 5_000 });
    assert.equal(await page.textContent('[data-kpi=cpu] .score'), 'good · 71');
    assert.equal(await page.textContent('#kpi-overall'), 'good71 / 93');
    // Not scored: its note, and no grade or points anywhere on its card.
    const unscored = page.locator('[data-kpi=memory_efficiency]');
    assert.equal(await unscored.getAttribute('data-score'), 'none');
    assert.equal(await unscored.locator('.note').textContent(), NOT_SCORED);
    assert.equal(await unscored.locator('.score').textContent(), 'not scored');
    assert.doesNotMatch((await unscored.textContent()) ?? '', /excellent|\bgood\b|\bpoor\b|critical|· \d/);

    // Other settings, another load: the page follows the server, it knows no number of its own.
    settings = { thresholds: { moderate: 0.5, high: 0.6, critical: 0.7, emergency: 0.8, kill: 0.85 }, kpi_points: { excellent: 10, good: 8, poor: 4, critical: 1 }, kpi_interval_ms: null, kpi_minimums: KPI_MINIMUMS };
    await page.reload();
    await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: 10_000 });
    await page.waitForFunction(() => (globalThis as unknown as { __guild: { points: number } }).__guild.points === 3, null, { timeout: 5_000 });
    assert.deepEqual(await legend(), ['moderate 50%', 'high 60%', 'critical 70%', 'emergency 80%', 'kill 85%']);
    assert.equal(await page.textContent('[data-testid=kpi-empty]'), 'KPIs are scored while a run is live, and at its end.');
    source.emit('kpis', REPORT);
    await page.waitForSelector('[data-testid=kpis] [data-kpi=cpu]', { timeout: 5_000 });
    assert.equal(await page.textContent('[data-kpi=cpu] .score'), 'good · 8');
    assert.equal(await page.textContent('#kpi-overall'), 'good71 / 10');

    assert.deepEqual(errors, [], 'no page errors, no CSP violations');
  });
});
