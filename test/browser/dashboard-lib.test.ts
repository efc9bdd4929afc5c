/** The dashboard's pure helpers (dashboard/src/lib.ts): formatting, leaderboard shaping, series. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  asScalingAnalysis,
  formatMeanStd,
  formatNumber,
  formatScale,
  heatColor,
  logSpace,
  metricNames,
  parseRoute,
  parseSseBlock,
  pivotLeaderboard,
  resultMetrics,
  scalingSeries,
  sortPivotRows,
  type LeaderboardRow,
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
    assert.equal(formatNumber(12345678), '1.235e+7');
    assert.equal(formatNumber(null), '—');
    assert.equal(formatNumber(NaN), '—');
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

  it('builds scaling series with the fitted law and the band up to the target', () => {
    const analysis = asScalingAnalysis({
      metric: 'loss',
      mode: 'min',
      rungs: [1e5, 1e6],
      variants: ['a', 'b'],
      consistency: { means: [[3, 2.5], [3.2, null]], r2: [], spearman: [] },
      target: 1e7,
      extrapolations: { a: { ok: true, target: 1e7, prediction: 2.2, interval: [2.1, 2.3], params: { a: 10, b: 0.1, c: 0 } }, b: { ok: false, reason: 'too few rungs' } },
    })!;
    const [a, b] = scalingSeries(analysis);
    assert.deepEqual(a!.observed, [{ x: 1e5, y: 3 }, { x: 1e6, y: 2.5 }]);
    assert.equal(a!.fit.length, 24);
    assert.ok(Math.abs(a!.fit.at(-1)!.x - 1e7) < 1e-3);
    assert.deepEqual(a!.band, [{ x: 1e6, lo: 2.5, hi: 2.5 }, { x: 1e7, lo: 2.1, hi: 2.3 }]);
    assert.deepEqual(b!.observed, [{ x: 1e5, y: 3.2 }]);
    assert.equal(b!.prediction, null);
    assert.deepEqual(b!.fit, []);
    assert.equal(asScalingAnalysis({ rungs: 1 }), null);
    assert.deepEqual(logSpace(1, 100, 3).map((x) => Math.round(x)), [1, 10, 100]);
  });

  it('colours heatmap cells, parses routes and SSE blocks', () => {
    assert.equal(heatColor(0), 'rgb(255, 255, 255)');
    assert.equal(heatColor(1), 'rgb(37, 99, 235)');
    assert.equal(heatColor(null), '#e5e7eb');
    assert.deepEqual(parseRoute('#/sweeps/abc'), { page: 'sweep', id: 'abc' });
    assert.deepEqual(parseRoute('#/trials/t%2F1'), { page: 'trial', id: 't/1' });
    assert.deepEqual(parseRoute(''), { page: 'sweeps' });
    assert.deepEqual(parseSseBlock('event: next\ndata: {"a":1}'), { event: 'next', data: '{"a":1}' });
    assert.deepEqual(parseSseBlock('data:a\ndata:b'), { event: 'message', data: 'a\nb' });
    assert.equal(parseSseBlock(':'), null);
  });
});
