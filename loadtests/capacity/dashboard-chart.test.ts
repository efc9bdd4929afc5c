/** The capacity page's pure helpers (dashboard/src/capacity-lib.ts): chart rows and threshold lines. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { capacityChartRows, generatorCounts, thresholdLines, type CapacityStepView } from '../../dashboard/src/capacity-lib';

const step = (offered: number, extra: Partial<CapacityStepView> = {}): CapacityStepView => ({ index: 0, generators: 1, offered, achieved: offered, p50Ms: 1, p95Ms: 2, p99Ms: 3, errorRate: 0, passed: true, incomplete: null, ...extra });

describe('capacity page helpers', () => {
  test('rows by offered rate, incomplete steps left out, one generator count at a time', () => {
    const steps = [step(10), step(40, { passed: false }), step(20), step(30, { incomplete: 'generator 1 lost' }), step(10, { generators: 2, achieved: 9 })];
    assert.deepEqual(capacityChartRows(steps, 1).map((r) => [r.offered, r.passed]), [[10, true], [20, true], [40, false]]);
    assert.deepEqual(capacityChartRows(steps, 2).map((r) => r.achieved), [9]);
    assert.deepEqual(generatorCounts(steps), [1, 2]);
  });

  test('latency and achieved thresholds become lines; others are not drawn', () => {
    assert.deepEqual(thresholdLines(['p95 < 250ms', 'errors < 1%', 'achieved >= 0.95 * offered', 'achieved >= 100', 'p99 < 1.5s']), [
      { chart: 'latency', label: 'p95 < 250ms', ms: 250 },
      { chart: 'throughput', label: 'achieved >= 0.95 * offered', factor: 0.95 },
      { chart: 'throughput', label: 'achieved >= 100', rate: 100 },
      { chart: 'latency', label: 'p99 < 1.5s', ms: 1500 },
    ]);
  });
});
