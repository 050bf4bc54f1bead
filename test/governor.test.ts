import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Priority } from '../src/config/schema.js';
import { Governor, type GovernedAgent, type GovernorAction, type GovernorTarget } from '../src/governor/governor.js';
import { PressureTracker } from '../src/governor/pressure.js';
import { DEFAULT_THRESHOLDS } from '../src/governor/levels.js';

/** A fake run: agents by age, and a log of what the governor asked for. */
function fakeRun(specs: [string, Priority][]) {
  let now = 0;
  const agents: GovernedAgent[] = specs.map(([id, priority], i) => ({ id, priority, startedAt: i * 100, paused: false, controllable: true, rssBytes: 100 }));
  const log: string[] = [];
  const state = { cap: null as number | null, admission: 'all', caching: 'normal' };
  const target: GovernorTarget = {
    agents: () => agents,
    setCap: (c) => (state.cap = c),
    setAdmission: (r) => (state.admission = r),
    setCaching: (m) => (state.caching = m),
    pause: (id) => {
      agents.find((a) => a.id === id)!.paused = true;
      log.push(`pause ${id}`);
    },
    resume: (id) => {
      agents.find((a) => a.id === id)!.paused = false;
      log.push(`resume ${id}`);
    },
    kill: (id) => {
      log.push(`kill ${id}`);
    },
  };
  const actions: GovernorAction[] = [];
  const gov = new Governor({ target, now: () => now, holdMs: 1000, cooldownMs: 2000, predict: false, onAction: (a) => actions.push(a) });
  const feed = (fraction: number, advanceMs = 100) => {
    now += advanceMs;
    return gov.observe({ system: fraction, budget: 0, psiFullAvg10: null });
  };
  return { gov, agents, log, state, actions, feed, remove: (id: string) => agents.splice(agents.findIndex((a) => a.id === id), 1) };
}

describe('pressure levels with hysteresis', () => {
  it('rises at once and falls one level at a time after the hold', () => {
    const t = new PressureTracker({ thresholds: DEFAULT_THRESHOLDS, margin: 0.05, holdMs: 1000 });
    assert.equal(t.update(0.5, 0), 'optimal');
    assert.equal(t.update(0.91, 100), 'critical');
    assert.equal(t.update(0.5, 200), 'critical', 'not yet: the hold has not passed');
    assert.equal(t.update(0.5, 1200), 'high');
    assert.equal(t.update(0.5, 2200), 'moderate');
    assert.equal(t.update(0.5, 3200), 'optimal');
    assert.equal(t.highest, 'critical');
    assert.ok(t.timeAtMs.critical >= 1000 && t.timeAtMs.high >= 1000);
  });

  it('a signal oscillating around a threshold causes no flapping', () => {
    const t = new PressureTracker({ thresholds: DEFAULT_THRESHOLDS, margin: 0.05, holdMs: 1000 });
    let changes = 0;
    let prev = t.level;
    for (let i = 0; i < 200; i++) {
      const lvl = t.update(i % 2 === 0 ? 0.69 : 0.71, i * 50);
      if (lvl !== prev) changes++;
      prev = lvl;
    }
    assert.equal(changes, 1, 'entered moderate once and stayed');
    assert.equal(t.level, 'moderate');
  });
});

describe('governor responses', () => {
  it('applies each level in order and reverses them as pressure falls', () => {
    const r = fakeRun([
      ['oldest', 'medium'],
      ['mid-low', 'low'],
      ['crit', 'critical'],
      ['young-low', 'low'],
    ]);
    r.feed(0.5);
    assert.deepEqual(r.state, { cap: null, admission: 'all', caching: 'normal' });

    r.feed(0.75);
    assert.deepEqual(r.state, { cap: 4, admission: 'defer-low', caching: 'shrink' });
    assert.deepEqual(r.log, []);

    r.feed(0.85);
    assert.deepEqual(r.state, { cap: 2, admission: 'defer-low', caching: 'evict' });
    assert.deepEqual(r.log, ['pause young-low', 'pause mid-low'], 'low priority, youngest first');

    r.feed(0.92);
    assert.deepEqual(r.state, { cap: 1, admission: 'critical-only', caching: 'off' });
    assert.deepEqual(r.log.slice(2), ['pause crit'], 'all but the oldest');

    r.feed(0.96);
    assert.equal(r.gov.level, 'emergency');
    assert.deepEqual(r.log.slice(3), ['kill young-low'], 'the youngest of the lowest priority');

    // The victim is gone; pressure falls and stays low.
    r.remove('young-low');
    r.gov.killSettled('young-low');
    const levels: string[] = [];
    for (let i = 0; i < 60; i++) {
      const l = r.feed(0.4);
      if (levels[levels.length - 1] !== l) levels.push(l);
    }
    assert.deepEqual(levels, ['emergency', 'critical', 'high', 'moderate', 'optimal'], 'step by step');
    assert.deepEqual(r.log.slice(4), ['resume crit', 'resume mid-low'], 'resumed oldest first, as each level allows');
    assert.deepEqual(r.state, { cap: null, admission: 'all', caching: 'normal' });
    const caps = r.actions.filter((a) => a.type === 'cap').map((a) => (a.type === 'cap' ? a.cap : 0));
    assert.deepEqual(caps, [4, 2, 1, 2, 4, null]);
  });

  it('the cooldown holds between kills, except at the ceiling', () => {
    const r = fakeRun([
      ['a', 'medium'],
      ['b', 'medium'],
      ['c', 'medium'],
      ['d', 'medium'],
    ]);
    r.feed(0.96);
    assert.deepEqual(r.log.filter((l) => l.startsWith('kill')), ['kill d']);
    r.feed(0.96);
    assert.deepEqual(r.log.filter((l) => l.startsWith('kill')), ['kill d'], 'no second kill while the first is in flight');
    r.remove('d');
    r.gov.killSettled('d');
    r.feed(0.96, 500);
    assert.deepEqual(r.log.filter((l) => l.startsWith('kill')), ['kill d'], 'cooldown');
    r.feed(0.96, 2000);
    assert.deepEqual(r.log.filter((l) => l.startsWith('kill')), ['kill d', 'kill c'], 'after the cooldown');
    r.remove('c');
    r.gov.killSettled('c');
    r.feed(0.985, 100);
    assert.deepEqual(r.log.filter((l) => l.startsWith('kill')), ['kill d', 'kill c', 'kill b'], 'at the ceiling the cooldown is skipped');
    assert.equal(r.gov.kills, 3);
  });

  it('acts on where memory is heading: fast growth pauses early, but kills need real memory', () => {
    const agents: GovernedAgent[] = [
      { id: 'old', priority: 'medium', startedAt: 0, paused: false, controllable: true, rssBytes: 1 },
      { id: 'young', priority: 'medium', startedAt: 10, paused: false, controllable: true, rssBytes: 1 },
    ];
    const log: string[] = [];
    const gov = new Governor({
      now: () => 0,
      target: {
        agents: () => agents,
        setCap: () => undefined,
        setAdmission: () => undefined,
        setCaching: () => undefined,
        pause: (id) => {
          agents.find((a) => a.id === id)!.paused = true;
          log.push(`pause ${id}`);
        },
        resume: (id) => log.push(`resume ${id}`),
        kill: (id) => log.push(`kill ${id}`),
      },
    });
    gov.observe({ system: 0.2, budget: 0, psiFullAvg10: null });
    assert.equal(gov.observe({ system: 0.5, budget: 0, psiFullAvg10: null }), 'optimal', 'one step is not a trend');
    assert.equal(gov.observe({ system: 0.78, budget: 0, psiFullAvg10: null }), 'emergency', '0.78 and growing by ~0.28 a reading');
    assert.deepEqual(log, ['pause young'], 'paused at once; no kill at 78% of the limit');
    gov.observe({ system: 0.93, budget: 0, psiFullAvg10: null });
    assert.deepEqual(log, ['pause young', 'kill young'], 'past critical and heading beyond the ceiling: kill');
  });

  it('PSI stalls lift the level to at least high', () => {
    const r = fakeRun([['a', 'medium']]);
    r.feed(0.1);
    assert.equal(r.gov.observe({ system: 0.1, budget: 0.1, psiFullAvg10: 25 }), 'high');
  });
});
