/**
 * The loadgen worker process (Helm: the `loadgen` deployment; scale its replicas for more
 * generators). Configured from the environment:
 *   TEMPORAL_ADDRESS (required), TEMPORAL_NAMESPACE;
 *   LADDER_LOADGEN_QUEUE          generator queue (default ladder-loadgen; "none": do not generate);
 *   LADDER_CAPACITY_QUEUE         control queue: the capacity workflow and its bookkeeping
 *                                 (default ladder-capacity when DATABASE_URL is set; "none": off);
 *   LADDER_LOADGEN_CONCURRENCY    generator activities at once in this process (default 4);
 *   DATABASE_URL                  needed by the control queue;
 *   LADDER_INGEST_SECRET          the deployment's; needed by the control queue *and* the generators
 *                                 of ingest/graphql/launch runs, which make their tokens from it
 *                                 (no token travels in Temporal's history);
 *   LADDER_API_TOKEN              optional, instead of a token made per run: then set on every worker.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { migrateDatabase, openDatabase, type Database } from '../core/db/client';
import { createLogger } from '../core/log';
import { readLoadgenSettings, readSettings, requireSetting } from '../core/settings';
import { CAPACITY_CONTROL_QUEUE, LOADGEN_TASK_QUEUE, startLoadgenWorker } from './loadgen';

const queue = (value: string | undefined, fallback: string | null): string | null => {
  if (value === 'none') return null;
  if (value === undefined || value === '') return fallback;
  if (!/^[A-Za-z0-9._/-]{1,200}$/.test(value)) throw new Error(`task queue "${value.slice(0, 50)}" must be 1–200 letters, digits, ".", "_", "/" or "-"`);
  return value;
};

async function main() {
  const settings = readSettings();
  const log = createLogger('loadgen');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const loadgen = readLoadgenSettings();
  const concurrency = loadgen.LADDER_LOADGEN_CONCURRENCY;
  let database: Database | undefined;
  if (settings.DATABASE_URL) {
    database = openDatabase(settings.DATABASE_URL);
    await migrateDatabase(database);
  }
  const generatorQueue = queue(loadgen.LADDER_LOADGEN_QUEUE, LOADGEN_TASK_QUEUE);
  const controlQueue = queue(loadgen.LADDER_CAPACITY_QUEUE, database ? CAPACITY_CONTROL_QUEUE : null);
  const worker = await startLoadgenWorker({
    temporalAddress: requireSetting(settings, 'TEMPORAL_ADDRESS'),
    namespace: settings.TEMPORAL_NAMESPACE,
    generatorQueue,
    controlQueue,
    maxGenerators: concurrency,
    database,
    ingestSecret: settings.LADDER_INGEST_SECRET,
    apiToken: loadgen.LADDER_API_TOKEN,
    log,
  });
  log.info('loadgen worker started', { generatorQueue, controlQueue, concurrency });
  const stop = () => void worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await worker.running;
  await database?.close();
}

main().catch((err: Error) => {
  process.stderr.write(`ladder loadgen: ${err.message}\n`);
  process.exit(1);
});
