/**
 * Temporal activities: all the I/O of a sweep (Postgres and the executor). Workflows only decide.
 * Dependencies come in through `createActivities`, so tests and the embedded stack can wire
 * their own database, executor and logger.
 */
import { Context, CancelledFailure } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { and, eq, inArray, notInArray, sql } from 'drizzle-orm';
import { decidePromotion, predictNextRung, type PromotionDecision, type VariantScore } from '../core/analysis/promotion';
import type { Db } from '../core/db/client';
import { analyses, events, sweeps, trials, type SweepStatus, type TrialStatus } from '../core/db/schema';
import { mintIngestToken } from '../core/ingest/tokens';
import type { SweepSpec } from '../core/spec/spec';
import { loadObservations, refreshSweepAnalysis } from '../core/sweeps/analysis';
import { setSweepStatus } from '../core/sweeps/store';
import { isTerminal, type ExecutionRef, type ExecutionState, type Executor, type JobLaunch } from './executors/types';

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
  /** How often a waiting activity asks the executor for status; default 1000 ms. */
  pollIntervalMs?: number;
}

export interface SweepStart {
  finished: boolean;
  status: SweepStatus;
  rungs: number;
  currentRung: number;
  concurrency: number;
}

export interface TrialStart {
  done: boolean;
  status: TrialStatus;
  attempts: number;
  maxAttempts: number;
}

export interface AttemptOutcome {
  state: ExecutionState;
  reason?: string;
  retryable: boolean;
  wallSeconds: number;
}

export interface RungSummary {
  rungIndex: number;
  promoted: number | null;
  skipped: number;
}

/** Heartbeat details of `runTrialAttempt`: enough for a new worker to resume waiting. */
interface AttemptHeartbeat {
  ref: ExecutionRef;
  submittedAt: number;
}

const TERMINAL_TRIAL_STATUSES: TrialStatus[] = ['succeeded', 'failed', 'cancelled', 'skipped'];

/** Runs one step, naming it in the error so a failure says where it happened. */
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CancelledFailure || err instanceof ApplicationFailure) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`${name}: ${message}`, { cause: err });
  }
}

export function createActivities(deps: ActivityDeps) {
  const { db, executor, log } = deps;
  const pollIntervalMs = deps.pollIntervalMs ?? 1000;

  async function loadSweep(sweepId: string) {
    const [sweep] = await db.select().from(sweeps).where(eq(sweeps.id, sweepId));
    if (!sweep) throw ApplicationFailure.nonRetryable(`sweep "${sweepId}" not found`, 'NotFound');
    return { ...sweep, spec: sweep.spec as SweepSpec };
  }

  async function loadTrial(trialId: string) {
    const [row] = await db
      .select({ trial: trials, spec: sweeps.spec, kind: sweeps.kind, projectId: sweeps.projectId })
      .from(trials)
      .innerJoin(sweeps, eq(trials.sweepId, sweeps.id))
      .where(eq(trials.id, trialId));
    if (!row) throw ApplicationFailure.nonRetryable(`trial "${trialId}" not found`, 'NotFound');
    return { ...row, spec: row.spec as SweepSpec };
  }

  return {
    async startSweep(sweepId: string): Promise<SweepStart> {
      const sweep = await loadSweep(sweepId);
      const finished = ['succeeded', 'failed', 'cancelled', 'imported'].includes(sweep.status);
      if (!finished && sweep.status !== 'running') {
        await setSweepStatus(db, sweepId, 'running');
        await db.insert(events).values({ sweepId, type: 'sweep.started', data: {} });
      }
      return {
        finished,
        status: finished ? sweep.status : 'running',
        rungs: sweep.spec.scale?.rungs.length ?? 1,
        currentRung: sweep.currentRung,
        concurrency: sweep.spec.concurrency,
      };
    },

    /** Trials of a rung that still need a trial workflow, in plan order. */
    async listRunnableTrials(sweepId: string, rungIndex: number): Promise<string[]> {
      const rows = await db
        .select({ id: trials.id })
        .from(trials)
        .where(and(eq(trials.sweepId, sweepId), eq(trials.rungIndex, rungIndex), inArray(trials.status, ['planned', 'running'])))
        .orderBy(trials.variantIndex, trials.seed);
      return rows.map((r) => r.id);
    },

    /** Applies the promotion rule after a rung: variants left out skip the next rung. */
    async finishRung(sweepId: string, rungIndex: number): Promise<RungSummary> {
      const sweep = await loadSweep(sweepId);
      const rule = sweep.spec.promotion;
      const rungs = sweep.spec.scale?.rungs.length ?? 1;
      let promoted: number | null = null;
      let skipped = 0;
      if (rule && rungIndex + 1 < rungs) {
        const value = sql`(${trials.result} -> 'metrics' ->> ${rule.metric})::float8`;
        const scores = await db
          .select({
            variantIndex: trials.variantIndex,
            variantName: trials.variantName,
            mean: sql<number | null>`avg(${value}) filter (where ${trials.status} = 'succeeded')`,
            count: sql<number>`count(${value}) filter (where ${trials.status} = 'succeeded')::int`,
          })
          .from(trials)
          .where(and(eq(trials.sweepId, sweepId), eq(trials.rungIndex, rungIndex)))
          .groupBy(trials.variantIndex, trials.variantName);
        let scored: VariantScore[] = scores;
        if (rule.intervalOverlap) {
          // The rule compares predicted intervals at the next rung, from every rung run so far.
          const nextScale = (await db
            .select({ scale: trials.scaleValue })
            .from(trials)
            .where(and(eq(trials.sweepId, sweepId), eq(trials.rungIndex, rungIndex + 1)))
            .limit(1))[0]?.scale;
          if (nextScale === null || nextScale === undefined) {
            throw ApplicationFailure.nonRetryable('intervalOverlap promotion needs numeric rung values', 'BadSpec');
          }
          const predictions = predictNextRung(await loadObservations(db, sweepId, rule.metric, rungIndex), nextScale);
          scored = scores.map((s) => {
            const interval = predictions[s.variantName]?.interval;
            return interval ? { ...s, mean: predictions[s.variantName]!.mean ?? s.mean, interval } : s;
          });
        }
        const decisions: PromotionDecision[] = decidePromotion(scored, rule);
        const dropped = decisions.filter((d) => !d.promoted).map((d) => d.variantIndex);
        promoted = decisions.length - dropped.length;
        await db.transaction(async (tx) => {
          if (dropped.length) {
            const res = await tx
              .update(trials)
              .set({ status: 'skipped', exitReason: 'not promoted', updatedAt: new Date() })
              .where(
                and(
                  eq(trials.sweepId, sweepId),
                  eq(trials.rungIndex, rungIndex + 1),
                  inArray(trials.variantIndex, dropped),
                  eq(trials.status, 'planned'),
                ),
              )
              .returning({ id: trials.id });
            skipped = res.length;
          }
          await tx
            .insert(analyses)
            .values({ sweepId, kind: 'promotion', rungIndex, data: { rule, decisions } })
            .onConflictDoUpdate({
              target: [analyses.sweepId, analyses.kind, analyses.rungIndex],
              set: { data: { rule, decisions }, createdAt: new Date() },
            });
        });
      }
      await db
        .update(sweeps)
        .set({ currentRung: Math.min(rungIndex + 1, rungs - 1) })
        .where(eq(sweeps.id, sweepId));
      await db.insert(events).values({ sweepId, type: 'rung.finished', data: { rungIndex, promoted, skipped } });
      try {
        await refreshSweepAnalysis(db, sweepId);
      } catch (err) {
        // The analysis informs people; it must never hold a sweep back.
        log.warn('scaling analysis failed', { sweepId, rungIndex, error: (err as Error).message });
      }
      return { rungIndex, promoted, skipped };
    },

    /** Closes a sweep: 'cancelled' cancels what never ran; otherwise failed if any trial failed. */
    /**
     * `stopped` ends a sweep early with `reason` (its first trials all failed with bad-config):
     * what never ran is cancelled with that reason, so status and trial pages say why.
     */
    async finishSweep(sweepId: string, outcome: 'completed' | 'cancelled' | 'stopped', reason?: string): Promise<SweepStatus> {
      let status: SweepStatus = 'cancelled';
      if (outcome === 'stopped') {
        const why = reason ?? 'sweep stopped';
        await db
          .update(trials)
          .set({ status: 'cancelled', exitReason: why.slice(0, 500), finishedAt: new Date(), updatedAt: new Date() })
          .where(and(eq(trials.sweepId, sweepId), notInArray(trials.status, TERMINAL_TRIAL_STATUSES)));
        await db.insert(events).values({ sweepId, type: 'sweep.stopped', data: { reason: why } });
        status = 'failed';
      } else if (outcome === 'cancelled') {
        await db
          .update(trials)
          .set({ status: 'cancelled', exitReason: 'sweep cancelled', finishedAt: new Date(), updatedAt: new Date() })
          .where(and(eq(trials.sweepId, sweepId), notInArray(trials.status, TERMINAL_TRIAL_STATUSES)));
      } else {
        const [row] = await db
          .select({ failed: sql<number>`count(*) filter (where ${trials.status} in ('failed', 'cancelled'))::int` })
          .from(trials)
          .where(eq(trials.sweepId, sweepId));
        status = (row?.failed ?? 0) > 0 ? 'failed' : 'succeeded';
      }
      await setSweepStatus(db, sweepId, status);
      await db.insert(events).values({ sweepId, type: 'sweep.finished', data: { status } });
      return status;
    },

    async beginTrial(trialId: string): Promise<TrialStart> {
      const { trial } = await loadTrial(trialId);
      const done = TERMINAL_TRIAL_STATUSES.includes(trial.status);
      return { done, status: trial.status, attempts: trial.attempts, maxAttempts: trial.maxAttempts };
    },

    async markAttemptStarted(trialId: string, attempt: number): Promise<void> {
      const [trial] = await db
        .update(trials)
        .set({
          status: 'running',
          attempts: sql`greatest(${trials.attempts}, ${attempt})`,
          // The stored result is the current attempt's (ingest writes it once per attempt), so
          // a new attempt starts without one; a retry of this activity keeps what its attempt wrote.
          result: sql`case when ${trials.attempts} < ${attempt} then null else ${trials.result} end`,
          startedAt: sql`coalesce(${trials.startedAt}, now())`,
          updatedAt: new Date(),
        })
        .where(eq(trials.id, trialId))
        .returning({ sweepId: trials.sweepId });
      await db.insert(events).values({ sweepId: trial?.sweepId, trialId, type: 'trial.attempt.started', data: { attempt } });
    },

    /**
     * Launches one attempt and waits for it, heartbeating. The heartbeat carries the execution
     * reference: if this worker dies, the retried activity finds it and resumes waiting instead
     * of launching the job a second time.
     */
    async runTrialAttempt(input: { trialId: string; attempt: number }): Promise<AttemptOutcome> {
      const ctx = Context.current();
      const { trialId, attempt } = input;
      const { trial, spec, kind, projectId } = await loadTrial(trialId);
      let state = ctx.info.heartbeatDetails as AttemptHeartbeat | undefined;

      if (state?.ref) {
        log.info('resuming wait on running execution', { trialId, attempt, executionId: state.ref.executionId });
      } else {
        const launch: JobLaunch = {
          executionId: `${trialId}-a${attempt}`,
          trialId,
          attempt,
          kind,
          config: trial.config as Record<string, unknown>,
          resources: spec.resources,
          timeoutSeconds: spec.timeoutSeconds,
          env: {
            LADDER_TRIAL_ID: trialId,
            LADDER_INGEST_URL: deps.ingest.url,
            LADDER_INGEST_TOKEN: mintIngestToken(deps.ingest.secret, { trialId, attempt, timeoutSeconds: spec.timeoutSeconds }),
            LADDER_ATTEMPT: String(attempt),
          },
          labels: {
            'ladder.dev/project': projectId,
            'ladder.dev/sweep': trial.sweepId,
            'ladder.dev/trial': trialId,
            'ladder.dev/rung': String(trial.rungIndex),
          },
        };
        const ref = await step(`submit trial ${trialId} attempt ${attempt}`, () => executor.submit(launch));
        state = { ref, submittedAt: Date.now() };
        ctx.heartbeat(state);
        await db.update(trials).set({ execution: ref, updatedAt: new Date() }).where(eq(trials.id, trialId));
      }

      const { ref, submittedAt } = state;
      const deadline = submittedAt + spec.timeoutSeconds * 1000;
      const wallSeconds = () => (Date.now() - submittedAt) / 1000;
      try {
        for (;;) {
          const status = await step(`status of ${ref.executionId}`, () => executor.status(ref));
          if (isTerminal(status)) {
            if (status.state === 'succeeded') {
              const [row] = await db.select({ hasResult: sql<boolean>`${trials.result} is not null` }).from(trials).where(eq(trials.id, trialId));
              if (!row?.hasResult) {
                return { state: 'failed', reason: 'exited 0 without a final result', retryable: true, wallSeconds: wallSeconds() };
              }
            }
            return {
              state: status.state,
              reason: status.reason,
              retryable: status.state === 'preempted' || (status.retryable ?? false),
              wallSeconds: wallSeconds(),
            };
          }
          if (Date.now() > deadline) {
            await step(`cancel ${ref.executionId} after timeout`, () => executor.cancel(ref));
            return { state: 'failed', reason: `timeout after ${spec.timeoutSeconds}s`, retryable: true, wallSeconds: wallSeconds() };
          }
          ctx.heartbeat(state);
          await ctx.sleep(pollIntervalMs);
        }
      } catch (err) {
        // Only a cancellation the workflow asked for stops the job. A worker shutting down or an
        // activity timed out server-side leaves it running: the retried activity resumes waiting.
        if (err instanceof CancelledFailure && (ctx.cancellationDetails?.cancelRequested || err.message === 'CANCELLED')) {
          log.info('attempt cancelled; stopping its execution', { trialId, executionId: ref.executionId });
          await executor.cancel(ref);
        }
        throw err;
      }
    },

    /** Records how an attempt ended; `final` closes the trial, otherwise another attempt follows. */
    async recordAttempt(input: { trialId: string; attempt: number; outcome: AttemptOutcome; final: boolean }): Promise<TrialStatus> {
      const { trialId, attempt, outcome, final } = input;
      const { trial, spec } = await loadTrial(trialId);
      const status: TrialStatus = !final
        ? 'running'
        : outcome.state === 'succeeded'
          ? 'succeeded'
          : outcome.state === 'cancelled'
            ? 'cancelled'
            : 'failed';
      await db
        .update(trials)
        .set({
          status,
          wallSeconds: sql`${trials.wallSeconds} + ${outcome.wallSeconds}`,
          gpuSeconds: sql`${trials.gpuSeconds} + ${outcome.wallSeconds * spec.resources.gpus}`,
          exitReason: outcome.state === 'succeeded' ? null : (outcome.reason ?? outcome.state),
          ...(final ? { finishedAt: new Date() } : {}),
          updatedAt: new Date(),
        })
        .where(eq(trials.id, trialId));
      await db.insert(events).values({
        sweepId: trial.sweepId,
        trialId,
        type: final ? `trial.${status}` : 'trial.attempt.failed',
        data: { attempt, state: outcome.state, reason: outcome.reason ?? null, retryable: outcome.retryable },
      });
      return status;
    },

    async cancelTrial(trialId: string): Promise<void> {
      const res = await db
        .update(trials)
        .set({ status: 'cancelled', exitReason: 'cancelled', finishedAt: new Date(), updatedAt: new Date() })
        .where(and(eq(trials.id, trialId), notInArray(trials.status, TERMINAL_TRIAL_STATUSES)))
        .returning({ sweepId: trials.sweepId });
      if (res[0]) await db.insert(events).values({ sweepId: res[0].sweepId, trialId, type: 'trial.cancelled', data: {} });
    },
  };
}

export type LadderActivities = ReturnType<typeof createActivities>;
