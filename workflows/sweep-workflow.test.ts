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
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../workers/activities';
import { createSearchActivities } from '../workers/search-activities';
import { workflowBundle } from '../workers/worker';
import { BAD_CONFIG_STOP_AFTER, sweepWorkflow, sweepWorkflowId, type SweepWorkflowInput } from './index';

/**
 * Fails when one run of a sweep's workflow launched the same trial attempt twice (a second
 * runTrials on a job that one already waits for). A new run relaunching what it carries is by design.
 */
async function assertNoAttemptLaunchedTwice(temporal: TestStack['temporal'], sweepId: string): Promise<void> {
  for await (const run of temporal.workflow.list({ query: `WorkflowId = '${sweepWorkflowId(sweepId)}'` })) {
    const launched: string[] = [];
    for (const e of (await temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events ?? []) {
      const a = e.activityTaskScheduledEventAttributes;
      if (a?.activityType?.name !== 'runTrials') continue;
      const arg = JSON.parse(Buffer.from(a.input!.payloads![0]!.data!).toString()) as { attempts: Array<{ trialId: string; attempt: number }> };
      launched.push(...arg.attempts.map((t) => `${t.trialId}#${t.attempt}`));
    }
    assert.equal(new Set(launched).size, launched.length, `run ${run.runId} launched an attempt twice: ${launched.join(' ')}`);
  }
}

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
    await assertNoAttemptLaunchedTwice(stack.temporal, sweep.id);
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
    await assertNoAttemptLaunchedTwice(stack.temporal, sweep.id);
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

/**
 * ASHA (a spec's `search.asha`): variants move up a rung as their results arrive, not when the
 * rung is complete. Own stack and worker: the worker registers the search activities beside the
 * sweep's (as the worker process does).
 */
describe('sweepWorkflow with ASHA', { timeout: 300_000 }, () => {
  let stack: TestStack;
  let worker: Worker;
  let running: Promise<void>;
  let taskQueue: string;

  before(async () => {
    stack = await createTestStack('wf_asha');
    taskQueue = `${stack.taskQueue}-asha`;
    const connection = await NativeConnection.connect({ address: stack.temporalAddress });
    const quiet = { info() {}, warn() {} };
    worker = await Worker.create({
      connection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...createActivities({ db: stack.database.db, executor: stack.simulatedExecutor(), ingest: { url: stack.ingestUrl, secret: stack.ingestSecret }, log: quiet, pollIntervalMs: 50 }),
        ...createSearchActivities({ db: stack.database.db }),
      },
    });
    running = worker.run().finally(() => connection.close());
  });
  after(async () => {
    worker.shutdown();
    await running;
    await stack.close();
  });

  const start = async (specInput: unknown, codeVersion: string, extra: Partial<SweepWorkflowInput> = {}) => {
    const spec = parseSweepSpec(specInput);
    const sweep = await createSweep(stack.database.db, { spec, codeVersion, executor: 'simulated' });
    const handle = await stack.temporal.workflow.start(sweepWorkflow, {
      workflowId: sweepWorkflowId(sweep.id),
      taskQueue,
      args: [{ sweepId: sweep.id, asha: true, ...extra }],
    });
    return { sweep, handle };
  };
  /** `r<rung>v<variant>` of each trial attempt started, in the order they started. */
  const startOrder = async (sweepId: string) => {
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweepId));
    const label = new Map(rows.map((t) => [t.id, `r${t.rungIndex}v${t.variantIndex}`]));
    const started = await stack.database.db
      .select()
      .from(events)
      .where(and(eq(events.sweepId, sweepId), eq(events.type, 'trial.attempt.started')))
      .orderBy(events.id);
    return started.map((e) => label.get(e.trialId!)!);
  };
  const ranOn = (rows: Array<typeof trials.$inferSelect>, rung: number) =>
    rows.filter((t) => t.rungIndex === rung && t.status === 'succeeded').map((t) => t.variantIndex).sort((a, b) => a - b);

  // lr = 3e-4·10^d: the noise-free synthetic loss grows with |d|, so the rank of a variant is the
  // rank of its d. Best first: v2 (0), v6 (.25), v1 (.5), v8 (.75), v4 (1), v0 (1.5), v3 (2), v5 (2.5), v7 (3).
  const D = [1.5, 0.5, 0, 2, 1, 2.5, 0.25, 3, 0.75];
  const lrGrid = D.map((d) => Number((3e-4 * 10 ** d).toPrecision(6)));
  const ashaSpec = (name: string, concurrency: number) => ({
    name,
    kind: 'synthetic',
    base: { noise: 0 },
    grid: { lr: lrGrid },
    search: { asha: { resource: 'steps', minResource: 1, maxResource: 9, eta: 3, metric: 'loss' } },
    concurrency,
  });

  it('promotes a variant as soon as it is in the best 1/eta of what has finished, before the rung is complete', async () => {
    // One slot: trials run one at a time in a known order, so every ASHA decision is known.
    const { sweep, handle } = await start(ashaSpec('asha-order', 1), 'asha-order');
    assert.equal(await handle.result(), 'succeeded');
    // After v0..v2 finish, v2 is the best of 3 (floor(3/3) = 1) and goes up at once; v1 earns a
    // place with 6 finished, v6 with 7; then rung 1 has 3 finished and its best, v2, goes to the
    // top rung, all before v7 and v8 have even started on the bottom rung.
    assert.deepEqual(await startOrder(sweep.id), ['r0v0', 'r0v1', 'r0v2', 'r1v2', 'r0v3', 'r0v4', 'r0v5', 'r1v1', 'r0v6', 'r1v6', 'r2v2', 'r0v7', 'r0v8']);
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.deepEqual(ranOn(rows, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(ranOn(rows, 1), [1, 2, 6]);
    assert.deepEqual(ranOn(rows, 2), [2]);
    assert.ok(rows.filter((t) => t.status !== 'succeeded').every((t) => t.status === 'skipped' && t.attempts === 0), 'the rest skipped, never run');
    // The complete rungs' decisions are recorded as for any promotion rule.
    const promotions = await stack.database.db.select().from(analyses).where(and(eq(analyses.sweepId, sweep.id), eq(analyses.kind, 'promotion')));
    const promotedAt = (rung: number) =>
      (promotions.find((p) => p.rungIndex === rung)!.data as { decisions: PromotionDecision[] }).decisions.filter((d) => d.promoted).map((d) => d.variantIndex);
    assert.deepEqual(promotedAt(0), [1, 2, 6]);
    assert.deepEqual(promotedAt(1), [2]);
  });

  it('keeps its promotions across continue-as-new and runs every trial once', async () => {
    // Steps take time here, so trials promoted early are often still running when their rung's
    // turn comes and its pages list them again: they must not be launched a second time.
    const { sweep, handle } = await start({ ...ashaSpec('asha-can', 3), base: { noise: 0, step_sleep: 0.05 } }, 'asha-can', { trialsPerRun: 2 });
    assert.equal(await handle.result(), 'succeeded');
    const runs = [];
    for await (const wf of stack.temporal.workflow.list({ query: `WorkflowId = '${sweepWorkflowId(sweep.id)}'` })) runs.push(wf);
    assert.ok(runs.length >= 4, `continued as new (${runs.length} runs)`);
    await assertNoAttemptLaunchedTwice(stack.temporal, sweep.id);
    const order = await startOrder(sweep.id);
    assert.equal(new Set(order).size, order.length, `no trial started twice: ${order.join(' ')}`);
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.deepEqual(ranOn(rows, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    // Whatever ran early, the rungs' final best 1/eta always run above them.
    for (const v of [1, 2, 6]) assert.ok(ranOn(rows, 1).includes(v), `v${v} on rung 1: ${ranOn(rows, 1)}`);
    assert.ok(ranOn(rows, 2).includes(2), `v2 on rung 2: ${ranOn(rows, 2)}`);
    assert.ok(rows.every((t) => (t.status === 'succeeded' && t.attempts === 1) || (t.status === 'skipped' && t.attempts === 0)));
  });

  it('finds the full grid\'s best variant for a fraction of its steps (diagnostic: prints the figures)', async () => {
    // 27 random learning rates, ASHA on steps 1 → 27 (eta 3) against every sample at 27 steps.
    // Other code versions: no trial of one sweep is reused by the other.
    const search = { seed: 11, samples: 27, random: { lr: { type: 'loguniform', low: 1e-5, high: 1e-1 } } };
    const common = { kind: 'synthetic', base: { noise: 0.01 }, concurrency: 4 };
    const asha = await start({ ...common, name: 'asha-vs-grid', search: { ...search, asha: { resource: 'steps', minResource: 1, maxResource: 27, eta: 3, metric: 'loss' } } }, 'asha-vs-grid-a');
    const grid = await start({ ...common, name: 'grid-vs-asha', base: { ...common.base, steps: 27 }, search }, 'asha-vs-grid-g', { asha: false });
    assert.equal(await asha.handle.result(), 'succeeded');
    assert.equal(await grid.handle.result(), 'succeeded');
    const rowsOf = (id: string) => stack.database.db.select().from(trials).where(eq(trials.sweepId, id));
    const [ashaRows, gridRows] = await Promise.all([rowsOf(asha.sweep.id), rowsOf(grid.sweep.id)]);
    const steps = (rows: typeof ashaRows) => rows.filter((t) => t.status === 'succeeded').reduce((n, t) => n + (t.config as { steps: number }).steps, 0);
    const loss = (t: (typeof ashaRows)[number]) => (t.result as { metrics: { loss: number } }).metrics.loss;
    const best = (rows: typeof ashaRows) => rows.filter((t) => t.status === 'succeeded').sort((a, b) => loss(a) - loss(b))[0]!;
    const top = Math.max(...ashaRows.map((t) => t.rungIndex));
    const ashaBest = best(ashaRows.filter((t) => t.rungIndex === top));
    const gridBest = best(gridRows);
    const fraction = steps(ashaRows) / steps(gridRows);
    const gridRank = gridRows.sort((a, b) => loss(a) - loss(b)).findIndex((t) => t.variantName === ashaBest.variantName) + 1;
    console.log(
      `ASHA vs full grid (synthetic, 27 samples, steps 1→27, eta 3): ASHA best "${ashaBest.variantName}" ` +
        `(rank ${gridRank} of 27 in the grid), grid best "${gridBest.variantName}", same: ${ashaBest.variantName === gridBest.variantName}; ` +
        `steps ${steps(ashaRows)} / ${steps(gridRows)} = ${fraction.toFixed(3)} of the grid's device time`,
    );
    assert.equal(gridRows.length, 27);
    assert.ok(fraction < 0.5, `ASHA used ${fraction} of the grid's steps`);
    assert.ok(gridRank <= 3, `ASHA's best is among the grid's best 3 (rank ${gridRank})`);
  });
});
