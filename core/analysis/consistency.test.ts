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
    assert.match(c.criticalRung.reason, /^R² 1 \[1, 1\] against 1e8 clears 0.9, ρ 1, same winner, top-3 agree$/);
    assert.ok(c.againstLargest.every((r) => r.consistent && r.sameWinner && r.topKAgreement === 1));
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
    assert.match(analyzeConsistency(noise, { mode: 'min', bootstrap: 0, threshold: 0.99 }).criticalRung.reason, /^no rung below the largest is consistent with it \(1e7: R² [\d.]+ < 0.99\)$/);
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

  it('sign rule: an exactly reversed ranking (r = −1, R² = 1) is never consistent', () => {
    // Below 1e8 the order follows the variant index; at 1e8 it is reversed, an affine map with slope −1.
    const obs = grid(6, scales, 2, (v, s, k) => (s === 1e8 ? 3 - 0.1 * v : 2 + 0.1 * v) + 1e-4 * k);
    const c = analyzeConsistency(obs, { mode: 'min', bootstrap: 50 });
    const vs = c.againstLargest.find((r) => r.scale === 1e7)!;
    assert.ok(Math.abs(vs.r2! - 1) < 1e-9, 'R² alone says perfect');
    assert.ok(Math.abs(vs.pearson! + 1) < 1e-9);
    assert.equal(vs.spearman, -1);
    assert.equal(vs.consistent, false);
    assert.equal(vs.sameWinner, false);
    assert.equal(vs.topKAgreement, 0);
    assert.equal(c.criticalRung.scale, null);
    assert.match(c.criticalRung.reason, /1e7: R² 1 but the ranking is reversed \(r -1\)/);
  });

  it("the issue's imported table: a high R² whose winner changes is not the critical rung, and says so", () => {
    // adam-lr1e-3 wins at 1e6, adam-lr3e-4 wins at 1e7 and 1e8; sgd, far behind everywhere, makes
    // Pearson's R² high (0.97+) while the ranking of the Adam runs changes (Spearman 0.4).
    const table: Record<string, [number, number, number]> = {
      'adam-lr1e-3': [2.5, 2.21, 2.03],
      'adam-lr3e-4': [2.52, 2.18, 2.0],
      'adam-lr1e-4': [2.6, 2.25, 2.02],
      sgd: [3.5, 3.2, 3.0],
    };
    const obs: Observation[] = Object.entries(table).flatMap(([variant, vals]) =>
      [1e6, 1e7, 1e8].flatMap((scale, i) => [0, 1].map((seed) => ({ variant, scale, seed, value: vals[i]! + (seed - 0.5) * 0.002 }))),
    );
    const c = analyzeConsistency(obs, { mode: 'min', bootstrap: 100 });
    const at1e6 = c.againstLargest[0]!;
    assert.equal(at1e6.scale, 1e6);
    assert.ok(at1e6.r2! >= 0.97 && at1e6.pearson! > 0, `R² ${at1e6.r2} clears with a positive r`);
    assert.ok(Math.abs(at1e6.spearman! - 0.4) < 1e-9);
    assert.equal(at1e6.winner, 'adam-lr1e-3');
    assert.equal(at1e6.largestWinner, 'adam-lr3e-4');
    assert.equal(at1e6.consistent, false);
    assert.match(at1e6.why, /clears 0.9 but the winner changes \(adam-lr1e-3 at 1e6, adam-lr3e-4 at 1e8\)/);
    assert.notEqual(c.criticalRung.scale, 1e6);
    assert.equal(c.criticalRung.scale, 1e7);
    assert.equal(c.criticalRung.sameWinner, true);
  });

  it('one seed: no zero-width interval, a note instead', () => {
    const obs = grid(5, scales, 1, (v, s) => (1.5 + 50 * s ** -0.3) * (1 + 0.05 * v) + 0.01 * Math.sin(v * s));
    const c = analyzeConsistency(obs, { mode: 'min', bootstrap: 100 });
    for (const row of c.r2Interval) for (const iv of row) assert.equal(iv, null);
    assert.ok(c.againstLargest.every((r) => r.interval === null && r.intervalNote === 'interval needs ≥ 2 seeds'));
    assert.equal(c.criticalRung.scale, 1e5);
    assert.equal(c.criticalRung.interval, null);
    assert.equal(c.criticalRung.intervalNote, 'interval needs ≥ 2 seeds');
    assert.match(c.criticalRung.reason, /^R² 1 \(interval needs ≥ 2 seeds\) against 1e8/);
  });
});
