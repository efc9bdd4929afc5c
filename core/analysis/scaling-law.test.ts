import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import reference from './fixtures/reference.json';
import { fitScalingLaw, predictScalingLaw } from './scaling-law';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

describe('fitScalingLaw against scipy.optimize.curve_fit (fixtures/reference.json)', () => {
  for (const c of reference.fits) {
    it(`${c.name}: parameters within 1e-4 relative`, () => {
      const fit = fitScalingLaw(c.points);
      assert.ok(fit.ok, fit.ok ? '' : fit.reason);
      assert.equal(fit.model, 'power-offset');
      for (const k of ['a', 'b', 'c'] as const) {
        assert.ok(rel(fit.params[k], c.params[k]) < 1e-4, `${k}: ${fit.params[k]} vs scipy ${c.params[k]}`);
      }
      assert.ok(Math.abs(fit.rmse - c.rmse) < 1e-6 + 1e-3 * c.rmse, `rmse ${fit.rmse} vs ${c.rmse}`);
    });
  }
});

describe('fitScalingLaw properties', () => {
  it('property: recovers known (a, b, c) from noiseless data to 1e-6 relative', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 500, noNaN: true }),
        fc.double({ min: 0.05, max: 1.2, noNaN: true }),
        fc.double({ min: 0.1, max: 5, noNaN: true }),
        fc.constantFrom(1, -1),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 4, max: 7 }),
        (aAbs, b, c, sign, startExp, count) => {
          const scales = Array.from({ length: count }, (_, i) => 10 ** (startExp + i * 0.75));
          const a = sign * aAbs * 10 ** (startExp * b); // keeps the power term comparable to c at the first rung
          const fit = fitScalingLaw(scales.map((s) => ({ scale: s, value: a * s ** -b + c })));
          assert.ok(fit.ok, fit.ok ? '' : fit.reason);
          assert.equal(fit.model, 'power-offset');
          assert.ok(rel(fit.params.a, a) < 1e-6, `a ${fit.params.a} vs ${a}`);
          assert.ok(rel(fit.params.b, b) < 1e-6, `b ${fit.params.b} vs ${b}`);
          assert.ok(rel(fit.params.c, c) < 1e-6, `c ${fit.params.c} vs ${c}`);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('weights change the fit toward the heavily weighted points', () => {
    const pts = [1e3, 1e4, 1e5, 1e6].map((s, i) => ({ scale: s, value: 5 * s ** -0.4 + 1 + (i === 3 ? 0.05 : 0) }));
    const unweighted = fitScalingLaw(pts);
    const weighted = fitScalingLaw(pts.map((p, i) => ({ ...p, weight: i === 3 ? 1 : 100 })));
    assert.ok(unweighted.ok && weighted.ok);
    // Heavy weights on the three clean points: the fit follows them, not the perturbed one.
    const r = (f: typeof weighted) => (f.ok ? Math.abs(predictScalingLaw(f.params, 1e4) - (5 * 1e4 ** -0.4 + 1)) : Infinity);
    assert.ok(r(weighted) < r(unweighted));
  });

  it('falls back to a pure power law (log-space line) when the offset is degenerate', () => {
    // Exactly a·N^-b: the offset model wants c = 0 and is fine; make it degenerate with 2 scales.
    const two = fitScalingLaw([1e5, 1e6].map((s) => ({ scale: s, value: 3 * s ** -0.25 })));
    assert.ok(two.ok);
    assert.equal(two.model, 'power');
    assert.ok(rel(two.params.b, 0.25) < 1e-9 && rel(two.params.a, 3) < 1e-9 && two.params.c === 0);
    const forced = fitScalingLaw([1e5, 1e6, 1e7].map((s) => ({ scale: s, value: 3 * s ** -0.25 })), { model: 'power' });
    assert.ok(forced.ok && forced.model === 'power');
  });
});

describe('fitScalingLaw refusals', () => {
  const refuse = (pts: Parameters<typeof fitScalingLaw>[0], re: RegExp, opts?: Parameters<typeof fitScalingLaw>[1]) => {
    const f = fitScalingLaw(pts, opts);
    assert.equal(f.ok, false);
    if (!f.ok) assert.match(f.reason, re);
  };
  it('too few rungs', () => {
    refuse([{ scale: 1e5, value: 3 }], /at least 2 distinct scales/);
    refuse([{ scale: 1e5, value: 3 }, { scale: 1e6, value: 2 }], /at least 3 distinct scales/, { model: 'power-offset' });
    refuse([], /no points/);
  });
  it('non-positive or non-finite scales and values', () => {
    refuse([{ scale: 0, value: 3 }, { scale: 1e6, value: 2 }, { scale: 1e7, value: 1 }], /scale 0 is not a positive number/);
    refuse([{ scale: -1, value: 3 }, { scale: 1e6, value: 2 }, { scale: 1e7, value: 1 }], /not a positive/);
    refuse([{ scale: 1e5, value: Number.NaN }, { scale: 1e6, value: 2 }, { scale: 1e7, value: 1 }], /not finite/);
    refuse([{ scale: 1e5, value: 3, weight: 0 }, { scale: 1e6, value: 2 }, { scale: 1e7, value: 1 }], /weight 0/);
  });
  it('flat data', () => {
    refuse([1e5, 1e6, 1e7, 1e8].map((s) => ({ scale: s, value: 2.5 })), /flat data/);
    refuse([1e5, 1e6].map((s) => ({ scale: s, value: 2.5 })), /flat data/);
  });
  it('degenerate: values growing linearly in log N, or a step', () => {
    refuse([1e5, 1e6, 1e7, 1e8].map((s) => ({ scale: s, value: 1 + 0.1 * Math.log10(s) })), /degenerate fit/);
    refuse([1e5, 1e6, 1e7, 1e8].map((s, i) => ({ scale: s, value: i === 0 ? 5 : 1 })), /degenerate fit/);
  });
});
