/**
 * Sweep and trial workflows. Deterministic: no I/O, clocks or randomness here; activities do the
 * work and these functions only decide what happens next. Why trials are activities of the sweep
 * workflow (not child workflows), and the figures behind it: workflows/README.md.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { BAD_CONFIG_REASON } from '../workers/executors/types';
import type { LadderActivities, TrialAttemptRef, TrialCursor, TrialOutcome } from '../workers/activities';
import type { SearchActivities } from '../workers/search-activities';

// Activity-option profiles, named once.
/** Short database bookkeeping; retried without limit so a restarted database loses nothing. */
const bookkeeping = proxyActivities<LadderActivities & SearchActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});
/** Running trials: long, heartbeating, and it must finish its cleanup when cancelled. */
const waiting = proxyActivities<LadderActivities>({
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '10s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Hard cap on trials in flight, whatever the spec says: keeps one workflow's history sane. */
export const MAX_TRIALS_IN_FLIGHT = 200;
/** Trials one run starts before it continues as new, unless Temporal suggests it earlier. */
export const DEFAULT_TRIALS_PER_RUN = 2000;
/**
 * Most trials in one `runTrials` activity. An activity returns when all its trials are done, so
 * a batch costs one activity's Temporal overhead (schedule, start, heartbeat, complete, a
 * workflow task) instead of one per trial; 32 amortises that to a few percent of a short trial.
 */
export const MAX_TRIALS_PER_ACTIVITY = 32;
/**
 * Batches in flight the window is split into, so the window refills while other batches still
 * wait, instead of one batch holding every slot until its slowest trial ends.
 */
export const BATCHES_PER_WINDOW = 4;
/**
 * Batching only while trials are short: when the mean wall time of the recent outcomes is below
 * this, a batch waiting on its slowest trial keeps slots idle for at most a few seconds. Longer
 * trials (or none seen yet) run one per activity, so a long trial never holds other slots.
 */
export const SHORT_TRIAL_SECONDS = 2;
/** Outcomes the short-trial mean is taken over. */
export const RECENT_OUTCOMES = 32;

/**
 * A sweep whose first this-many finished trials all failed with `bad-config` stops: the job
 * refuses the config itself (a range its kind checks at start), so the rest of the grid would
 * fail the same way, one GPU slot at a time.
 */
export const BAD_CONFIG_STOP_AFTER = 3;


/** A trial to resume in the next run: its attempt, and when it may start (back-off), in workflow time. */
export interface PendingTrial extends TrialAttemptRef {
  notBefore?: number;
  /** Its rung, when it is not the run's `startRung` (an ASHA promotion running ahead). */
  rung?: number;
}

export interface SweepWorkflowInput {
  sweepId: string;
  /**
   * Finished trials so far, all of them failed with bad-config; null once any other outcome was
   * seen. Carried across continue-as-new.
   */
  badConfigStreak?: number | null;
  /** Rung to resume at after continue-as-new; defaults to the sweep's stored current rung. */
  startRung?: number;
  /** New trials one run may start before continuing as new (tests lower it to exercise that path). */
  trialsPerRun?: number;
  /** Runnable trials fetched per page (default the activity's, 500); tests lower it to page a small rung. */
  pageSize?: number;
  /** Continue-as-new state: where paging of `startRung` resumes. */
  cursor?: TrialCursor | null;
  /** Continue-as-new state: trials in flight or waiting on back-off, resumed at once (no draining). */
  pending?: PendingTrial[];
  /** Continue-as-new state: trials of the last page not started yet (they count as new starts). */
  queued?: TrialAttemptRef[];
  /** Continue-as-new state: wall seconds of the latest outcomes (the batching decision). */
  recentWallSeconds?: number[];
  /**
   * Promote variants to the next rung as their results arrive (the `ashaPromotions` activity),
   * not only when the rung is complete. Default: whether the spec has `search.asha` (startSweep
   * reads it); false runs such a sweep as synchronous successive halving.
   */
  asha?: boolean;
  /** Continue-as-new state: promoted[r] = variants promoted early into rung r. */
  promoted?: number[][];
}

export interface TrialWorkflowInput {
  trialId: string;
}

export interface TrialWorkflowResult {
  status: string;
  /** Why the trial did not succeed (an executor reason such as 'bad-config'); null on success. */
  reason: string | null;
}

export { sweepWorkflowId, trialWorkflowId } from './ids';

export async function sweepWorkflow(input: SweepWorkflowInput): Promise<string> {
  const { sweepId } = input;
  const start = await bookkeeping.startSweep(sweepId);
  if (start.finished) return start.status;

  const trialsPerRun = input.trialsPerRun ?? DEFAULT_TRIALS_PER_RUN;
  const limit = Math.max(1, Math.min(start.concurrency, MAX_TRIALS_IN_FLIGHT));
  const batchLimit = Math.max(1, Math.min(MAX_TRIALS_PER_ACTIVITY, Math.ceil(limit / BATCHES_PER_WINDOW)));
  const recent = [...(input.recentWallSeconds ?? [])].slice(-RECENT_OUTCOMES);
  let badConfigStreak = input.badConfigStreak === undefined ? 0 : input.badConfigStreak;
  let badConfigReason = '';
  const stopForBadConfig = () => badConfigStreak !== null && badConfigStreak >= BAD_CONFIG_STOP_AFTER;

  // Everything the workflow holds is bounded by the window: trials in running batches, trials
  // waiting on back-off (both hold a slot), and at most one page of not-yet-started trials.
  const batches = new Set<Promise<void>>();
  const inBatches = new Map<string, number>(); // trialId → attempt
  const backingOff = new Map<string, PendingTrial>();
  let ready: TrialAttemptRef[] = [];
  /** Carried trials not yet relaunched: they are not new starts, and a run hands over only after all are back. */
  const resumed = new Set<string>();
  const fromPages = new Set<string>();
  let startedThisRun = 0;
  let wake = false;
  const notify = () => (wake = true);

  const asha = input.asha ?? start.asha;
  /** promoted[r]: variants moved up into rung r early (dense, so it crosses JSON intact). */
  const promoted: number[][] = Array.from({ length: start.rungs }, (_, r) => [...(input.promoted?.[r] ?? [])]);
  /** Rung of each trial held here (ready, running, backing off): a rung is done when none of its trials is held. */
  const rungOf = new Map<string, number>();
  /** A trial finished since the last look for promotions (only then can one be due). */
  let freshResults = true;
  const held = (trialId: string) => inBatches.has(trialId) || backingOff.has(trialId) || ready.some((t) => t.trialId === trialId);
  const heldAt = (r: number) => {
    let n = 0;
    for (const id of [...inBatches.keys(), ...backingOff.keys(), ...ready.map((t) => t.trialId)]) if (rungOf.get(id) === r) n++;
    return n;
  };

  const batchSize = () => {
    if (recent.length === 0) return 1;
    const mean = recent.reduce((s, x) => s + x, 0) / recent.length;
    return mean < SHORT_TRIAL_SECONDS ? batchLimit : 1;
  };

  /** Holds a trial's slot for `ms`, then queues its next attempt first. */
  const backOff = (trial: PendingTrial, ms: number) => {
    backingOff.set(trial.trialId, trial);
    // Timers of a cancelled workflow reject; the cancel path below takes over then.
    sleep(ms).then(
      () => {
        if (backingOff.delete(trial.trialId)) ready.unshift({ trialId: trial.trialId, attempt: trial.attempt });
        notify();
      },
      () => undefined,
    );
  };

  const noteOutcome = (o: TrialOutcome) => {
    recent.push(o.wallSeconds);
    if (recent.length > RECENT_OUTCOMES) recent.shift();
    if (!o.final) {
      const next = { trialId: o.trialId, attempt: o.attempt + 1, notBefore: Date.now() + o.retryInMs };
      backOff(next, o.retryInMs);
      return;
    }
    rungOf.delete(o.trialId);
    freshResults = true;
    if (badConfigStreak === null) return;
    if (o.status === 'failed' && o.reason === BAD_CONFIG_REASON) {
      badConfigStreak++;
      badConfigReason = o.reason;
    } else {
      badConfigStreak = null;
    }
  };

  // Batches resolve (never reject), so no promise is left rejected while the loop waits.
  const launch = (list: TrialAttemptRef[]) => {
    for (const t of list) inBatches.set(t.trialId, t.attempt);
    const batch: Promise<void> = waiting
      .runTrials({ sweepId, attempts: list.map(({ trialId, attempt }) => ({ trialId, attempt })) })
      .then(
        (outcomes) => {
          for (const o of outcomes) noteOutcome(o);
        },
        () => undefined, // only a cancellation ends it (retries are unlimited); noticed below
      )
      .finally(() => {
        for (const t of list) inBatches.delete(t.trialId);
        batches.delete(batch);
        notify();
      });
    batches.add(batch);
  };

  const carried = (): PendingTrial[] =>
    [
      ...[...inBatches].map(([trialId, attempt]) => ({ trialId, attempt })),
      ...backingOff.values(),
      ...ready.filter((t) => !fromPages.has(t.trialId)),
    ].map((t) => (rungOf.has(t.trialId) ? { ...t, rung: rungOf.get(t.trialId) } : t));
  const queued = () => ready.filter((t) => fromPages.has(t.trialId));

  try {
    let rung = input.startRung ?? start.currentRung;
    let cursor: TrialCursor | null = input.cursor ?? null;
    let exhausted = false;
    // Carried trials come first, right away: their jobs may be running (re-submitting finds them).
    for (const p of input.pending ?? []) {
      resumed.add(p.trialId);
      rungOf.set(p.trialId, p.rung ?? rung);
      if (p.notBefore !== undefined && p.notBefore > Date.now()) {
        backOff(p, p.notBefore - Date.now());
      } else ready.push({ trialId: p.trialId, attempt: p.attempt });
    }
    for (const q of input.queued ?? []) {
      fromPages.add(q.trialId);
      rungOf.set(q.trialId, rung);
      ready.push(q);
    }
    for (; rung < start.rungs && !stopForBadConfig(); rung++) {
      for (;;) {
        // Cleared before looking at the state, so an outcome arriving meanwhile wakes the wait below.
        wake = false;
        const free = () => limit - inBatches.size - backingOff.size;
        while (free() > 0 && !stopForBadConfig()) {
          // ASHA: a free slot goes first to a variant that earned the next rung (as ASHA's get_job).
          if (asha && freshResults && rung < start.rungs - 1) {
            freshResults = false;
            const moves = await bookkeeping.ashaPromotions({ sweepId, fromRung: rung, promoted, max: free() });
            const front: TrialAttemptRef[] = [];
            for (const m of moves) {
              promoted[m.rung]?.push(m.variantIndex);
              for (const a of m.attempts) {
                if (held(a.trialId)) continue;
                rungOf.set(a.trialId, m.rung);
                front.push(a);
              }
            }
            ready.unshift(...front);
          }
          if (ready.length === 0 && !exhausted) {
            const page = await bookkeeping.listRunnableTrials(sweepId, rung, cursor, input.pageSize);
            // A page lists the rung's running trials too: ones this run holds already (carried
            // over a run boundary after the rung's last page, or promoted early by ASHA) must not
            // be launched a second time.
            const fresh = page.attempts.filter((a) => !held(a.trialId));
            for (const a of fresh) {
              fromPages.add(a.trialId);
              rungOf.set(a.trialId, rung);
            }
            ready.push(...fresh);
            cursor = page.next;
            exhausted = page.next === null;
          }
          if (ready.length === 0) break;
          // Resumed trials do not count: a run must start something new before it hands over, so
          // runs always make progress even when the window alone exceeds trialsPerRun.
          if (resumed.size === 0 && (startedThisRun >= trialsPerRun || workflowInfo().continueAsNewSuggested)) {
            await continueAsNew<typeof sweepWorkflow>({
              sweepId,
              startRung: rung,
              trialsPerRun: input.trialsPerRun,
              pageSize: input.pageSize,
              badConfigStreak,
              cursor,
              pending: carried(),
              queued: queued(),
              recentWallSeconds: recent,
              asha: input.asha,
              promoted: asha ? promoted : undefined,
            });
          }
          const take = Math.min(free(), batchSize(), ready.length);
          const list = ready.splice(0, take);
          for (const t of list) {
            fromPages.delete(t.trialId);
            if (!resumed.delete(t.trialId)) startedThisRun++;
          }
          launch(list);
        }
        // A bad-config stop waits only for running batches; back-off retries are dropped with the rest.
        if (asha) {
          // Trials promoted early may still run above this rung: the rung is done without them.
          const baseDone = exhausted && heldAt(rung) === 0 && (rung < start.rungs - 1 || inBatches.size === 0);
          if (stopForBadConfig() ? inBatches.size === 0 : baseDone) break;
        } else {
          const rungDone = backingOff.size === 0 && ready.length === 0 && exhausted;
          if (inBatches.size === 0 && (stopForBadConfig() || rungDone)) break;
        }
        await condition(() => wake);
      }
      if (stopForBadConfig()) break;
      await bookkeeping.finishRung(sweepId, rung);
      cursor = null;
      exhausted = false;
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
        // Running batches were asked to cancel with us; wait until each has stopped its jobs,
        // then stop any job a batch of an earlier run still held, and close the sweep.
        await Promise.all(batches);
        await bookkeeping.cancelSweepJobs(sweepId);
        await bookkeeping.finishSweep(sweepId, 'cancelled');
      });
    }
    throw err;
  }
}

/** One trial on its own, attempt after attempt with back-off; the same activity as a sweep's. */
export async function trialWorkflow(input: TrialWorkflowInput): Promise<TrialWorkflowResult> {
  const { trialId } = input;
  const start = await bookkeeping.beginTrial(trialId);
  if (start.finished) return { status: start.status, reason: null };
  for (let attempt = start.attempt; ; attempt++) {
    const [outcome] = await waiting.runTrials({ sweepId: start.sweepId, attempts: [{ trialId, attempt }] });
    if (!outcome || outcome.final) {
      return { status: outcome?.status ?? 'failed', reason: !outcome || outcome.state === 'succeeded' ? null : (outcome.reason ?? outcome.state) };
    }
    await sleep(outcome.retryInMs);
  }
}

/** Capacity load tests (ladder capacity run): its own file, one workflow bundle. */
export { capacityWorkflow, capacityWorkflowId } from './capacity';
export { scheduledSweepWorkflow } from './scheduled';
