/**
 * The Temporal worker: the sweep/trial workflows plus the activities wired to a database and an
 * executor. Used by the worker process (`workers/main.ts`), the embedded stack and the tests.
 */
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Db } from '../core/db/client';
import { createActivities, type Logger } from './activities';
import { createScheduleActivities } from './schedule-activities';
import { createSearchActivities } from './search-activities';
import type { Executor } from './executors/types';

export const DEFAULT_TASK_QUEUE = 'ladder';
const WORKFLOWS_PATH = require.resolve('../workflows');

export interface LadderWorkerOptions {
  temporalAddress: string;
  namespace?: string;
  taskQueue?: string;
  db: Db;
  executor: Executor;
  ingest: { url: string; secret: string };
  log: Logger;
  pollIntervalMs?: number;
  /** Pre-built workflow bundle; bundling takes seconds, so tests build it once. */
  workflowBundle?: WorkflowBundleWithSourceMap;
}

export interface LadderWorker {
  worker: Worker;
  /** Resolves when the worker has shut down. */
  running: Promise<void>;
  shutdown(): Promise<void>;
}

let bundlePromise: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundles the workflow code once per process. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundlePromise ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundlePromise;
}

const quietBundlerLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn(message: string) {
    console.warn(message);
  },
  error(message: string) {
    console.error(message);
  },
};

export async function startLadderWorker(options: LadderWorkerOptions): Promise<LadderWorker> {
  const connection = await NativeConnection.connect({ address: options.temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    workflowBundle: options.workflowBundle ?? (await workflowBundle()),
    activities: {
      ...createActivities({
        db: options.db,
        executor: options.executor,
        ingest: options.ingest,
        log: options.log,
        pollIntervalMs: options.pollIntervalMs,
      }),
      ...createSearchActivities({ db: options.db }),
      ...createScheduleActivities({ db: options.db, log: options.log, executor: options.executor.name }),
    },
    // Waiting activities are cheap (a status call per poll), so many can share one worker.
    maxConcurrentActivityTaskExecutions: 500,
    maxConcurrentWorkflowTaskExecutions: 50,
  });
  const running = worker.run().finally(() => connection.close());
  return {
    worker,
    running,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
