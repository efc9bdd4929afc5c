/**
 * The orchestration core end to end: spec → Postgres → Temporal → local executor (real Python
 * job processes) → ingest HTTP → Postgres.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { events, trials } from '../core/db/schema';
import { cancelSweep, launchSweep, type LaunchContext } from '../core/sweeps/launch';
import { leaderboard, requireSweep } from '../core/sweeps/store';
import type { SweepSpecInput } from '../core/spec/spec';
import { processGroupAlive } from '../workers/executors/local';
import type { SimulatedExecutor } from '../workers/executors/simulated';
import type { LadderWorker } from '../workers/worker';
import { createTestStack, eventually, sleep, successfulExecutions, waitForSweepWithin as waitForSweep, type TestStack } from './harness';

function syntheticSpec(name: string, overrides: Partial<SweepSpecInput> = {}): SweepSpecInput {
  return {
    name,
    kind: 'synthetic',
    base: { steps: 12, checkpoint_every: 4 },
    concurrency: 4,
    retries: 2,
    timeoutSeconds: 120,
    ...overrides,
  };
}

async function trialRows(stack: TestStack, sweepId: string) {
  return stack.database.db.select().from(trials).where(eq(trials.sweepId, sweepId)).orderBy(trials.id);
}

async function metricCounts(stack: TestStack, sweepId: string) {
  const res = await stack.database.pool.query<{ trial_id: string; name: string; n: number; distinct_steps: number }>(
    `select m.trial_id, m.name, count(*)::int as n, count(distinct m.step)::int as distinct_steps
     from metric_points m join trials t on t.id = m.trial_id where t.sweep_id = $1
     group by m.trial_id, m.name order by 1, 2`,
    [sweepId],
  );
  return res.rows;
}

describe('sweeps end to end', { concurrency: false, timeout: 600_000 }, () => {
  let stack: TestStack;
  let ctx: LaunchContext;
  let worker: LadderWorker | undefined;

  before(async () => {
    stack = await createTestStack('sweep');
    ctx = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'test-code' };
  });
  after(async () => {
    await worker?.shutdown();
    await stack.close();
  });

  it('runs a 20-trial sweep over 2 rungs, storing every metric point exactly once', async () => {
    worker = await stack.startWorker();
    const spec = syntheticSpec('two-rungs', {
      grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2] },
      seeds: 2,
      scale: { key: 'scale', rungs: [1e5, 1e6] },
    });
    const sweep = await launchSweep(ctx, { spec });
    assert.equal(sweep.trials, 20);
    assert.equal(await waitForSweep(ctx, sweep.id), 'succeeded');

    const rows = await trialRows(stack, sweep.id);
    assert.equal(rows.length, 20);
    for (const t of rows) {
      assert.equal(t.status, 'succeeded', `${t.id}: ${t.exitReason}`);
      assert.equal(t.attempts, 1);
      assert.ok(t.result, `${t.id} has a result`);
      assert.ok(t.wallSeconds > 0);
    }
    const counts = await metricCounts(stack, sweep.id);
    const loss = counts.filter((c) => c.name === 'loss');
    assert.equal(loss.length, 20, 'every trial pushed loss points');
    for (const c of counts) assert.equal(c.n, c.distinct_steps, `${c.trial_id}/${c.name} has no duplicate steps`);
    for (const c of loss) assert.equal(c.n, 12, `${c.trial_id} pushed one loss point per step`);

    // The leaderboard is variants × rungs over 2 seeds, and larger scale means lower loss.
    const board = await leaderboard(stack.database.db, sweep.id, 'loss');
    assert.equal(board.length, 10);
    for (const row of board) assert.equal(row.count, 2);
    const mean = (rung: number) => board.filter((r) => r.rungIndex === rung).reduce((s, r) => s + r.mean!, 0) / 5;
    assert.ok(mean(1) < mean(0), `loss falls with scale (${mean(0)} → ${mean(1)})`);
  });

  it('reuses trials whose identity already succeeded, unless asked to rerun', async () => {
    const spec = syntheticSpec('reuse', { grid: { lr: [3e-4, 1e-3] }, seeds: 1 });
    const first = await launchSweep(ctx, { spec });
    assert.equal(first.reused, 0);
    assert.equal(await waitForSweep(ctx, first.id), 'succeeded');

    const second = await launchSweep(ctx, { spec });
    assert.equal(second.reused, 2);
    assert.equal(await waitForSweep(ctx, second.id), 'succeeded');
    const reused = await trialRows(stack, second.id);
    assert.ok(reused.every((t) => t.reusedFrom?.startsWith(first.id) && t.attempts === 0));

    const third = await launchSweep(ctx, { spec, rerun: true });
    assert.equal(third.reused, 0);
    assert.equal(await waitForSweep(ctx, third.id), 'succeeded');
    assert.ok((await trialRows(stack, third.id)).every((t) => t.attempts === 1 && !t.reusedFrom));
  });

  it('retries a job that exits 1 once, resuming without duplicating metrics', async () => {
    const spec = syntheticSpec('retry-once', { base: { steps: 12, checkpoint_every: 2, fail_attempts: 1 } });
    const sweep = await launchSweep(ctx, { spec });
    assert.equal(await waitForSweep(ctx, sweep.id), 'succeeded');
    const [trial] = await trialRows(stack, sweep.id);
    assert.equal(trial!.status, 'succeeded');
    assert.equal(trial!.attempts, 2);
    const loss = (await metricCounts(stack, sweep.id)).find((c) => c.name === 'loss')!;
    assert.equal(loss.n, 12);
    const attemptEvents = await stack.database.db
      .select()
      .from(events)
      .where(sql`${events.trialId} = ${trial!.id} and ${events.type} = 'trial.attempt.failed'`);
    assert.equal(attemptEvents.length, 1);
  });

  it('does not retry a job that exits 2 (bad config)', async () => {
    // Keys and types are refused by the spec already; a value out of range only the job can refuse.
    const spec = syntheticSpec('bad-config', { base: { steps: 5, noise: -1 } });
    const sweep = await launchSweep(ctx, { spec });
    assert.equal(await waitForSweep(ctx, sweep.id), 'failed');
    const [trial] = await trialRows(stack, sweep.id);
    assert.equal(trial!.status, 'failed');
    assert.equal(trial!.attempts, 1);
    assert.equal(trial!.exitReason, 'bad-config');
  });

  it('cancels a sweep midway: no job process left, trials marked cancelled', async () => {
    const spec = syntheticSpec('cancel-me', {
      base: { steps: 400, step_sleep: 0.05 },
      grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3] },
      concurrency: 2,
    });
    const sweep = await launchSweep(ctx, { spec });
    const running = await eventually('two running jobs with metrics', async () => {
      const rows = (await trialRows(stack, sweep.id)).filter((t) => t.status === 'running' && t.execution);
      if (rows.length < 2) return undefined;
      const counts = await metricCounts(stack, sweep.id);
      return counts.length >= 2 ? rows : undefined;
    });
    assert.equal(await cancelSweep(ctx, sweep.id), 'cancelling');
    assert.equal(await waitForSweep(ctx, sweep.id), 'cancelled');

    const rows = await trialRows(stack, sweep.id);
    assert.ok(rows.every((t) => t.status === 'cancelled'), rows.map((t) => `${t.id}:${t.status}`).join(' '));
    for (const t of running) {
      const pid = (t.execution as { handle: { pid: number } }).handle.pid;
      assert.equal(processGroupAlive(pid), false, `job process group ${pid} of ${t.id} is gone`);
    }
    assert.equal((await requireSweep(stack.database.db, sweep.id)).status, 'cancelled');
  });

  it('survives a SIGKILLed worker: the sweep completes, no trial runs twice, no duplicate metrics', async () => {
    await worker?.shutdown();
    worker = undefined;
    const spec = syntheticSpec('kill-worker', {
      base: { steps: 30, step_sleep: 0.1, checkpoint_every: 5 },
      grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3] },
      concurrency: 4,
    });
    const first = stack.spawnWorkerProcess();
    const sweep = await launchSweep(ctx, { spec });
    await eventually(
      'jobs running under the first worker',
      async () => (await trialRows(stack, sweep.id)).filter((t) => t.status === 'running' && t.execution).length >= 2,
    );
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    await sleep(500);
    stack.spawnWorkerProcess();
    assert.equal(await waitForSweep(ctx, sweep.id), 'succeeded');

    const rows = await trialRows(stack, sweep.id);
    for (const t of rows) {
      assert.equal(t.status, 'succeeded');
      assert.equal(successfulExecutions(stack.runRoot, t.id), 1, `${t.id} ran to completion exactly once`);
    }
    const loss = (await metricCounts(stack, sweep.id)).filter((c) => c.name === 'loss');
    assert.equal(loss.length, 4);
    for (const c of loss) assert.equal(c.n, 30);
  });
});

/**
 * Failure paths the local executor cannot stage cheaply, on the simulated executor: a trial that
 * outlives its per-attempt timeout, retries running out with their back-off, a sweep whose
 * trials partly fail, a job that exits 0 without a result.
 */
describe('sweep failure paths (simulated executor)', { concurrency: false, timeout: 300_000 }, () => {
  let stack: TestStack;
  let ctx: LaunchContext;
  let executor: SimulatedExecutor;
  // The config marks the trials whose job "forgets" its result: the sweep id is only known after
  // launchSweep has already started them.
  const NO_RESULT_NOISE = 0.0123;

  before(async () => {
    stack = await createTestStack('sweep_sim');
    executor = stack.simulatedExecutor({ omitResult: (l) => l.config.noise === NO_RESULT_NOISE });
    await stack.startWorker({ executor, pollIntervalMs: 50 });
    ctx = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'test-sim', executor: 'simulated' };
  });
  after(async () => {
    await stack?.close();
  });

  const attemptStarts = async (trialId: string) =>
    (
      await stack.database.db
        .select({ time: events.time })
        .from(events)
        .where(sql`${events.trialId} = ${trialId} and ${events.type} = 'trial.attempt.started'`)
        .orderBy(events.id)
    ).map((e) => e.time.getTime());

  it('a per-attempt timeout stops the job; retries back off, run out, and fail the trial', async () => {
    const sweep = await launchSweep(ctx, {
      // 1000 simulated seconds per attempt against a 1 s timeout: every attempt times out.
      spec: syntheticSpec('timeouts', { base: { steps: 1000, step_sleep: 1 }, retries: 2, timeoutSeconds: 1 }),
    });
    assert.equal(await waitForSweep(ctx, sweep.id), 'failed');
    const [trial] = await trialRows(stack, sweep.id);
    assert.equal(trial!.status, 'failed');
    assert.equal(trial!.attempts, 3, 'retries: 2 means three attempts');
    assert.match(trial!.exitReason ?? '', /^timeout after 1s/);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const ref = { executor: 'simulated', executionId: `${trial!.id}-a${attempt}`, handle: {} };
      assert.equal((await executor.status(ref)).state, 'cancelled', `attempt ${attempt} was stopped at its timeout`);
      assert.equal(executor.isLive(ref.executionId), false);
    }
    // Attempt n+1 starts no sooner than the 1 s timeout plus the back-off of 2^(n-1) s.
    const starts = await attemptStarts(trial!.id);
    assert.equal(starts.length, 3);
    assert.ok(starts[1]! - starts[0]! >= 2_000 - 50, `gap 1→2: ${starts[1]! - starts[0]!} ms`);
    assert.ok(starts[2]! - starts[1]! >= 3_000 - 50, `gap 2→3: ${starts[2]! - starts[1]!} ms`);
  });

  it('some trials fail, the others succeed: the sweep is failed and only succeeded variants are promoted', async () => {
    const sweep = await launchSweep(ctx, {
      spec: syntheticSpec('partial', {
        base: { steps: 5 },
        // fail_attempts 9 > attempts: those variants fail every attempt (exit 1, retryable).
        grid: { lr: [3e-4, 1e-3], fail_attempts: [0, 9] },
        scale: { key: 'scale', rungs: [1e5, 1e6] },
        promotion: { metric: 'loss', mode: 'min', topK: 3 },
        retries: 1,
      }),
    });
    assert.equal(await waitForSweep(ctx, sweep.id), 'failed');
    const rows = await trialRows(stack, sweep.id);
    const failing = (t: (typeof rows)[number]) => (t.config as { fail_attempts: number }).fail_attempts === 9;
    const summary = rows.map((t) => `${t.rungIndex}/${t.variantName}:${t.status}`).join(' ');
    for (const t of rows.filter((t) => t.rungIndex === 0)) {
      if (failing(t)) {
        assert.deepEqual([t.status, t.attempts, t.exitReason], ['failed', 2, 'exit 1'], summary);
        assert.equal(t.result, null);
      } else {
        assert.deepEqual([t.status, t.attempts], ['succeeded', 1], summary);
      }
    }
    // topK 3 of 4 variants, but only 2 have a result: the failed ones are not promoted.
    for (const t of rows.filter((t) => t.rungIndex === 1)) {
      assert.deepEqual([t.status, t.exitReason], failing(t) ? ['skipped', 'not promoted'] : ['succeeded', null], summary);
    }
  });

  it('a job that exits 0 without a result is a failed attempt, retried, then a failed trial', async () => {
    const spec = syntheticSpec('no-result', { base: { steps: 5, noise: NO_RESULT_NOISE }, retries: 1 });
    const sweep = await launchSweep(ctx, { spec });
    assert.equal(await waitForSweep(ctx, sweep.id), 'failed');
    const [trial] = await trialRows(stack, sweep.id);
    assert.deepEqual([trial!.status, trial!.attempts, trial!.exitReason], ['failed', 2, 'exited 0 without a final result']);
    assert.equal(trial!.result, null);
    // Its metric points did arrive: only the result was missing.
    const loss = (await metricCounts(stack, sweep.id)).find((c) => c.name === 'loss');
    assert.equal(loss?.n, 5);
  });
});
