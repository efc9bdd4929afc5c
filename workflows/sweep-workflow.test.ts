/**
 * Workflow behaviour that does not need real job processes, on a real Temporal server with the
 * simulated executor: continue-as-new, the concurrency window, promotion between rungs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { analyses, trials } from '../core/db/schema';
import { createSweep } from '../core/sweeps/store';
import { parseSweepSpec } from '../core/spec/spec';
import { waitForSweep } from '../core/sweeps/launch';
import type { PromotionDecision } from '../core/analysis/promotion';
import { createTestStack, type TestStack } from '../test/harness';
import { sweepWorkflow, sweepWorkflowId } from './index';

describe('sweepWorkflow (simulated executor)', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createTestStack('wf');
    await stack.startWorker({ executor: stack.simulatedExecutor(), pollIntervalMs: 50 });
  });
  after(() => stack.close());

  const start = async (specInput: unknown, childrenPerRun?: number) => {
    const spec = parseSweepSpec(specInput);
    const sweep = await createSweep(stack.database.db, { spec, codeVersion: 'wf-test', executor: 'simulated' });
    const handle = await stack.temporal.workflow.start(sweepWorkflow, {
      workflowId: sweepWorkflowId(sweep.id),
      taskQueue: stack.taskQueue,
      args: [{ sweepId: sweep.id, childrenPerRun }],
    });
    return { sweep, handle };
  };

  it('continues as new when a run has started its share of children, and still finishes every trial', async () => {
    const { sweep, handle } = await start(
      { name: 'can', kind: 'synthetic', base: { steps: 3 }, grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2] }, seeds: 2, concurrency: 3 },
      4,
    );
    assert.equal(await handle.result(), 'succeeded');
    const ctx = { db: stack.database.db, temporal: stack.temporal };
    assert.equal(await waitForSweep(ctx, sweep.id), 'succeeded');
    // 10 trials at 4 children per run: the first run continued as new at least twice.
    const runs = [];
    for await (const wf of stack.temporal.workflow.list({ query: `WorkflowId = '${sweepWorkflowId(sweep.id)}'` })) runs.push(wf);
    assert.ok(runs.length >= 3, `expected ≥ 3 runs of the sweep workflow, saw ${runs.length}`);
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.equal(rows.length, 10);
    assert.ok(rows.every((t) => t.status === 'succeeded' && t.attempts === 1));
  });

  it('promotes the top variants to the next rung and skips the rest, recording why', async () => {
    const { sweep, handle } = await start({
      name: 'promote',
      kind: 'synthetic',
      base: { steps: 2, noise: 0 },
      grid: { lr: [3e-4, 3e-3, 3e-2, 3e-1] },
      scale: { key: 'scale', rungs: [1e5, 1e6] },
      promotion: { metric: 'loss', mode: 'min', topK: 2 },
      concurrency: 8,
    });
    assert.equal(await handle.result(), 'succeeded');
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    const upper = rows.filter((t) => t.rungIndex === 1);
    assert.equal(upper.filter((t) => t.status === 'succeeded').length, 2);
    assert.equal(upper.filter((t) => t.status === 'skipped').length, 2);
    const [promotion] = await stack.database.db
      .select()
      .from(analyses)
      .where(and(eq(analyses.sweepId, sweep.id), eq(analyses.kind, 'promotion')));
    const decisions = (promotion!.data as { decisions: PromotionDecision[] }).decisions;
    const promoted = decisions.filter((d) => d.promoted).map((d) => d.variantIndex);
    // lr closest to 3e-4 has the lowest synthetic loss, so variants 0 and 1 must win.
    assert.deepEqual(promoted, [0, 1]);
    for (const t of upper) assert.equal(t.status === 'succeeded', promoted.includes(t.variantIndex));
  });

  it('promotes by prediction-interval overlap, with the interval in each reason', async () => {
    const { sweep, handle } = await start({
      name: 'overlap',
      kind: 'synthetic',
      base: { steps: 2 },
      grid: { lr: [3e-4, 3.1e-4, 3e-2, 3e-1] },
      seeds: 3,
      scale: { key: 'scale', rungs: [1e5, 1e6, 1e7] },
      promotion: { metric: 'loss', mode: 'min', intervalOverlap: true },
      concurrency: 8,
    });
    assert.equal(await handle.result(), 'succeeded');
    const [first] = await stack.database.db
      .select()
      .from(analyses)
      .where(and(eq(analyses.sweepId, sweep.id), eq(analyses.kind, 'promotion'), eq(analyses.rungIndex, 0)));
    const decisions = (first!.data as { decisions: PromotionDecision[] }).decisions;
    const byLr = (i: number) => decisions.find((d) => d.variantIndex === i)!;
    // The two near-identical learning rates cannot be told apart; the far-off ones are clearly worse.
    assert.equal(byLr(0).promoted, true, byLr(0).reason);
    assert.equal(byLr(3).promoted, false, byLr(3).reason);
    for (const d of decisions) {
      assert.ok(d.interval && d.interval[0] <= d.interval[1], `${d.variantName} has an interval`);
      assert.match(d.reason, /interval/);
    }
    const upper = await stack.database.db.select().from(trials).where(and(eq(trials.sweepId, sweep.id), eq(trials.rungIndex, 1)));
    for (const t of upper) assert.equal(t.status === 'succeeded', byLr(t.variantIndex).promoted, `${t.id} ${t.status}`);
  });

  it('never runs more trials at once than the spec allows', async () => {
    const { sweep, handle } = await start({
      name: 'window',
      kind: 'synthetic',
      base: { steps: 4, step_sleep: 0.1 },
      grid: { lr: [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4] },
      concurrency: 3,
    });
    let peak = 0;
    const done = handle.result();
    let finished = false;
    void done.finally(() => (finished = true));
    while (!finished) {
      const res = await stack.database.pool.query<{ n: number }>(
        `select count(*)::int as n from trials where sweep_id = $1 and status = 'running'`,
        [sweep.id],
      );
      peak = Math.max(peak, res.rows[0]!.n);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await done, 'succeeded');
    assert.ok(peak <= 3, `peak running ${peak} > concurrency 3`);
    assert.ok(peak >= 2, `the window was used (peak ${peak})`);
  });
});
