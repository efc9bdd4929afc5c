/**
 * Crash test: Postgres goes down and comes back (same data dir, same port) under a running
 * sweep of real local jobs. Activities and ingest pushes fail while it is away and are retried;
 * afterwards every trial must have run to completion exactly once and every metric point must
 * be stored exactly once.
 *
 * This file runs its own Postgres (restarting the shared one would break the other test files);
 * Temporal is the shared one under `npm test`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { eq } from 'drizzle-orm';
import { migrateDatabase, openDatabase, type Database } from '../core/db/client';
import { silentLogger } from '../core/log';
import { trials } from '../core/db/schema';
import { launchSweep, type LaunchContext } from '../core/sweeps/launch';
import { requireSweep } from '../core/sweeps/store';
import { createApiServer, type ApiServer } from '../graphql/server';
import { LocalExecutor } from '../workers/executors/local';
import { startLadderWorker, type LadderWorker } from '../workers/worker';
import { createDatabase, startPostgres, type PostgresServer } from '../stack/postgres';
import { ensurePythonEnv } from '../stack/python';
import { startTemporal, type TemporalServer } from '../stack/temporal';
import { eventually, sleep, successfulExecutions } from './harness';

const TRIALS = 24;
const STEPS = 20;

describe('Postgres restarted under a running sweep', { timeout: 300_000 }, () => {
  let tmp = '';
  let pg: PostgresServer;
  let ownTemporal: TemporalServer | undefined;
  let connection: Connection;
  let database: Database;
  let api: ApiServer;
  let worker: LadderWorker;
  let ctx: LaunchContext;
  let runRoot = '';
  const dataDir = () => path.join(tmp, 'pg', 'data');

  before(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-crash-pg-'));
    fs.chmodSync(tmp, 0o755); // the postgres OS user (when we are root) must reach the data dir
    runRoot = path.join(tmp, 'runs');
    pg = await startPostgres({ dataDir: dataDir(), fast: true });
    let temporalAddress = process.env.LADDER_TEST_TEMPORAL_ADDRESS;
    if (!temporalAddress) {
      ownTemporal = await startTemporal({});
      temporalAddress = ownTemporal.address;
    }
    const python = process.env.LADDER_PYTHON ?? (await ensurePythonEnv());
    database = openDatabase(await createDatabase(pg.url, 'crash_pg'));
    await migrateDatabase(database);
    connection = await Connection.connect({ address: temporalAddress });
    const ingestSecret = randomBytes(24).toString('hex');
    api = createApiServer({ database, ingestSecret, log: silentLogger.warn });
    const apiUrl = await api.listen(0);
    const taskQueue = `test-crash-pg-${randomBytes(3).toString('hex')}`;
    worker = await startLadderWorker({
      temporalAddress,
      taskQueue,
      db: database.db,
      executor: new LocalExecutor({ runRoot, python, killGraceMs: 5000 }),
      ingest: { url: `${apiUrl}/ingest/v1`, secret: ingestSecret },
      log: silentLogger,
      pollIntervalMs: 200,
    });
    ctx = { db: database.db, temporal: new Client({ connection }), taskQueue, codeVersion: 'test-code' };
  });

  after(async () => {
    await worker?.shutdown().catch(() => {});
    await api?.close().catch(() => {});
    await connection?.close().catch(() => {});
    await database?.close().catch(() => {});
    await pg?.stop();
    await ownTemporal?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('every trial runs once and every metric point arrives once', async () => {
    const sweep = await launchSweep(ctx, {
      spec: {
        name: 'postgres-restart',
        kind: 'synthetic',
        base: { steps: STEPS, step_sleep: 0.1, checkpoint_every: 5 },
        grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2] },
        seeds: TRIALS / 6,
        concurrency: 8,
        retries: 2,
        timeoutSeconds: 240,
      },
    });
    assert.equal(sweep.trials, TRIALS);

    // Down while jobs are mid-run and before the sweep is done, so pushes, heartbeats and
    // status writes all meet a missing database.
    await eventually('metric points of running jobs stored', async () => {
      const r = await database.pool.query<{ n: number }>('select count(*)::int as n from metric_points');
      return (r.rows[0]?.n ?? 0) > 0;
    }, 120_000, 100);
    const before = await database.pool.query<{ done: number }>(
      "select count(*)::int as done from trials where sweep_id = $1 and status = 'succeeded'",
      [sweep.id],
    );
    assert.ok((before.rows[0]?.done ?? 0) < TRIALS, 'the restart happens under a running sweep');
    const port = pg.port;
    await pg.stop();
    await sleep(3000);
    pg = await startPostgres({ dataDir: dataDir(), port, fast: true });

    const status = await eventually(
      'the sweep to finish',
      async () => {
        const s = await requireSweep(database.db, sweep.id).catch(() => undefined);
        return s && ['succeeded', 'failed', 'cancelled'].includes(s.status) ? s.status : undefined;
      },
      240_000,
      500,
    );
    assert.equal(status, 'succeeded');

    const rows = await database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.equal(rows.length, TRIALS);
    for (const t of rows) {
      assert.equal(t.status, 'succeeded', `${t.id}`);
      assert.equal(successfulExecutions(runRoot, t.id), 1, `${t.id} ran to completion exactly once`);
    }
    const counts = await database.pool.query<{ trial_id: string; n: number; steps: number }>(
      `select m.trial_id, count(*)::int as n, count(distinct m.step)::int as steps
       from metric_points m join trials t on t.id = m.trial_id
       where t.sweep_id = $1 and m.name = 'loss' group by m.trial_id`,
      [sweep.id],
    );
    assert.equal(counts.rows.length, TRIALS, 'every trial has its loss curve');
    for (const c of counts.rows) assert.deepEqual({ trial: c.trial_id, n: c.n, steps: c.steps }, { trial: c.trial_id, n: STEPS, steps: STEPS });
    const total = await database.pool.query<{ n: number; distinct_n: number }>(
      `select count(*)::int as n, count(distinct (m.trial_id, m.name, m.step))::int as distinct_n
       from metric_points m join trials t on t.id = m.trial_id where t.sweep_id = $1`,
      [sweep.id],
    );
    assert.equal(total.rows[0]?.n, total.rows[0]?.distinct_n, 'no metric point stored twice');
    console.log(`postgres restart: ${TRIALS} trials once each, ${total.rows[0]?.n} metric points once each`);
  });
});
