/**
 * One run of a schedule (core/schedules): what a Temporal schedule's action starts. It launches
 * an ordinary sweep (its row made by an activity, its workflow a child under the sweep's own
 * business id `sweep/<id>`, so `ladder sweep cancel` and the dashboard treat it like any other),
 * waits for it, then has the run compared with the schedule's earlier runs and, on a regression,
 * the spec's webhook posted (retried with back-off; a refused URL is not retried).
 *
 * Overlap (skip, buffer one, cancel the older) is the Temporal schedule's policy. Cancelling this
 * workflow (cancel-other) cancels its sweep, which cancels its trials; the run is closed as cancelled.
 */
import { CancellationScope, executeChild, isCancellation, ParentClosePolicy, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { FinishedRun } from '../core/schedules/store';
import { sweepWorkflowId } from './ids';
import type { ScheduleActivities } from '../workers/schedule-activities';

const bookkeeping = proxyActivities<ScheduleActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Webhook attempts: a receiver down for a few minutes still gets the report; then the run gives up on it. */
export const WEBHOOK_ATTEMPTS = 6;
const webhook = proxyActivities<ScheduleActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: WEBHOOK_ATTEMPTS, nonRetryableErrorTypes: ['BadWebhook', 'NotFound'] },
});

export interface ScheduledSweepInput {
  scheduleId: string;
}

export interface ScheduledSweepResult extends FinishedRun {
  sweepId: string;
  sweepStatus: string;
  /** Whether the webhook took the report (false: none needed, or every attempt failed). */
  notified: boolean;
}

export async function scheduledSweepWorkflow(input: ScheduledSweepInput): Promise<ScheduledSweepResult> {
  const { workflowId, runId } = workflowInfo();
  const run = await bookkeeping.beginScheduledRun({ scheduleId: input.scheduleId, workflowId, workflowRunId: runId });
  let sweepStatus: string;
  try {
    sweepStatus = await executeChild('sweepWorkflow', {
      workflowId: sweepWorkflowId(run.sweepId),
      args: [{ sweepId: run.sweepId }],
      // Terminated (terminate-other, or by hand) still stops the sweep's trials.
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    });
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => bookkeeping.finishScheduledRun({ runId: run.runId, cancelled: true }));
      throw err;
    }
    // A failed sweep workflow still leaves its stored status and results: the run compares what there is.
    sweepStatus = 'failed';
  }
  const finished = await bookkeeping.finishScheduledRun({ runId: run.runId });
  let notified = false;
  if (finished.regressions > 0 && finished.webhook) {
    try {
      notified = (await webhook.postScheduleWebhook({ runId: run.runId })).posted;
    } catch (err) {
      if (isCancellation(err)) throw err;
      // The findings are stored and shown whether or not the receiver took them.
    }
  }
  return { ...finished, sweepId: run.sweepId, sweepStatus, notified };
}
