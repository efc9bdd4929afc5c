import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeConsistency } from './consistency';
import { gaussian, mulberry32 } from './rng';
import type { Observation } from './types';

/** variants × rungs × seeds from a value function. */
function grid(nVariants: number, scales: number[], seeds: number, value: (v: number, s: number, seed: number) => number): Observation[] {
  const out: Observation[] = [];
  for (let v = 0; v < nVariants; v++) for (const s of scales) for (let k = 0; k < seeds; k++) out.push({ variant: `v${String(v).padStart(2, '0')}`, scale: s, seed: k, value: value(v, s, k) });
  return out;
}

describe('analyzeConsistency', () => {
  const scales = [1e5, 1e6, 1e7, 1e8];

  it('perfectly consistent variants: R² = 1 everywhere, critical rung = smallest', () => {
    const obs = grid(6, scales, 2, (v, s, k) => (1.5 + 50 * s ** -0.3) * (1 + 0.05 * v) + 1e-4 * k);
    const c = analyzeConsistency(obs, { mode: 'min', bootstrap: 100 });
    assert.deepEqual(c.rungs, scales);
    assert.equal(c.variants.length, 6);
    for (const row of c.r2) for (const v of row) assert.ok(v !== null && Math.abs(v - 1) < 1e-9);
    for (const row of c.spearman) for (const v of row) assert.equal(v, 1);
    assert.equal(c.criticalRung.scale, 1e5);
    assert.match(c.criticalRung.reason, /^R² 1 \[1, 1\] against 1e8 clears 0.9$/);
  });

  it('rankings that only settle at scale: the critical rung is the first consistent one', () => {
    // At 1e5 the order is scrambled; from 1e6 on it follows the variant index.
    const scramble = [3, 0, 5, 1, 4, 2];
    const obs = grid(6, scales, 3, (v, s) => (s === 1e5 ? 2 + 0.1 * scramble[v]! : 1 + 0.1 * v + 10 / Math.log(s)));
    const c = analyzeConsistency(obs, { mode: 'min', bootstrap: 50 });
    assert.ok(c.r2[0]![3]! < 0.9);
    assert.equal(c.criticalRung.scale, 1e6);
    assert.ok(c.spearman[0]![3]! < 1);
    assert.equal(c.topKAgreement[1]![3], 1);
  });

  it('no rung below the largest clears, or too few rungs / shared variants', () => {
    const rand = mulberry32(3);
    const noise = grid(8, scales, 1, () => rand());
    assert.equal(analyzeConsistency(noise, { mode: 'min', bootstrap: 0, threshold: 0.99 }).criticalRung.reason, 'no rung below the largest clears 0.99');
    const one = grid(5, [1e5], 2, (v) => v);
    const c1 = analyzeConsistency(one, { mode: 'min', bootstrap: 10 });
    assert.equal(c1.criticalRung.scale, null);
    assert.equal(c1.criticalRung.reason, 'needs at least 2 rungs with 3 shared variants');
    // Only 2 variants reach the top rung: every pair with it is null.
    const ladder = [...grid(5, [1e5, 1e6], 2, (v) => v), ...grid(2, [1e7], 2, (v) => v)];
    const c2 = analyzeConsistency(ladder, { mode: 'min', bootstrap: 10 });
    assert.equal(c2.r2[0]![2], null);
    assert.equal(c2.r2Interval[0]![2], null);
    assert.ok(c2.r2[0]![1] !== null);
    assert.match(c2.criticalRung.reason, /needs at least 2 rungs/);
  });

  it('bootstrap intervals are deterministic per seed, ordered, and bracket typical noise', () => {
    const rand = mulberry32(11);
    const obs = grid(10, scales, 3, (v, s) => (1.5 + 50 * s ** -0.3) * (1 + 0.02 * v) + 0.02 * gaussian(rand));
    const a = analyzeConsistency(obs, { mode: 'min', bootstrap: 300, seed: 7 });
    const b = analyzeConsistency([...obs].reverse(), { mode: 'min', bootstrap: 300, seed: 7 });
    assert.deepEqual(a, b);
    const c = analyzeConsistency(obs, { mode: 'min', bootstrap: 300, seed: 8 });
    assert.notDeepEqual(a.r2Interval, c.r2Interval);
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++) {
        const iv = a.r2Interval[i]![j]!;
        assert.ok(iv[0] <= iv[1] && iv[0] >= 0 && iv[1] <= 1);
        assert.deepEqual(a.r2Interval[j]![i], iv);
      }
    assert.ok(a.r2Interval[0]![3]![0] < a.r2Interval[0]![3]![1], 'noisy data gives a non-degenerate interval');
  });

  it('mode max changes top-k agreement but not the correlations', () => {
    const obs = grid(6, [1, 2, 3], 1, (v, s) => (s === 3 ? [6, 5, 4, 1, 2, 3][v]! : v));
    const min = analyzeConsistency(obs, { mode: 'min', bootstrap: 0, topK: 3 });
    const max = analyzeConsistency(obs, { mode: 'max', bootstrap: 0, topK: 3 });
    assert.deepEqual(min.r2, max.r2);
    assert.equal(min.topKAgreement[0]![2], 0);
    assert.equal(max.topKAgreement[0]![2], 0);
    assert.equal(min.topKAgreement[0]![1], 1);
  });

  it('ignores non-finite values', () => {
    const obs = grid(4, [1, 2], 2, (v) => v);
    obs.push({ variant: 'v00', scale: 1, seed: 9, value: Number.NaN });
    const c = analyzeConsistency(obs, { mode: 'min', bootstrap: 10 });
    assert.equal(c.means[0]![0], 0);
  });
});
