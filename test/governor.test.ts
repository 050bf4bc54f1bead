import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Priority } from '../src/config/schema.js';
import { Governor, type GovernedAgent, type GovernorAction, type GovernorTarget } from '../src/governor/governor.js';
import { PressureTracker } from '../src/governor/pressure.js';
import { DEFAULT_THRESHOLDS } from '../src/governor/levels.js';
import { pressureReading, type ExecutionMemory } from '../src/governor/reading.js';

const MB = 1024 * 1024;

/**
 * A reading whose system view is `fraction` (nothing running, nothing reserved: used ÷ limit)
 * and whose budget view is 0, with optional PSI.
 */
function machine(fraction: number, psiFullAvg10: number | null = null) {
  return pressureReading({ used: Math.round(fraction * 1000), limit: 1000, budget: 1000, psi: psiFullAvg10, agents: [] });
}

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
    return gov.observe(machine(fraction));
  };
  return { gov, agents, log, state, actions, feed, remove: (id: string) => agents.splice(agents.findIndex((a) => a.id === id), 1) };
}

describe('pressure levels with hysteresis', () => {
  it('rises at once and, after one hold, falls straight to the level the reading supports', () => {
    const t = new PressureTracker({ thresholds: DEFAULT_THRESHOLDS, margin: 0.05, holdMs: 1000 });
    assert.equal(t.update(0.5, 0), 'optimal');
    assert.equal(t.update(0.91, 100), 'critical');
    assert.equal(t.update(0.5, 200), 'critical', 'not yet: the hold has not passed');
    assert.equal(t.update(0.5, 1199), 'critical', 'not yet: one ms short of the hold');
    assert.equal(t.update(0.5, 1200), 'optimal', 'one hold, three levels down');
    assert.equal(t.highest, 'critical');
    assert.equal(t.timeAtMs.critical, 1100);
    assert.equal(t.timeAtMs.high + t.timeAtMs.moderate, 0, 'never passed through the levels in between');
  });

  it('a fall lands where the worst reading of the hold stays within the margin', () => {
    const t = new PressureTracker({ thresholds: DEFAULT_THRESHOLDS, margin: 0.05, holdMs: 1000 });
    t.update(0.96, 0);
    // Below emergency − margin throughout, peaking at 0.78: 0.78 + 0.05 reaches high.
    for (let at = 100; at <= 1000; at += 100) t.update(at === 500 ? 0.78 : 0.4, at);
    assert.equal(t.update(0.4, 1100), 'high');
  });

  it('an oscillating signal falls once after a spike, then holds its level without flapping', () => {
    const t = new PressureTracker({ thresholds: DEFAULT_THRESHOLDS, margin: 0.05, holdMs: 1000 });
    const levels: string[] = [t.update(0.5, 0)];
    levels.push(t.update(0.93, 50));
    for (let i = 2; i < 400; i++) {
      const l = t.update(i % 2 === 0 ? 0.5 : 0.78, i * 50);
      if (l !== levels[levels.length - 1]) levels.push(l);
    }
    assert.deepEqual(levels, ['optimal', 'critical', 'high'], 'one fall, to where the peaks (0.78) stay within the margin; never back up');
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
    // The reading is safe: after one hold the level falls straight to optimal (issue 10; it used
    // to step down one level per hold).
    assert.deepEqual(levels, ['emergency', 'optimal'], 'straight down after one hold');
    assert.deepEqual(r.log.slice(4), ['resume mid-low', 'resume crit'], 'resumed oldest first');
    assert.deepEqual(r.state, { cap: null, admission: 'all', caching: 'normal' });
    const caps = r.actions.filter((a) => a.type === 'cap').map((a) => (a.type === 'cap' ? a.cap : 0));
    assert.deepEqual(caps, [4, 2, 1, null]);
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
    gov.observe(machine(0.2));
    assert.equal(gov.observe(machine(0.5)), 'optimal', 'one step is not a trend');
    assert.equal(gov.observe(machine(0.78)), 'emergency', '0.78 and growing by ~0.28 a reading');
    assert.deepEqual(log, ['pause young'], 'paused at once; no kill at 78% of the limit');
    gov.observe(machine(0.93));
    assert.deepEqual(log, ['pause young', 'kill young'], 'past critical and heading beyond the ceiling: kill');
  });

  it('PSI stalls lift the level to at least high', () => {
    const r = fakeRun([['a', 'medium']]);
    r.feed(0.1);
    assert.equal(r.gov.observe(machine(0.1, 25)), 'high');
  });
});

/** A governor fed byte readings built by pressureReading(), on a fake clock, logging what it did. */
function byteRun(opts: { limit: number; budget: number; holdMs?: number }) {
  let now = 0;
  const agents: GovernedAgent[] = ['a0', 'a1', 'a2', 'a3'].map((id, i) => ({ id, priority: 'medium' as Priority, startedAt: i, paused: false, controllable: true, rssBytes: null }));
  const log: string[] = [];
  const caps: (number | null)[] = [];
  const gov = new Governor({
    now: () => now,
    holdMs: opts.holdMs ?? 1000,
    target: {
      agents: () => agents,
      setCap: (c) => caps.push(c),
      setAdmission: () => undefined,
      setCaching: () => undefined,
      pause: (id) => {
        agents.find((a) => a.id === id)!.paused = true;
        log.push(`pause ${id}`);
      },
      resume: (id) => {
        agents.find((a) => a.id === id)!.paused = false;
        log.push(`resume ${id}`);
      },
      kill: (id) => log.push(`kill ${id}`),
    },
  });
  /** One reading 100 ms after the last: `outside` bytes used beside the agents. */
  const feed = (execs: ExecutionMemory[], outside: number) => {
    now += 100;
    const used = outside + execs.reduce((n, e) => n + (e.measured ?? 0), 0);
    return gov.observe(pressureReading({ used, limit: opts.limit, budget: opts.budget, psi: null, agents: execs }));
  };
  return { gov, log, caps, feed };
}

describe('the governor judges memory nobody has paid for', () => {
  // The container case: a 1.4 GB limit, a 1.1 GB budget, Guild and the OS holding 150 MB.
  const LIMIT = 1400 * MB;
  const BUDGET = 1100 * MB;
  const OUTSIDE = 150 * MB;

  it('a full budget whose tasks fill their reservations reads optimal: no cap, no pause', () => {
    const r = byteRun({ limit: LIMIT, budget: BUDGET });
    const reserved = [400, 300, 250, 150].map((mb) => mb * MB); // 1100 MB: the whole budget
    // Just admitted, then growing fast (as a batch of agents filling what they declared does,
    // two readings in a row), then holding at 99 % of their reservations.
    for (const share of [0, 0.2, 0.5, 0.8, 0.99, 0.99, 0.99]) {
      const level = r.feed(reserved.map((b) => ({ measured: Math.round(b * share), reserved: b })), OUTSIDE);
      assert.equal(level, 'optimal', `at ${share * 100}% of the reservations: system ${r.gov.views.system.toFixed(2)}, budget ${r.gov.views.budget.toFixed(2)}, projected ${r.gov.projected.toFixed(2)}`);
    }
    // Used is 1239 MB of 1400 (88 %): the old reading said high, heading for critical.
    assert.ok(r.gov.views.budget < DEFAULT_THRESHOLDS.moderate - 0.05 - 0.04, `budget view ${r.gov.views.budget}: well below the line a level falls under`);
    assert.deepEqual(r.log, []);
    assert.deepEqual(r.caps, []);
  });

  it('growth past a reservation raises the level at once, and falls back after one hold once it stops', () => {
    const r = byteRun({ limit: LIMIT, budget: BUDGET });
    const reserved = [400, 300, 250, 150].map((mb) => mb * MB);
    const at = (overMb: number): ExecutionMemory[] => reserved.map((b, i) => ({ measured: i === 3 ? b + overMb * MB : b, reserved: b }));
    assert.equal(r.feed(at(0), OUTSIDE), 'optimal');
    // One reading: the youngest is 200 MB past its 150 MB reservation. Nothing else changed.
    const level = r.feed(at(200), OUTSIDE);
    assert.ok(['high', 'critical', 'emergency'].includes(level), `${level}: system ${r.gov.views.system.toFixed(2)}, budget ${r.gov.views.budget.toFixed(2)}`);
    assert.ok(r.log.includes('pause a3'), r.log.join(','));
    // The task ends: its memory and its reservation leave together; one hold later, optimal.
    const rest = at(0).slice(0, 3);
    let last = r.feed(rest, OUTSIDE);
    for (let i = 0; i < 10; i++) last = r.feed(rest, OUTSIDE);
    assert.equal(last, 'optimal');
  });

  it('memory outside Guild raises the level with no agent over its reservation', () => {
    const r = byteRun({ limit: LIMIT, budget: BUDGET });
    const execs: ExecutionMemory[] = [{ measured: 300 * MB, reserved: 300 * MB }];
    assert.equal(r.feed(execs, OUTSIDE), 'optimal');
    // Something outside Guild takes 750 MB more: 900 MB unpaid, against the 1100 MB no reservation holds.
    assert.equal(r.feed(execs, 900 * MB), 'high');
    assert.ok(r.gov.views.system > 0.8 && r.gov.views.system < 0.9, String(r.gov.views.system));
  });

  it('outside memory growing two readings in a row projects ahead; growth inside reservations never does', () => {
    const r = byteRun({ limit: LIMIT, budget: BUDGET });
    const inside = (mb: number): ExecutionMemory[] => [{ measured: mb * MB, reserved: 1000 * MB }];
    for (const mb of [0, 300, 600, 900]) assert.equal(r.feed(inside(mb), OUTSIDE), 'optimal', `${mb} MB within a 1000 MB reservation`);
    assert.ok(r.gov.projected === r.gov.fraction, 'nothing unpaid grew');
    const r2 = byteRun({ limit: LIMIT, budget: BUDGET });
    const none: ExecutionMemory[] = [];
    r2.feed(none, 100 * MB);
    r2.feed(none, 500 * MB);
    assert.equal(r2.feed(none, 900 * MB), 'critical', `0.64 and growing 0.29 a reading: projected ${r2.gov.projected.toFixed(2)}`);
    assert.ok(r2.gov.fraction < DEFAULT_THRESHOLDS.moderate, 'where it is now is still optimal');
  });

  it('reservations at or past the limit do not turn Guild\'s own memory into pressure, yet a full machine still reads high', () => {
    // A budget as large as the limit: reservations leave 50 MB of a 1400 MB limit. Used 1280 MB
    // (91 %) read critical before; only what the machine backs counts as paid: 0.66.
    const r = byteRun({ limit: LIMIT, budget: LIMIT });
    const full: ExecutionMemory[] = [{ measured: 600 * MB, reserved: 700 * MB }, { measured: 600 * MB, reserved: 650 * MB }];
    assert.equal(r.feed(full, 80 * MB), 'optimal', `Guild's 80 MB against the guarded room: ${r.gov.views.system.toFixed(2)}`);
    // Now the agents fill their reservations and something outside takes the rest: 1390 of 1400 MB.
    const filled: ExecutionMemory[] = [{ measured: 700 * MB, reserved: 700 * MB }, { measured: 650 * MB, reserved: 650 * MB }];
    const level = r.feed(filled, 40 * MB);
    assert.ok(['high', 'critical', 'emergency'].includes(level), `${level} at ${r.gov.views.system.toFixed(2)}`);
  });
});
