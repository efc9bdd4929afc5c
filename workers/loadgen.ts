/**
 * The capacity workflow's activities (workflows/capacity.ts) and the loadgen worker.
 *
 * Two task queues: the *control* queue runs the workflow and its bookkeeping activities (prepare
 * the target, merge and store a step, finish the run), which need the database; the *generator*
 * queue (`ladder-loadgen`) runs `capacityGenerate`, which needs only the network, on as many
 * worker processes or pods as exist. One process may poll both.
 */
import os from 'node:os';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { revokeApiToken } from '../core/auth/tokens';
import { fitCapacityScaling, type ScalingAnswer, type ScalingSample } from '../core/capacity/scaling';
import { createCapacityRun, finishCapacityRun, recordCapacityStep, type CapacityRunRecord, type CapacityRunStatus } from '../core/capacity/store';
import type { Database } from '../core/db/client';
import type { ExecutorCounts } from '../loadtests/capacity/executor';
import type { LoadProfile, Scenario } from '../loadtests/capacity/scenario';
import { mergeStep, runGenerator, type GeneratorReport, type StepRecord } from '../loadtests/capacity/step';
import { preparedTokenId, prepareTarget, TargetError, type GeneratorSlot, type Prepared } from '../loadtests/capacity/targets';
import type { Logger } from './activities';
import { workflowBundle } from './worker';

export const LOADGEN_TASK_QUEUE = 'ladder-loadgen';
/** The control queue `ladder capacity run` starts workflows on. */
export const CAPACITY_CONTROL_QUEUE = 'ladder-capacity';
/** How often a generator heartbeats; the workflow's heartbeat timeout is a few of these. */
export const GENERATOR_HEARTBEAT_MS = 1000;

export interface LoadgenActivityOptions {
  /** Needed by the control activities (run rows; ingest/graphql seed data and tokens). */
  database?: Database;
  /**
   * The deployment's ingest secret (LADDER_INGEST_SECRET). Generators of ingest, graphql and
   * launch runs need it too: they make their tokens from it, so no token is in Temporal's history.
   */
  ingestSecret?: string;
  /** An API token to use instead of creating one (LADDER_API_TOKEN); then every loadgen worker needs it. */
  apiToken?: string;
  log: Logger;
}

export interface PrepareInput {
  runId: string;
  scenario: Scenario;
  target: string | null;
  mode: CapacityRunRecord['mode'];
}

export interface GenerateInput {
  runId: string;
  scenario: Scenario;
  prepared: Prepared;
  /** This generator's share of the step's profile. */
  load: LoadProfile;
  slot: GeneratorSlot;
}

export interface MergeInput {
  runId: string;
  /** Position of the step in the run. */
  idx: number;
  generators: number;
  thresholds: Scenario['thresholds'];
  reports: GeneratorReport[];
  /** Why the step is not whole (a generator lost or cancelled); null when every report came back. */
  incomplete: string | null;
}

export interface FinishInput {
  runId: string;
  status: Exclude<CapacityRunStatus, 'running'>;
  knee: number | null;
  kneeIsLowerBound: boolean;
  stopReason: string | null;
  prepared?: Prepared | null;
  scaling?: { samples: ScalingSample[]; forRate: number } | null;
  error?: string | null;
}

/** A step as the workflow sees it: everything but the histogram, which stays in the database. */
export type StepSummary = Omit<StepRecord, 'histogram'>;

const redact = (url: string | null | undefined): string | null => {
  if (!url) return null;
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return null;
  }
};

export function createLoadgenActivities(options: LoadgenActivityOptions) {
  const { log } = options;
  const database = () => {
    if (!options.database) throw ApplicationFailure.nonRetryable('this loadgen worker has no database (DATABASE_URL): it can only generate load', 'NoDatabase');
    return options.database;
  };

  return {
    /** Creates the run row and prepares the target (seed data, tokens); returns what generators need. */
    async capacityPrepare(input: PrepareInput): Promise<Prepared> {
      const db = database();
      let prepared: Prepared;
      try {
        prepared = await prepareTarget(input.scenario, { target: input.target ?? undefined, database: db, ingestSecret: options.ingestSecret, apiToken: options.apiToken });
      } catch (err) {
        // A missing setting or an unusable target will not be cured by retrying.
        if (err instanceof TargetError) throw ApplicationFailure.nonRetryable(err.message, 'TargetError');
        throw err;
      }
      const target = prepared.kind === 'http' ? prepared.url : 'target' in prepared ? prepared.target : input.target;
      await createCapacityRun(db.db, { id: input.runId, scenario: input.scenario, target: redact(target), mode: input.mode, host: { cpus: os.cpus().length, loadavgStart: os.loadavg(), node: process.version } });
      return prepared;
    },

    /**
     * Runs one generator's share of a step and returns its histogram and counts. Heartbeats every
     * second while it runs, also while in-flight operations drain, so a killed worker is noticed
     * within the heartbeat timeout; a cancelled run stops it at the next heartbeat.
     */
    async capacityGenerate(input: GenerateInput): Promise<GeneratorReport> {
      const ctx = Context.current();
      let counts: ExecutorCounts = { planned: 0, started: 0, succeeded: 0, failed: 0, dropped: 0, inFlight: 0 };
      ctx.heartbeat(counts);
      const beat = setInterval(() => ctx.heartbeat(counts), GENERATOR_HEARTBEAT_MS);
      log.info('generator started', { runId: input.runId, slot: input.slot.index, of: input.slot.count, pid: process.pid });
      try {
        const secrets = { ingestSecret: options.ingestSecret, apiToken: options.apiToken };
        const report = await runGenerator(input.scenario, input.prepared, input.load, input.slot, { signal: ctx.cancellationSignal, onTick: (c) => (counts = c), secrets });
        // A cancelled generator's partial counts are no measurement: report the cancellation itself.
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
        return report;
      } finally {
        clearInterval(beat);
      }
    },

    /** Merges the generators' histograms and counts, checks the thresholds, stores the step. */
    async capacityMergeStep(input: MergeInput): Promise<StepSummary> {
      const step = mergeStep(input.thresholds, [...input.reports].sort((a, b) => a.slot.index - b.slot.index), input.incomplete);
      await recordCapacityStep(database().db, input.runId, input.idx, input.generators, step);
      const { histogram: _stored, ...summary } = step;
      return summary;
    },

    /** Ends the run: the knee, the scaling fit, tokens made for the run revoked. */
    async capacityFinish(input: FinishInput): Promise<ScalingAnswer | null> {
      const db = database();
      const tokenId = preparedTokenId(input.prepared);
      if (tokenId) await revokeApiToken(db.db, tokenId);
      const scaling = input.scaling && input.scaling.samples.length ? fitCapacityScaling(input.scaling.samples, input.scaling.forRate) : null;
      const [row] = await db.pool.query<{ host: CapacityRunRecord['host'] }>('select host from capacity_runs where id = $1', [input.runId]).then((r) => r.rows);
      const host = row?.host ? { ...row.host, loadavgEnd: os.loadavg() } : undefined;
      await finishCapacityRun(db.db, input.runId, { ...input, scaling, host });
      return scaling;
    },
  };
}

export type LoadgenActivities = ReturnType<typeof createLoadgenActivities>;

export interface LoadgenWorkerOptions extends LoadgenActivityOptions {
  temporalAddress: string;
  namespace?: string;
  /** Generator queue polled (default `ladder-loadgen`); null: this process only controls. */
  generatorQueue?: string | null;
  /** Also run the capacity workflow and its bookkeeping here (needs `database`). */
  controlQueue?: string | null;
  /** Generator activities this process runs at once (each is one share of a step). */
  maxGenerators?: number;
  workflowBundle?: WorkflowBundleWithSourceMap;
}

export interface LoadgenWorker {
  running: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startLoadgenWorker(options: LoadgenWorkerOptions): Promise<LoadgenWorker> {
  if (options.controlQueue && !options.database) throw new Error('a loadgen worker that runs the control queue needs a database (DATABASE_URL)');
  const connection = await NativeConnection.connect({ address: options.temporalAddress });
  const activities = createLoadgenActivities(options);
  const namespace = options.namespace ?? 'default';
  const workers: Worker[] = [];
  const generatorQueue = options.generatorQueue === undefined ? LOADGEN_TASK_QUEUE : options.generatorQueue;
  const controlQueue = options.controlQueue ?? null;
  const { capacityGenerate, ...control } = activities;
  try {
    // One queue for both (--local, tests): one worker, or Temporal refuses the second poller's registration.
    if (controlQueue && controlQueue === generatorQueue) {
      workers.push(await Worker.create({ connection, namespace, taskQueue: controlQueue, workflowBundle: options.workflowBundle ?? (await workflowBundle()), activities, maxConcurrentActivityTaskExecutions: (options.maxGenerators ?? 4) + 4 }));
    } else {
      if (generatorQueue) {
        workers.push(
          await Worker.create({
            connection,
            namespace,
            taskQueue: generatorQueue,
            activities: { capacityGenerate },
            maxConcurrentActivityTaskExecutions: options.maxGenerators ?? 4,
            // A generator is stopped when its run is cancelled; waiting longer than its own drain is pointless.
            shutdownGraceTime: '15s',
          }),
        );
      }
      if (controlQueue) {
        workers.push(await Worker.create({ connection, namespace, taskQueue: controlQueue, workflowBundle: options.workflowBundle ?? (await workflowBundle()), activities: control }));
      }
    }
  } catch (err) {
    // A worker created before the failure holds the connection until the process ends.
    if (!workers.length) await connection.close();
    throw err;
  }
  if (!workers.length) {
    await connection.close();
    throw new Error('a loadgen worker needs a generator queue, a control queue, or both');
  }
  const running = Promise.all(workers.map((w) => w.run())).then(
    () => connection.close(),
    async (err) => {
      await connection.close();
      throw err;
    },
  );
  return {
    running,
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
    },
  };
}
