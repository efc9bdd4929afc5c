/**
 * Workflow behaviour that does not need real job processes, on a real Temporal server with the
 * simulated executor: continue-as-new, the concurrency window, promotion between rungs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { analyses, events, trials } from '../core/db/schema';
import { createSweep } from '../core/sweeps/store';
import { parseSweepSpec } from '../core/spec/spec';
import { cancelSweep, waitForSweep } from '../core/sweeps/launch';
import type { PromotionDecision } from '../core/analysis/promotion';
import { createTestStack, type TestStack } from '../test/harness';
import { BAD_CONFIG_STOP_AFTER, sweepWorkflow, sweepWorkflowId, type SweepWorkflowInput } from './index';

describe('sweepWorkflow (simulated executor)', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createTestStack('wf');
    await stack.startWorker({ executor: stack.simulatedExecutor(), pollIntervalMs: 50 });
  });
  after(() => stack.close());

  const start = async (specInput: unknown, trialsPerRun?: number, extra: Partial<SweepWorkflowInput> = {}) => {
    const spec = parseSweepSpec(specInput);
    const sweep = await createSweep(stack.database.db, { spec, codeVersion: 'wf-test', executor: 'simulated' });
    const handle = await stack.temporal.workflow.start(sweepWorkflow, {
      workflowId: sweepWorkflowId(sweep.id),
      taskQueue: stack.taskQueue,
      args: [{ sweepId: sweep.id, trialsPerRun, ...extra }],
    });
    return { sweep, handle };
  };

  /** Activities scheduled over every run of a sweep's workflow, by activity type. */
  const activitiesOf = async (sweepId: string) => {
    const counts = new Map<string, number>();
    for await (const wf of stack.temporal.workflow.list({ query: `WorkflowId = '${sweepWorkflowId(sweepId)}'` })) {
      const history = await stack.temporal.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      for (const e of history.events ?? []) {
        const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
        if (type) counts.set(type, (counts.get(type) ?? 0) + 1);
      }
    }
    return counts;
  };

  it('pages a rung bigger than a page and batches short trials: every trial once, fewer activities than trials', async () => {
    // 60 zero-second trials, pages of 7, a window of 16 (batches of up to 4 once trials are known short).
    const { sweep, handle } = await start(
      { name: 'page-batch', kind: 'synthetic', base: { steps: 1 }, grid: { lr: [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3, 2e-3, 3e-3] }, seeds: 5, concurrency: 16 },
      undefined,
      { pageSize: 7 },
    );
    assert.equal(await handle.result(), 'succeeded');
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.equal(rows.length, 60);
    assert.ok(rows.every((t) => t.status === 'succeeded' && t.attempts === 1), rows.map((t) => `${t.id}:${t.status}/${t.attempts}`).join(' '));
    const starts = await stack.database.db.select().from(events).where(and(eq(events.sweepId, sweep.id), eq(events.type, 'trial.attempt.started')));
    assert.equal(starts.length, 60, 'one attempt started per trial');
    assert.equal(new Set(starts.map((e) => e.trialId)).size, 60);
    const activities = await activitiesOf(sweep.id);
    assert.ok((activities.get('listRunnableTrials') ?? 0) >= Math.ceil(60 / 7), `paged: ${activities.get('listRunnableTrials')} pages`);
    const runs = activities.get('runTrials') ?? 0;
    assert.ok(runs <= 40, `60 short trials ran in ${runs} runTrials activities (batched: at most 40)`);
  });


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

  it('stops a sweep whose first trials all fail with bad-config, without running the rest of the grid', async () => {
    // steps: 0 passes the submit-time type check (an int) but the job refuses it (exit 2).
    const { sweep, handle } = await start({
      name: 'bad-config-stop',
      kind: 'synthetic',
      base: { steps: 0 },
      grid: { lr: [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4] },
      concurrency: 1,
    });
    await assert.rejects(handle.result(), (err: Error) => /first 3 finished trials all failed with bad-config/.test(String((err.cause as Error)?.message)));
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    const failed = rows.filter((t) => t.status === 'failed');
    assert.equal(failed.length, BAD_CONFIG_STOP_AFTER);
    assert.ok(failed.every((t) => t.exitReason === 'bad-config'));
    const notRun = rows.filter((t) => t.status === 'cancelled');
    assert.equal(notRun.length, 8 - BAD_CONFIG_STOP_AFTER, 'the rest never ran');
    assert.ok(notRun.every((t) => t.attempts === 0 && /sweep stopped: its first 3 finished trials/.test(t.exitReason ?? '')), 'and say why');
    const stopped = await stack.database.db.select().from(events).where(and(eq(events.sweepId, sweep.id), eq(events.type, 'sweep.stopped')));
    assert.equal(stopped.length, 1);
    const ctx = { db: stack.database.db, temporal: stack.temporal };
    assert.equal(await waitForSweep(ctx, sweep.id), 'failed');
  });

  it('keeps running when a trial succeeded before the bad-config failures', async () => {
    const { sweep, handle } = await start({
      name: 'bad-config-later',
      kind: 'synthetic',
      grid: { steps: [2, 0, -1, -2, -3] },
      concurrency: 1,
    });
    assert.equal(await handle.result(), 'failed');
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.equal(rows.filter((t) => t.status === 'succeeded').length, 1);
    assert.equal(rows.filter((t) => t.status === 'failed' && t.exitReason === 'bad-config').length, 4, 'every trial ran');
  });
});

/**
 * Continue-as-new under promotion and under cancel: a run boundary must neither drop nor repeat
 * trials in flight, lose a rung's promotion, or leave a job running after the sweep is cancelled.
 * Own stack, so the test can ask its executor what it started.
 */
describe('sweepWorkflow continue-as-new with promotion and cancel', { timeout: 300_000 }, () => {
  let stack: TestStack;
  let executor: ReturnType<TestStack['simulatedExecutor']>;

  before(async () => {
    stack = await createTestStack('wf_can');
    executor = stack.simulatedExecutor();
    await stack.startWorker({ executor, pollIntervalMs: 50 });
  });
  after(() => stack.close());

  const start = async (specInput: unknown, trialsPerRun: number) => {
    const spec = parseSweepSpec(specInput);
    const sweep = await createSweep(stack.database.db, { spec, codeVersion: 'wf-can-test', executor: 'simulated' });
    const handle = await stack.temporal.workflow.start(sweepWorkflow, {
      workflowId: sweepWorkflowId(sweep.id),
      taskQueue: stack.taskQueue,
      args: [{ sweepId: sweep.id, trialsPerRun }],
    });
    return { sweep, handle };
  };
  const runsOf = async (sweepId: string) => {
    const runs = [];
    for await (const wf of stack.temporal.workflow.list({ query: `WorkflowId = '${sweepWorkflowId(sweepId)}'` })) runs.push(wf);
    return runs;
  };
  const startsOfTrial = async (trialId: string) =>
    (await stack.database.db.select().from(events).where(and(eq(events.trialId, trialId), eq(events.type, 'trial.attempt.started')))).length;
  const executionIdOf = (t: { execution: unknown }) => (t.execution as { executionId?: string } | null)?.executionId;

  it('continues as new without draining: a trial started before the boundary finishes after it, submitted once', async () => {
    // Variant 0 runs 2 s; the quick ones fill the other slot, so the run hands over while it runs.
    const { sweep, handle } = await start(
      // step_sleep 0.04: a config no other test of this stack uses, so no trial is reused from another sweep.
      { name: 'can-carry', kind: 'synthetic', grid: { steps: [50, 1, 2, 3, 4, 5] }, base: { step_sleep: 0.04 }, concurrency: 2 },
      2,
    );
    assert.equal(await handle.result(), 'succeeded');
    const runs = (await runsOf(sweep.id)).sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
    assert.ok(runs.length >= 2, `continued as new (${runs.length} runs)`);
    const firstClosed = runs[0]!.closeTime!.getTime();
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    const long = rows.find((t) => t.variantIndex === 0)!;
    const eventTime = async (type: string) =>
      (await stack.database.db.select().from(events).where(and(eq(events.trialId, long.id), eq(events.type, type)))).map((e) => e.time.getTime());
    const [started] = await eventTime('trial.attempt.started');
    const [finished] = await eventTime('trial.succeeded');
    assert.ok(started! < firstClosed && firstClosed < finished!, `started ${started}, first run closed ${firstClosed}, finished ${finished}`);
    assert.equal(await startsOfTrial(long.id), 1, 'one attempt started');
    assert.equal(long.attempts, 1);
    assert.equal(executor.startsOf(executionIdOf(long)!), 1, 'submitted to the executor once');
    assert.ok(rows.every((t) => t.status === 'succeeded'));
  });

  it('promotes right across run boundaries and runs every trial once', async () => {
    // 6 variants × 2 seeds on rung 0, top 2 variants (4 trials) on rung 1, at 3 children per run.
    // The best learning rates come last in plan order: a promotion decided on the part of the
    // rung that one run finished would pick the wrong variants.
    const { sweep, handle } = await start(
      {
        name: 'can-promote',
        kind: 'synthetic',
        base: { steps: 2, noise: 0 },
        grid: { lr: [3e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4] },
        seeds: 2,
        scale: { key: 'scale', rungs: [1e5, 1e6] },
        promotion: { metric: 'loss', mode: 'min', topK: 2 },
        concurrency: 2,
      },
      3,
    );
    assert.equal(await handle.result(), 'succeeded');
    const runs = await runsOf(sweep.id);
    assert.ok(runs.length >= 5, `16 trials at 3 per run continue as new at least 4 times, saw ${runs.length} runs`);
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    const lower = rows.filter((t) => t.rungIndex === 0);
    const upper = rows.filter((t) => t.rungIndex === 1);
    assert.equal(lower.length, 12);
    assert.ok(lower.every((t) => t.status === 'succeeded'), lower.map((t) => `${t.id}:${t.status}`).join(' '));
    const promotions = await stack.database.db
      .select()
      .from(analyses)
      .where(and(eq(analyses.sweepId, sweep.id), eq(analyses.kind, 'promotion')));
    assert.equal(promotions.length, 1, 'one promotion decision for the one rung boundary');
    const decisions = (promotions[0]!.data as { decisions: PromotionDecision[] }).decisions;
    const promoted = decisions.filter((d) => d.promoted).map((d) => d.variantIndex).sort();
    // Noise-free synthetic loss is lowest at lr 3e-4 (variant 5), then 1e-3 (variant 4).
    assert.deepEqual(promoted, [4, 5]);
    for (const t of upper) assert.equal(t.status, promoted.includes(t.variantIndex) ? 'succeeded' : 'skipped', `${t.id}`);
    assert.equal(upper.filter((t) => t.status === 'succeeded').length, 4);
    for (const t of rows.filter((r) => r.status === 'succeeded')) {
      assert.equal(t.attempts, 1, `${t.id} attempts`);
      assert.equal(await startsOfTrial(t.id), 1, `${t.id} attempt starts`);
      const id = executionIdOf(t);
      assert.ok(id, `${t.id} has an execution`);
      assert.equal(executor.startsOf(id), 1, `${t.id} was started once by the executor`);
    }
    for (const t of upper.filter((r) => r.status === 'skipped')) assert.equal(await startsOfTrial(t.id), 0, `${t.id} never ran`);
  });

  it('cancels a sweep after it continued as new: every trial cancelled or succeeded, nothing left running', async () => {
    const { sweep, handle } = await start(
      {
        name: 'can-cancel',
        kind: 'synthetic',
        // 3 quick variants finish first; the long ones keep the window full until the cancel.
        grid: { steps: [2, 3, 4, 3000, 3001, 3002, 3003, 3004, 3005, 3006] },
        base: { step_sleep: 0.05 },
        concurrency: 3,
      },
      2,
    );
    const ctx = { db: stack.database.db, temporal: stack.temporal };
    // Wait until the sweep has continued as new AND a run holds long trials in flight.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
      // Long trials only: quick ones carried over the run boundary may still show as running.
      const running = rows.filter((t) => t.status === 'running' && executionIdOf(t) && (t.config as { steps: number }).steps >= 3000).length;
      if ((await runsOf(sweep.id)).length >= 2 && running >= 2) break;
      assert.ok(Date.now() < deadline, 'the sweep continued as new with trials running');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await cancelSweep(ctx, sweep.id), 'cancelling');
    await assert.rejects(handle.result());
    assert.equal(await waitForSweep(ctx, sweep.id), 'cancelled');
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.ok(
      rows.every((t) => t.status === 'cancelled' || t.status === 'succeeded'),
      rows.map((t) => `${t.id}:${t.status}`).join(' '),
    );
    assert.ok(rows.some((t) => t.status === 'cancelled' && executionIdOf(t)), 'a running trial was cancelled');
    for (const t of rows) {
      const id = executionIdOf(t);
      if (id) assert.equal(executor.isLive(id), false, `${t.id}'s job is not running`);
      if (t.status === 'succeeded') assert.equal(await startsOfTrial(t.id), 1, `${t.id} ran once`);
    }
    // No trial workflow of this sweep is left open (none orphaned by the run boundary).
    const open = [];
    for await (const wf of stack.temporal.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
      if (wf.workflowId.includes(sweep.id)) open.push(wf.workflowId);
    }
    assert.deepEqual(open, []);
  });
});
