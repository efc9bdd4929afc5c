import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decideAshaPromotions, decidePromotion, predictNextRung, type PromotionRule, type VariantScore } from './promotion';
import type { Observation } from './types';

function scores(means: Array<number | null>): VariantScore[] {
  return means.map((mean, i) => ({ variantIndex: i, variantName: `v${i}`, mean, count: mean === null ? 0 : 3 }));
}

function promotedIndexes(s: VariantScore[], rule: PromotionRule): number[] {
  return decidePromotion(s, rule)
    .filter((d) => d.promoted)
    .map((d) => d.variantIndex);
}

describe('decidePromotion', () => {
  it('topK with mode min keeps the k lowest means', () => {
    const s = scores([0.5, 0.1, 0.9, 0.3]);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', topK: 2 }), [1, 3]);
  });

  it('topK with mode max keeps the k highest means', () => {
    const s = scores([0.5, 0.1, 0.9, 0.3]);
    assert.deepEqual(promotedIndexes(s, { metric: 'acc', mode: 'max', topK: 2 }), [0, 2]);
  });

  it('topK larger than the number of variants keeps every scored variant', () => {
    const s = scores([0.5, null, 0.9]);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', topK: 10 }), [0, 2]);
  });

  it('fraction rounds up', () => {
    const s = scores([5, 4, 3, 2, 1]);
    // 0.5 * 5 = 2.5 → 3
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', fraction: 0.5 }), [2, 3, 4]);
    // 0.2 * 5 = 1 exactly → 1
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', fraction: 0.2 }), [4]);
    // 0.21 * 5 = 1.05 → 2
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', fraction: 0.21 }), [3, 4]);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', fraction: 1 }), [0, 1, 2, 3, 4]);
  });

  it('fraction that is exact in decimal is not bumped up by float error', () => {
    // 0.07 * 100 === 7.000000000000001 and 0.14 * 100 === 14.000000000000002 in binary floating point.
    const hundred = scores(Array.from({ length: 100 }, (_, i) => i));
    assert.equal(promotedIndexes(hundred, { metric: 'loss', mode: 'min', fraction: 0.07 }).length, 7);
    assert.equal(promotedIndexes(hundred, { metric: 'loss', mode: 'min', fraction: 0.14 }).length, 14);
    const twenty = scores(Array.from({ length: 20 }, (_, i) => i));
    assert.equal(promotedIndexes(twenty, { metric: 'loss', mode: 'min', fraction: 0.55 }).length, 11);
  });

  it('fraction keeps at least one variant', () => {
    const s = scores([3, 1, 2]);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', fraction: 0.01 }), [1]);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'max', fraction: 0.01 }), [0]);
  });

  it('the fraction is of the scored variants, not of all variants', () => {
    const s = scores([1, null, null, 2, null, 3]);
    // 3 scored × 0.5 = 1.5 → 2
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', fraction: 0.5 }), [0, 3]);
  });

  it('breaks ties by variant index in both modes', () => {
    const s = scores([2, 1, 1, 1, 0.5]);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', topK: 2 }), [1, 4]);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', topK: 3 }), [1, 2, 4]);
    const t = scores([1, 3, 3, 3]);
    assert.deepEqual(promotedIndexes(t, { metric: 'acc', mode: 'max', topK: 2 }), [1, 2]);
    const decisions = decidePromotion(t, { metric: 'acc', mode: 'max', topK: 2 });
    assert.deepEqual(
      decisions.map((d) => d.rank),
      [4, 1, 2, 3],
    );
  });

  it('variants without a mean are never promoted, get no rank, and say why', () => {
    const s = scores([null, 0.2, null]);
    for (const rule of [
      { metric: 'loss', mode: 'min', topK: 3 },
      { metric: 'loss', mode: 'min', fraction: 1 },
      { metric: 'loss', mode: 'max', fraction: 0.01 },
    ] satisfies PromotionRule[]) {
      const decisions = decidePromotion(s, rule);
      for (const i of [0, 2]) {
        assert.equal(decisions[i]!.promoted, false);
        assert.equal(decisions[i]!.rank, null);
        assert.match(decisions[i]!.reason, /no successful trial reported loss/);
      }
      assert.equal(decisions[1]!.promoted, true);
      assert.equal(decisions[1]!.rank, 1);
    }
  });

  it('a non-finite mean is treated like a missing one', () => {
    const s = scores([Number.NaN, 1, Number.POSITIVE_INFINITY]);
    const d = decidePromotion(s, { metric: 'loss', mode: 'min', topK: 3 });
    assert.deepEqual(
      d.map((x) => [x.promoted, x.rank]),
      [
        [false, null],
        [true, 1],
        [false, null],
      ],
    );
  });

  it('with no scored variant, nothing is promoted (even with a fraction)', () => {
    const s = scores([null, null]);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', fraction: 0.5 }), []);
    assert.deepEqual(promotedIndexes(s, { metric: 'loss', mode: 'min', topK: 1 }), []);
    assert.deepEqual(decidePromotion([], { metric: 'loss', mode: 'min', topK: 1 }), []);
  });

  it('ranks are 1-based and reasons name the rank, the rule and the verdict', () => {
    const s = scores([0.3, 0.1, 0.2]);
    const d = decidePromotion(s, { metric: 'loss', mode: 'min', topK: 1 });
    assert.deepEqual(
      d.map((x) => x.rank),
      [3, 1, 2],
    );
    assert.equal(d[1]!.reason, 'rank 1 of 3 by min loss, within top 1');
    assert.equal(d[0]!.reason, 'rank 3 of 3 by min loss, outside top 1');
    const f = decidePromotion(s, { metric: 'loss', mode: 'min', fraction: 0.5 });
    assert.equal(f[2]!.reason, 'rank 2 of 3 by min loss, within best 50%');
  });

  it('keeps the input fields and returns variants in variant order', () => {
    const s = scores([0.3, null, 0.1, 0.2]);
    const d = decidePromotion(s, { metric: 'loss', mode: 'min', topK: 2 });
    assert.deepEqual(
      d.map((x) => x.variantIndex),
      [0, 1, 2, 3],
    );
    d.forEach((x, i) => {
      assert.equal(x.variantName, s[i]!.variantName);
      assert.equal(x.mean, s[i]!.mean);
      assert.equal(x.count, s[i]!.count);
    });
    // Input given out of order (as a GROUP BY may return it) still comes back in variant order.
    const shuffled = [s[2]!, s[0]!, s[3]!, s[1]!];
    assert.deepEqual(decidePromotion(shuffled, { metric: 'loss', mode: 'min', topK: 2 }), d);
  });

  it('does not mutate its input', () => {
    const s = scores([0.3, 0.1, 0.2]);
    const copy = structuredClone(s);
    decidePromotion(s, { metric: 'loss', mode: 'max', topK: 1 });
    assert.deepEqual(s, copy);
  });

  it('property: promoted count and membership match the rule', () => {
    const meanArb = fc.option(fc.integer({ min: -5, max: 5 }), { nil: null });
    const ruleArb = fc.oneof(
      fc.record({ metric: fc.constant('m'), mode: fc.constantFrom('min' as const, 'max' as const), topK: fc.integer({ min: 1, max: 12 }) }),
      fc.record({
        metric: fc.constant('m'),
        mode: fc.constantFrom('min' as const, 'max' as const),
        fraction: fc.integer({ min: 1, max: 100 }).map((p) => p / 100),
      }),
    );
    fc.assert(
      fc.property(fc.array(meanArb, { maxLength: 10 }), ruleArb, (means, rule: PromotionRule) => {
        const s = scores(means);
        const d = decidePromotion(s, rule);
        const scored = s.filter((x) => x.mean !== null);
        const n = scored.length;
        const expectedKeep =
          rule.topK !== undefined
            ? Math.min(rule.topK, n)
            : n === 0
              ? 0
              : Math.max(1, Math.ceil((Math.round(rule.fraction! * 100) * n) / 100));
        const promoted = d.filter((x) => x.promoted);
        assert.equal(promoted.length, expectedKeep);
        // Ranks of scored variants are exactly 1..n.
        assert.deepEqual(
          d
            .map((x) => x.rank)
            .filter((r) => r !== null)
            .sort((a, b) => a! - b!),
          Array.from({ length: n }, (_, i) => i + 1),
        );
        // Every promoted variant is at least as good as every non-promoted scored one.
        const better = (a: number, b: number) => (rule.mode === 'min' ? a <= b : a >= b);
        for (const p of promoted) {
          for (const q of d.filter((x) => !x.promoted && x.mean !== null)) {
            assert.ok(better(p.mean!, q.mean!), `${p.mean} should beat ${q.mean}`);
            assert.ok(p.rank! < q.rank!);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('decidePromotion with intervalOverlap', () => {
  const rule: PromotionRule = { metric: 'loss', mode: 'min', intervalOverlap: true };
  const withIntervals = (rows: Array<[number | null, [number, number] | undefined]>): VariantScore[] =>
    rows.map(([mean, interval], i) => ({ variantIndex: i, variantName: `v${i}`, mean, count: 3, ...(interval ? { interval } : {}) }));

  it('promotes the best and every variant whose interval overlaps the best one', () => {
    const s = withIntervals([
      [2.0, [1.9, 2.1]], // best
      [2.15, [2.05, 2.3]], // overlaps
      [2.5, [2.3, 2.7]], // does not
      [2.12, undefined], // no interval
      [null, undefined],
    ]);
    const d = decidePromotion(s, rule);
    assert.deepEqual(d.map((x) => x.promoted), [true, true, false, false, false]);
    assert.match(d[0]!.reason, /the best, interval \[1.9, 2.1\]/);
    assert.match(d[1]!.reason, /interval \[2.05, 2.3\] overlaps the best's \(v0\) \[1.9, 2.1\]/);
    assert.match(d[2]!.reason, /does not overlap/);
    assert.match(d[3]!.reason, /no prediction interval at the next rung/);
    assert.match(d[4]!.reason, /no successful trial reported loss/);
    assert.deepEqual(d.map((x) => x.rank), [1, 3, 4, 2, null]);
  });

  it('mode max picks the highest mean as the best; touching intervals overlap', () => {
    const s = withIntervals([
      [0.5, [0.4, 0.6]],
      [0.7, [0.6, 0.8]],
      [0.3, [0.2, 0.35]],
    ]);
    assert.deepEqual(decidePromotion(s, { ...rule, mode: 'max' }).map((x) => x.promoted), [true, true, false]);
  });

  it('the best is the best variant that has an interval', () => {
    const s = withIntervals([
      [1.0, undefined],
      [2.0, [1.8, 2.2]],
      [2.1, [2.15, 2.3]],
    ]);
    assert.deepEqual(decidePromotion(s, rule).map((x) => x.promoted), [false, true, true]);
  });

  it('property: the best with an interval is always promoted, and promotion is exactly overlap with it', () => {
    const row = fc.tuple(
      fc.option(fc.integer({ min: 0, max: 20 }), { nil: null }),
      fc.option(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 5 })), { nil: undefined }),
    );
    fc.assert(
      fc.property(fc.array(row, { maxLength: 8 }), fc.constantFrom('min' as const, 'max' as const), (rows, mode) => {
        const s = withIntervals(rows.map(([m, iv]) => [m, iv ? [iv[0], iv[0] + iv[1]] : undefined]));
        const d = decidePromotion(s, { ...rule, mode });
        const candidates = s.filter((x) => x.mean !== null && x.interval);
        if (candidates.length === 0) return assert.equal(d.filter((x) => x.promoted).length, 0);
        const best = [...candidates].sort((a, b) => (mode === 'min' ? a.mean! - b.mean! : b.mean! - a.mean!) || a.variantIndex - b.variantIndex)[0]!;
        for (const x of d) {
          const expected = x.mean !== null && x.interval !== undefined && x.interval[0] <= best.interval![1] && best.interval![0] <= x.interval[1];
          assert.equal(x.promoted, expected);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('predictNextRung', () => {
  const law = (n: number, v: number) => (1.5 + 50 * n ** -0.3) * (1 + 0.05 * v);
  const obs = (scales: number[], variants: number, seeds: number): Observation[] =>
    scales.flatMap((s) =>
      Array.from({ length: variants }, (_, v) =>
        Array.from({ length: seeds }, (_, k) => ({ variant: `v${v}`, scale: s, seed: k, value: law(s, v) + 0.003 * Math.sin(7 * k + v + s) })),
      ).flat(),
    );

  it('with ≥ 3 rungs: extrapolates every variant to the next scale', () => {
    const p = predictNextRung(obs([1e5, 1e6, 1e7], 3, 3), 1e8, { bootstrap: 50 });
    assert.deepEqual(Object.keys(p), ['v0', 'v1', 'v2']);
    for (let v = 0; v < 3; v++) {
      const x = p[`v${v}`]!;
      assert.equal(x.basis, 'extrapolation');
      assert.ok(Math.abs(x.mean! - law(1e8, v)) < 0.05, `${x.mean} vs ${law(1e8, v)}`);
      assert.ok(x.interval![0] <= x.mean! && x.mean! <= x.interval![1]);
    }
  });

  it('with < 3 rungs: the current rung mean and its bootstrap interval (rank transfer)', () => {
    const p = predictNextRung(obs([1e5, 1e6], 3, 3), 1e7, { bootstrap: 50 });
    const x = p.v1!;
    assert.equal(x.basis, 'current-rung');
    assert.ok(Math.abs(x.mean! - law(1e6, 1)) < 0.01);
    assert.match(x.reason, /assuming ranks transfer/);
  });

  it('variants not run at the current rung get no prediction, and the rule does not promote them', () => {
    const o = [...obs([1e5], 4, 2), ...obs([1e6], 2, 2)];
    const p = predictNextRung(o, 1e7, { bootstrap: 20 });
    assert.equal(p.v3!.basis, 'none');
    assert.equal(p.v3!.interval, null);
    const scores: VariantScore[] = ['v0', 'v1', 'v2', 'v3'].map((name, i) => ({
      variantIndex: i,
      variantName: name,
      mean: p[name]!.mean,
      count: 2,
      ...(p[name]!.interval ? { interval: p[name]!.interval! } : {}),
    }));
    const d = decidePromotion(scores, { metric: 'loss', mode: 'min', intervalOverlap: true });
    assert.equal(d[0]!.promoted, true);
    assert.equal(d[3]!.promoted, false);
  });
});

describe('decideAshaPromotions', () => {
  const rule = { mode: 'min' as const, eta: 3 };

  it('promotes nobody before eta variants have finished: the first result alone proves nothing', () => {
    assert.deepEqual(decideAshaPromotions(scores([0.1]), new Set(), rule), []);
    assert.deepEqual(decideAshaPromotions(scores([0.1, 0.2]), new Set(), rule), []);
  });

  it('promotes the best floor(k/eta) of the k finished variants, best first', () => {
    assert.deepEqual(decideAshaPromotions(scores([0.5, 0.1, 0.9]), new Set(), rule), [1]);
    assert.deepEqual(decideAshaPromotions(scores([0.5, 0.1, 0.9, 0.3, 0.7, 0.2]), new Set(), rule), [1, 5]);
    assert.deepEqual(decideAshaPromotions(scores([0.5, 0.1, 0.9]), new Set(), { mode: 'max', eta: 3 }), [2]);
  });

  it('never promotes a variant twice, and a late leader overtakes an early one', () => {
    // Variant 0 led the first three and went up; with six finished, 1 and 4 are the best two.
    assert.deepEqual(decideAshaPromotions(scores([0.3, 0.1, 0.9, 0.8, 0.2, 0.7]), new Set([0, 1]), rule), [4]);
  });

  it('counts only variants with a score, and gives at most `max`', () => {
    assert.deepEqual(decideAshaPromotions(scores([0.5, null, 0.9, null, null]), new Set(), rule), []);
    assert.deepEqual(decideAshaPromotions(scores([1, 2, 3, 4, 5, 6, 7, 8, 9]), new Set(), rule, 2), [0, 1]);
    assert.deepEqual(decideAshaPromotions(scores([1, 2, 3, 4, 5, 6, 7, 8, 9]), new Set(), rule, 0), []);
  });

  it('agrees with the complete rung: at k = n its promotions are within the fraction 1/eta rule', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 2, max: 5 }), (means, eta) => {
        const s = scores(means);
        const asha = decideAshaPromotions(s, new Set(), { mode: 'min', eta });
        const complete = promotedIndexes(s, { metric: 'loss', mode: 'min', fraction: 1 / eta });
        assert.ok(asha.every((v) => complete.includes(v)), `${asha} within ${complete}`);
        assert.equal(asha.length, Math.floor(means.length / eta));
      }),
    );
  });
});
