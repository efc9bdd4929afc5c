/** The dashboard's pure helpers (dashboard/src/lib.ts): formatting, leaderboard shaping, series. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse, validate } from 'graphql';
import { createLadderSchema } from '../../graphql/schema';
import * as queries from '../../dashboard/src/queries';
import {
  betterText,
  formatInterval,
  formatMeanStd,
  formatNumber,
  formatScale,
  heatColor,
  logSpace,
  metricNames,
  parseRoute,
  pivotLeaderboard,
  resultMetrics,
  scalingSeries,
  sortPivotRows,
  wallClockEta,
  type LeaderboardRow,
  type ScalingAnalysis,
  type StatusCounts,
} from '../../dashboard/src/lib';

const row = (variantIndex: number, rungIndex: number, mean: number | null, std: number | null = 0.01): LeaderboardRow => ({
  variantIndex,
  variantName: `lr=${variantIndex}`,
  rungIndex,
  rungName: `r${rungIndex}`,
  scaleValue: 10 ** (5 + rungIndex),
  mean,
  std,
  count: mean === null ? 0 : 2,
  rank: null,
});

describe('dashboard helpers', () => {
  it('formats numbers, mean ± std and scales', () => {
    assert.equal(formatNumber(3.60214), '3.602');
    assert.equal(formatNumber(0.000262), '2.62e-4');
    assert.equal(formatNumber(12345678), '1.235e7');
    assert.equal(formatNumber(null), '–');
    assert.equal(formatNumber(NaN), '–');
    assert.equal(formatMeanStd(3.60214, 0.000262), '3.602 ± 2.6e-4');
    assert.equal(formatMeanStd(2, null), '2');
    assert.equal(formatScale(1e7), '1e7');
    assert.equal(formatScale(3e5), '3e5');
    assert.equal(formatScale(1500), '1500');
  });

  it('reads metric names from results (protocol shape first)', () => {
    assert.deepEqual(resultMetrics({ metrics: { loss: 1, note: 'x' }, meta: { a: 1 } }), { loss: 1 });
    assert.deepEqual(resultMetrics({ acc: 0.9 }), { acc: 0.9 });
    assert.deepEqual(metricNames([{ metrics: { loss: 1, val: 2 } }, { metrics: { loss: 3 } }, null]), ['loss', 'val']);
  });

  it('pivots and sorts the leaderboard: best first for the mode, missing values last', () => {
    const pivot = pivotLeaderboard([row(0, 0, 3), row(1, 0, 2), row(2, 0, 4), row(0, 1, 2.5), row(1, 1, null), row(2, 1, 2.1)]);
    assert.deepEqual(pivot.rungs.map((r) => r.rungIndex), [0, 1]);
    const byRung1 = (mode: 'min' | 'max', desc = false) => sortPivotRows(pivot.rows, { by: 'rung', rungIndex: 1 }, mode, desc).map((r) => r.variantIndex);
    assert.deepEqual(byRung1('min'), [2, 0, 1]);
    assert.deepEqual(byRung1('max'), [0, 2, 1]);
    assert.deepEqual(byRung1('min', true), [0, 2, 1]);
    assert.deepEqual(sortPivotRows(pivot.rows, { by: 'variant' }, 'min', true).map((r) => r.variantIndex), [2, 1, 0]);
  });

  it('builds scaling series with the fitted law, the seed spread and the band up to the target', () => {
    const none = { model: null, target: null, prediction: null, interval: null, intervalMethod: null, predictSeeds: null, params: null };
    const analysis = {
      metric: 'loss',
      mode: 'min',
      rungs: [1e5, 1e6],
      variants: ['a', 'b'],
      consistency: { means: [[3, 2.5], [3.2, null]], r2: [], spearman: [] },
      target: 1e7,
      fits: [],
      extrapolations: [
        { ...none, variant: 'a', ok: true, target: 1e7, prediction: 2.2, interval: [2.1, 2.3], params: { a: 10, b: 0.1, c: 0 }, reason: null },
        { ...none, variant: 'b', ok: false, reason: 'too few rungs' },
      ],
    } as unknown as ScalingAnalysis;
    const spread = [
      { variantName: 'a', scaleValue: 1e5, std: 0.1, count: 3 },
      { variantName: 'a', scaleValue: 1e6, std: 0.2, count: 1 }, // one seed: no spread to show
    ];
    const [a, b] = scalingSeries(analysis, spread);
    assert.deepEqual(a!.observed, [{ x: 1e5, y: 3, sd: 0.1 }, { x: 1e6, y: 2.5 }]);
    assert.equal(a!.fit.length, 24);
    assert.ok(Math.abs(a!.fit.at(-1)!.x - 1e7) < 1e-3);
    assert.deepEqual(a!.band, [{ x: 1e6, lo: 2.5, hi: 2.5 }, { x: 1e7, lo: 2.1, hi: 2.3 }]);
    assert.deepEqual(b!.observed, [{ x: 1e5, y: 3.2 }]);
    assert.equal(b!.prediction, null);
    assert.deepEqual(b!.fit, []);
    assert.deepEqual(logSpace(1, 100, 3).map((x) => Math.round(x)), [1, 10, 100]);
  });

  it('says which direction is better and formats intervals like numbers', () => {
    assert.equal(betterText('min'), 'lower is better');
    assert.equal(betterText('max'), 'higher is better');
    assert.equal(formatInterval([2.2512345678901234, 2.38]), '[2.25, 2.38]');
    assert.equal(formatInterval(null), '–');
  });

  it('estimates the wall-clock time left from finished trials, not GPU-seconds', () => {
    const counts = (c: Partial<StatusCounts>): StatusCounts => ({ planned: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, skipped: 0, ...c });
    // 4 finished trials took 40 s of wall time: 10 s each; 6 left, 2 at a time → 30 s. A CPU sweep has 0 GPU-seconds.
    assert.equal(wallClockEta([{ counts: counts({ succeeded: 4, planned: 4, running: 2 }), wallSeconds: 40 }], 2), 30);
    assert.equal(wallClockEta([{ counts: counts({ succeeded: 4 }), wallSeconds: 40 }], 2), 0, 'nothing left');
    assert.equal(wallClockEta([{ counts: counts({ running: 2, planned: 2 }), wallSeconds: 0 }], 2), null, 'no finished trial to estimate from');
    // Fewer trials left than the concurrency: they run at once.
    assert.equal(wallClockEta([{ counts: counts({ succeeded: 1, running: 1 }), wallSeconds: 10 }], 8), 10);
  });

  it('asks the API only for fields the schema has (every dashboard query validates)', () => {
    const schema = createLadderSchema();
    const ops = Object.entries(queries).flatMap(([name, q]) =>
      typeof q === 'string' && /^(query|subscription|mutation)\b/.test(q) ? [[name, q] as const] : typeof q === 'function' ? [[name, (q as (n: number) => string)(2)] as const] : [],
    );
    assert.ok(ops.length >= 6, `found ${ops.length} operations`);
    for (const [name, q] of ops) assert.deepEqual(validate(schema, parse(q)).map((e) => e.message), [], name);
  });

  it('colours heatmap cells and parses routes', () => {
    assert.equal(heatColor(0), 'rgb(255, 255, 255)');
    assert.equal(heatColor(1), 'rgb(37, 99, 235)');
    assert.equal(heatColor(null), '#e5e7eb');
    assert.deepEqual(parseRoute('#/sweeps/abc'), { page: 'sweep', id: 'abc' });
    assert.deepEqual(parseRoute('#/trials/t%2F1'), { page: 'trial', id: 't/1' });
    assert.deepEqual(parseRoute(''), { page: 'sweeps' });
  });
});
