/**
 * The GraphQL schema: SDL plus typed resolvers. Reads go through the per-request DataLoaders of
 * `data.ts`; launches and cancels go through `core/sweeps/launch.ts`, the path the CLI uses too.
 *
 * Visibility: a request with a token sees only its token's project (other projects' sweeps and
 * trials are simply absent: null or not listed). An anonymous request reaches the resolvers only
 * when the server allows anonymous reads (use-auth), and then sees every project.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import { and, desc, eq, ilike, inArray, lt, sql, type SQL } from 'drizzle-orm';
import { GraphQLScalarType, Kind } from 'graphql';
import { createSchema } from 'graphql-yoga';
import { events, sweeps, trials, SWEEP_STATUSES, TRIAL_STATUSES, type SweepStatus, type TrialStatus } from '../core/db/schema';
import { parseSweepSpec, parseSweepSpecText, SpecError } from '../core/spec/spec';
import { cancelSweep, launchSweep } from '../core/sweeps/launch';
import { canSee, scopeProject, type GraphQLContext } from './context';
import {
  createLoaders,
  decodeCursor,
  encodeCursor,
  trialCursor,
  type LeaderboardEntry,
  type MetricSeries,
  type SweepProgress,
  type SweepRow,
  type TrialFilter,
  type TrialRow,
} from './data';
import { apiError } from './errors';

/** Largest `first` of a connection; use-limits enforces the same bound before execution. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_POINTS = 5000;
export const MAX_COMPARE = 100;

export const typeDefs = /* GraphQL */ `
  "Any JSON value."
  scalar JSON
  "An ISO-8601 timestamp."
  scalar DateTime

  enum SweepStatus { ${SWEEP_STATUSES.join(' ')} }
  enum TrialStatus { ${TRIAL_STATUSES.join(' ')} }
  "Whether lower or higher values of a metric are better."
  enum MetricMode { min max }

  type Query {
    "Sweeps, newest first."
    sweeps(first: Int = ${DEFAULT_PAGE_SIZE}, after: String, filter: SweepFilter): SweepConnection!
    sweep(id: ID!): Sweep
    trial(id: ID!): Trial
    "The final-result value of one metric and its downsampled curve, for each visible trial."
    compare(trialIds: [ID!]!, metric: String!): [CompareEntry!]!
  }

  type Mutation {
    "Validates the spec (same rules as the CLI), stores the sweep and its trials, starts its workflow."
    launchSweep(spec: JSON!, rerun: Boolean = false): LaunchResult!
    cancelSweep(id: ID!): CancelResult!
    "Resets a failed or cancelled trial to planned and runs it again (trial/<id> workflow)."
    retryTrial(id: ID!): Trial!
  }

  type Subscription {
    "The sweep now, then again after every change of it or of one of its trials' status."
    sweepProgress(id: ID!): Sweep
  }

  input SweepFilter {
    status: SweepStatus
    kind: String
    "Substring of the name, case-insensitive."
    name: String
    project: String
    createdAfter: DateTime
    createdBefore: DateTime
  }

  input TrialFilter {
    "Rung index (0 = smallest)."
    rung: Int
    status: TrialStatus
    "Variant name, exact."
    variant: String
  }

  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }

  type SweepConnection {
    edges: [SweepEdge!]!
    pageInfo: PageInfo!
    totalCount: Int!
  }
  type SweepEdge { cursor: String! node: Sweep! }

  type TrialConnection {
    edges: [TrialEdge!]!
    pageInfo: PageInfo!
    totalCount: Int!
  }
  type TrialEdge { cursor: String! node: Trial! }

  type Sweep {
    id: ID!
    project: String!
    name: String!
    kind: String!
    status: SweepStatus!
    codeVersion: String!
    executor: String!
    rerun: Boolean!
    currentRung: Int!
    createdAt: DateTime!
    startedAt: DateTime
    finishedAt: DateTime
    "The validated spec, defaults filled in."
    spec: JSON!
    progress: SweepProgress!
    trials(first: Int = ${DEFAULT_PAGE_SIZE}, after: String, filter: TrialFilter): TrialConnection!
    "Variants × rungs over the succeeded trials: mean, sample std and count over seeds of a final-result metric."
    leaderboard(metric: String!, rung: Int, mode: MetricMode = min): [LeaderboardRow!]!
    "The sweep's scaling analysis (analyses row of kind 'scaling', rung -1): its data, or null."
    analysis: JSON
    "Promotion decisions, one entry per rung that was decided."
    promotions: [RungPromotion!]!
  }

  type StatusCounts { ${TRIAL_STATUSES.map((s) => `${s}: Int!`).join(' ')} }

  type SweepProgress {
    total: Int!
    counts: StatusCounts!
    gpuSeconds: Float!
    wallSeconds: Float!
    "Sum over rungs; null while a rung with work left has no finished trial to estimate from."
    estimatedGpuSecondsRemaining: Float
    rungs: [RungProgress!]!
  }

  type RungProgress {
    rungIndex: Int!
    rungName: String!
    total: Int!
    counts: StatusCounts!
    gpuSeconds: Float!
    wallSeconds: Float!
    "Mean GPU-seconds per finished (succeeded or failed, not reused) trial of this rung × planned and running trials."
    estimatedGpuSecondsRemaining: Float
  }

  type LeaderboardRow {
    variantIndex: Int!
    variantName: String!
    rungIndex: Int!
    rungName: String!
    scaleValue: Float
    mean: Float
    std: Float
    count: Int!
    "1 = best within the rung for the requested mode; null without a value."
    rank: Int
  }

  type RungPromotion {
    rungIndex: Int!
    rule: JSON
    decisions: [PromotionDecision!]!
  }

  type PromotionDecision {
    variantIndex: Int!
    variantName: String!
    mean: Float
    rank: Int
    promoted: Boolean!
    reason: String!
  }

  type Trial {
    id: ID!
    sweep: Sweep!
    rungIndex: Int!
    rungName: String!
    scaleValue: Float
    variantIndex: Int!
    variantName: String!
    variant: JSON!
    seed: Int!
    config: JSON!
    identity: String!
    status: TrialStatus!
    attempts: Int!
    maxAttempts: Int!
    exitReason: String
    result: JSON
    reusedFrom: ID
    timings: TrialTimings!
    "The newest 200 events of the trial, oldest first."
    events: [Event!]!
    "Metric series (all names when names is omitted), each downsampled to at most maxPoints points."
    metrics(names: [String!], maxPoints: Int = 500): [MetricSeries!]!
  }

  type TrialTimings {
    startedAt: DateTime
    finishedAt: DateTime
    updatedAt: DateTime!
    wallSeconds: Float!
    gpuSeconds: Float!
  }

  type Event {
    id: ID!
    type: String!
    data: JSON!
    time: DateTime!
  }

  type MetricSeries {
    name: String!
    "Points stored before downsampling."
    totalPoints: Int!
    points: [MetricPoint!]!
  }

  type MetricPoint { step: Int! value: Float! }

  type CompareEntry {
    trial: Trial!
    "The metric in the trial's final result, when numeric."
    value: Float
    series(maxPoints: Int = 500): MetricSeries
  }

  type LaunchResult {
    sweep: Sweep!
    trials: Int!
    reused: Int!
  }

  type CancelResult {
    sweep: Sweep!
    "cancelling, or already-finished"
    outcome: String!
  }
`;

// ---------------------------------------------------------------------------------------------
// Scalars

const toIso = (value: unknown): string => {
  const date = value instanceof Date ? value : new Date(String(value));
  if (Number.isNaN(date.getTime())) throw new TypeError('DateTime cannot represent an invalid date');
  return date.toISOString();
};
const parseDate = (value: unknown): Date => {
  const date = typeof value === 'string' ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw apiError('BAD_USER_INPUT', `not an ISO-8601 date-time: ${JSON.stringify(value)}`);
  return date;
};
const DateTime = new GraphQLScalarType({
  name: 'DateTime',
  serialize: toIso,
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : null),
});

// ---------------------------------------------------------------------------------------------
// Helpers

function pageSize(first: number | null | undefined): number {
  const n = first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAGE_SIZE) {
    throw apiError('BAD_USER_INPUT', `first must be between 0 and ${MAX_PAGE_SIZE}`, { argument: 'first' });
  }
  return n;
}

function badCursor(): never {
  throw apiError('BAD_USER_INPUT', 'invalid cursor', { argument: 'after' });
}

async function visibleSweep(ctx: GraphQLContext, id: string): Promise<SweepRow | null> {
  const sweep = await ctx.loaders.sweep.load(id);
  return sweep && canSee(ctx, sweep.projectId) ? sweep : null;
}

async function visibleTrial(ctx: GraphQLContext, id: string): Promise<TrialRow | null> {
  const trial = await ctx.loaders.trial.load(id);
  return trial && canSee(ctx, trial.projectId) ? trial : null;
}

function requireLaunch(ctx: GraphQLContext) {
  if (!ctx.launch) throw new Error('this API server runs without a Temporal client; it cannot start workflows');
  return ctx.launch;
}

function metricsKey(trialId: string, names: readonly string[] | null | undefined, maxPoints: number | null | undefined): string {
  const n = maxPoints ?? 500;
  if (!Number.isInteger(n) || n < 2 || n > MAX_POINTS) {
    throw apiError('BAD_USER_INPUT', `maxPoints must be between 2 and ${MAX_POINTS}`, { argument: 'maxPoints' });
  }
  return JSON.stringify({ trialId, names: names ? [...new Set(names)].sort() : null, maxPoints: n });
}

function resultMetric(result: unknown, metric: string): number | null {
  const metrics = (result as { metrics?: Record<string, unknown> } | null)?.metrics;
  const value = metrics?.[metric];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  totalCount: () => Promise<number>;
}

function connection<T>(rows: T[], first: number, cursorOf: (row: T) => string, totalCount: () => Promise<number>): Connection<T> {
  const page = rows.slice(0, first);
  const edges = page.map((node) => ({ cursor: cursorOf(node), node }));
  return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null }, totalCount };
}

// ---------------------------------------------------------------------------------------------
// Resolvers

interface SweepsArgs {
  first?: number | null;
  after?: string | null;
  filter?: {
    status?: SweepStatus | null;
    kind?: string | null;
    name?: string | null;
    project?: string | null;
    createdAfter?: Date | null;
    createdBefore?: Date | null;
  } | null;
}

async function sweepsConnection(ctx: GraphQLContext, args: SweepsArgs): Promise<Connection<SweepRow>> {
  const first = pageSize(args.first);
  const f = args.filter ?? {};
  const where: SQL[] = [];
  const scope = scopeProject(ctx);
  if (scope !== null) where.push(eq(sweeps.projectId, scope));
  if (f.project) where.push(eq(sweeps.projectId, f.project));
  if (f.status) where.push(eq(sweeps.status, f.status));
  if (f.kind) where.push(eq(sweeps.kind, f.kind));
  if (f.name) where.push(ilike(sweeps.name, `%${f.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
  if (f.createdAfter) where.push(sql`${sweeps.createdAt} > ${f.createdAfter.toISOString()}::timestamptz`);
  if (f.createdBefore) where.push(lt(sweeps.createdAt, f.createdBefore));
  const filtered = [...where];
  if (args.after) {
    const key = decodeCursor(args.after);
    if (!key || key.length !== 2 || typeof key[0] !== 'string' || typeof key[1] !== 'string' || Number.isNaN(Date.parse(key[0]))) badCursor();
    where.push(sql`(${sweeps.createdAt}, ${sweeps.id}) < (${key[0]}::timestamptz, ${key[1]})`);
  }
  const rows = await ctx.db
    .select({ sweep: sweeps, ts: sql<string>`${sweeps.createdAt}::text` })
    .from(sweeps)
    .where(and(...where))
    .orderBy(desc(sweeps.createdAt), desc(sweeps.id))
    .limit(first + 1);
  const cursors = new Map(rows.map((r) => [r.sweep, encodeCursor([r.ts, r.sweep.id])]));
  for (const r of rows) ctx.loaders.sweep.prime(r.sweep.id, r.sweep);
  return connection(
    rows.map((r) => r.sweep),
    first,
    (s) => cursors.get(s)!,
    async () => {
      const [row] = await ctx.db.select({ n: sql<number>`count(*)::int` }).from(sweeps).where(and(...filtered));
      return row?.n ?? 0;
    },
  );
}

interface TrialsArgs {
  first?: number | null;
  after?: string | null;
  filter?: TrialFilter | null;
}

async function trialsConnection(ctx: GraphQLContext, sweep: SweepRow, args: TrialsArgs): Promise<Connection<TrialRow>> {
  const first = pageSize(args.first);
  let after: [number, number, number, string] | null = null;
  if (args.after) {
    const key = decodeCursor(args.after);
    if (!key || key.length !== 4 || !key.slice(0, 3).every(Number.isInteger) || typeof key[3] !== 'string') badCursor();
    after = key as [number, number, number, string];
  }
  const filter: TrialFilter = { rung: args.filter?.rung ?? null, status: args.filter?.status ?? null, variant: args.filter?.variant ?? null };
  const rows = await ctx.loaders.trialPage.load(JSON.stringify({ sweepId: sweep.id, first, after, filter }));
  for (const r of rows) ctx.loaders.trial.prime(r.id, r);
  return connection(rows, first, trialCursor, () => ctx.loaders.trialCount.load(JSON.stringify({ sweepId: sweep.id, filter })));
}

/** SpecError → BAD_USER_INPUT with every issue and the path of the first one. */
function specInputError(err: SpecError) {
  return apiError('BAD_USER_INPUT', err.message, { issues: err.issues, path: err.issues[0]?.path ?? '' });
}

type Ctx = GraphQLContext;

export const resolvers = {
  JSON: new GraphQLScalarType({ name: 'JSON' }),
  DateTime,

  Query: {
    sweeps: (_: unknown, args: SweepsArgs, ctx: Ctx) => sweepsConnection(ctx, args),
    sweep: (_: unknown, args: { id: string }, ctx: Ctx) => visibleSweep(ctx, args.id),
    trial: (_: unknown, args: { id: string }, ctx: Ctx) => visibleTrial(ctx, args.id),
    compare: async (_: unknown, args: { trialIds: string[]; metric: string }, ctx: Ctx) => {
      if (args.trialIds.length > MAX_COMPARE) throw apiError('BAD_USER_INPUT', `compare takes at most ${MAX_COMPARE} trials`, { argument: 'trialIds' });
      const ids = [...new Set(args.trialIds)];
      const found = await Promise.all(ids.map((id) => visibleTrial(ctx, id)));
      return found.filter((t): t is TrialRow => t !== null).map((trial) => ({ trial, metric: args.metric }));
    },
  },

  CompareEntry: {
    value: (e: { trial: TrialRow; metric: string }) => resultMetric(e.trial.result, e.metric),
    series: async (e: { trial: TrialRow; metric: string }, args: { maxPoints?: number | null }, ctx: Ctx): Promise<MetricSeries | null> => {
      const series = await ctx.loaders.metrics.load(metricsKey(e.trial.id, [e.metric], args.maxPoints));
      return series[0] ?? null;
    },
  },

  Mutation: {
    launchSweep: async (_: unknown, args: { spec: unknown; rerun?: boolean | null }, ctx: Ctx) => {
      const launch = requireLaunch(ctx);
      let input = args.spec;
      let spec;
      try {
        if (typeof input === 'string') input = parseSweepSpecText(input) as unknown;
        // A spec without a project goes to the token's project.
        if (ctx.auth && input && typeof input === 'object' && !Array.isArray(input) && !('project' in input)) {
          input = { ...(input as Record<string, unknown>), project: ctx.auth.project };
        }
        spec = parseSweepSpec(input);
      } catch (err) {
        if (err instanceof SpecError) throw specInputError(err);
        throw err;
      }
      if (ctx.auth && spec.project !== ctx.auth.project) {
        throw apiError('FORBIDDEN', `this token may launch sweeps in project "${ctx.auth.project}" only`, { path: 'project' });
      }
      let created;
      try {
        created = await launchSweep({ ...launch, db: ctx.db }, { spec: input, rerun: args.rerun ?? false });
      } catch (err) {
        if (err instanceof SpecError) throw specInputError(err);
        throw err;
      }
      return { sweep: await ctx.loaders.sweep.load(created.id), trials: created.trials, reused: created.reused };
    },

    cancelSweep: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const launch = requireLaunch(ctx);
      const sweep = await visibleSweep(ctx, args.id);
      if (!sweep) throw apiError('NOT_FOUND', `sweep "${args.id}" not found`);
      const outcome = await cancelSweep({ db: ctx.db, temporal: launch.temporal }, sweep.id);
      ctx.loaders.sweep.clear(sweep.id);
      return { sweep: await ctx.loaders.sweep.load(sweep.id), outcome };
    },

    retryTrial: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const launch = requireLaunch(ctx);
      const trial = await visibleTrial(ctx, args.id);
      if (!trial) throw apiError('NOT_FOUND', `trial "${args.id}" not found`);
      if (trial.status !== 'failed' && trial.status !== 'cancelled') {
        throw apiError('BAD_USER_INPUT', `only a failed or cancelled trial can be retried (this one is ${trial.status})`);
      }
      // Attempt numbers keep counting (an execution is per trial attempt), and the trial gets
      // its original budget of attempts again.
      const sweep = await ctx.loaders.sweep.load(trial.sweepId);
      const retries = (sweep?.spec as { retries?: unknown } | undefined)?.retries;
      const budget = (typeof retries === 'number' ? retries : 0) + 1;
      const [reset] = await ctx.db
        .update(trials)
        .set({
          status: 'planned',
          maxAttempts: sql`${trials.attempts} + ${budget}`,
          exitReason: null,
          result: null,
          finishedAt: null,
          updatedAt: new Date(),
        })
        .where(and(eq(trials.id, trial.id), inArray(trials.status, ['failed', 'cancelled'])))
        .returning({ id: trials.id });
      if (!reset) throw apiError('CONFLICT', `trial "${trial.id}" changed meanwhile; try again`);
      await ctx.db.insert(events).values({ sweepId: trial.sweepId, trialId: trial.id, type: 'trial.retry.requested', data: { previousStatus: trial.status, previousExitReason: trial.exitReason } });
      try {
        await launch.temporal.workflow.start('trialWorkflow', {
          workflowId: `trial/${trial.id}`,
          taskQueue: launch.taskQueue,
          args: [{ trialId: trial.id }],
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        });
      } catch (err) {
        await ctx.db
          .update(trials)
          .set({ status: trial.status, maxAttempts: trial.maxAttempts, exitReason: trial.exitReason, result: trial.result, finishedAt: trial.finishedAt })
          .where(eq(trials.id, trial.id));
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw apiError('CONFLICT', `trial "${trial.id}" is still running`);
        throw err;
      }
      ctx.loaders.trial.clear(trial.id);
      return visibleTrial(ctx, trial.id);
    },
  },

  Subscription: {
    sweepProgress: {
      subscribe: async (_: unknown, args: { id: string }, ctx: Ctx) => {
        const sweep = await visibleSweep(ctx, args.id);
        if (!sweep) throw apiError('NOT_FOUND', `sweep "${args.id}" not found`);
        return ctx.notifier.changes(sweep.id);
      },
      resolve: (sweepId: string, _args: unknown, ctx: Ctx) => {
        // Fresh loaders per event: the subscription's context outlives many changes.
        ctx.loaders = createLoaders(ctx.db);
        return visibleSweep(ctx, sweepId);
      },
    },
  },

  Sweep: {
    project: (s: SweepRow) => s.projectId,
    progress: (s: SweepRow, _: unknown, ctx: Ctx): Promise<SweepProgress> => ctx.loaders.progress.load(s.id),
    trials: (s: SweepRow, args: TrialsArgs, ctx: Ctx) => trialsConnection(ctx, s, args),
    leaderboard: (s: SweepRow, args: { metric: string; rung?: number | null; mode?: 'min' | 'max' | null }, ctx: Ctx): Promise<LeaderboardEntry[]> =>
      ctx.loaders.leaderboard.load(JSON.stringify({ sweepId: s.id, metric: args.metric, rung: args.rung ?? null, mode: args.mode ?? 'min' })),
    analysis: async (s: SweepRow, _: unknown, ctx: Ctx) => {
      const rows = await ctx.loaders.analyses.load(s.id);
      return rows.find((r) => r.kind === 'scaling' && r.rungIndex === -1)?.data ?? null;
    },
    promotions: async (s: SweepRow, _: unknown, ctx: Ctx) => {
      const rows = await ctx.loaders.analyses.load(s.id);
      return rows
        .filter((r) => r.kind === 'promotion')
        .map((r) => {
          const data = (r.data ?? {}) as { rule?: unknown; decisions?: unknown };
          return { rungIndex: r.rungIndex, rule: data.rule ?? null, decisions: Array.isArray(data.decisions) ? data.decisions : [] };
        });
    },
  },

  Trial: {
    sweep: async (t: TrialRow, _: unknown, ctx: Ctx) => ctx.loaders.sweep.load(t.sweepId),
    timings: (t: TrialRow) => ({ startedAt: t.startedAt, finishedAt: t.finishedAt, updatedAt: t.updatedAt, wallSeconds: t.wallSeconds, gpuSeconds: t.gpuSeconds }),
    events: (t: TrialRow, _: unknown, ctx: Ctx) => ctx.loaders.events.load(t.id),
    metrics: (t: TrialRow, args: { names?: string[] | null; maxPoints?: number | null }, ctx: Ctx) =>
      ctx.loaders.metrics.load(metricsKey(t.id, args.names, args.maxPoints)),
  },
};

export function createLadderSchema() {
  return createSchema<GraphQLContext>({ typeDefs, resolvers });
}

export type { TrialStatus };
