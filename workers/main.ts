/**
 * The worker process, configured from the environment (see core/settings.ts):
 *   DATABASE_URL, TEMPORAL_ADDRESS, LADDER_INGEST_URL, LADDER_INGEST_SECRET are required;
 *   LADDER_EXECUTOR (local|kubernetes|simulated), LADDER_TASK_QUEUE, TEMPORAL_NAMESPACE,
 *   LADDER_RUN_ROOT, LADDER_PYTHON are optional.
 */
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { migrateDatabase, openDatabase } from '../core/db/client';
import { createLogger } from '../core/log';
import { readSettings, requireSetting } from '../core/settings';
import { createExecutor } from './executor-factory';
import { startLadderWorker } from './worker';

async function main() {
  const settings = readSettings();
  const log = createLogger('worker');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const database = openDatabase(requireSetting(settings, 'DATABASE_URL'));
  await migrateDatabase(database);
  const worker = await startLadderWorker({
    temporalAddress: requireSetting(settings, 'TEMPORAL_ADDRESS'),
    namespace: settings.TEMPORAL_NAMESPACE,
    taskQueue: settings.LADDER_TASK_QUEUE,
    db: database.db,
    executor: createExecutor(settings.LADDER_EXECUTOR, { runRoot: settings.LADDER_RUN_ROOT, python: settings.LADDER_PYTHON }),
    ingest: { url: requireSetting(settings, 'LADDER_INGEST_URL'), secret: requireSetting(settings, 'LADDER_INGEST_SECRET') },
    log,
    pollIntervalMs: settings.LADDER_POLL_INTERVAL_MS,
  });
  log.info('worker started', { taskQueue: settings.LADDER_TASK_QUEUE, executor: settings.LADDER_EXECUTOR });
  const stop = () => void worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await worker.running;
  await database.close();
}

main().catch((err: Error) => {
  process.stderr.write(`ladder worker: ${err.message}\n`);
  process.exit(1);
});
