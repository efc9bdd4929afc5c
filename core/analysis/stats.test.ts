import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import reference from './fixtures/reference.json';
import { averageRanks, kendallTauB, pearson, percentileInterval, quantileSorted, rSquared, spearman, topKAgreement, formatScale } from './stats';

const close = (actual: number | null, expected: number, tol = 1e-12) => {
  assert.ok(actual !== null, `expected ${expected}, got null`);
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `expected ${expected}, got ${actual}`);
};

describe('stats against scipy (fixtures/reference.json)', () => {
  for (const [i, c] of reference.correlations.entries()) {
    it(`pair ${i}: Pearson, R², Spearman (average ranks), Kendall τ-b`, () => {
      close(pearson(c.x, c.y), c.pearson);
      close(rSquared(c.x, c.y), c.r2);
      close(spearman(c.x, c.y), c.spearman);
      close(kendallTauB(c.x, c.y), c.kendallTauB);
      assert.deepEqual(averageRanks(c.x), c.rankdataX);
    });
  }
  it('the fixtures include ties (so the tie handling is what is tested)', () => {
    assert.ok(reference.correlations.some((c) => new Set(c.x).size < c.x.length && new Set(c.y).size < c.y.length));
  });
  it('quantiles match numpy (linear interpolation)', () => {
    const sorted = [...reference.quantiles.data].sort((a, b) => a - b);
    reference.quantiles.p.forEach((p, i) => close(quantileSorted(sorted, p), reference.quantiles.values[i]!));
  });
});

describe('stats properties and edge cases', () => {
  const vec = fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: 3, maxLength: 20 }).filter((x) => Math.max(...x) - Math.min(...x) > 1e-3);
  const slope = fc.oneof(fc.double({ min: 1e-2, max: 100, noNaN: true }), fc.double({ min: -100, max: -1e-2, noNaN: true }));

  it('property: R² is 1 for results that are an affine map of each other (either sign of slope)', () => {
    fc.assert(
      fc.property(vec, slope, fc.double({ min: -1e3, max: 1e3, noNaN: true }), (x, beta, alpha) => {
        const y = x.map((v) => alpha + beta * v);
        const r2 = rSquared(x, y);
        assert.ok(r2 !== null && Math.abs(r2 - 1) < 1e-9, `R² ${r2}`);
        const r = pearson(x, y)!;
        assert.ok(Math.abs(r - Math.sign(beta)) < 1e-9);
      }),
      { numRuns: 300 },
    );
  });

  it('property: Spearman and Kendall are 1 for identical rankings (any increasing map)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 3, maxLength: 20 }), (x) => {
        const y = x.map((v) => Math.exp(v / 300) + v ** 3);
        assert.equal(spearman(x, y), 1);
        assert.equal(kendallTauB(x, y), 1);
        assert.equal(topKAgreement(x, y, 3, 'min'), 1);
        assert.equal(spearman(x, y.map((v) => -v)), -1);
      }),
      { numRuns: 200 },
    );
  });

  it('undefined correlations are null, never NaN', () => {
    assert.equal(pearson([1, 1, 1], [1, 2, 3]), null);
    assert.equal(rSquared([1, 2, 3], [5, 5, 5]), null);
    assert.equal(spearman([2, 2, 2], [1, 2, 3]), null);
    assert.equal(kendallTauB([1, 2, 3], [4, 4, 4]), null);
    assert.equal(pearson([1], [1]), null);
  });

  it('top-k agreement counts the shared best k by mode', () => {
    assert.equal(topKAgreement([1, 2, 3, 4, 5], [1, 2, 5, 4, 3], 3, 'min'), 2 / 3);
    assert.equal(topKAgreement([1, 2, 3, 4, 5], [5, 2, 1, 4, 3], 3, 'max'), 2 / 3);
    assert.equal(topKAgreement([1, 2, 3], [3, 2, 1], 1, 'min'), 0);
    assert.equal(topKAgreement([1, 2], [1, 2], 5, 'min'), 1);
  });

  it('percentile interval ignores non-finite replicates and is null when empty', () => {
    assert.deepEqual(percentileInterval([Number.NaN, 1, 2, 3, Number.POSITIVE_INFINITY], 0.5), [1.5, 2.5]);
    assert.equal(percentileInterval([], 0.9), null);
  });

  it('formats scales compactly', () => {
    assert.equal(formatScale(1e8), '1e8');
    assert.equal(formatScale(3e5), '3e5');
    assert.equal(formatScale(350), '350');
  });
});
