/**
 * The schedules API through `yoga.fetch`, on a real Temporal server and the simulated executor:
 * createSchedule (auth, projects, bad input with the field), the `schedules` query, trigger,
 * `regressions` after an injected regression, pause / resume, delete.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { NativeConnection, Worker } from '@temporalio/worker';
import { eq, sql } from 'drizzle-orm';
import { schedules } from '../core/db/schema';
import { silentLogger } from '../core/log';
import { scheduleRunsOf } from '../core/schedules/store';
import { createTestStack, eventually, type TestStack } from '../test/harness';
import { createActivities } from '../workers/activities';
import { createScheduleActivities } from '../workers/schedule-activities';
import { workflowBundle } from '../workers/worker';
import { createApiServer, type ApiServer } from './server';
import { gqlClient, tokens } from '../test/graphql-helpers';

/** Temporal schedule ids are namespace-wide: a name unique to this run keeps parallel or leftover runs apart. */
const ID = `alpha-nightly-${randomBytes(3).toString('hex')}`;

const spec = (name: string) => ({
  name,
  kind: 'synthetic',
  base: { steps: 6, checkpoint_every: 3 },
  grid: { lr: [1e-4, 1e-3] },
  seeds: 1,
  retries: 0,
  timeoutSeconds: 60,
  schedule: { metrics: [{ metric: 'loss', direction: 'min', tolerance: 0.05 }], webhook: 'https://hooks.invalid/T000/secret-path?token=abc' },
});

describe('GraphQL schedules', { timeout: 180_000 }, () => {
  let stack: TestStack;
  let api: ApiServer;
  let gql: ReturnType<typeof gqlClient>;
  let tok: Awaited<ReturnType<typeof tokens>>;
  let worker: Worker;
  let running: Promise<void>;
  let connection: NativeConnection;

  before(async () => {
    stack = await createTestStack('gqlsched');
    connection = await NativeConnection.connect({ address: stack.temporalAddress });
    worker = await Worker.create({
      connection,
      taskQueue: stack.taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...createActivities({ db: stack.database.db, executor: stack.simulatedExecutor(), ingest: { url: stack.ingestUrl, secret: stack.ingestSecret }, log: silentLogger, pollIntervalMs: 50 }),
        // Not allowed to reach internal addresses, and the webhook host does not exist here: the post fails, the findings stay.
        ...createScheduleActivities({ db: stack.database.db, log: silentLogger, codeVersion: 'gql-sched', executor: 'simulated', webhookAllowInternal: false }),
      },
    });
    running = worker.run();
    api = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), temporal: { client: stack.temporal, taskQueue: stack.taskQueue }, codeVersion: 'gql-sched', executor: 'simulated' });
    gql = gqlClient(api);
    tok = await tokens(stack.database.db);
  });
  after(async () => {
    await gql?.(`mutation { deleteSchedule(id: "${ID}") { deleted } }`, {}, tok.alphaEditor).catch(() => {});
    await api?.close();
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => {});
    await connection?.close();
    await stack?.close();
  });

  const CREATE = `mutation($spec: JSON!, $cron: String, $every: String, $name: String) {
    createSchedule(spec: $spec, cron: $cron, every: $every, name: $name) { id project cron every paused overlap rerun baselineRuns webhookOrigin nextRunTimes metrics { metric direction tolerance } }
  }`;

  it('createSchedule: editors of the project only; bad input names the field; nothing stored on refusal', async () => {
    const anon = await gql(CREATE, { spec: spec('a'), every: '6h' });
    assert.equal(anon.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
    const viewer = await gql(CREATE, { spec: spec('a'), every: '6h' }, tok.alphaViewer);
    assert.equal(viewer.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const other = await gql(CREATE, { spec: { ...spec('a'), project: 'beta' }, every: '6h' }, tok.alphaEditor);
    assert.equal(other.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const cron = await gql(CREATE, { spec: spec('a'), cron: '0 3 * * 9' }, tok.alphaEditor);
    assert.equal(cron.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.equal(cron.errors?.[0]?.extensions?.argument, 'cron');
    assert.match(cron.errors![0]!.message, /field 5 \(day of week\) "9": 9 is out of range 0-7/);
    const block = await gql(CREATE, { spec: { ...spec('a'), schedule: { metrics: [{ metric: 'loss', direction: 'sideways' }] } }, every: '6h' }, tok.alphaEditor);
    assert.equal(block.errors?.[0]?.extensions?.path, 'schedule.metrics[0].direction');
    const count = (await stack.database.pool.query('select count(*)::int as n from schedules')).rows[0].n;
    assert.equal(count, 0);
  });

  it('creates, lists per project, triggers, reports an injected regression, pauses, resumes and deletes', async () => {
    const created = await gql(CREATE, { spec: spec('nightly-ttt'), name: ID, cron: '0 3 * * *' }, tok.alphaEditor);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const s = created.data!.createSchedule;
    assert.equal(s.id, ID);
    assert.equal(s.project, 'alpha');
    assert.equal(s.overlap, 'skip');
    assert.equal(s.rerun, true);
    assert.equal(s.webhookOrigin, 'https://hooks.invalid', 'the secret path and query are not shown');
    assert.ok(s.nextRunTimes.length > 0);
    const again = await gql(CREATE, { spec: spec('nightly-ttt'), name: ID, every: '1h' }, tok.alphaEditor);
    assert.equal(again.errors?.[0]?.extensions?.code, 'CONFLICT');

    const LIST = `{ schedules { edges { node { id paused } } } }`;
    assert.deepEqual((await gql(LIST, {}, tok.alphaViewer)).data!.schedules.edges.map((e: any) => e.node.id), [ID]);
    assert.deepEqual((await gql(LIST, {}, tok.betaViewer)).data!.schedules.edges, []);
    assert.equal((await gql(`mutation { triggerSchedule(id: "${ID}") { id } }`, {}, tok.betaEditor)).errors?.[0]?.extensions?.code, 'NOT_FOUND');

    const trigger = async (n: number) => {
      const res = await gql(`mutation { triggerSchedule(id: "${ID}") { id } }`, {}, tok.alphaEditor);
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      await eventually(`run ${n} closed`, async () => {
        const runs = await scheduleRunsOf(stack.database.db, ID);
        return runs.length === n && runs[0]!.status !== 'running' ? true : undefined;
      }, 90_000);
    };
    await trigger(1);
    await stack.database.db.update(schedules).set({ spec: sql`jsonb_set(${schedules.spec}, '{base,c}', '4.0'::jsonb)` }).where(eq(schedules.id, ID));
    await trigger(2);

    const ONE = `query($id: ID!) { schedule(id: $id) { id runs { id status codeVersion regressions notified sweep { id status } results { variant rung metric mean values } } findings { kind variant metric value baseline relativeChange method baselineRuns } } }`;
    const one = (await gql(ONE, { id: ID }, tok.alphaViewer)).data!.schedule;
    assert.equal(one.runs.length, 2);
    assert.deepEqual(one.runs.map((r: any) => r.status), ['compared', 'compared']);
    assert.equal(one.runs[0].codeVersion, 'gql-sched');
    assert.equal(one.runs[0].sweep.status, 'succeeded');
    assert.equal(one.runs[0].regressions, 2);
    assert.equal(one.runs[0].notified, false, 'hooks.invalid never resolves');
    assert.equal(one.runs[1].results.length, 2);
    assert.equal(one.findings.length, 2);
    for (const f of one.findings) {
      assert.equal(f.kind, 'regression');
      assert.ok(f.relativeChange > 0.05);
      assert.deepEqual(f.baselineRuns, [one.runs[1].id]);
    }
    assert.equal((await gql(ONE, { id: ID }, tok.betaViewer)).data!.schedule, null);

    const REG = `query($id: ID, $kind: ScheduleFindingKind) { regressions(scheduleId: $id, kind: $kind) { scheduleId kind variant value baseline } }`;
    assert.equal((await gql(REG, {}, tok.alphaViewer)).data!.regressions.length, 2);
    assert.equal((await gql(REG, { id: ID, kind: 'IMPROVEMENT' }, tok.alphaViewer)).data!.regressions.length, 0);
    assert.equal((await gql(REG, {}, tok.betaViewer)).data!.regressions.length, 0);

    const pause = await gql(`mutation { pauseSchedule(id: "${ID}") { paused nextRunTimes } }`, {}, tok.alphaEditor);
    assert.deepEqual(pause.data!.pauseSchedule, { paused: true, nextRunTimes: [] });
    const resume = await gql(`mutation { resumeSchedule(id: "${ID}") { paused } }`, {}, tok.alphaEditor);
    assert.equal(resume.data!.resumeSchedule.paused, false);
    const del = await gql(`mutation { deleteSchedule(id: "${ID}") { id deleted } }`, {}, tok.alphaEditor);
    assert.deepEqual(del.data!.deleteSchedule, { id: ID, deleted: true });
    assert.equal((await gql(ONE, { id: ID }, tok.alphaViewer)).data!.schedule, null);
  });
});
