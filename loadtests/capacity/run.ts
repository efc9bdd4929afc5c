/**
 * Starting and reading a capacity run. The run itself is the capacity workflow
 * (workflows/capacity.ts) on a loadgen worker (workers/loadgen.ts); its record is in Postgres
 * (core/capacity/store.ts). There is no other path: tests and `--local` start a loadgen worker in
 * their own process and go through the same workflow.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { getCapacityRun, type CapacityRunWithSteps } from '../../core/capacity/store';
import type { Db } from '../../core/db/client';
import { capacityWorkflowId, type CapacityWorkflowInput, type CapacityWorkflowResult } from '../../workflows/capacity';
import type { Scenario } from './scenario';

export function newRunId(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-').toLowerCase();
  return `${name}-${stamp}-${randomBytes(2).toString('hex')}`;
}

export interface StartRunOptions {
  client: Client;
  runId: string;
  scenario: Scenario;
  /** Base URL of the target; overrides the scenario's. */
  target?: string | null;
  /** Queue the workflow and its bookkeeping run on (a loadgen worker with a database polls it). */
  controlQueue: string;
  /** Queue of the generator activities (default `ladder-loadgen`). */
  generatorQueue?: string;
  /** Generators per step; overrides scenario.agents. */
  generators?: number;
}

export async function startCapacityRun(o: StartRunOptions): Promise<WorkflowHandle<(input: CapacityWorkflowInput) => Promise<CapacityWorkflowResult>>> {
  const input: CapacityWorkflowInput = { runId: o.runId, scenario: o.scenario, target: o.target ?? o.scenario.target ?? null, generatorQueue: o.generatorQueue, generators: o.generators };
  return o.client.workflow.start('capacityWorkflow', { taskQueue: o.controlQueue, workflowId: capacityWorkflowId(o.runId), args: [input] });
}

/**
 * Starts a run and waits for it; `signal` cancels it (every generator stops). Resolves with the
 * stored record also when the run was cancelled or failed: its status and steps say what happened.
 */
export async function runCapacity(o: StartRunOptions & { db: Db; signal?: AbortSignal }): Promise<CapacityRunWithSteps> {
  const handle = await startCapacityRun(o);
  const onAbort = () => void handle.cancel().catch(() => {});
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await handle.result();
  } catch (err) {
    // The run's record holds the outcome; a run that never created one has nothing to show.
    if (!(err instanceof WorkflowFailedError)) throw err;
    const run = await getCapacityRun(o.db, o.runId).catch(() => null);
    if (!run) throw new Error(`capacity run ${o.runId} failed before it started: ${err.cause?.message ?? err.message}`);
    return run;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  return getCapacityRun(o.db, o.runId);
}

/** The `--json` object: the run without histograms. */
export function runSummaryJson(run: CapacityRunWithSteps) {
  return {
    id: run.id,
    scenario: run.scenario,
    kind: run.kind,
    status: run.status,
    target: run.target,
    knee: run.knee,
    kneeIsLowerBound: run.kneeIsLowerBound,
    stopReason: run.stopReason,
    error: run.error,
    thresholds: run.thresholds,
    host: run.host,
    scaling: run.scaling,
    steps: run.steps.map((s) => ({
      generators: s.generators,
      offered: s.offered,
      achieved: s.achieved,
      p50Ms: s.p50Ms,
      p95Ms: s.p95Ms,
      p99Ms: s.p99Ms,
      errorRate: s.errorRate,
      droppedRate: s.data.droppedRate,
      passed: s.passed,
      incomplete: s.incomplete,
      thresholds: s.data.thresholds,
      perGenerator: s.data.generators,
      extra: s.data.extra,
    })),
  };
}
