import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeExtrapolation, extrapolateVariant } from './extrapolation';
import { gaussian, mulberry32 } from './rng';
import type { Observation } from './types';

const law = (n: number) => 50 * n ** -0.3 + 1.5;
const SCALES = [1e5, 1e6, 1e7, 1e8];

function noisy(seed: number, seeds: number, sd: number, scales = SCALES, variant = 'v'): Observation[] {
  const r = mulberry32(seed);
  return scales.flatMap((s) => Array.from({ length: seeds }, (_, k) => ({ variant, scale: s, seed: k, value: law(s) + sd * gaussian(r) })));
}

describe('extrapolateVariant', () => {
  it('noiseless data: exact prediction, zero-width interval, perfect backtest', () => {
    const obs = SCALES.flatMap((s) => [0, 1].map((seed) => ({ variant: 'v', scale: s, seed, value: law(s) })));
    const e = extrapolateVariant(obs, 1e9, { bootstrap: 50 });
    assert.ok(e.ok);
    assert.equal(e.model, 'power-offset');
    assert.ok(Math.abs(e.prediction - law(1e9)) < 1e-9);
    assert.ok(e.backtest && Math.abs(e.backtest.error) < 1e-6 && e.backtest.heldOutScale === 1e8);
  });

  it('property: the true value at a held-out scale lies in the 90% interval at ≥ 80% of noisy datasets', () => {
    // 4 rungs × 3 seeds, Gaussian seed noise (sd 0.02 on a loss ≈ 1.5–3), extrapolated to 1e9.
    // Measured: 88% over these 120 seeded datasets (88% over 200 when this was written).
    let inside = 0;
    const trials = 120;
    for (let t = 0; t < trials; t++) {
      const e = extrapolateVariant(noisy(1000 + t, 3, 0.02), 1e9, { bootstrap: 150, seed: t, backtest: false });
      assert.ok(e.ok, e.ok ? '' : e.reason);
      if (law(1e9) >= e.interval[0] && law(1e9) <= e.interval[1]) inside++;
    }
    const rate = inside / trials;
    console.log(`extrapolation coverage of the 90% interval: ${(rate * 100).toFixed(1)}% (${inside}/${trials})`);
    assert.ok(rate >= 0.8, `coverage ${rate}`);
  });

  it('is deterministic for a seed and independent of input order', () => {
    const obs = noisy(5, 3, 0.02);
    const a = extrapolateVariant(obs, 1e9, { bootstrap: 100, seed: 3 });
    const b = extrapolateVariant([...obs].reverse(), 1e9, { bootstrap: 100, seed: 3 });
    assert.deepEqual(a, b);
  });

  it('one seed per rung: residual bootstrap; exactly 3 rungs and one seed: zero-width, said so', () => {
    const r = mulberry32(9);
    const six = [1e5, 3e5, 1e6, 3e6, 1e7, 3e7].map((s) => ({ variant: 'v', scale: s, seed: 0, value: law(s) + 0.01 * gaussian(r) }));
    const e = extrapolateVariant(six, 1e8, { bootstrap: 100 });
    assert.ok(e.ok);
    assert.equal(e.intervalMethod, 'residual-bootstrap');
    assert.ok(e.interval[1] > e.interval[0]);
    const three = extrapolateVariant(six.slice(0, 3), 1e8, { bootstrap: 100 });
    assert.ok(three.ok);
    assert.equal(three.intervalMethod, 'none (exact fit, one seed)');
    assert.equal(three.interval[0], three.interval[1]);
  });

  it('backtest is null with a reason when too few rungs remain', () => {
    const e = extrapolateVariant(noisy(1, 2, 0.01, [1e5, 1e6]), 1e7, { bootstrap: 20 });
    assert.ok(e.ok);
    assert.equal(e.model, 'power');
    assert.equal(e.backtest, null);
    assert.match(e.backtestSkipped!, /too few rungs/);
  });

  it('refuses: one rung, non-positive scale, flat data, bad target', () => {
    const one = extrapolateVariant(noisy(1, 3, 0.01, [1e5]), 1e7);
    assert.ok(!one.ok && /at least 2 distinct scales/.test(one.reason));
    const neg = extrapolateVariant([...noisy(1, 1, 0.01, [1e5, 1e6, 1e7]), { variant: 'v', scale: -5, seed: 0, value: 3 }], 1e8);
    assert.ok(!neg.ok && /not a positive number/.test(neg.reason));
    const flat = extrapolateVariant(SCALES.map((s) => ({ variant: 'v', scale: s, seed: 0, value: 2 })), 1e9);
    assert.ok(!flat.ok && /flat data/.test(flat.reason));
    const bad = extrapolateVariant(noisy(1, 1, 0.01), 0);
    assert.ok(!bad.ok && /target scale/.test(bad.reason));
  });
});

describe('analyzeExtrapolation', () => {
  it('per variant, default target is the largest observed scale', () => {
    const obs = [...noisy(1, 2, 0.01, SCALES, 'b'), ...noisy(2, 2, 0.01, SCALES, 'a'), { variant: 'c', scale: 1e5, seed: 0, value: 3 }];
    const res = analyzeExtrapolation(obs, { bootstrap: 30 });
    assert.deepEqual(Object.keys(res), ['a', 'b', 'c']);
    const a = res.a!;
    assert.ok(a.ok && a.target === 1e8);
    assert.ok(!res.c!.ok);
    const at = analyzeExtrapolation(obs, { bootstrap: 30, target: 1e10 });
    assert.ok(at.a!.ok && at.a!.target === 1e10);
    // A variant's result does not depend on the other variants.
    const alone = analyzeExtrapolation(obs.filter((o) => o.variant === 'a'), { bootstrap: 30 });
    assert.deepEqual(alone.a, res.a);
  });
});
