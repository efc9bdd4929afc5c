/**
 * Schedules on a real Temporal dev server and Postgres, with the simulated executor: create,
 * trigger, two runs compared, an injected regression found and posted to a loopback webhook once
 * (after one refused attempt), pause, resume, a short interval firing on its own, delete.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ScheduleNotFoundError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { eq, sql } from 'drizzle-orm';
import { schedules, sweeps } from '../core/db/schema';
import { silentLogger } from '../core/log';
import { createSchedule, deleteSchedule, nextRunTimes, pauseSchedule, resumeSchedule, temporalScheduleId, triggerSchedule, type ScheduleContext } from '../core/schedules/service';
import { beginScheduledRun, findingsOf, getSchedule, scheduleRunsOf, type ScheduleRunRow } from '../core/schedules/store';
import { createTestStack, eventually, type TestStack } from '../test/harness';
import { createActivities } from '../workers/activities';
import { createScheduleActivities } from '../workers/schedule-activities';
import { workflowBundle } from '../workers/worker';

/** A loopback webhook receiver: answers 503 to the first `failFirst` posts, then 200. */
async function receiver(failFirst: number) {
  const bodies: unknown[] = [];
  let requests = 0;
  const srv = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      requests++;
      if (requests <= failFirst) {
        res.statusCode = 503;
        res.end('busy');
        return;
      }
      bodies.push(JSON.parse(text));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`;
  return { url, bodies, requests: () => requests, close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))) };
}

/** Temporal schedule ids are namespace-wide: names unique to this run keep parallel or leftover runs apart. */
const SFX = randomBytes(3).toString('hex');
const NIGHTLY = `nightly-${SFX}`;
const FAST = `fast-${SFX}`;

const spec = (name: string, webhook: string) => ({
  name,
  kind: 'synthetic',
  base: { steps: 8, checkpoint_every: 4 },
  variants: [
    { name: 'small-lr', config: { lr: 1e-4 } },
    { name: 'big-lr', config: { lr: 1e-3 } },
  ],
  seeds: 2,
  concurrency: 4,
  retries: 0,
  timeoutSeconds: 60,
  schedule: {
    metrics: [{ metric: 'loss', direction: 'min', tolerance: 0.05 }],
    baselineRuns: 2,
    webhook,
  },
});

describe('scheduled sweeps', { timeout: 240_000 }, () => {
  let stack: TestStack;
  let worker: Worker;
  let running: Promise<void>;
  let connection: NativeConnection;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let ctx: ScheduleContext;

  before(async () => {
    stack = await createTestStack('sched_wf');
    hook = await receiver(1);
    connection = await NativeConnection.connect({ address: stack.temporalAddress });
    worker = await Worker.create({
      connection,
      taskQueue: stack.taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...createActivities({ db: stack.database.db, executor: stack.simulatedExecutor(), ingest: { url: stack.ingestUrl, secret: stack.ingestSecret }, log: silentLogger, pollIntervalMs: 50 }),
        ...createScheduleActivities({ db: stack.database.db, log: silentLogger, codeVersion: 'sched-test-v1', executor: 'simulated', webhookAllowInternal: true }),
      },
    });
    running = worker.run();
    ctx = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue };
  });
  after(async () => {
    for (const id of [NIGHTLY, FAST]) await deleteSchedule(ctx, id).catch(() => {});
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => {});
    await connection?.close();
    await hook?.close();
    await stack?.close();
  });

  /** Triggers a run and waits until it is closed (runs are numbered from 1 in the order they start). */
  const runOnce = async (id: string, n: number): Promise<ScheduleRunRow> => {
    await triggerSchedule(ctx, id);
    return eventually(`run ${n} of ${id} closed`, async () => {
      const runs = await scheduleRunsOf(stack.database.db, id);
      return runs.length === n && runs[0]!.status !== 'running' ? runs[0] : undefined;
    }, 90_000);
  };

  test('create, trigger twice (compared, no change), inject a regression: found, webhook posted once; pause, resume', async () => {
    const created = await createSchedule(ctx, { spec: spec(NIGHTLY, hook.url), cron: '0 3 * * *' });
    assert.equal(created.cron, '0 3 * * *');
    const desc = await stack.temporal.schedule.getHandle(temporalScheduleId(NIGHTLY)).describe();
    assert.ok(desc.spec.calendars?.length, 'the Temporal schedule has the cron as a calendar');
    assert.equal(desc.policies.overlap, 'SKIP');
    assert.ok((await nextRunTimes(stack.temporal, NIGHTLY))!.length > 0);

    const first = await runOnce(NIGHTLY, 1);
    assert.equal(first.status, 'compared');
    assert.equal(first.codeVersion, 'sched-test-v1');
    assert.equal((first.results as unknown[]).length, 2, 'one result per variant (one rung, one metric)');
    const [sweep] = await stack.database.db.select().from(sweeps).where(eq(sweeps.id, first.sweepId!));
    assert.equal(sweep!.status, 'succeeded');
    assert.equal(sweep!.rerun, true, 'scheduled runs rerun by default');
    assert.equal((sweep!.spec as { schedule: { webhook?: string } }).schedule.webhook, undefined, 'the webhook URL stays out of the sweep every reader sees');

    const second = await runOnce(NIGHTLY, 2);
    assert.equal(second.status, 'compared');
    assert.notEqual(second.sweepId, first.sweepId);
    assert.equal(second.regressions, 0);
    assert.equal(second.improvements, 0);
    const [reused] = (await stack.database.pool.query('select count(*)::int as n from trials where sweep_id = $1 and reused_from is not null', [second.sweepId])).rows;
    assert.equal(reused.n, 0, 'a scheduled run reruns its trials instead of reusing the last run');
    assert.equal(hook.requests(), 0);

    // The injected regression: the irreducible loss of every trial goes up (a "code change").
    await stack.database.db
      .update(schedules)
      .set({ spec: sql`jsonb_set(${schedules.spec}, '{base,c}', '4.0'::jsonb)` })
      .where(eq(schedules.id, NIGHTLY));
    const third = await runOnce(NIGHTLY, 3);
    assert.equal(third.regressions, 2, 'both variants regressed');
    const found = await findingsOf(stack.database.db, { runId: third.id });
    assert.deepEqual(found.map((f) => [f.kind, f.variant, f.metric]).sort(), [['regression', 'big-lr', 'loss'], ['regression', 'small-lr', 'loss']]);
    for (const f of found) {
      assert.ok(f.value > f.baseline * 1.05, `${f.variant}: ${f.value} vs baseline ${f.baseline}`);
      assert.deepEqual(f.baselineRuns, [second.id, first.id]);
    }
    await eventually('webhook received', async () => hook.bodies.length === 1 || undefined, 30_000);
    await eventually('run marked notified', async () => (await scheduleRunsOf(stack.database.db, NIGHTLY))[0]!.notifiedAt !== null || undefined, 10_000);
    assert.equal(hook.requests(), 2, 'one refused attempt, then one delivery');
    const body = hook.bodies[0] as { schedule: string; run: number; regressions: number; findings: { variant: string; value: number; baseline: number }[] };
    assert.equal(body.schedule, NIGHTLY);
    assert.equal(body.run, third.id);
    assert.equal(body.regressions, 2);
    assert.equal(body.findings.length, 2);
    assert.ok(!JSON.stringify(body).includes(stack.ingestSecret));

    await pauseSchedule(ctx, NIGHTLY);
    let d = await stack.temporal.schedule.getHandle(temporalScheduleId(NIGHTLY)).describe();
    assert.equal(d.state.paused, true);
    assert.equal((await getSchedule(stack.database.db, NIGHTLY))!.paused, true);
    assert.deepEqual(await nextRunTimes(stack.temporal, NIGHTLY), []);
    await resumeSchedule(ctx, NIGHTLY);
    d = await stack.temporal.schedule.getHandle(temporalScheduleId(NIGHTLY)).describe();
    assert.equal(d.state.paused, false);
    assert.equal((await getSchedule(stack.database.db, NIGHTLY))!.paused, false);
    assert.equal(hook.bodies.length, 1, 'the webhook got the regression once');
  });

  test('one run row per workflow execution: a retried activity gets its run back, two triggers in one second make two', async () => {
    // Temporal names a scheduled workflow by its fire time to the second, so only the run id tells two such runs apart.
    const begin = (workflowRunId: string) => beginScheduledRun(stack.database.db, { scheduleId: NIGHTLY, workflowId: `scheduled/${NIGHTLY}-2026-01-01T00:00:00Z`, workflowRunId, codeVersion: 'v' });
    const first = await begin(`exec-1-${SFX}`);
    assert.deepEqual(await begin(`exec-1-${SFX}`), first);
    const second = await begin(`exec-2-${SFX}`);
    assert.notEqual(second.runId, first.runId);
    assert.notEqual(second.sweepId, first.sweepId);
  });

  test('a short interval fires on its own; delete removes the Temporal schedule and the row', async () => {
    await createSchedule(ctx, { spec: { ...spec(FAST, hook.url), name: 'fast-spec' }, name: FAST, every: '2s' });
    await eventually('the interval fired a run', async () => ((await scheduleRunsOf(stack.database.db, FAST)).some((r) => r.status === 'compared') ? true : undefined), 60_000);
    await deleteSchedule(ctx, FAST);
    await assert.rejects(stack.temporal.schedule.getHandle(temporalScheduleId(FAST)).describe(), ScheduleNotFoundError);
    assert.equal(await getSchedule(stack.database.db, FAST), null);
    await assert.rejects(triggerSchedule(ctx, FAST), new RegExp(`schedule "${FAST}" not found`));
  });

  test("the spec's overlap policy becomes the Temporal schedule's", async () => {
    for (const [overlap, policy] of [['buffer-one', 'BUFFER_ONE'], ['cancel-other', 'CANCEL_OTHER']] as const) {
      const id = `${overlap}-${SFX}`;
      const base = spec(id, hook.url);
      await createSchedule(ctx, { spec: { ...base, schedule: { ...base.schedule, overlap } }, every: '1h', paused: true });
      try {
        const d = await stack.temporal.schedule.getHandle(temporalScheduleId(id)).describe();
        assert.equal(d.policies.overlap, policy);
        assert.equal(d.state.paused, true);
      } finally {
        await deleteSchedule(ctx, id);
      }
    }
  });

  test('bad input is refused before anything is stored, naming the field', async () => {
    await assert.rejects(createSchedule(ctx, { spec: spec('x1', hook.url), cron: '0 25 * * *' }), /cron: field 2 \(hour\) "25": 25 is out of range 0-23/);
    await assert.rejects(createSchedule(ctx, { spec: spec('x2', hook.url), every: '6 hours' }), /every: must be a duration/);
    await assert.rejects(createSchedule(ctx, { spec: spec('x3', hook.url), every: '1h', cron: '@daily' }), /give exactly one of cron and every/);
    await assert.rejects(createSchedule(ctx, { spec: spec('x4', 'file:///etc/passwd'), every: '1h' }), /schedule\.webhook: must be an http or https URL/);
    const { schedule: _s, ...noBlock } = spec('x5', hook.url);
    await assert.rejects(createSchedule(ctx, { spec: noBlock, every: '1h' }), /schedule: a scheduled sweep needs a schedule block/);
    await assert.rejects(createSchedule(ctx, { spec: spec(NIGHTLY, hook.url), every: '1h' }), new RegExp(`a schedule named "${NIGHTLY}" already exists`));
    const rows = await stack.database.db.select({ id: schedules.id }).from(schedules);
    assert.deepEqual(rows.map((r) => r.id).filter((id) => id.startsWith('x')), []);
  });
});
