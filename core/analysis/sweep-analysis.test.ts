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
    assert.equal(a.targetSource, 'requested');
    assert.match(a.verdict, /^Rankings at 1e5 already predict 1e8 \(R² 1, ρ 1, same winner, top-3 agree\)\. Predicted at 1e9: lr0 → [\d.]+ \[[\d.]+, [\d.]+\]; fitted without 1e8, the curve predicted 1e8 within its interval\.$/);
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
    assert.equal(b.targetSource, 'none');
    assert.deepEqual(b.extrapolations, {});
    assert.equal(b.budget!.spent, 3);
    assert.match(b.criticalRung.reason, /needs at least 2 rungs/);
    assert.deepEqual(JSON.parse(JSON.stringify(b)), b);
  });

  it('default target: one rung step past the largest, and says so; a spec target says so too', () => {
    const base = { observations: synthetic(2), mode: 'min' as const, metric: 'loss', bootstrap: { consistency: 0, extrapolation: 20 } };
    const a = analyzeSweep(base);
    assert.equal(a.target, 1e9);
    assert.equal(a.targetSource, 'next-rung');
    assert.equal(a.targetNote, 'target 1e9: one step past the largest rung');
    const e = a.extrapolations.lr0!;
    assert.ok(e.ok && e.target === 1e9 && e.prediction < a.consistency.means[0]![3]!, 'a loss extrapolated beyond the largest rung is lower');
    const s = analyzeSweep({ ...base, target: 3e9, targetFrom: 'spec' });
    assert.equal(s.targetNote, 'target 3e9: from the spec (analysis.targetScale)');
  });

  it('verdict: promotions and spend for a ladder; nothing of either for an imported sweep', () => {
    const trials = [0, 1, 2, 3].flatMap((rung) =>
      ['lr0', 'lr1', 'lr2', 'lr3', 'lr4'].flatMap((variant, v) =>
        [0, 1].map((seed) => ({ rungIndex: rung, scale: 10 ** (5 + rung), variant, seed, status: rung === 0 || v < 3 ? 'succeeded' : 'skipped', gpuSeconds: 10 * 2 ** rung, wallSeconds: 1, gpus: 1 })),
      ),
    );
    const input = {
      observations: synthetic(3),
      mode: 'min' as const,
      metric: 'loss',
      bootstrap: { consistency: 0, extrapolation: 20 },
      budget: [trials, { variants: 5, seeds: 2, rungs: 4 }] as Parameters<typeof analyzeSweep>[0]['budget'],
      promotions: [{ rungIndex: 0, decisions: [0, 1, 2, 3, 4].map((i) => ({ promoted: i < 3, rank: i + 1 })) }],
    };
    const ladder = analyzeSweep(input);
    assert.match(ladder.verdict, / Promoted 3 of 5; spent 63% of the full grid's GPU time\. /);
    const imported = analyzeSweep({ ...input, imported: true });
    assert.equal(imported.budget, undefined);
    assert.doesNotMatch(imported.verdict, /Promoted|spent|saved/);
  });

  it('verdict: says plainly when no rung predicts the largest, and why', () => {
    const obs: Observation[] = [];
    for (let v = 0; v < 5; v++)
      for (const s of [1e5, 1e6, 1e7])
        for (let k = 0; k < 2; k++) obs.push({ variant: `v${v}`, scale: s, seed: k, value: (s === 1e7 ? 3 - 0.1 * v : 2 + 0.1 * v) + 0.001 * k });
    const a = analyzeSweep({ observations: obs, mode: 'min', metric: 'loss', bootstrap: { consistency: 50, extrapolation: 10 } });
    assert.match(a.verdict, /^No rung below 1e7 predicts it: 1e6: R² 1 but the ranking is reversed \(r -1\); 1e5: R² 1 but the ranking is reversed \(r -1\)\./);
  });

  it("the verdict says whether the curve's form survived holding out the largest rung", () => {
    const bootstrap = { consistency: 0, extrapolation: 60 };
    // The same power law on every rung but the largest, which jumps: the fit without it misses.
    const r = mulberry32(7);
    const bent: Observation[] = [];
    for (let v = 0; v < 4; v++)
      for (const s of [1e5, 1e6, 1e7, 1e8])
        for (let k = 0; k < 3; k++) {
          const law = (1.5 + 50 * s ** -0.3) * (1 + 0.04 * v);
          bent.push({ variant: `lr${v}`, scale: s, seed: k, value: (s === 1e8 ? law + 0.8 : law) + 0.002 * gaussian(r) });
        }
    const missed = analyzeSweep({ observations: bent, mode: 'min', metric: 'loss', target: 1e9, bootstrap });
    const e = missed.extrapolations.lr0!;
    assert.ok(e.ok && e.backtest !== null && !e.backtest.withinInterval, 'the held-out fit misses the jump');
    assert.match(missed.verdict, /; but fitted without 1e8, the curve predicted [\d.]+ \[[\d.]+, [\d.]+\] at 1e8 where [\d.]+ was measured, so treat this prediction with care\.$/);

    // Two rungs: nothing to hold out, and the verdict says the form is unchecked.
    const two = analyzeSweep({ observations: synthetic(3).filter((o) => o.scale <= 1e6), mode: 'min', metric: 'loss', target: 1e7, bootstrap });
    assert.match(two.verdict, /Predicted at 1e7: .*; with 2 rungs no rung is held out, so the curve's form is unchecked\.$/);
  });
});
