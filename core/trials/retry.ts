/**
 * Retrying one failed or cancelled trial outside its sweep's run: the trial goes back to
 * `planned` with its original budget of attempts on top of the ones it used (an execution is per
 * trial attempt, so attempt numbers keep counting), and a lone `trialWorkflow` runs it.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { events, trials } from '../db/schema';
import { trialWorkflowId } from '../../workflows/ids';

export const RETRYABLE_TRIAL_STATUSES = ['failed', 'cancelled'] as const;

export interface RetryContext {
  db: Db;
  temporal: Client;
  taskQueue: string;
}

export type RetryableTrial = Pick<typeof trials.$inferSelect, 'id' | 'sweepId' | 'status' | 'exitReason' | 'maxAttempts' | 'result' | 'finishedAt'>;

/** The trial is not failed or cancelled (`status` says what it is). */
export class NotRetryableError extends Error {
  constructor(readonly trialId: string, readonly status: string) {
    super(`only a failed or cancelled trial can be retried (this one is ${status})`);
    this.name = 'NotRetryableError';
  }
}

/** Someone else changed the trial meanwhile, or its lone workflow still runs. */
export class RetryConflictError extends Error {
  constructor(readonly trialId: string, why: string) {
    super(`trial "${trialId}" ${why}`);
    this.name = 'RetryConflictError';
  }
}

/** `retries` of the sweep's spec + 1: the attempts a trial gets each time it is (re)tried. */
export function attemptBudget(spec: unknown): number {
  const retries = (spec as { retries?: unknown } | null)?.retries;
  return (typeof retries === 'number' ? retries : 0) + 1;
}

export async function retryTrial(ctx: RetryContext, trial: RetryableTrial, spec: unknown): Promise<void> {
  if (!(RETRYABLE_TRIAL_STATUSES as readonly string[]).includes(trial.status)) throw new NotRetryableError(trial.id, trial.status);
  const [reset] = await ctx.db
    .update(trials)
    .set({
      status: 'planned',
      maxAttempts: sql`${trials.attempts} + ${attemptBudget(spec)}`,
      exitReason: null,
      result: null,
      finishedAt: null,
      updatedAt: new Date(),
    })
    .where(and(eq(trials.id, trial.id), inArray(trials.status, [...RETRYABLE_TRIAL_STATUSES])))
    .returning({ id: trials.id });
  if (!reset) throw new RetryConflictError(trial.id, 'changed meanwhile; try again');
  await ctx.db.insert(events).values({
    sweepId: trial.sweepId,
    trialId: trial.id,
    type: 'trial.retry.requested',
    data: { previousStatus: trial.status, previousExitReason: trial.exitReason },
  });
  try {
    await ctx.temporal.workflow.start('trialWorkflow', {
      workflowId: trialWorkflowId(trial.id),
      taskQueue: ctx.taskQueue,
      args: [{ trialId: trial.id }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    });
  } catch (err) {
    // Nothing runs it: put the trial back as it was, so a later retry can try again.
    await ctx.db
      .update(trials)
      .set({ status: trial.status, maxAttempts: trial.maxAttempts, exitReason: trial.exitReason, result: trial.result, finishedAt: trial.finishedAt })
      .where(eq(trials.id, trial.id));
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new RetryConflictError(trial.id, 'is still running');
    throw new Error(`retry trial ${trial.id}: start its workflow: ${(err as Error).message}`, { cause: err });
  }
}
