/**
 * GraphQL for recurring sweeps (core/schedules): the `schedules` query, one `schedule`, the
 * `regressions` found, and the mutations create / pause / resume / trigger / delete. Merged into
 * the schema by schema.ts like capacity.ts; it uses that file's JSON, DateTime, PageInfo and Sweep.
 *
 * Visibility follows projects: a token sees and changes its project's schedules only. The
 * webhook URL is never returned whole (receivers often carry their secret in it): only its origin.
 */
import { SpecError } from '../core/spec/spec';
import { ScheduleConflictError, ScheduleNotFoundError, findingsOf, getSchedule, listSchedules, MAX_SCHEDULE_PAGE, scheduleRunsOf, type ScheduleFindingRow, type ScheduleRow, type ScheduleRunRow } from '../core/schedules/store';
import { createSchedule, deleteSchedule, nextRunTimes, parseScheduledSpec, pauseSchedule, resumeSchedule, triggerSchedule, type ScheduleContext } from '../core/schedules/service';
import { ScheduleInputError } from '../core/schedules/timing';
import type { RunResult } from '../core/schedules/compare';
import { canSee, scopeProject, type GraphQLContext } from './context';
import { decodeCursor, encodeCursor } from './data';
import { apiError } from './errors';

type Ctx = GraphQLContext;

export const scheduleTypeDefs = /* GraphQL */ `
  extend type Query {
    "Recurring sweeps, by name."
    schedules(first: Int = 50, after: String): ScheduleConnection!
    "One schedule; null when there is none with this name (or it is another project's)."
    schedule(id: ID!): Schedule
    "Regressions (or, with kind, improvements) found by scheduled runs, newest first."
    regressions(scheduleId: ID, kind: ScheduleFindingKind = REGRESSION, first: Int = 50): [ScheduleFinding!]!
  }

  extend type Mutation {
    "Creates a recurring sweep: exactly one of cron (e.g. '0 3 * * *') and every (e.g. '6h'). The spec needs a schedule block."
    createSchedule(spec: JSON!, cron: String, every: String, name: String, paused: Boolean = false): Schedule!
    pauseSchedule(id: ID!): Schedule!
    resumeSchedule(id: ID!): Schedule!
    "Starts a run now (under the schedule's overlap policy)."
    triggerSchedule(id: ID!): Schedule!
    "Deletes the schedule and its run history; the runs' sweeps stay."
    deleteSchedule(id: ID!): DeleteScheduleResult!
  }

  enum ScheduleFindingKind { REGRESSION IMPROVEMENT }

  type ScheduleConnection { edges: [ScheduleEdge!]! pageInfo: PageInfo! }
  type ScheduleEdge { cursor: String! node: Schedule! }
  type DeleteScheduleResult { id: ID! deleted: Boolean! }

  type Schedule {
    "The schedule's name."
    id: ID!
    project: String!
    cron: String
    every: String
    paused: Boolean!
    "skip, buffer-one or cancel-other."
    overlap: String!
    "Whether runs rerun every trial (true unless the spec says otherwise)."
    rerun: Boolean!
    baselineRuns: Int!
    metrics: [ScheduleMetricRule!]!
    "Origin of the webhook URL (its path may be a secret and is not shown)."
    webhookOrigin: String
    createdAt: DateTime!
    "Next fire times Temporal plans (empty when paused); null when Temporal is not reachable from this server."
    nextRunTimes: [DateTime!]
    "Runs, newest first."
    runs(first: Int = 20): [ScheduleRun!]!
    findings(kind: ScheduleFindingKind, first: Int = 50): [ScheduleFinding!]!
  }

  type ScheduleMetricRule {
    metric: String!
    "min: lower is better; max: higher is better."
    direction: String!
    tolerance: Float
    absoluteTolerance: Float
    "welch when a t-test over the seeds decides."
    test: String
    alpha: Float
  }

  type ScheduleRun {
    id: ID!
    sweepId: String
    sweep: Sweep
    "Code version (image digest or git commit) the run's trials ran with."
    codeVersion: String!
    "running, compared, failed or cancelled."
    status: String!
    regressions: Int!
    improvements: Int!
    "Whether the webhook took this run's regression report."
    notified: Boolean!
    startedAt: DateTime!
    finishedAt: DateTime
    "Per variant, rung and metric: mean over the seeds and each seed's value."
    results: [ScheduleResult!]!
  }

  type ScheduleResult { variant: String! rung: String! metric: String! mean: Float! values: [Float!]! }

  type ScheduleFinding {
    id: ID!
    scheduleId: ID!
    runId: ID!
    "regression or improvement."
    kind: String!
    variant: String!
    rung: String!
    metric: String!
    direction: String!
    value: Float!
    baseline: Float!
    "(value - baseline) / |baseline|; null when the baseline is 0."
    relativeChange: Float
    "tolerance or welch."
    method: String!
    "The move that counted (tolerance), or alpha (welch)."
    threshold: Float
    pValue: Float
    "Runs the baseline was taken over."
    baselineRuns: [ID!]!
    createdAt: DateTime!
  }
`;

interface ScheduleBlockView {
  overlap?: string;
  rerun?: boolean;
  baselineRuns?: number;
  metrics?: unknown[];
  webhook?: string;
}
const block = (s: ScheduleRow): ScheduleBlockView => ((s.spec as { schedule?: ScheduleBlockView }).schedule ?? {}) as ScheduleBlockView;

const pageSize = (first: number | null | undefined, fallback: number) => {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SCHEDULE_PAGE) throw apiError('BAD_USER_INPUT', `first must be between 1 and ${MAX_SCHEDULE_PAGE}`, { argument: 'first' });
  return n;
};

const kindOf = (k: string | null | undefined) => (k === 'IMPROVEMENT' ? 'improvement' : k === 'REGRESSION' ? 'regression' : undefined);

function scheduleContext(ctx: Ctx): ScheduleContext {
  if (!ctx.launch) throw new Error('this API server runs without a Temporal client; it cannot change schedules');
  return { db: ctx.db, temporal: ctx.launch.temporal, taskQueue: ctx.launch.taskQueue, executor: ctx.launch.executor };
}

/** The schedule when this request may see it, else null (another project's reads as missing). */
async function visibleSchedule(ctx: Ctx, id: string): Promise<ScheduleRow | null> {
  if (typeof id !== 'string' || id.length > 63) return null;
  const row = await getSchedule(ctx.db, id);
  return row && canSee(ctx, row.projectId) ? row : null;
}

async function requireVisible(ctx: Ctx, id: string): Promise<ScheduleRow> {
  const row = await visibleSchedule(ctx, id);
  if (!row) throw apiError('NOT_FOUND', `schedule "${id}" not found`, { argument: 'id' });
  return row;
}

/** Maps the domain's errors to API errors with the field at fault. */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SpecError) throw apiError('BAD_USER_INPUT', err.message, { issues: err.issues, path: err.issues[0]?.path ?? '' });
    if (err instanceof ScheduleInputError) throw apiError('BAD_USER_INPUT', err.message, { argument: err.field });
    if (err instanceof ScheduleConflictError) throw apiError('CONFLICT', err.message, { argument: 'name' });
    if (err instanceof ScheduleNotFoundError) throw apiError('NOT_FOUND', err.message, { argument: 'id' });
    throw err;
  }
}

export const scheduleResolvers = {
  Query: {
    schedules: async (_: unknown, args: { first?: number | null; after?: string | null }, ctx: Ctx) => {
      const first = pageSize(args.first, 50);
      let after: string | null = null;
      if (args.after) {
        const key = decodeCursor(args.after);
        if (!key || typeof key[0] !== 'string') throw apiError('BAD_USER_INPUT', 'after is not a cursor this API handed out', { argument: 'after' });
        after = key[0];
      }
      const rows = await listSchedules(ctx.db, { project: scopeProject(ctx), first: first + 1, after });
      const edges = rows.slice(0, first).map((node) => ({ cursor: encodeCursor([node.id]), node }));
      return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
    },
    schedule: (_: unknown, args: { id: string }, ctx: Ctx) => visibleSchedule(ctx, args.id),
    regressions: async (_: unknown, args: { scheduleId?: string | null; kind?: string | null; first?: number | null }, ctx: Ctx) => {
      const first = pageSize(args.first, 50);
      let ids: string[];
      if (args.scheduleId) {
        const row = await visibleSchedule(ctx, args.scheduleId);
        if (!row) return [];
        ids = [row.id];
      } else {
        // Bounded: findings of at most one page of visible schedules.
        ids = (await listSchedules(ctx.db, { project: scopeProject(ctx), first: MAX_SCHEDULE_PAGE })).map((s) => s.id);
        if (!ids.length) return [];
      }
      return findingsOf(ctx.db, { scheduleIds: ids, kind: kindOf(args.kind), first });
    },
  },

  Mutation: {
    createSchedule: async (_: unknown, args: { spec: unknown; cron?: string | null; every?: string | null; name?: string | null; paused?: boolean | null }, ctx: Ctx) => {
      const sctx = scheduleContext(ctx);
      return mapped(async () => {
        let input = args.spec;
        // A spec without a project goes to the token's project, as launchSweep does.
        if (ctx.auth && input && typeof input === 'object' && !Array.isArray(input) && !('project' in input)) input = { ...(input as Record<string, unknown>), project: ctx.auth.project };
        const spec = parseScheduledSpec(input, sctx.executor);
        if (ctx.auth && spec.project !== ctx.auth.project) throw apiError('FORBIDDEN', `this token may create schedules in project "${ctx.auth.project}" only`, { path: 'project' });
        return createSchedule(sctx, { spec: input, cron: args.cron, every: args.every, name: args.name, paused: args.paused ?? false });
      });
    },
    pauseSchedule: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const sctx = scheduleContext(ctx);
      const row = await requireVisible(ctx, args.id);
      await mapped(() => pauseSchedule(sctx, row.id));
      return getSchedule(ctx.db, row.id);
    },
    resumeSchedule: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const sctx = scheduleContext(ctx);
      const row = await requireVisible(ctx, args.id);
      await mapped(() => resumeSchedule(sctx, row.id));
      return getSchedule(ctx.db, row.id);
    },
    triggerSchedule: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const sctx = scheduleContext(ctx);
      const row = await requireVisible(ctx, args.id);
      await mapped(() => triggerSchedule(sctx, row.id));
      return row;
    },
    deleteSchedule: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const sctx = scheduleContext(ctx);
      const row = await requireVisible(ctx, args.id);
      await mapped(() => deleteSchedule(sctx, row.id));
      return { id: row.id, deleted: true };
    },
  },

  Schedule: {
    project: (s: ScheduleRow) => s.projectId,
    overlap: (s: ScheduleRow) => block(s).overlap ?? 'skip',
    rerun: (s: ScheduleRow) => block(s).rerun ?? true,
    baselineRuns: (s: ScheduleRow) => block(s).baselineRuns ?? 3,
    metrics: (s: ScheduleRow) => block(s).metrics ?? [],
    webhookOrigin: (s: ScheduleRow) => {
      const url = block(s).webhook;
      if (!url) return null;
      try {
        return new URL(url).origin;
      } catch {
        return null;
      }
    },
    nextRunTimes: async (s: ScheduleRow, _: unknown, ctx: Ctx) => {
      if (!ctx.launch) return null;
      return nextRunTimes(ctx.launch.temporal, s.id).catch(() => null);
    },
    runs: (s: ScheduleRow, args: { first?: number | null }, ctx: Ctx) => scheduleRunsOf(ctx.db, s.id, pageSize(args.first, 20)),
    findings: (s: ScheduleRow, args: { kind?: string | null; first?: number | null }, ctx: Ctx) =>
      findingsOf(ctx.db, { scheduleIds: [s.id], kind: kindOf(args.kind), first: pageSize(args.first, 50) }),
  },

  ScheduleRun: {
    sweep: (r: ScheduleRunRow, _: unknown, ctx: Ctx) => (r.sweepId ? ctx.loaders.sweep.load(r.sweepId) : null),
    notified: (r: ScheduleRunRow) => r.notifiedAt !== null,
    results: (r: ScheduleRunRow) => r.results as RunResult[],
  },

  ScheduleFinding: {
    relativeChange: (f: ScheduleFindingRow) => (f.baseline === 0 ? null : (f.value - f.baseline) / Math.abs(f.baseline)),
  },
};
