/**
 * The one module that changes the state of sweeps and trials while they run. Activities (and
 * anything else that moves a trial or a sweep along) call these functions; nothing else writes
 * `trials.status`, `attempts`, `recorded_attempt` or the run-time events.
 *
 * The hot path is a handful of statements per batch of trials, not per trial: starting a batch
 * of attempts is one `UPDATE … RETURNING` (with its events in the same statement), storing their
 * execution references is one more, and recording one attempt's outcome is one statement that
 * also checks the result, decides whether another attempt follows and writes its event. The
 * immutable sweep spec is cached per process, so no per-trial statement reads it.
 *
 * Hot statements are named, so node-postgres prepares each once per connection.
 */
import { LRUCache } from 'lru-cache';
import { and, eq, inArray, notInArray, sql } from 'drizzle-orm';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { decidePromotion, predictNextRung, type PromotionDecision, type VariantScore } from '../analysis/promotion';
import type { Db } from '../db/client';
import { analyses, events, FINISHED_SWEEP_STATUSES, PROMOTION_ANALYSIS, FINISHED_TRIAL_STATUSES, isFinishedTrial, sweeps, trials, type SweepStatus, type TrialStatus } from '../db/schema';
import type { SweepSpec } from '../spec/spec';
import { loadObservations, refreshSweepAnalysis } from '../sweeps/analysis';
import { variantScoreColumns } from '../sweeps/metric';
import { setSweepStatus } from '../sweeps/store';

/** Execution states as the executors report them (kept structural: core does not import workers). */
export type AttemptState = 'pending' | 'running' | 'succeeded' | 'failed' | 'preempted' | 'cancelled';

/** Rows per page of runnable trials: keeps one activity result far below Temporal's payload limits. */
export const RUNNABLE_PAGE_SIZE = 500;
/** Sweeps whose spec one process keeps; a spec is a few KiB and never changes after creation. */
export const SPEC_CACHE_SIZE = 1000;
/** Back-off before attempt n+1: 1 s, 2 s, 4 s, … capped at a minute (a preempted node needs time). */
export const RETRY_BACKOFF_BASE_MS = 1000;
export const RETRY_BACKOFF_MAX_MS = 60_000;

export const retryBackoffMs = (attempt: number): number => Math.min(RETRY_BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1), RETRY_BACKOFF_MAX_MS);

/** What an executor said about an attempt, as the state rules read it. */
export interface ExecutorVerdict {
  state: AttemptState;
  reason?: string;
  retryable?: boolean;
}

/**
 * Whether another attempt may help, from the executor's verdict alone. Preemption is not the
 * job's fault: always worth another attempt (and never a bad config).
 */
export const isRetryableVerdict = (v: ExecutorVerdict): boolean => v.state === 'preempted' || (v.retryable ?? false);

export interface SweepInfo {
  spec: SweepSpec;
  kind: string;
  projectId: string;
}

export interface SweepStart {
  finished: boolean;
  status: SweepStatus;
  rungs: number;
  currentRung: number;
  concurrency: number;
  /** The spec has `search.asha`: promote variants as results arrive, not only at a rung's end. */
  asha: boolean;
}

/** Keyset position in plan order (variant, seed, id) within one rung. */
export interface TrialCursor {
  variantIndex: number;
  seed: number;
  id: string;
}

export interface TrialAttemptRef {
  trialId: string;
  attempt: number;
}

export interface RunnablePage {
  /** Trials with the attempt to run next: a `running` trial whose attempt has no outcome yet resumes that attempt. */
  attempts: TrialAttemptRef[];
  /** Where the next page starts; null when this was the last one. */
  next: TrialCursor | null;
}

/** A trial whose attempt is (now) started, with what launching it needs. */
export interface StartedAttempt {
  trialId: string;
  attempt: number;
  sweepId: string;
  rungIndex: number;
  config: Record<string, unknown>;
  maxAttempts: number;
  /** The attempt was started before (a retried or resumed activity): its job may already run. */
  resumed: boolean;
  execution: unknown;
}

/** How an attempt ended, as stored. `final`: the trial is closed; otherwise attempt+1 follows after `retryInMs`. */
export interface RecordedOutcome {
  trialId: string;
  attempt: number;
  /** The trial's status after recording. */
  status: TrialStatus;
  state: AttemptState;
  reason: string | null;
  retryable: boolean;
  final: boolean;
  retryInMs: number;
  /** False when this attempt's outcome had been recorded already (nothing was written). */
  recorded: boolean;
}

export interface RungSummary {
  rungIndex: number;
  promoted: number | null;
  skipped: number;
}

type Queryable = Pick<Pool | PoolClient, 'query'>;

function clientOf(db: Db): Queryable {
  const client = (db as Db & { $client?: Queryable }).$client;
  if (!client || typeof client.query !== 'function') throw new Error('trial state needs a drizzle database over a node-postgres pool');
  return client;
}

async function named<R extends QueryResultRow>(client: Queryable, name: string, text: string, values: unknown[]): Promise<R[]> {
  const res = await client.query<R>({ name, text, values });
  return res.rows;
}

const FINISHED_TRIALS_SQL = `(${FINISHED_TRIAL_STATUSES.map((s) => `'${s}'`).join(', ')})`;

// The attempt to run next for a listed trial: a running trial whose current attempt has no
// recorded outcome resumes it (its job may be running); otherwise the next number.
const NEXT_ATTEMPT_SQL = `case when status = 'running' and recorded_attempt < attempts then attempts else attempts + 1 end`;

const LIST_RUNNABLE = `
  select id, variant_index, seed, (${NEXT_ATTEMPT_SQL})::int as attempt
  from trials
  where sweep_id = $1 and rung_index = $2 and status in ('planned', 'running')
    and ($3::int is null or (variant_index, seed, id) > ($3::int, $4::int, $5::text))
  order by variant_index, seed, id
  limit $6`;

// One statement: mark each attempt started (a retried start of the same attempt changes nothing
// but the timestamp), clear the previous attempt's result, and write `trial.attempt.started`
// only for attempts that are new. `o` is the row as it was before this update.
const START_ATTEMPTS = `
  with input as (
    select * from unnest($1::text[], $2::int[]) as u(id, attempt)
  ), up as (
    update trials t set
      status = 'running',
      attempts = i.attempt,
      result = case when o.attempts < i.attempt then null else t.result end,
      started_at = coalesce(t.started_at, now()),
      updated_at = now()
    from input i join trials o on o.id = i.id
    where t.id = i.id and t.status in ('planned', 'running')
      and t.attempts <= i.attempt and t.recorded_attempt < i.attempt
    returning t.id, i.attempt, t.sweep_id, t.rung_index, t.config, t.max_attempts, t.execution,
              o.attempts = i.attempt as resumed
  ), ev as (
    insert into events (sweep_id, trial_id, type, data)
    select sweep_id, id, 'trial.attempt.started', jsonb_build_object('attempt', attempt) from up where not resumed
  )
  select * from up`;

const STORE_EXECUTIONS = `
  update trials t set execution = u.ref, updated_at = now()
  from unnest($1::text[], $2::int[], $3::jsonb[]) as u(id, attempt, ref)
  where t.id = u.id and t.attempts = u.attempt`;

// One statement per outcome. The rules, in order: exit 0 without a stored result is a failed,
// retryable attempt; a trial is closed when the attempt succeeded, may not be retried, or was its
// last; the write happens only for the trial's current, running, not-yet-recorded attempt (so
// recording twice is a no-op, and the second call returns what the first stored).
const RECORD_OUTCOME = `
  with cur as (
    select id, sweep_id, status, attempts, recorded_attempt, max_attempts, exit_reason, result is not null as has_result
    from trials where id = $1 for update
  ), o as (
    select cur.*,
      case when $3::text = 'succeeded' and not has_result then 'failed' else $3::text end as state,
      case when $3::text = 'succeeded' and not has_result then 'exited 0 without a final result' else $4::text end as reason,
      case when $3::text = 'succeeded' and not has_result then true else $5::boolean end as retryable
    from cur
  ), d as (
    select o.*, (o.state = 'succeeded' or not o.retryable or $2::int >= o.max_attempts) as final from o
  ), up as (
    update trials t set
      status = case when not d.final then 'running'
                    when d.state = 'succeeded' then 'succeeded'
                    when d.state = 'cancelled' then 'cancelled'
                    else 'failed' end,
      recorded_attempt = $2::int,
      wall_seconds = t.wall_seconds + $6::float8,
      gpu_seconds = t.gpu_seconds + $6::float8 * $7::float8,
      exit_reason = case when d.state = 'succeeded' then null else coalesce(d.reason, d.state) end,
      finished_at = case when d.final then now() else t.finished_at end,
      updated_at = now()
    from d
    where t.id = d.id and d.status = 'running' and d.attempts = $2::int and d.recorded_attempt < $2::int
    returning t.sweep_id, t.status, d.state, d.reason, d.retryable, d.final
  ), ev as (
    insert into events (sweep_id, trial_id, type, data)
    select sweep_id, $1, case when final then 'trial.' || status else 'trial.attempt.failed' end,
           jsonb_build_object('attempt', $2::int, 'state', state, 'reason', reason, 'retryable', retryable)
    from up
  )
  select true as recorded, up.status, up.state, up.reason, up.retryable, up.final from up
  union all
  select false, cur.status, null, cur.exit_reason, null, cur.status in ${FINISHED_TRIALS_SQL} from cur where not exists (select 1 from up)`;

const CANCEL_TRIALS = `
  with up as (
    update trials set status = 'cancelled', exit_reason = $2, finished_at = now(), updated_at = now()
    where id = any($1::text[]) and status not in ${FINISHED_TRIALS_SQL}
    returning id, sweep_id
  ), ev as (
    insert into events (sweep_id, trial_id, type, data) select sweep_id, id, 'trial.cancelled', '{}'::jsonb from up
  )
  select id from up`;

export interface TrialStateOptions {
  specCacheSize?: number;
}

export type TrialState = ReturnType<typeof createTrialState>;

/** The state module bound to one database, with its spec cache. One per worker process. */
export function createTrialState(db: Db, options: TrialStateOptions = {}) {
  const client = clientOf(db);
  const specs = new LRUCache<string, SweepInfo>({ max: options.specCacheSize ?? SPEC_CACHE_SIZE });

  async function sweepInfo(sweepId: string): Promise<SweepInfo> {
    const cached = specs.get(sweepId);
    if (cached) return cached;
    const rows = await named<{ spec: SweepSpec; kind: string; project_id: string }>(
      client,
      'ladder_sweep_info',
      'select spec, kind, project_id from sweeps where id = $1',
      [sweepId],
    );
    const row = rows[0];
    if (!row) throw new SweepNotFoundError(sweepId);
    const info = { spec: row.spec, kind: row.kind, projectId: row.project_id };
    specs.set(sweepId, info);
    return info;
  }

  return {
    sweepInfo,

    /** Marks a pending sweep running (once, with its `sweep.started` event) and says how to run it. */
    async startSweep(sweepId: string): Promise<SweepStart> {
      const [sweep] = await db.select({ status: sweeps.status, currentRung: sweeps.currentRung }).from(sweeps).where(eq(sweeps.id, sweepId));
      if (!sweep) throw new SweepNotFoundError(sweepId);
      const { spec } = await sweepInfo(sweepId);
      const finished = FINISHED_SWEEP_STATUSES.includes(sweep.status);
      if (!finished && sweep.status !== 'running') {
        await setSweepStatus(db, sweepId, 'running');
        await db.insert(events).values({ sweepId, type: 'sweep.started', data: {} });
      }
      return {
        finished,
        status: finished ? sweep.status : 'running',
        rungs: spec.scale?.rungs.length ?? 1,
        currentRung: sweep.currentRung,
        concurrency: spec.concurrency,
        asha: spec.search?.asha !== undefined,
      };
    },

    /** One page of a rung's trials that still need an attempt, in plan order after `after`. */
    async listRunnableTrials(sweepId: string, rungIndex: number, after: TrialCursor | null, limit = RUNNABLE_PAGE_SIZE): Promise<RunnablePage> {
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new RangeError(`limit must be an integer in 1..10000, got ${limit}`);
      const rows = await named<{ id: string; variant_index: number; seed: number; attempt: number }>(client, 'ladder_list_runnable', LIST_RUNNABLE, [
        sweepId,
        rungIndex,
        after?.variantIndex ?? null,
        after?.seed ?? null,
        after?.id ?? null,
        limit,
      ]);
      const last = rows[rows.length - 1];
      return {
        attempts: rows.map((r) => ({ trialId: r.id, attempt: r.attempt })),
        next: last && rows.length === limit ? { variantIndex: last.variant_index, seed: last.seed, id: last.id } : null,
      };
    },

    /**
     * Starts one attempt of each listed trial in one statement. Trials that are finished, on a
     * later attempt, or whose attempt is recorded already are not started; their state comes back
     * in `closed` (one more statement, only when there are any).
     */
    async startAttempts(list: readonly TrialAttemptRef[]): Promise<{ started: StartedAttempt[]; closed: RecordedOutcome[] }> {
      if (list.length === 0) return { started: [], closed: [] };
      const rows = await named<{
        id: string;
        attempt: number;
        sweep_id: string;
        rung_index: number;
        config: Record<string, unknown>;
        max_attempts: number;
        execution: unknown;
        resumed: boolean;
      }>(client, 'ladder_start_attempts', START_ATTEMPTS, [list.map((a) => a.trialId), list.map((a) => a.attempt)]);
      const started = rows.map((r) => ({
        trialId: r.id,
        attempt: r.attempt,
        sweepId: r.sweep_id,
        rungIndex: r.rung_index,
        config: r.config,
        maxAttempts: r.max_attempts,
        resumed: r.resumed,
        execution: r.execution,
      }));
      const startedIds = new Set(started.map((s) => s.trialId));
      const missing = list.filter((a) => !startedIds.has(a.trialId));
      const closed: RecordedOutcome[] = [];
      if (missing.length > 0) {
        const res = await client.query<{ id: string; status: TrialStatus; exit_reason: string | null; recorded_attempt: number }>(
          'select id, status, exit_reason, recorded_attempt from trials where id = any($1::text[])',
          [missing.map((m) => m.trialId)],
        );
        const byId = new Map(res.rows.map((r) => [r.id, r]));
        for (const m of missing) {
          const row = byId.get(m.trialId);
          const status: TrialStatus = row?.status ?? 'cancelled';
          const final = isFinishedTrial(status);
          closed.push({
            trialId: m.trialId,
            attempt: m.attempt,
            status,
            state: status === 'succeeded' ? 'succeeded' : status === 'cancelled' ? 'cancelled' : 'failed',
            reason: row ? row.exit_reason : 'trial not found',
            retryable: !final,
            // A running trial whose attempt is recorded is waiting for its next attempt.
            final,
            retryInMs: final ? 0 : retryBackoffMs(m.attempt),
            recorded: false,
          });
        }
      }
      return { started, closed };
    },

    /** The attempt a lone trial would run next (a retried trial keeps counting), or that it is finished. */
    async nextAttemptOf(trialId: string): Promise<{ sweepId: string; status: TrialStatus; attempt: number; finished: boolean }> {
      const rows = await named<{ sweep_id: string; status: TrialStatus; attempt: number }>(
        client,
        'ladder_next_attempt',
        `select sweep_id, status, (${NEXT_ATTEMPT_SQL})::int as attempt from trials where id = $1`,
        [trialId],
      );
      const row = rows[0];
      if (!row) throw new TrialNotFoundError(trialId);
      return { sweepId: row.sweep_id, status: row.status, attempt: row.attempt, finished: isFinishedTrial(row.status) };
    },

    /** Stores the execution reference of each started attempt, one statement for the batch. */
    async storeExecutions(list: ReadonlyArray<TrialAttemptRef & { ref: unknown }>): Promise<void> {
      if (list.length === 0) return;
      await named(client, 'ladder_store_executions', STORE_EXECUTIONS, [
        list.map((e) => e.trialId),
        list.map((e) => e.attempt),
        list.map((e) => JSON.stringify(e.ref)),
      ]);
    },

    /** Records how one attempt ended (see RECORD_OUTCOME for the rules); idempotent per attempt. */
    async recordOutcome(input: TrialAttemptRef & { verdict: ExecutorVerdict; wallSeconds: number; gpus: number }): Promise<RecordedOutcome> {
      const { trialId, attempt, verdict } = input;
      const rows = await named<{
        recorded: boolean;
        status: TrialStatus;
        state: AttemptState | null;
        reason: string | null;
        retryable: boolean | null;
        final: boolean;
      }>(client, 'ladder_record_outcome', RECORD_OUTCOME, [
        trialId,
        attempt,
        verdict.state,
        verdict.reason ?? null,
        isRetryableVerdict(verdict),
        Math.max(0, input.wallSeconds),
        input.gpus,
      ]);
      const row = rows[0];
      if (!row) {
        return { trialId, attempt, status: 'cancelled', state: 'failed', reason: 'trial not found', retryable: false, final: true, retryInMs: 0, recorded: false };
      }
      const final = row.final;
      return {
        trialId,
        attempt,
        status: row.status,
        state: row.state ?? (row.status === 'succeeded' ? 'succeeded' : row.status === 'cancelled' ? 'cancelled' : 'failed'),
        reason: row.reason,
        retryable: row.retryable ?? !final,
        final,
        retryInMs: final ? 0 : retryBackoffMs(attempt),
        recorded: row.recorded,
      };
    },

    /** Cancels trials that are not finished (with their `trial.cancelled` events); returns the ids cancelled. */
    async cancelTrials(trialIds: readonly string[], reason = 'cancelled'): Promise<string[]> {
      if (trialIds.length === 0) return [];
      const rows = await named<{ id: string }>(client, 'ladder_cancel_trials', CANCEL_TRIALS, [trialIds, reason.slice(0, 500)]);
      return rows.map((r) => r.id);
    },

    /** Execution references of a sweep's trials that may still have a job running. */
    async liveExecutions(sweepId: string): Promise<Array<{ trialId: string; ref: unknown }>> {
      const res = await client.query<{ id: string; execution: unknown }>(
        `select id, execution from trials where sweep_id = $1 and status not in ${FINISHED_TRIALS_SQL} and execution is not null`,
        [sweepId],
      );
      return res.rows.map((r) => ({ trialId: r.id, ref: r.execution }));
    },

    /**
     * After a rung: the promotion decision (variants left out skip the next rung) and its
     * analysis row in one transaction, then the sweep's current rung, the `rung.finished` event
     * and the scaling analysis.
     */
    async finishRung(sweepId: string, rungIndex: number, warn: (message: string, fields: Record<string, unknown>) => void): Promise<RungSummary> {
      const { spec } = await sweepInfo(sweepId);
      const rule = spec.promotion;
      const rungs = spec.scale?.rungs.length ?? 1;
      let promoted: number | null = null;
      let skipped = 0;
      if (rule && rungIndex + 1 < rungs) {
        const scores = await db
          .select(variantScoreColumns(rule.metric))
          .from(trials)
          .where(and(eq(trials.sweepId, sweepId), eq(trials.rungIndex, rungIndex)))
          .groupBy(trials.variantIndex, trials.variantName);
        let scored: VariantScore[] = scores;
        if (rule.intervalOverlap) {
          // The rule compares predicted intervals at the next rung, from every rung run so far.
          const nextScale = (
            await db
              .select({ scale: trials.scaleValue })
              .from(trials)
              .where(and(eq(trials.sweepId, sweepId), eq(trials.rungIndex, rungIndex + 1)))
              .limit(1)
          )[0]?.scale;
          if (nextScale === null || nextScale === undefined) throw new BadSpecError('intervalOverlap promotion needs numeric rung values');
          const predictions = predictNextRung(await loadObservations(db, sweepId, rule.metric, rungIndex), nextScale);
          scored = scores.map((s) => {
            const p = Object.prototype.hasOwnProperty.call(predictions, s.variantName) ? predictions[s.variantName] : undefined;
            return p?.interval ? { ...s, mean: p.mean ?? s.mean, interval: p.interval } : s;
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
                and(eq(trials.sweepId, sweepId), eq(trials.rungIndex, rungIndex + 1), inArray(trials.variantIndex, dropped), eq(trials.status, 'planned')),
              )
              .returning({ id: trials.id });
            skipped = res.length;
          }
          await tx
            .insert(analyses)
            .values({ sweepId, kind: PROMOTION_ANALYSIS, rungIndex, data: { rule, decisions } })
            .onConflictDoUpdate({ target: [analyses.sweepId, analyses.kind, analyses.rungIndex], set: { data: { rule, decisions }, createdAt: new Date() } });
        });
      }
      await db.update(sweeps).set({ currentRung: Math.min(rungIndex + 1, rungs - 1) }).where(eq(sweeps.id, sweepId));
      await db.insert(events).values({ sweepId, type: 'rung.finished', data: { rungIndex, promoted, skipped } });
      try {
        await refreshSweepAnalysis(db, sweepId);
      } catch (err) {
        // The analysis informs people; it must never hold a sweep back.
        warn('scaling analysis failed', { sweepId, rungIndex, error: (err as Error).message });
      }
      return { rungIndex, promoted, skipped };
    },

    /**
     * Closes a sweep. 'cancelled' cancels what never ran; 'stopped' does the same with `reason`
     * (its first trials all failed with bad-config) and ends failed; 'completed' ends failed if
     * any trial failed or was cancelled, else succeeded.
     */
    async finishSweep(sweepId: string, outcome: 'completed' | 'cancelled' | 'stopped', reason?: string): Promise<SweepStatus> {
      let status: SweepStatus = 'cancelled';
      const open = and(eq(trials.sweepId, sweepId), notInArray(trials.status, [...FINISHED_TRIAL_STATUSES]));
      if (outcome === 'stopped') {
        const why = reason ?? 'sweep stopped';
        await db.update(trials).set({ status: 'cancelled', exitReason: why.slice(0, 500), finishedAt: new Date(), updatedAt: new Date() }).where(open);
        await db.insert(events).values({ sweepId, type: 'sweep.stopped', data: { reason: why } });
        status = 'failed';
      } else if (outcome === 'cancelled') {
        await db.update(trials).set({ status: 'cancelled', exitReason: 'sweep cancelled', finishedAt: new Date(), updatedAt: new Date() }).where(open);
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
  };
}

export class SweepNotFoundError extends Error {
  constructor(readonly sweepId: string) {
    super(`sweep "${sweepId}" not found`);
    this.name = 'SweepNotFoundError';
  }
}

export class TrialNotFoundError extends Error {
  constructor(readonly trialId: string) {
    super(`trial "${trialId}" not found`);
    this.name = 'TrialNotFoundError';
  }
}

export class BadSpecError extends Error {
  override name = 'BadSpecError';
}
