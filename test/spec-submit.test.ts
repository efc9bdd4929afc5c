/**
 * Submitting specs against a real Postgres and Temporal (issue 10): reuse stays inside a project,
 * a large reuse lookup does not hit Postgres' bind-parameter limit, a Temporal that is down fails
 * fast and stores nothing, malformed specs store nothing, and the CLI never prints SQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import fc from 'fast-check';
import { sql } from 'drizzle-orm';
import { userMessage } from '../cli/main';
import { trials } from '../core/db/schema';
import { parseSweepSpec, SpecError } from '../core/spec/spec';
import { launchSweep, TemporalUnreachableError, waitForSweep, type LaunchContext } from '../core/sweeps/launch';
import { createSweep } from '../core/sweeps/store';
import { mutantArb } from './malformed-specs';
import { createTestStack, type TestStack } from './harness';

describe('submitting specs (Postgres + Temporal)', { timeout: 300_000 }, () => {
  let stack: TestStack;
  let ctx: LaunchContext;

  const counts = async () => {
    const res = await stack.database.pool.query<{ s: number; t: number; p: number; e: number }>(
      `select (select count(*) from sweeps)::int as s, (select count(*) from trials)::int as t,
              (select count(*) from projects)::int as p, (select count(*) from events)::int as e`,
    );
    return res.rows[0]!;
  };

  before(async () => {
    stack = await createTestStack('submit');
    await stack.startWorker({ executor: stack.simulatedExecutor(), pollIntervalMs: 50 });
    ctx = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'submit-test', executor: 'simulated' };
  });
  after(() => stack.close());

  it('reuses a succeeded trial within its project and never across projects', async () => {
    const spec = (project: string) => ({ name: 'reuse', project, kind: 'synthetic', base: { steps: 2 }, grid: { lr: [1e-3, 1e-2] } });
    const a1 = await launchSweep(ctx, { spec: spec('proj-a') });
    assert.equal(await waitForSweep(ctx, a1.id), 'succeeded');
    const b = await launchSweep(ctx, { spec: spec('proj-b') });
    assert.equal(b.reused, 0, 'project B must not reuse project A results');
    const a2 = await launchSweep(ctx, { spec: spec('proj-a') });
    assert.equal(a2.reused, 2, 'project A reuses its own results');
    await waitForSweep(ctx, b.id);
    await waitForSweep(ctx, a2.id);
  });

  it('looks up reuse for 70,000 trials in one statement (no bind-parameter overflow)', async () => {
    const before = process.env.LADDER_MAX_TRIALS_PER_SWEEP;
    process.env.LADDER_MAX_TRIALS_PER_SWEEP = '70000';
    try {
      const spec = parseSweepSpec({ name: 'wide', kind: 'synthetic', grid: { lr: Array.from({ length: 70 }, (_, i) => (i + 1) / 1000) }, seeds: 1000 });
      const created = await createSweep(stack.database.db, { spec, codeVersion: 'submit-test', executor: 'simulated' });
      assert.equal(created.trials, 70_000);
      await stack.database.db.delete(trials).where(sql`${trials.sweepId} = ${created.id}`);
    } finally {
      if (before === undefined) delete process.env.LADDER_MAX_TRIALS_PER_SWEEP;
      else process.env.LADDER_MAX_TRIALS_PER_SWEEP = before;
    }
  });

  it('fails fast with a clear message when Temporal is not reachable, storing nothing', async () => {
    const connection = Connection.lazy({ address: '127.0.0.1:1' });
    const down: LaunchContext = { ...ctx, temporal: new Client({ connection }) };
    const before = await counts();
    const t0 = Date.now();
    await assert.rejects(
      launchSweep(down, { spec: { name: 'down', project: 'proj-down', kind: 'synthetic' } }),
      (err: Error) => err instanceof TemporalUnreachableError && /Temporal at 127\.0\.0\.1:1 is not reachable/.test(err.message),
    );
    const ms = Date.now() - t0;
    assert.ok(ms < 15_000, `took ${ms} ms`);
    process.stdout.write(`# launchSweep with Temporal down failed in ${ms} ms\n`);
    assert.deepEqual(await counts(), before);
    await connection.close().catch(() => {});
  });

  it('generated malformed specs store nothing, and a normal sweep still succeeds afterwards', async () => {
    const before = await counts();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutantArb, async (m) => {
        n++;
        await assert.rejects(launchSweep(ctx, { spec: 'text' in m ? m.text : m.input }), SpecError, m.label);
      }),
      { numRuns: 150, seed: 7, interruptAfterTimeLimit: 60_000 },
    );
    assert.deepEqual(await counts(), before, 'row counts unchanged');
    assert.equal(({} as Record<string, unknown>).pwned, undefined);
    process.stdout.write(`# ${n} malformed specs through launchSweep: rows unchanged\n`);
    const ok = await launchSweep(ctx, { spec: { name: 'after', kind: 'synthetic', base: { steps: 2 } } });
    assert.equal(await waitForSweep(ctx, ok.id), 'succeeded');
  });

  it('the CLI shows the database reason, never the SQL or its parameters', async () => {
    let caught: unknown;
    try {
      await stack.database.db.execute(sql`select 1 / ${'0'}::int as secret_column`);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof Error && /select/.test(caught.message), 'drizzle puts the SQL in its message');
    const wrapped = new Error(`create sweep: ${caught.message}`, { cause: caught });
    for (const err of [caught, wrapped]) {
      const shown = userMessage(err);
      assert.doesNotMatch(shown, /select|secret_column|params/i, shown);
      assert.equal(shown, 'database error: division by zero');
    }
  });
});
