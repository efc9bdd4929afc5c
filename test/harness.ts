/**
 * Integration test harness: a real Postgres and a real Temporal dev server, shared by all test
 * files of one `npm test` run (scripts/test.ts starts them and passes their addresses), with a
 * fresh database and task queue per test file so files never see each other's rows.
 *
 * Run one file alone (`node --import tsx --test test/sweep.test.ts`) and the harness starts its
 * own servers instead.
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { sql } from 'drizzle-orm';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { migrateDatabase, openDatabase, type Database } from '../core/db/client';
import { silentLogger } from '../core/log';
import { createApiServer, type ApiServer } from '../graphql/server';
import { LocalExecutor } from '../workers/executors/local';
import { SimulatedExecutor, type SimulatedExecutorOptions } from '../workers/executors/simulated';
import { waitForSweep, type LaunchContext } from '../core/sweeps/launch';
import type { Executor } from '../workers/executors/types';
import { startLadderWorker, type LadderWorker } from '../workers/worker';
import { createDatabase, startPostgres } from '../stack/postgres';
import { ensurePythonEnv } from '../stack/python';
import { startTemporal } from '../stack/temporal';

export const REPO_ROOT = path.resolve(__dirname, '..');

let runtimeInstalled = false;
function quietTemporalRuntime() {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

interface Servers {
  pgUrl: string;
  temporalAddress: string;
  python: string;
  stop(): Promise<void>;
}

async function servers(): Promise<Servers> {
  const { LADDER_TEST_PG_URL, LADDER_TEST_TEMPORAL_ADDRESS, LADDER_PYTHON } = process.env;
  if (LADDER_TEST_PG_URL && LADDER_TEST_TEMPORAL_ADDRESS) {
    return {
      pgUrl: LADDER_TEST_PG_URL,
      temporalAddress: LADDER_TEST_TEMPORAL_ADDRESS,
      python: LADDER_PYTHON ?? (await ensurePythonEnv()),
      stop: async () => {},
    };
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-test-pg-'));
  fs.chmodSync(dataDir, 0o755); // the postgres OS user (when we are root) must reach data/
  const [pg, temporal, python] = await Promise.all([
    startPostgres({ dataDir: path.join(dataDir, 'data'), fast: true }),
    startTemporal({}),
    LADDER_PYTHON ? Promise.resolve(LADDER_PYTHON) : ensurePythonEnv(),
  ]);
  return {
    pgUrl: pg.url,
    temporalAddress: temporal.address,
    python,
    stop: async () => {
      await Promise.all([pg.stop(), temporal.stop()]);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestStack {
  database: Database;
  databaseUrl: string;
  temporal: Client;
  temporalAddress: string;
  taskQueue: string;
  api: ApiServer;
  apiUrl: string;
  ingestUrl: string;
  ingestSecret: string;
  runRoot: string;
  python: string;
  /** Starts an in-process worker on this stack's task queue. */
  startWorker(options?: { executor?: Executor; pollIntervalMs?: number }): Promise<LadderWorker>;
  /** Starts the worker as a separate process (`workers/main.ts`), e.g. to SIGKILL it. */
  spawnWorkerProcess(options?: { executor?: 'local' | 'simulated' }): ChildProcess;
  localExecutor(): LocalExecutor;
  simulatedExecutor(options?: SimulatedExecutorOptions): SimulatedExecutor;
  close(): Promise<void>;
}

export async function createTestStack(name: string): Promise<TestStack> {
  quietTemporalRuntime();
  const srv = await servers();
  const suffix = randomBytes(3).toString('hex');
  const dbName = `${name.replace(/[^a-z0-9]/g, '_')}_${suffix}`;
  const databaseUrl = await createDatabase(srv.pgUrl, dbName);
  const database = openDatabase(databaseUrl);
  await migrateDatabase(database);
  const connection = await Connection.connect({ address: srv.temporalAddress });
  const temporal = new Client({ connection });
  const ingestSecret = randomBytes(24).toString('hex');
  const api = createApiServer({ database, ingestSecret, log: silentLogger.warn });
  const apiUrl = await api.listen(0);
  const ingestUrl = `${apiUrl}/ingest/v1`;
  const taskQueue = `test-${name}-${suffix}`;
  const runRoot = fs.mkdtempSync(path.join(os.tmpdir(), `ladder-runs-${name}-`));
  const workers: LadderWorker[] = [];
  const processes: ChildProcess[] = [];

  const stack: TestStack = {
    database,
    databaseUrl,
    temporal,
    temporalAddress: srv.temporalAddress,
    taskQueue,
    api,
    apiUrl,
    ingestUrl,
    ingestSecret,
    runRoot,
    python: srv.python,
    localExecutor: () => new LocalExecutor({ runRoot, python: srv.python, killGraceMs: 5000 }),
    simulatedExecutor: (options) => new SimulatedExecutor(options),
    async startWorker(options = {}) {
      const worker = await startLadderWorker({
        temporalAddress: srv.temporalAddress,
        taskQueue,
        db: database.db,
        executor: options.executor ?? stack.localExecutor(),
        ingest: { url: ingestUrl, secret: ingestSecret },
        log: silentLogger,
        pollIntervalMs: options.pollIntervalMs ?? 200,
      });
      workers.push(worker);
      return worker;
    },
    spawnWorkerProcess(options = {}) {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'workers', 'main.ts')], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          DATABASE_URL: databaseUrl,
          TEMPORAL_ADDRESS: srv.temporalAddress,
          LADDER_TASK_QUEUE: taskQueue,
          LADDER_EXECUTOR: options.executor ?? 'local',
          LADDER_INGEST_URL: ingestUrl,
          LADDER_INGEST_SECRET: ingestSecret,
          LADDER_RUN_ROOT: runRoot,
          LADDER_PYTHON: srv.python,
          LADDER_POLL_INTERVAL_MS: '200',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr?.on('data', () => {});
      processes.push(child);
      return child;
    },
    async close() {
      for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.shutdown().catch(() => {})));
      await api.close();
      await connection.close();
      await database.close();
      await srv.stop();
      fs.rmSync(runRoot, { recursive: true, force: true });
    },
  };
  return stack;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, pollMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

/** Generous enough for a loaded machine; a sweep that needs longer in a test is a hang. */
export const SWEEP_TIMEOUT_MS = 120_000;

/**
 * waitForSweep with a deadline: a sweep that never finishes fails the test with its status and
 * trial counts instead of hanging the run.
 */
export async function waitForSweepWithin(
  ctx: Pick<LaunchContext, 'db' | 'temporal'>,
  sweepId: string,
  timeoutMs = SWEEP_TIMEOUT_MS,
): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctx.db
        .execute(sql`select s.status, (select json_object_agg(status, n) from (select status, count(*)::int as n from trials where sweep_id = ${sweepId} group by status) c) as trials from sweeps s where s.id = ${sweepId}`)
        .then(
          (res) => JSON.stringify(res.rows[0] ?? null),
          (e: Error) => `(state unreadable: ${e.message})`,
        )
        .then((state) => reject(new Error(`sweep ${sweepId} did not finish within ${timeoutMs} ms; now ${state}`)));
    }, timeoutMs);
  });
  try {
    return await Promise.race([waitForSweep(ctx, sweepId), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** How many executions of a trial ran to completion with exit 0, from the local executor's state. */
export function successfulExecutions(runRoot: string, trialId: string): number {
  const execRoot = path.join(runRoot, 'exec');
  if (!fs.existsSync(execRoot)) return 0;
  return fs
    .readdirSync(execRoot)
    .filter((d) => d.startsWith(`${trialId}-a`))
    .filter((d) => {
      const exit = path.join(execRoot, d, 'exit');
      return fs.existsSync(exit) && fs.readFileSync(exit, 'utf8').trim() === '0';
    }).length;
}
