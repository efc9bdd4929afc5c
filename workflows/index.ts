/**
 * Sweep and trial workflows. Deterministic: no I/O, clocks or randomness here; activities do the
 * work and these functions only decide what happens next.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowCancellationType,
  continueAsNew,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { LadderActivities } from '../workers/activities';

// Activity-option profiles, named once.
/** Short database bookkeeping; retried without limit so a restarted database loses nothing. */
const bookkeeping = proxyActivities<LadderActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});
/** Waiting on a job: long, heartbeating, and it must finish its cleanup when cancelled. */
const waiting = proxyActivities<LadderActivities>({
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '10s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Hard cap on children in flight, whatever the spec says: keeps one workflow's history sane. */
export const MAX_CHILDREN_IN_FLIGHT = 200;
/** Children started by one run before it continues as new, unless Temporal suggests it earlier. */
export const DEFAULT_CHILDREN_PER_RUN = 1000;

/**
 * A sweep whose first this-many finished trials all failed with `bad-config` stops: the job
 * refuses the config itself (a range its kind checks at start), so the rest of the grid would
 * fail the same way, one GPU slot at a time.
 */
export const BAD_CONFIG_STOP_AFTER = 3;

/** The exit reason the executors give a job that exited 2 (bad config, never retried). */
const BAD_CONFIG = 'bad-config';

export interface SweepWorkflowInput {
  sweepId: string;
  /**
   * Finished trials so far, all of them failed with bad-config; null once any other outcome was
   * seen. Carried across continue-as-new.
   */
  badConfigStreak?: number | null;
  /** Rung to resume at after continue-as-new; defaults to the sweep's stored current rung. */
  startRung?: number;
  /** Children one run may start before continuing as new (tests lower it to exercise that path). */
  childrenPerRun?: number;
}

export interface TrialWorkflowInput {
  trialId: string;
}

export interface TrialWorkflowResult {
  status: string;
  /** Why the trial did not succeed (an executor reason such as 'bad-config'); null on success. */
  reason: string | null;
}

export const sweepWorkflowId = (sweepId: string) => `sweep/${sweepId}`;
export const trialWorkflowId = (trialId: string) => `trial/${trialId}`;

export async function sweepWorkflow(input: SweepWorkflowInput): Promise<string> {
  const { sweepId } = input;
  const start = await bookkeeping.startSweep(sweepId);
  if (start.finished) return start.status;

  const childrenPerRun = input.childrenPerRun ?? DEFAULT_CHILDREN_PER_RUN;
  const limit = Math.max(1, Math.min(start.concurrency, MAX_CHILDREN_IN_FLIGHT));
  const inFlight = new Map<string, Promise<void>>();
  let started = 0;
  let badConfigStreak = input.badConfigStreak === undefined ? 0 : input.badConfigStreak;
  let badConfigReason = '';
  const stopForBadConfig = () => badConfigStreak !== null && badConfigStreak >= BAD_CONFIG_STOP_AFTER;

  const noteOutcome = (result: TrialWorkflowResult | string | undefined) => {
    if (badConfigStreak === null || result === undefined) return;
    // A trial run by an older worker returned its bare status.
    const { status, reason } = typeof result === 'string' ? { status: result, reason: null } : result;
    if (status === 'failed' && reason === BAD_CONFIG) {
      badConfigStreak++;
      badConfigReason = reason;
    } else {
      badConfigStreak = null;
    }
  };

  // Children resolve (never reject), so no promise is left rejected while we wait on others.
  const runChild = (trialId: string): Promise<void> =>
    executeChild(trialWorkflow, {
      workflowId: trialWorkflowId(trialId),
      args: [{ trialId }],
      cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    }).then(
      (result) => noteOutcome(result as TrialWorkflowResult | string),
      () => undefined, // the trial records its own outcome; a cancelled sweep is noticed below
    );

  const throwIfCancelled = () => {
    if (CancellationScope.current().consideredCancelled) {
      throw new CancelledFailure('sweep cancelled');
    }
  };

  try {
    for (let rung = input.startRung ?? start.currentRung; rung < start.rungs && !stopForBadConfig(); rung++) {
      const trialIds = await bookkeeping.listRunnableTrials(sweepId, rung);
      let needsNewRun = false;
      for (const trialId of trialIds) {
        while (inFlight.size >= limit) {
          await Promise.race(inFlight.values());
          throwIfCancelled();
        }
        if (stopForBadConfig()) break;
        if (started >= childrenPerRun || workflowInfo().continueAsNewSuggested) {
          needsNewRun = true;
          break;
        }
        started++;
        const child = runChild(trialId).finally(() => inFlight.delete(trialId));
        inFlight.set(trialId, child);
      }
      while (inFlight.size > 0) {
        await Promise.race(inFlight.values());
        throwIfCancelled();
      }
      if (needsNewRun) {
        // Drained first: the next run re-lists what is left of this rung and starts afresh.
        await continueAsNew<typeof sweepWorkflow>({ sweepId, startRung: rung, childrenPerRun: input.childrenPerRun, badConfigStreak });
      }
      if (stopForBadConfig()) break;
      await bookkeeping.finishRung(sweepId, rung);
    }
    if (stopForBadConfig()) {
      const reason =
        `sweep stopped: its first ${BAD_CONFIG_STOP_AFTER} finished trials all failed with ${badConfigReason} ` +
        '(the job refused the config); the remaining trials were not run. Fix the spec and submit it again.';
      await bookkeeping.finishSweep(sweepId, 'stopped', reason);
      throw ApplicationFailure.nonRetryable(reason, 'BadConfig');
    }
    return await bookkeeping.finishSweep(sweepId, 'completed');
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        // Children were asked to cancel with us; wait until each has stopped its job.
        await Promise.all(inFlight.values());
        await bookkeeping.finishSweep(sweepId, 'cancelled');
      });
    }
    throw err;
  }
}

export async function trialWorkflow(input: TrialWorkflowInput): Promise<TrialWorkflowResult> {
  const { trialId } = input;
  const start = await bookkeeping.beginTrial(trialId);
  if (start.done) return { status: start.status, reason: null };
  try {
    for (let attempt = start.attempts + 1; ; attempt++) {
      await bookkeeping.markAttemptStarted(trialId, attempt);
      const outcome = await waiting.runTrialAttempt({ trialId, attempt });
      const retry = outcome.state !== 'succeeded' && outcome.retryable && attempt < start.maxAttempts;
      const status = await bookkeeping.recordAttempt({ trialId, attempt, outcome, final: !retry });
      if (!retry) return { status, reason: outcome.state === 'succeeded' ? null : (outcome.reason ?? outcome.state) };
      await sleep(Math.min(1000 * 2 ** (attempt - 1), 60_000));
    }
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => bookkeeping.cancelTrial(trialId));
    }
    throw err;
  }
}
