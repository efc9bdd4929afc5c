/**
 * Scaling consistency end to end, on the synthetic job kind (final loss = a power law in the scale
 * plus variant effects and noise) with real job processes: a promotion ladder finds the full
 * grid's winner for a fraction of its cost, and its backtest extrapolation is honest.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { trials } from '../core/db/schema';
import { launchSweep, waitForSweep, type LaunchContext } from '../core/sweeps/launch';
import { refreshSweepAnalysis, storedAnalysis } from '../core/sweeps/analysis';
import { leaderboard } from '../core/sweeps/store';
import type { SweepSpecInput } from '../core/spec/spec';
import { createTestStack, type TestStack } from './harness';

const SCALES = [1e5, 1e6, 1e7, 1e8];

function ladderSpec(name: string, promotion?: SweepSpecInput['promotion']): SweepSpecInput {
  return {
    name,
    kind: 'synthetic',
    base: { steps: 20, noise: 0.002, checkpoint_every: 10 },
    grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3], width: [128, 256, 512] },
    seeds: 3,
    scale: {
      key: 'scale',
      // Bigger models are slower per step: the cost of a trial grows up the ladder, as on GPUs.
      // 0.4, 0.8, 1.6, 3.2 s of steps per trial: the growth must stand clear of the fixed part of a
      // trial (process start, POSTs; 0.4–0.75 s at load 8, more at rung 0, which starts cold).
      rungs: SCALES.map((value, i) => ({ name: `n${i}`, value, config: { step_sleep: 0.02 * 2 ** i } })),
    },
    ...(promotion ? { promotion } : {}),
    analysis: { metric: 'loss', mode: 'min' },
    concurrency: 4,
    timeoutSeconds: 120,
  };
}

describe('scaling ladder (synthetic, local executor)', () => {
  let stack: TestStack;
  let ctx: LaunchContext;

  before(async () => {
    stack = await createTestStack('scaling');
    await stack.startWorker();
    ctx = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'scaling-test' };
  });
  after(() => stack.close());

  it('top-3 promotion finds the full grid winner for less than its share of trials in cost, and backtests within its interval', async (t) => {
    const ladder = await launchSweep(ctx, { spec: ladderSpec('ladder', { metric: 'loss', mode: 'min', topK: 3 }) });
    assert.equal(ladder.trials, 12 * 3 * 4);
    assert.equal(await waitForSweep(ctx, ladder.id), 'succeeded');
    const ladderRows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, ladder.id));
    assert.equal(ladderRows.filter((t) => t.status === 'succeeded').length, 36 + 9 * 3);
    assert.equal(ladderRows.filter((t) => t.status === 'skipped').length, 9 * 3 * 3);

    // The full grid reuses the ladder's 63 trials (same identities) and runs the other 81.
    const grid = await launchSweep(ctx, { spec: ladderSpec('grid') });
    assert.equal(grid.reused, 63);
    assert.equal(await waitForSweep(ctx, grid.id), 'succeeded');

    const best = async (sweepId: string) => {
      const top = (await leaderboard(stack.database.db, sweepId, 'loss')).filter((r) => r.rungIndex === SCALES.length - 1);
      return top.reduce((a, b) => (a.mean! <= b.mean! ? a : b)).variantName;
    };
    assert.equal(await best(ladder.id), await best(grid.id));

    const analysis = await refreshSweepAnalysis(stack.database.db, ladder.id);
    assert.deepEqual(analysis.rungs, SCALES);
    assert.ok(analysis.budget, 'the ladder has a budget report');
    const budget = analysis.budget!;
    assert.ok(budget.fullGrid !== null && budget.spent > 0);
    const share = budget.spent / budget.fullGrid!;
    // Costs are measured wall seconds: a trial's fixed part (process start, the result POSTs)
    // grows with the machine's load while its steps do not. A fixed bound (this said 40%) held
    // only on a quiet machine: with every trial's fixed part at ~2 s (load ~10) the share is
    // ~41%, and it tends to the ladder's share of trials (63 / 144) as the fixed part dominates.
    // What promotion guarantees is below that: the trials it skips are the expensive ones. Only
    // the largest rung is compared with rung 0 trial by trial (3.2 s against 0.4 s of steps): at
    // 0.01 s per step, rung 1 (0.2 s more than rung 0) once measured cheaper than rung 0 (0.80 s
    // against 0.94 s at load 8), because rung 0's fixed part was larger, not because of Ladder.
    const means = budget.perRung.map((r) => r.meanCostPerTrial!);
    assert.ok(means[means.length - 1]! > means[0]!, `the largest rung costs more per trial than rung 0: ${means.join(', ')}`);
    const trialShare = ladderRows.filter((t) => t.status === 'succeeded').length / (12 * 3 * SCALES.length);
    t.diagnostic(`ladder spent ${(share * 100).toFixed(1)}% of the full grid's device-seconds (${(trialShare * 100).toFixed(1)}% of its trials); seconds per trial by rung: ${means.map((m) => m.toFixed(2)).join(', ')}`);
    assert.ok(share < trialShare, `ladder spent ${(share * 100).toFixed(1)}% of the full grid's device-seconds, not less than its ${(trialShare * 100).toFixed(1)}% of trials`);

    const promoted = [...new Set(ladderRows.filter((t) => t.rungIndex === 3 && t.status === 'succeeded').map((t) => t.variantName))];
    assert.equal(promoted.length, 3);
    for (const variant of promoted) {
      const ex = analysis.extrapolations[variant];
      assert.ok(ex && ex.ok, `${variant} extrapolates: ${JSON.stringify(ex)}`);
      assert.ok(ex.backtest, `${variant} has a leave-the-largest-out backtest`);
      assert.ok(ex.backtest.withinInterval, `${variant}: backtest ${JSON.stringify(ex.backtest)}`);
    }
    // Stored for GraphQL and the CLI.
    assert.deepEqual((await storedAnalysis(stack.database.db, ladder.id) as { rungs: number[] }).rungs, SCALES);
  });
});
