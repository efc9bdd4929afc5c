/**
 * Temporal activities: all the I/O of a sweep (Postgres and the executor). Workflows only decide.
 * Every state transition is `core/trials/state.ts`'s; these are thin callers that add the
 * executor and Temporal's heartbeats. Dependencies come in through `createActivities`, so tests
 * and the embedded stack can wire their own database, executor and logger.
 */
import { setMaxListeners } from 'node:events';
import { Context, CancelledFailure } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../core/db/client';
import type { SweepStatus } from '../core/db/schema';
import { mintIngestToken } from '../core/ingest/tokens';
import {
  BadSpecError,
  createTrialState,
  SweepNotFoundError,
  TrialNotFoundError,
  type ExecutorVerdict,
  type RecordedOutcome,
  type RunnablePage,
  type RungSummary,
  type StartedAttempt,
  type SweepInfo,
  type SweepStart,
  type TrialAttemptRef,
  type TrialCursor,
} from '../core/trials/state';
import { InvocationError } from './executors/command';
import { BAD_CONFIG_REASON, isTerminal, type ExecutionRef, type ExecutionStatus, type Executor, type JobLaunch } from './executors/types';

export type { RungSummary, SweepStart, TrialAttemptRef, TrialCursor, RunnablePage };

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface ActivityDeps {
  db: Db;
  executor: Executor;
  ingest: {
    /** Base URL jobs push to, e.g. `http://127.0.0.1:4000/ingest/v1`. */
    url: string;
    secret: string;
  };
  log: Logger;
  /** How often a waiting activity asks the executor for status when it has no `wait`; default 1000 ms. */
  pollIntervalMs?: number;
  /** How often a waiting activity heartbeats; default 1000 ms (Temporal throttles what it sends). */
  heartbeatIntervalMs?: number;
}

/** Most trials one `runTrials` call takes: bounds its heartbeat details and its result. */
export const MAX_TRIALS_PER_CALL = 256;

/** How one attempt of one trial ended, as `runTrials` returns it to the workflow. */
export interface TrialOutcome extends Omit<RecordedOutcome, 'recorded'> {
  wallSeconds: number;
}

/** Heartbeat details of `runTrials`: enough for a retried activity to resume without a second launch. */
interface RunTrialsHeartbeat {
  trials: Array<{ trialId: string; attempt: number; ref: ExecutionRef; submittedAt: number; outcome?: TrialOutcome }>;
}

/** Runs one step, naming it in the error so a failure says where it happened. */
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // Already says what failed and how: a cancellation, a Temporal failure, a launch that cannot run.
    if (err instanceof CancelledFailure || err instanceof ApplicationFailure || err instanceof InvocationError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`${name}: ${message}`, { cause: err });
  }
}

/** Maps the state module's not-found and bad-spec errors to failures Temporal does not retry. */
async function domain<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SweepNotFoundError || err instanceof TrialNotFoundError) throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
    if (err instanceof BadSpecError) throw ApplicationFailure.nonRetryable(err.message, 'BadSpec');
    throw err;
  }
}

function checkAttempts(input: unknown): { sweepId: string; attempts: TrialAttemptRef[] } {
  const bad = (field: string, why: string): never => {
    throw ApplicationFailure.nonRetryable(`runTrials: ${field} ${why}`, 'BadInput');
  };
  const { sweepId, attempts } = (input ?? {}) as { sweepId?: unknown; attempts?: unknown };
  if (typeof sweepId !== 'string' || sweepId.length === 0) bad('sweepId', 'must be a non-empty string');
  if (!Array.isArray(attempts) || attempts.length === 0 || attempts.length > MAX_TRIALS_PER_CALL) {
    bad('attempts', `must be a list of 1..${MAX_TRIALS_PER_CALL} trials`);
  }
  const seen = new Set<string>();
  (attempts as unknown[]).forEach((a, i) => {
    const { trialId, attempt } = (a ?? {}) as { trialId?: unknown; attempt?: unknown };
    if (typeof trialId !== 'string' || trialId.length === 0 || trialId.length > 500) bad(`attempts[${i}].trialId`, 'must be a string of 1..500 characters');
    if (!Number.isInteger(attempt) || (attempt as number) < 1) bad(`attempts[${i}].attempt`, 'must be an integer >= 1');
    if (seen.has(trialId as string)) bad(`attempts[${i}].trialId`, 'is listed twice');
    seen.add(trialId as string);
  });
  return { sweepId: sweepId as string, attempts: attempts as TrialAttemptRef[] };
}

function isCancelRequested(err: unknown): boolean {
  const ctx = Context.current();
  // Only a cancellation the workflow asked for stops jobs. A worker shutting down, the run having
  // continued as new (heartbeat NOT_FOUND) or a server-side timeout leaves them running: the next
  // activity re-submits (finding the same job) and resumes waiting.
  return err instanceof CancelledFailure && (ctx.cancellationDetails?.cancelRequested === true || err.message === 'CANCELLED');
}

const abortError = () => new CancelledFailure('activity cancelled');

function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function createActivities(deps: ActivityDeps) {
  const { db, executor, log } = deps;
  const pollIntervalMs = deps.pollIntervalMs ?? 1000;
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 1000;
  const state = createTrialState(db);

  function launchFor(s: StartedAttempt, sweep: SweepInfo): JobLaunch {
    const { spec } = sweep;
    return {
      executionId: `${s.trialId}-a${s.attempt}`,
      trialId: s.trialId,
      attempt: s.attempt,
      kind: sweep.kind,
      config: s.config,
      // A sweep of the user's own program (bring your own job); absent for built-in kinds.
      ...(spec.command ? { command: spec.command, workdir: spec.workdir, image: spec.image, jobEnv: spec.env } : {}),
      resources: spec.resources,
      timeoutSeconds: spec.timeoutSeconds,
      env: {
        LADDER_TRIAL_ID: s.trialId,
        LADDER_INGEST_URL: deps.ingest.url,
        LADDER_INGEST_TOKEN: mintIngestToken(deps.ingest.secret, { trialId: s.trialId, attempt: s.attempt, timeoutSeconds: spec.timeoutSeconds }),
        LADDER_ATTEMPT: String(s.attempt),
      },
      labels: {
        'ladder.dev/project': sweep.projectId,
        'ladder.dev/sweep': s.sweepId,
        'ladder.dev/trial': s.trialId,
        'ladder.dev/rung': String(s.rungIndex),
      },
    };
  }

  /**
   * Waits until the execution ends or its deadline passes (then stops it: a timed-out attempt is
   * a retryable failure). Event-driven where the executor can tell, polling otherwise.
   */
  async function waitForExit(ref: ExecutionRef, deadline: number, timeoutSeconds: number, signal: AbortSignal): Promise<ExecutorVerdict> {
    const timedOut = async (): Promise<ExecutorVerdict> => {
      await step(`cancel ${ref.executionId} after timeout`, () => executor.cancel(ref));
      return { state: 'failed', reason: `timeout after ${timeoutSeconds}s`, retryable: true };
    };
    for (;;) {
      if (signal.aborted) throw abortError();
      let status: ExecutionStatus;
      if (executor.wait) {
        const stop = new AbortController();
        const onAbort = () => stop.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        const timer = setTimeout(onAbort, Math.max(0, deadline - Date.now()));
        try {
          status = await step(`wait for ${ref.executionId}`, () => executor.wait!(ref, stop.signal));
        } finally {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
        }
      } else {
        status = await step(`status of ${ref.executionId}`, () => executor.status(ref));
      }
      if (isTerminal(status)) return { state: status.state, reason: status.reason, retryable: status.retryable };
      if (signal.aborted) throw abortError();
      if (Date.now() > deadline) return timedOut();
      if (!executor.wait) await sleepUnless(Math.min(pollIntervalMs, Math.max(1, deadline - Date.now() + 1)), signal);
    }
  }

  const toOutcome = (r: RecordedOutcome, wallSeconds: number): TrialOutcome => ({
    trialId: r.trialId,
    attempt: r.attempt,
    status: r.status,
    state: r.state,
    reason: r.reason,
    retryable: r.retryable,
    final: r.final,
    retryInMs: r.retryInMs,
    wallSeconds,
  });

  return {
    startSweep: (sweepId: string): Promise<SweepStart> => domain(() => state.startSweep(sweepId)),

    /** One page of a rung's trials that still need an attempt, in plan order (keyset cursor). */
    listRunnableTrials: (sweepId: string, rungIndex: number, after: TrialCursor | null, limit?: number): Promise<RunnablePage> =>
      state.listRunnableTrials(sweepId, rungIndex, after, limit),

    /**
     * Runs one attempt of each listed trial concurrently and returns each outcome when all are
     * done. Heartbeat details carry the execution references (and outcomes already recorded):
     * a retried activity resumes waiting instead of launching again, and with no details it
     * re-submits, which finds the same job (submit is idempotent per `<trialId>-a<attempt>`).
     */
    async runTrials(input: { sweepId: string; attempts: TrialAttemptRef[] }): Promise<TrialOutcome[]> {
      const ctx = Context.current();
      const { attempts } = checkAttempts(input);
      const prior = new Map<string, RunTrialsHeartbeat['trials'][number]>();
      for (const t of (ctx.info.heartbeatDetails as RunTrialsHeartbeat | undefined)?.trials ?? []) prior.set(t.trialId, t);
      const outcomes = new Map<string, TrialOutcome>();
      for (const a of attempts) {
        const p = prior.get(a.trialId);
        if (p?.outcome && p.attempt === a.attempt) outcomes.set(a.trialId, p.outcome);
      }

      const { started, closed } = await state.startAttempts(attempts.filter((a) => !outcomes.has(a.trialId)));
      for (const c of closed) outcomes.set(c.trialId, toOutcome(c, 0));

      type Running = { s: StartedAttempt; sweep: SweepInfo; ref: ExecutionRef; submittedAt: number };
      const submitted = await Promise.all(
        started.map(async (s): Promise<Running | null> => {
          const sweep = await domain(() => state.sweepInfo(s.sweepId));
          const p = prior.get(s.trialId);
          if (p?.ref && p.attempt === s.attempt) return { s, sweep, ref: p.ref, submittedAt: p.submittedAt };
          if (s.resumed) log.info('resuming attempt', { trialId: s.trialId, attempt: s.attempt });
          try {
            const ref = await step(`submit trial ${s.trialId} attempt ${s.attempt}`, () => executor.submit(launchFor(s, sweep)));
            return { s, sweep, ref, submittedAt: Date.now() };
          } catch (err) {
            if (!(err instanceof InvocationError)) throw err;
            // The launch cannot run as given (e.g. a command sweep without an image on Kubernetes):
            // no attempt can fix it, so the trial fails as a bad config instead of retrying forever.
            log.warn('trial cannot run as given', { trialId: s.trialId, attempt: s.attempt, error: err.message });
            const verdict = { state: 'failed' as const, reason: BAD_CONFIG_REASON, retryable: false };
            const recorded = await state.recordOutcome({ trialId: s.trialId, attempt: s.attempt, verdict, wallSeconds: 0, gpus: sweep.spec.resources.gpus });
            outcomes.set(s.trialId, toOutcome(recorded, 0));
            return null;
          }
        }),
      );
      const running = submitted.filter((r): r is Running => r !== null);
      await state.storeExecutions(running.filter((r) => !prior.get(r.s.trialId)?.ref).map((r) => ({ trialId: r.s.trialId, attempt: r.s.attempt, ref: r.ref })));

      const heartbeat = () =>
        ctx.heartbeat({
          trials: running.map((r) => ({ trialId: r.s.trialId, attempt: r.s.attempt, ref: r.ref, submittedAt: r.submittedAt, outcome: outcomes.get(r.s.trialId) })),
        } satisfies RunTrialsHeartbeat);
      heartbeat();
      const beat = setInterval(heartbeat, heartbeatIntervalMs);
      const signal = ctx.cancellationSignal;
      // Each waiting trial listens on the one signal; a full batch is not a leak.
      setMaxListeners(MAX_TRIALS_PER_CALL * 2 + 10, signal);
      const work = Promise.all(
        running
          .filter((r) => !outcomes.has(r.s.trialId))
          .map(async (r) => {
            const { spec } = r.sweep;
            const verdict = await waitForExit(r.ref, r.submittedAt + spec.timeoutSeconds * 1000, spec.timeoutSeconds, signal);
            const wallSeconds = (Date.now() - r.submittedAt) / 1000;
            const recorded = await state.recordOutcome({ trialId: r.s.trialId, attempt: r.s.attempt, verdict, wallSeconds, gpus: spec.resources.gpus });
            outcomes.set(r.s.trialId, toOutcome(recorded, wallSeconds));
          }),
      );
      work.catch(() => {}); // raced below; its own rejection is handled there
      try {
        await Promise.race([work, ctx.cancelled]);
      } catch (err) {
        if (isCancelRequested(err)) {
          const open = running.filter((r) => !outcomes.has(r.s.trialId));
          log.info('trials cancelled; stopping their executions', { sweepId: input.sweepId, trials: open.length });
          await Promise.allSettled(open.map((r) => executor.cancel(r.ref)));
          await state.cancelTrials(open.map((r) => r.s.trialId));
        }
        throw err;
      } finally {
        clearInterval(beat);
      }
      return attempts.map((a) => outcomes.get(a.trialId)!);
    },

    /** Stops every job of a sweep whose trial is not finished (a cancelled sweep's last sweep-up). */
    async cancelSweepJobs(sweepId: string): Promise<number> {
      const live = await state.liveExecutions(sweepId);
      await Promise.all(live.map((l) => step(`cancel ${l.trialId}`, () => executor.cancel(l.ref as ExecutionRef))));
      return live.length;
    },

    /** Applies the promotion rule after a rung: variants left out skip the next rung. */
    finishRung: (sweepId: string, rungIndex: number): Promise<RungSummary> =>
      domain(() => state.finishRung(sweepId, rungIndex, (message, fields) => log.warn(message, fields))),

    /** Closes a sweep; see `finishSweep` in core/trials/state.ts. */
    finishSweep: (sweepId: string, outcome: 'completed' | 'cancelled' | 'stopped', reason?: string): Promise<SweepStatus> =>
      state.finishSweep(sweepId, outcome, reason),

    /** For a lone trial (a retried one): which attempt runs next, or that it is finished. */
    beginTrial: (trialId: string) => domain(() => state.nextAttemptOf(trialId)),

    /** Marks one attempt started (the batch path is `runTrials`); kept for callers that start one. */
    async markAttemptStarted(trialId: string, attempt: number): Promise<void> {
      await state.startAttempts([{ trialId, attempt }]);
    },
  };
}

export type LadderActivities = ReturnType<typeof createActivities>;
