/**
 * Postgres schema. Migrations are generated from this file by drizzle-kit (`npm run db:generate`)
 * into `drizzle/` and committed; `ladder migrate` and every start-up apply them.
 */
import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const projects = pgTable('projects', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  createdAt: createdAt(),
});

export const SWEEP_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled', 'imported'] as const;
export type SweepStatus = (typeof SWEEP_STATUSES)[number];
/** A sweep in one of these states never changes again (imported sweeps never ran here). */
export const FINISHED_SWEEP_STATUSES: readonly SweepStatus[] = ['succeeded', 'failed', 'cancelled', 'imported'];
export const isFinishedSweep = (status: SweepStatus): boolean => FINISHED_SWEEP_STATUSES.includes(status);

export const sweeps = pgTable(
  'sweeps',
  {
    id: text('id').primaryKey(),
    projectId: text('project_id')
      .notNull()
      .references(() => projects.id),
    name: text('name').notNull(),
    kind: text('kind').notNull(),
    /** The validated spec, with defaults filled in. */
    spec: jsonb('spec').notNull(),
    status: text('status').$type<SweepStatus>().notNull().default('pending'),
    codeVersion: text('code_version').notNull(),
    rerun: boolean('rerun').notNull().default(false),
    executor: text('executor').notNull().default('local'),
    currentRung: integer('current_rung').notNull().default(0),
    createdAt: createdAt(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [index('sweeps_project_created_idx').on(t.projectId, t.createdAt), index('sweeps_status_idx').on(t.status)],
);

export const TRIAL_STATUSES = ['planned', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'] as const;
export type TrialStatus = (typeof TRIAL_STATUSES)[number];
/** A trial in one of these states never runs again. */
export const FINISHED_TRIAL_STATUSES: readonly TrialStatus[] = ['succeeded', 'failed', 'cancelled', 'skipped'];
export const isFinishedTrial = (status: TrialStatus): boolean => FINISHED_TRIAL_STATUSES.includes(status);

export const trials = pgTable(
  'trials',
  {
    /** `<sweepId>-r<rung>-v<variant>-s<seed>`: readable and stable, so `trial/<id>` is a business id. */
    id: text('id').primaryKey(),
    sweepId: text('sweep_id')
      .notNull()
      .references(() => sweeps.id, { onDelete: 'cascade' }),
    rungIndex: integer('rung_index').notNull(),
    rungName: text('rung_name').notNull(),
    /** Numeric value of the scale key on this rung, when it is numeric (the x of scaling fits). */
    scaleValue: doublePrecision('scale_value'),
    variantIndex: integer('variant_index').notNull(),
    variantName: text('variant_name').notNull(),
    variant: jsonb('variant').notNull(),
    seed: integer('seed').notNull(),
    config: jsonb('config').notNull(),
    identity: text('identity').notNull(),
    status: text('status').$type<TrialStatus>().notNull().default('planned'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    /** Wall seconds over all attempts; GPU-seconds are that times the GPUs requested. */
    wallSeconds: doublePrecision('wall_seconds').notNull().default(0),
    gpuSeconds: doublePrecision('gpu_seconds').notNull().default(0),
    exitReason: text('exit_reason'),
    /** Final result as pushed by the job: `{metrics, config, meta}`. */
    result: jsonb('result'),
    /** Set when the result was reused from an earlier trial with the same identity. */
    reusedFrom: text('reused_from'),
    /** Executor reference of the latest attempt. */
    execution: jsonb('execution'),
    /**
     * The latest attempt whose outcome is stored (0: none). Recording guards on it, so recording
     * the same attempt twice (a retried activity) is a no-op instead of a second event and twice
     * the wall time.
     */
    recordedAttempt: integer('recorded_attempt').notNull().default(0),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('trials_sweep_rung_idx').on(t.sweepId, t.rungIndex),
    index('trials_identity_succeeded_idx').on(t.identity).where(sql`status = 'succeeded'`),
    index('trials_status_idx').on(t.status),
  ],
);

export const metricPoints = pgTable(
  'metric_points',
  {
    trialId: text('trial_id')
      .notNull()
      .references(() => trials.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    step: integer('step').notNull(),
    value: doublePrecision('value').notNull(),
    time: timestamp('time', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.trialId, t.name, t.step] })],
);

/** Kinds of `analyses` rows: the sweep's scaling analysis (rung -1) and one promotion per rung. */
export const SCALING_ANALYSIS = 'scaling';
export const PROMOTION_ANALYSIS = 'promotion';

export const analyses = pgTable(
  'analyses',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    sweepId: text('sweep_id')
      .notNull()
      .references(() => sweeps.id, { onDelete: 'cascade' }),
    /** What was computed: `promotion`, `consistency`, `extrapolation`, … */
    kind: text('kind').notNull(),
    /** Rung the analysis belongs to; -1 for the whole sweep (a real value keeps the unique index simple). */
    rungIndex: integer('rung_index').notNull().default(-1),
    data: jsonb('data').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('analyses_sweep_kind_rung_idx').on(t.sweepId, t.kind, t.rungIndex)],
);

export const events = pgTable(
  'events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    sweepId: text('sweep_id').references(() => sweeps.id, { onDelete: 'cascade' }),
    trialId: text('trial_id'),
    type: text('type').notNull(),
    data: jsonb('data').notNull().default({}),
    time: timestamp('time', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('events_sweep_idx').on(t.sweepId, t.id), index('events_trial_idx').on(t.trialId, t.id)],
);

export const API_TOKEN_ROLES = ['viewer', 'editor'] as const;
export type ApiTokenRole = (typeof API_TOKEN_ROLES)[number];

/**
 * Bearer tokens of the GraphQL API, scoped to one project. Only the sha256 of a token is stored;
 * the plaintext is shown once, when the token is made (`core/auth/tokens.ts`).
 */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: text('id').primaryKey(),
    projectId: text('project_id')
      .notNull()
      .references(() => projects.id),
    role: text('role').$type<ApiTokenRole>().notNull(),
    tokenHash: text('token_hash').notNull(),
    name: text('name').notNull(),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('api_tokens_hash_idx').on(t.tokenHash), index('api_tokens_project_idx').on(t.projectId)],
);

/**
 * Capacity load-test runs (`ladder capacity run`, workflows/capacity.ts): one row per run, its
 * scenario as validated, and the knee once the search ends. Steps are rows of `capacity_steps`.
 */
export const capacityRuns = pgTable(
  'capacity_runs',
  {
    id: text('id').primaryKey(),
    /** The scenario's name and kind (ingest, graphql, launch, k8s, http). */
    scenario: text('scenario').notNull(),
    kind: text('kind').notNull(),
    /** Target URL without credentials or query. */
    target: text('target'),
    /** running | finished | cancelled | failed */
    status: text('status').notNull().default('running'),
    mode: text('mode').notNull(),
    /** The validated scenario (thresholds as written, load, search). */
    spec: jsonb('spec').notNull(),
    thresholds: jsonb('thresholds').$type<string[]>().notNull().default([]),
    /** Highest passing offered rate of the (last) search; null when the first step failed or the run is not over. */
    knee: doublePrecision('knee'),
    kneeIsLowerBound: boolean('knee_is_lower_bound').notNull().default(false),
    stopReason: text('stop_reason'),
    /** Per generator count of a scaling run: its knee; and the fitted capacity-vs-replicas model. */
    scaling: jsonb('scaling'),
    host: jsonb('host'),
    error: text('error'),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [index('capacity_runs_started_idx').on(t.startedAt, t.id)],
);

export const capacitySteps = pgTable(
  'capacity_steps',
  {
    runId: text('run_id')
      .notNull()
      .references(() => capacityRuns.id, { onDelete: 'cascade' }),
    /** Order within the run (all searches of a scaling run, in the order they ran). */
    idx: integer('idx').notNull(),
    /** Generators the step's rate was split across. */
    generators: integer('generators').notNull(),
    offered: doublePrecision('offered').notNull(),
    achieved: doublePrecision('achieved').notNull(),
    p50Ms: doublePrecision('p50_ms'),
    p95Ms: doublePrecision('p95_ms'),
    p99Ms: doublePrecision('p99_ms'),
    errorRate: doublePrecision('error_rate').notNull(),
    passed: boolean('passed').notNull(),
    /** Why the step is not a measurement (a generator lost), else null. */
    incomplete: text('incomplete'),
    /** The whole step record, less the histogram. */
    data: jsonb('data').notNull(),
    /** Merged HDR latency histogram (compressed base64, µs). */
    histogram: text('histogram').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.idx] })],
);

/**
 * Recurring sweeps (core/schedules, workflows/scheduled.ts). The Temporal schedule
 * `schedule/<id>` decides when a run starts; this row holds what it runs and how runs are judged.
 */
export const schedules = pgTable(
  'schedules',
  {
    /** The schedule's name: lowercase letters, digits and dashes, unique. */
    id: text('id').primaryKey(),
    projectId: text('project_id')
      .notNull()
      .references(() => projects.id),
    /** The validated sweep spec every run launches (its `schedule` block included). */
    spec: jsonb('spec').notNull(),
    cron: text('cron'),
    /** Interval as given (`6h`), when the schedule is not a cron. */
    every: text('every'),
    paused: boolean('paused').notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [index('schedules_project_idx').on(t.projectId, t.id)],
);

export const SCHEDULE_RUN_STATUSES = ['running', 'compared', 'failed', 'cancelled'] as const;
export type ScheduleRunStatus = (typeof SCHEDULE_RUN_STATUSES)[number];

/** One fired action of a schedule: an ordinary sweep, and how its results compare with earlier runs. */
export const scheduleRuns = pgTable(
  'schedule_runs',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    scheduleId: text('schedule_id')
      .notNull()
      .references(() => schedules.id, { onDelete: 'cascade' }),
    /** The Temporal workflow of this run (the schedule's id plus the fire time, to the second). */
    workflowId: text('workflow_id').notNull(),
    /**
     * Its execution: one run row per execution, so a retried activity finds its own. Not the
     * workflow id: two triggers in the same second get the same one.
     */
    workflowRunId: text('workflow_run_id').notNull(),
    sweepId: text('sweep_id').references(() => sweeps.id, { onDelete: 'set null' }),
    /** Code version (image digest on Kubernetes, git commit locally) the run's trials ran with. */
    codeVersion: text('code_version').notNull(),
    status: text('status').$type<ScheduleRunStatus>().notNull().default('running'),
    /** Per (variant, rung, metric): mean over seeds, the seeds' values; a list, never keyed by user names. */
    results: jsonb('results').notNull().default([]),
    regressions: integer('regressions').notNull().default(0),
    improvements: integer('improvements').notNull().default(0),
    /** When the webhook took the regression report (null: none sent). */
    notifiedAt: timestamp('notified_at', { withTimezone: true }),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('schedule_runs_workflow_run_idx').on(t.workflowRunId), index('schedule_runs_schedule_idx').on(t.scheduleId, t.id)],
);

/** A regression or improvement a run found against the runs before it, with the numbers. */
export const scheduleFindings = pgTable(
  'schedule_findings',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    runId: integer('run_id')
      .notNull()
      .references(() => scheduleRuns.id, { onDelete: 'cascade' }),
    scheduleId: text('schedule_id')
      .notNull()
      .references(() => schedules.id, { onDelete: 'cascade' }),
    /** regression | improvement */
    kind: text('kind').$type<'regression' | 'improvement'>().notNull(),
    variant: text('variant').notNull(),
    rung: text('rung').notNull(),
    metric: text('metric').notNull(),
    direction: text('direction').$type<'min' | 'max'>().notNull(),
    value: doublePrecision('value').notNull(),
    baseline: doublePrecision('baseline').notNull(),
    /** What decided it: the threshold crossed (tolerance) or the p-value (welch). */
    method: text('method').$type<'tolerance' | 'welch'>().notNull(),
    threshold: doublePrecision('threshold'),
    pValue: doublePrecision('p_value'),
    /** Earlier runs the baseline was taken over. */
    baselineRuns: jsonb('baseline_runs').$type<number[]>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('schedule_findings_schedule_idx').on(t.scheduleId, t.id), index('schedule_findings_run_idx').on(t.runId)],
);
