/**
 * Mutations that start workflows, on a real Temporal server with the simulated executor:
 * launchSweep (bad spec → BAD_USER_INPUT and nothing stored; good spec → runs to the end),
 * cancelSweep and retryTrial, with the auth rules of mutations.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { trials } from '../core/db/schema';
import { waitForSweep } from '../core/sweeps/launch';
import { createTestStack, eventually, type TestStack } from '../test/harness';
import { createApiServer, type ApiServer } from './server';
import { gqlClient, tokens } from '../test/graphql-helpers';

describe('GraphQL mutations', () => {
  let stack: TestStack;
  let api: ApiServer;
  let gql: ReturnType<typeof gqlClient>;
  let tok: Awaited<ReturnType<typeof tokens>>;

  before(async () => {
    stack = await createTestStack('gqlmut');
    await stack.startWorker({ executor: stack.simulatedExecutor(), pollIntervalMs: 50 });
    api = createApiServer({
      database: stack.database,
      ingestSecret: 'x'.repeat(32),
      temporal: { client: stack.temporal, taskQueue: stack.taskQueue },
      codeVersion: 'gql-test',
      executor: 'simulated',
    });
    gql = gqlClient(api);
    tok = await tokens(stack.database.db);
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  const LAUNCH = `mutation($spec: JSON!, $rerun: Boolean) { launchSweep(spec: $spec, rerun: $rerun) { trials reused sweep { id project status executor codeVersion } } }`;
  const ctx = () => ({ db: stack.database.db, temporal: stack.temporal });
  const sweepCount = async () => (await stack.database.pool.query<{ n: number }>('select count(*)::int as n from sweeps')).rows[0]!.n;

  it('rejects a bad spec with BAD_USER_INPUT, every issue with its path, and stores nothing', async () => {
    const before = await sweepCount();
    const res = await gql(LAUNCH, { spec: { name: 'Bad Name', kind: 'synthetic', seeds: 'two', bogus: 1 } }, tok.alphaEditor);
    const error = res.errors?.[0];
    assert.equal(error?.extensions?.code, 'BAD_USER_INPUT');
    const issues = error?.extensions?.issues as { path: string; message: string }[];
    assert.ok(issues.length >= 3, JSON.stringify(issues));
    assert.deepEqual(new Set(issues.map((i) => i.path)), new Set(['name', 'seeds', 'bogus']));
    assert.equal(error?.extensions?.path, issues[0]!.path);
    assert.equal(res.data ?? null, null);
    // YAML text goes through the same validation.
    const yaml = await gql(LAUNCH, { spec: 'name: ok\nkind: synthetic\nseeds: -1\n' }, tok.alphaEditor);
    assert.equal(yaml.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.equal(yaml.errors?.[0]?.extensions?.path, 'seeds');
    assert.equal(await sweepCount(), before);
  });

  it('launches a good spec in the token project and runs it to the end', async () => {
    const spec = { name: 'gql-ok', kind: 'synthetic', base: { steps: 2, noise: 0 }, grid: { lr: [1e-3, 1e-2] }, seeds: 2 };
    const res: any = await gql(LAUNCH, { spec }, tok.alphaEditor);
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const launched = res.data.launchSweep;
    assert.equal(launched.trials, 4);
    assert.equal(launched.sweep.project, 'alpha');
    assert.equal(launched.sweep.executor, 'simulated');
    assert.equal(launched.sweep.codeVersion, 'gql-test');
    assert.equal(await waitForSweep(ctx(), launched.sweep.id), 'succeeded');
    const done: any = await gql(
      `query($id: ID!) { sweep(id: $id) { status progress { counts { succeeded } } leaderboard(metric: "loss") { variantName count mean } } }`,
      { id: launched.sweep.id },
      tok.alphaViewer,
    );
    assert.equal(done.data.sweep.status, 'succeeded');
    assert.equal(done.data.sweep.progress.counts.succeeded, 4);
    assert.deepEqual(done.data.sweep.leaderboard.map((r: any) => r.count), [2, 2]);
    // Same spec again: the identities already succeeded, so every trial is reused…
    const again: any = await gql(LAUNCH, { spec }, tok.alphaEditor);
    assert.equal(again.data.launchSweep.reused, 4);
    await waitForSweep(ctx(), again.data.launchSweep.sweep.id);
    // …unless rerun is asked for.
    const rerun: any = await gql(LAUNCH, { spec, rerun: true }, tok.alphaEditor);
    assert.equal(rerun.data.launchSweep.reused, 0);
    await waitForSweep(ctx(), rerun.data.launchSweep.sweep.id);
  });

  it('puts a YAML spec without a project in the token project too (it went to "default" and was refused)', async () => {
    const res: any = await gql(LAUNCH, { spec: 'name: gql-yaml\nkind: synthetic\nbase: { steps: 2, noise: 0 }\n' }, tok.alphaEditor);
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    assert.equal(res.data.launchSweep.sweep.project, 'alpha');
    await waitForSweep(ctx(), res.data.launchSweep.sweep.id);
    const other: any = await gql(LAUNCH, { spec: 'name: gql-yaml-beta\nkind: synthetic\nproject: beta\n' }, tok.alphaEditor);
    assert.equal(other.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    assert.equal(other.errors?.[0]?.extensions?.path, 'project');
  });

  it('needs an editor token of the spec project', async () => {
    const before = await sweepCount();
    const spec = { name: 'denied', kind: 'synthetic', project: 'alpha' };
    assert.equal((await gql(LAUNCH, { spec })).errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
    assert.equal((await gql(LAUNCH, { spec }, tok.alphaViewer)).errors?.[0]?.extensions?.code, 'FORBIDDEN');
    assert.equal((await gql(LAUNCH, { spec }, tok.betaEditor)).errors?.[0]?.extensions?.code, 'FORBIDDEN');
    assert.equal(await sweepCount(), before);
  });

  it('cancels a running sweep', async () => {
    const spec = { name: 'gql-cancel', kind: 'synthetic', base: { steps: 200, step_sleep: 0.05 }, grid: { lr: [1e-3, 1e-2, 1e-1] }, concurrency: 1 };
    const res: any = await gql(LAUNCH, { spec }, tok.alphaEditor);
    const id = res.data.launchSweep.sweep.id as string;
    await eventually('a trial to run', async () => {
      const [row] = await stack.database.db.select({ n: sql<number>`count(*)::int` }).from(trials).where(sql`${trials.sweepId} = ${id} and ${trials.status} = 'running'`);
      return (row?.n ?? 0) > 0;
    });
    const CANCEL = `mutation($id: ID!) { cancelSweep(id: $id) { outcome sweep { id } } }`;
    assert.equal((await gql(CANCEL, { id }, tok.betaEditor)).errors?.[0]?.extensions?.code, 'NOT_FOUND');
    const cancelled: any = await gql(CANCEL, { id }, tok.alphaEditor);
    assert.equal(cancelled.errors, undefined, JSON.stringify(cancelled.errors));
    assert.equal(cancelled.data.cancelSweep.outcome, 'cancelling');
    assert.equal(await waitForSweep(ctx(), id), 'cancelled');
    const again: any = await gql(CANCEL, { id }, tok.alphaEditor);
    assert.equal(again.data.cancelSweep.outcome, 'already-finished');
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, id));
    assert.ok(rows.every((t) => t.status === 'cancelled' || t.status === 'succeeded'));
  });

  it('retries a failed trial', async () => {
    // Fails its first attempt, and no retries are allowed: the trial ends failed.
    const spec = { name: 'gql-retry', kind: 'synthetic', base: { steps: 2, fail_attempts: 1 }, retries: 0 };
    const res: any = await gql(LAUNCH, { spec }, tok.alphaEditor);
    const id = res.data.launchSweep.sweep.id as string;
    assert.equal(await waitForSweep(ctx(), id), 'failed');
    const [trial] = await stack.database.db.select().from(trials).where(eq(trials.sweepId, id));
    assert.equal(trial!.status, 'failed');
    const RETRY = `mutation($id: ID!) { retryTrial(id: $id) { id status attempts maxAttempts exitReason } }`;
    assert.equal((await gql(RETRY, { id: trial!.id }, tok.alphaViewer)).errors?.[0]?.extensions?.code, 'FORBIDDEN');
    assert.equal((await gql(RETRY, { id: trial!.id }, tok.betaEditor)).errors?.[0]?.extensions?.code, 'NOT_FOUND');
    const retried: any = await gql(RETRY, { id: trial!.id }, tok.alphaEditor);
    assert.equal(retried.errors, undefined, JSON.stringify(retried.errors));
    assert.equal(retried.data.retryTrial.status, 'planned');
    assert.equal(retried.data.retryTrial.exitReason, null);
    assert.equal(retried.data.retryTrial.maxAttempts, 2);
    const finished = await eventually('the retried trial to succeed', async () => {
      const [row] = await stack.database.db.select().from(trials).where(eq(trials.id, trial!.id));
      return row?.status === 'succeeded' ? row : null;
    });
    assert.equal(finished.attempts, 2);
    // Only failed or cancelled trials can be retried.
    assert.equal((await gql(RETRY, { id: trial!.id }, tok.alphaEditor)).errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    const events: any = await gql(`query($id: ID!) { trial(id: $id) { events { type } } }`, { id: trial!.id }, tok.alphaViewer);
    assert.ok(events.data.trial.events.some((e: any) => e.type === 'trial.retry.requested'));
  });
});
