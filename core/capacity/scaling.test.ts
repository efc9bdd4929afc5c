/** fitCapacityScaling on knees drawn from a known law: the replicas answer and its interval. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitCapacityScaling, type ScalingSample } from './scaling';

// 1/capacity(N) = a·N^(−b) + c with a = 1/100 s, b = 1, c = 1/2000 s: 100 ops/s per replica, a ceiling of 2000.
const truth = (n: number) => 1 / (0.01 / n + 0.0005);

describe('capacity against replicas', () => {
  test('recovers the replicas for a rate from noisy knees, with an interval around them', () => {
    const noise = [1.03, 0.97, 1.01, 0.99, 1.02, 0.98];
    const samples: ScalingSample[] = [1, 2, 4, 8].flatMap((replicas, i) => [0, 1].map((repeat) => ({ replicas, repeat, knee: truth(replicas) * noise[(i * 2 + repeat) % noise.length]!, kneeIsLowerBound: false })));
    const a = fitCapacityScaling(samples, 1000);
    assert.equal(a.fit.ok, true, JSON.stringify(a.fit));
    // Exact answer: 0.01/N + 0.0005 ≤ 0.001 ⇔ N ≥ 20.
    assert.ok(a.replicas! >= 17 && a.replicas! <= 24, `replicas ${a.replicas}`);
    const [lo, hi] = a.replicasInterval;
    assert.ok(lo !== null && lo <= a.replicas!, `interval ${lo}–${hi}`);
    assert.ok(hi === null || hi >= a.replicas!, `interval ${lo}–${hi}`);
    if (a.fit.ok) assert.ok(a.fit.saturatesAt! > 1500 && a.fit.saturatesAt! < 2600, `ceiling ${a.fit.saturatesAt}`);
  });

  test('a rate above the ceiling has no answer, said in a note; too few replica counts are refused', () => {
    const samples: ScalingSample[] = [1, 2, 4, 8].map((replicas) => ({ replicas, repeat: 0, knee: truth(replicas), kneeIsLowerBound: false }));
    const a = fitCapacityScaling(samples, 5000);
    assert.equal(a.replicas, null);
    assert.match(a.notes.join(), /saturates at/);
    const b = fitCapacityScaling([{ replicas: 1, repeat: 0, knee: 100, kneeIsLowerBound: false }, { replicas: 2, repeat: 0, knee: null, kneeIsLowerBound: false }], 500);
    assert.deepEqual([b.fit.ok, b.replicas], [false, null]);
    assert.match(b.notes.join(), /without a knee left out/);
  });
});
