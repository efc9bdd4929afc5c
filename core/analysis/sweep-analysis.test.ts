import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gaussian, mulberry32 } from './rng';
import { analyzeSweep } from './sweep-analysis';
import type { Observation } from './types';

function synthetic(seed: number): Observation[] {
  const r = mulberry32(seed);
  const out: Observation[] = [];
  for (let v = 0; v < 5; v++)
    for (const s of [1e5, 1e6, 1e7, 1e8])
      for (let k = 0; k < 2; k++) out.push({ variant: `lr${v}`, scale: s, seed: k, value: (1.5 + 50 * s ** -0.3) * (1 + 0.04 * v) + 0.005 * gaussian(r) });
  return out;
}

describe('analyzeSweep', () => {
  it('returns the contract fields, JSON-serialisable and deterministic', () => {
    const input = { observations: synthetic(1), mode: 'min' as const, metric: 'loss', target: 1e9, bootstrap: { consistency: 100, extrapolation: 40 } };
    const a = analyzeSweep(input);
    assert.deepEqual(a.rungs, [1e5, 1e6, 1e7, 1e8]);
    assert.equal(a.consistency.r2.length, 4);
    assert.equal(a.consistency.spearman[0]!.length, 4);
    assert.equal(a.criticalRung.scale, 1e5);
    assert.deepEqual(Object.keys(a.fits), ['lr0', 'lr1', 'lr2', 'lr3', 'lr4']);
    assert.ok(a.fits.lr0!.ok);
    const e = a.extrapolations.lr0!;
    assert.ok(e.ok && e.target === 1e9 && e.backtest !== null);
    assert.equal(a.budget, undefined);
    const json = JSON.stringify(a);
    assert.ok(!/NaN|Infinity/.test(json));
    assert.deepEqual(JSON.parse(json), a);
    assert.deepEqual(analyzeSweep(input), a);
  });

  it('includes the budget when given, and survives an empty sweep', () => {
    const b = analyzeSweep({
      observations: [],
      mode: 'max',
      metric: 'acc',
      budget: [[{ rungIndex: 0, scale: 1, variant: 'a', seed: 0, status: 'succeeded', gpuSeconds: 3, wallSeconds: 3, gpus: 1 }], { variants: 1, seeds: 1, rungs: 1 }],
    });
    assert.deepEqual(b.rungs, []);
    assert.equal(b.target, null);
    assert.deepEqual(b.extrapolations, {});
    assert.equal(b.budget!.spent, 3);
    assert.match(b.criticalRung.reason, /needs at least 2 rungs/);
    assert.deepEqual(JSON.parse(JSON.stringify(b)), b);
  });
});
