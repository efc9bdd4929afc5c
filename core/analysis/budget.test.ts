import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { budgetReport, type BudgetTrial } from './budget';

function trials(rung: number, scale: number, n: number, status: string, gpuSeconds: number, gpus = 1): BudgetTrial[] {
  return Array.from({ length: n }, (_, i) => ({ rungIndex: rung, scale, variant: `v${i}`, seed: 0, status, gpuSeconds, wallSeconds: gpuSeconds / Math.max(gpus, 1), gpus }));
}

describe('budgetReport', () => {
  it('a ladder: spent, full grid from measured per-rung means, saved share', () => {
    const t = [...trials(0, 1e5, 12, 'succeeded', 10), ...trials(1, 1e6, 3, 'succeeded', 40), ...trials(1, 1e6, 9, 'skipped', 0)];
    const r = budgetReport(t, { variants: 12, seeds: 1, rungs: 2 });
    assert.equal(r.unit, 'gpu-seconds');
    assert.equal(r.spent, 120 + 120);
    assert.equal(r.fullGrid, 12 * 10 + 12 * 40);
    assert.equal(r.saved, 600 - 240);
    assert.equal(r.savedShare, 360 / 600);
    assert.deepEqual(r.perRung.map((p) => [p.trials, p.ran, p.meanCostPerTrial]), [[12, 12, 10], [12, 3, 40]]);
  });

  it('reused and planned trials cost nothing; failed ones count', () => {
    const t = [...trials(0, 1, 2, 'reused', 50), ...trials(0, 1, 2, 'failed', 5), ...trials(0, 1, 1, 'planned', 99)];
    const r = budgetReport(t, { variants: 5, seeds: 1, rungs: 1 });
    assert.equal(r.spent, 10);
    assert.equal(r.perRung[0]!.ran, 2);
    assert.equal(r.fullGrid, 5 * 5);
  });

  it('a rung where nothing ran: cost extrapolated from the growth of the previous rungs, or null', () => {
    const t = [...trials(0, 1e5, 4, 'succeeded', 10), ...trials(1, 1e6, 2, 'succeeded', 20), ...trials(2, 1e7, 2, 'skipped', 0)];
    const r = budgetReport(t, { variants: 4, seeds: 2, rungs: 3 });
    assert.equal(r.perRung[2]!.estimated, true);
    assert.equal(r.perRung[2]!.gridCostPerTrial, 40);
    assert.equal(r.fullGrid, 8 * (10 + 20 + 40));
    assert.match(r.notes.join('\n'), /rung 2: nothing ran; cost per trial extrapolated/);
    const early = budgetReport(trials(0, 1e5, 4, 'succeeded', 10), { variants: 4, seeds: 1, rungs: 3 });
    assert.equal(early.fullGrid, null);
    assert.equal(early.savedShare, null);
    assert.match(early.notes.join('\n'), /full grid's cost is unknown/);
  });

  it('CPU-only trials count wall seconds as one device', () => {
    const t = trials(0, 1, 3, 'succeeded', 0, 0).map((x) => ({ ...x, wallSeconds: 7 }));
    const r = budgetReport(t, { variants: 3, seeds: 1, rungs: 1 });
    assert.equal(r.unit, 'device-seconds');
    assert.equal(r.spent, 21);
    assert.equal(r.savedShare, 0);
  });
});
