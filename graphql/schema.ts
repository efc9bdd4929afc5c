/**
 * The GraphQL schema: SDL plus typed resolvers. Reads go through the per-request DataLoaders of
 * `data.ts`; launches and cancels go through `core/sweeps/launch.ts`, the path the CLI uses too.
 *
 * Visibility: a request with a token sees only its token's project (other projects' sweeps and
 * trials are simply absent: null or not listed). An anonymous request reaches the resolvers only
 * when the server allows anonymous reads (use-auth), and then sees every project.
 */
import { GraphQLScalarType, Kind } from 'graphql';
import { GraphQLJSON } from 'graphql-scalars';
import { createSchema } from 'graphql-yoga';
import { capacityResolvers, capacityTypeDefs } from './capacity';
import { scheduleResolvers, scheduleTypeDefs } from './schedules';
import { isFinishedSweep, PROMOTION_ANALYSIS, SCALING_ANALYSIS, SWEEP_STATUSES, TRIAL_STATUSES, type SweepStatus, type TrialStatus } from '../core/db/schema';
import { SpecError } from '../core/spec/spec';
import type { SweepAnalysis } from '../core/sweeps/analysis';
import { cancelSweep, launchSweep, ProjectMismatchError } from '../core/sweeps/launch';
import { NotRetryableError, retryTrial, RetryConflictError } from '../core/trials/retry';
import { countSweeps, sweepsPage, type SweepListFilter } from '../core/sweeps/store';
import { attemptRef, clampTail, LogRequestError } from '../core/trials/logs';
import { canSee, scopeProject, type GraphQLContext } from './context';
import {
  createLoaders,
  decodeSweepCursor,
  decodeTrialCursor,
  encodeCursor,
  trialCursor,
  type LeaderboardEntry,
  type LeaderboardKey,
  type MetricSeries,
  type SweepProgress,
  type SweepRow,
  type TrialFilter,
  type TrialRow,
} from './data';
import { apiError } from './errors';
import { distinctStates } from './notify';

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

  "Read access: sweeps, trials and comparisons, limited to the token's project."
  type Query {
    "Sweeps, newest first."
    sweeps(first: Int = ${DEFAULT_PAGE_SIZE}, after: String, filter: SweepFilter): SweepConnection!
    sweep(id: ID!): Sweep
    trial(id: ID!): Trial
    "The final-result value of one metric and its downsampled curve, for each visible trial."
    compare(trialIds: [ID!]!, metric: String!): [CompareEntry!]!
  }

  "Changes: launching and cancelling sweeps, retrying trials (a token with write access to the project)."
  type Mutation {
    "Validates the spec (same rules as the CLI), stores the sweep and its trials, starts its workflow."
    launchSweep(spec: JSON!, rerun: Boolean = false): LaunchResult!
    cancelSweep(id: ID!): CancelResult!
    "Resets a failed or cancelled trial to planned and runs it again (trial/<id> workflow)."
    retryTrial(id: ID!): Trial!
  }

  "Live updates over server-sent events."
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

  "Where a page of a connection ends and whether more follow."
  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }

  "A page of sweeps, newest first."
  type SweepConnection {
    edges: [SweepEdge!]!
    pageInfo: PageInfo!
    totalCount: Int!
  }
  "One sweep of a page, with the cursor to continue after it."
  type SweepEdge { cursor: String! node: Sweep! }

  "A page of a sweep's trials, by rung, variant and seed."
  type TrialConnection {
    edges: [TrialEdge!]!
    pageInfo: PageInfo!
    totalCount: Int!
  }
  "One trial of a page, with the cursor to continue after it."
  type TrialEdge { cursor: String! node: Trial! }

  "A benchmark sweep: variants × seeds run up a ladder of scale rungs, with promotion between rungs."
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
    "The sweep's scaling analysis as stored (analyses row of kind 'scaling', rung -1), untyped; null before the first one."
    analysis: JSON @deprecated(reason: "Use scalingAnalysis, the same data with a schema.")
    "The sweep's scaling analysis, typed: verdict, consistency between rungs, critical rung, fits, extrapolations, budget. Null before the first one."
    scalingAnalysis: ScalingAnalysis
    "Promotion decisions, one entry per rung that was decided."
    promotions: [RungPromotion!]!
  }

  """
  The scaling analysis of a sweep: does the variant ranking at a small rung predict the largest
  rung, and what does each variant's fitted scaling law predict beyond it. Matrices are indexed
  like variants (rows of means) or rungs × rungs (the correlation matrices).
  """
  type ScalingAnalysis {
    "One plain-language verdict (the same sentence the CLI prints): consistency, promotion and spend, prediction."
    verdict: String!
    "The final-result metric analysed."
    metric: String!
    "Whether lower (min) or higher (max) values of the metric are better."
    mode: MetricMode!
    "Distinct scale values of the rungs, ascending."
    rungs: [Float!]!
    "Variant names, sorted; rows of consistency.means."
    variants: [String!]!
    "Correlations of the variant ranking between every pair of rungs."
    consistency: ConsistencyMatrices!
    "The smallest rung whose ranking predicts the largest rung's, or why there is none."
    criticalRung: CriticalRung!
    "Per variant: the scaling-law fit over all its rungs, or why it was refused."
    fits: [VariantFit!]!
    "The scale the extrapolations are at; null when there is no step to take (one rung)."
    target: Float
    "Where target came from: spec (analysis.targetScale), requested, next-rung (one step past the largest) or none."
    targetSource: String!
    "The target in words, e.g. 'target 1e9: one step past the largest rung'."
    targetNote: String!
    "Per variant: the prediction at target with its prediction interval, or why there is none."
    extrapolations: [VariantExtrapolation!]!
    "Cost spent against the full grid's; null for imported sweeps and before any cost is known."
    budget: Budget
    "Promotion decisions the analysis saw, one entry per decided rung."
    promotions: [RungPromotion!]!
  }

  "Rung-against-rung statistics of the variant means; every matrix is indexed [rung][rung] (means: [variant][rung]); null where undefined."
  type ConsistencyMatrices {
    "Mean over seeds per variant and rung, [variant][rung]; null where the variant did not run."
    means: [[Float]!]!
    "R² of the linear fit between two rungs' variant means."
    r2: [[Float]!]!
    "Bootstrap interval [low, high] of each R²; null with one seed per cell."
    r2Interval: [[[Float!]]!]!
    "Pearson correlation (the sign R² loses)."
    pearson: [[Float]!]!
    "Spearman rank correlation."
    spearman: [[Float]!]!
    "Kendall rank correlation."
    kendall: [[Float]!]!
    "Share of the top-k variants that two rungs agree on."
    topKAgreement: [[Float]!]!
    "Each rung below the largest compared with the largest, ascending."
    againstLargest: [RungComparison!]!
    "k of the top-k agreement."
    topK: Int!
    "R² a rung must clear (with a positive correlation) to count as consistent."
    threshold: Float!
    "Confidence level of the intervals, e.g. 0.9."
    level: Float!
  }

  "One rung compared with the largest, over the variants run at both."
  type RungComparison {
    "The rung's scale value."
    scale: Float!
    "Variants present at both rungs; below 3 every statistic is null."
    shared: Int!
    "R² of the variant means at this rung against the largest rung's."
    r2: Float
    "Bootstrap interval [low, high] of R²; null with one seed (see intervalNote)."
    interval: [Float!]
    "Why there is no interval (e.g. it needs at least 2 seeds)."
    intervalNote: String
    "Pearson correlation of the variant means; must be positive to count as consistent."
    pearson: Float
    "Spearman rank correlation of the variant means."
    spearman: Float
    "Best variant at this rung, among the shared ones."
    winner: String
    "Best variant at the largest rung, among the shared ones."
    largestWinner: String
    "Whether winner and largestWinner are the same variant."
    sameWinner: Boolean
    "|top-k here ∩ top-k at the largest| / k."
    topKAgreement: Float
    "Positive correlation and R² at or above the threshold."
    consistent: Boolean!
    "Why the rung is not consistent; empty when it is."
    why: String!
  }

  "The smallest rung from which the ranking transfers to the largest rung."
  type CriticalRung {
    "Its scale value; null when no rung is consistent (see reason)."
    scale: Float
    "R² of the variant means at the critical rung against the largest rung's."
    r2: Float
    "Bootstrap interval [low, high] of R²; null with one seed (see intervalNote)."
    interval: [Float!]
    "Why there is no interval, when there is none."
    intervalNote: String
    "Pearson correlation of the variant means; must be positive to count as consistent."
    pearson: Float
    "Spearman rank correlation of the variant means."
    spearman: Float
    "Whether the best variant there is the best at the largest rung."
    sameWinner: Boolean
    "Share of the top-k variants shared with the largest rung."
    topKAgreement: Float
    "k of topKAgreement."
    topK: Int!
    "Why this rung, or why none."
    reason: String!
  }

  "Parameters of the scaling law L(N) = a·N^(−b) + c."
  type ScalingParams {
    "Scale coefficient."
    a: Float!
    "Exponent: how fast the metric improves with scale."
    b: Float!
    "Offset: the metric's limit at infinite scale."
    c: Float!
  }

  "A variant's scaling-law fit over its rungs."
  type VariantFit {
    "Variant name."
    variant: String!
    "Whether the fit succeeded; when not, reason says why."
    ok: Boolean!
    "power-offset (a·N^(−b) + c) or power (c = 0)."
    model: String
    "Fitted parameters, when ok."
    params: ScalingParams
    "Root-mean-square residual of the fit, in the metric's units."
    rmse: Float
    "Why there is no fit, when not ok."
    reason: String
  }

  "A variant's predicted metric at the target scale."
  type VariantExtrapolation {
    "Variant name."
    variant: String!
    "Whether there is a prediction; when not, reason says why."
    ok: Boolean!
    "power-offset or power."
    model: String
    "Parameters of the fit the prediction comes from."
    params: ScalingParams
    "Root-mean-square residual of that fit."
    rmse: Float
    "Scale of the prediction."
    target: Float
    "Predicted metric at target."
    prediction: Float
    "Prediction interval [low, high] for the mean over predictSeeds seeds at the target."
    interval: [Float!]
    "How the interval was made (seed-bootstrap, residual-bootstrap, or none for an exact fit)."
    intervalMethod: String
    "Number of seeds whose mean the interval predicts."
    predictSeeds: Int
    "Seed standard deviation assumed at the target."
    noiseSd: Float
    "Bootstrap replicates whose refit succeeded."
    bootstrapFits: Int
    "Leave-the-largest-rung-out check of the method; null when skipped."
    backtest: Backtest
    "Why the backtest was skipped."
    backtestSkipped: String
    "Why there is no prediction, when not ok."
    reason: String
  }

  "The largest rung predicted from the others, against what was measured there."
  type Backtest {
    "The largest rung, left out of the fit."
    heldOutScale: Float!
    "Prediction at heldOutScale from the other rungs."
    predicted: Float!
    "Mean measured at heldOutScale."
    actual: Float!
    "predicted − actual, in the metric's units."
    error: Float!
    "Prediction interval [low, high] of the backtest."
    interval: [Float!]!
    "Whether actual falls inside interval."
    withinInterval: Boolean!
  }

  "What the ladder spent against running every variant at every rung."
  type Budget {
    "Cost per rung."
    perRung: [RungBudget!]!
    "Cost of the trials that ran, in unit."
    spent: Float!
    "Cost of the full grid (measured or extrapolated per rung); null when unknown."
    fullGrid: Float
    "fullGrid − spent; null when fullGrid is unknown."
    saved: Float
    "saved / fullGrid."
    savedShare: Float
    "gpu-seconds, or device-seconds when a trial ran on CPU (one device each)."
    unit: String!
    "Caveats of the estimate."
    notes: [String!]!
  }

  "Cost of one rung."
  type RungBudget {
    "Rung index (0 = smallest)."
    rungIndex: Int!
    "The rung's scale value."
    scale: Float
    "Trials recorded at this rung (any status)."
    trials: Int!
    "Trials that ran (cost counted)."
    ran: Int!
    "Cost of this rung's trials that ran."
    spent: Float!
    "Mean cost of a trial that ran; null when none ran."
    meanCostPerTrial: Float
    "Cost per trial used for the full grid: measured, extrapolated, or null."
    gridCostPerTrial: Float
    "Whether gridCostPerTrial is extrapolated from other rungs."
    estimated: Boolean!
  }

  "Number of trials in each status."
  type StatusCounts { ${TRIAL_STATUSES.map((s) => `${s}: Int!`).join(' ')} }

  "How far a sweep is: trial counts and time spent, overall and per rung."
  type SweepProgress {
    total: Int!
    counts: StatusCounts!
    gpuSeconds: Float!
    wallSeconds: Float!
    "Sum over rungs; null while a rung with work left has no finished trial to estimate from."
    estimatedGpuSecondsRemaining: Float
    rungs: [RungProgress!]!
  }

  "How far one rung of a sweep is."
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

  "One variant at one rung: a final-result metric aggregated over its succeeded seeds."
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

  "The promotion decision made after one rung: which variants move up and why."
  type RungPromotion {
    rungIndex: Int!
    rule: JSON
    decisions: [PromotionDecision!]!
  }

  "One variant's promotion decision after a rung."
  type PromotionDecision {
    variantIndex: Int!
    variantName: String!
    mean: Float
    rank: Int
    promoted: Boolean!
    reason: String!
  }

  "One (variant, seed, rung) run of a sweep's job, with its attempts, result and metrics."
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
    """
    The last tail bytes (at most 65536) of the job log of an attempt (default: the latest).
    Null when the trial has not started an attempt or its executor cannot give logs from here.
    """
    logs(attempt: Int, tail: Int = 4000): String
  }

  "When a trial ran and what it cost."
  type TrialTimings {
    startedAt: DateTime
    finishedAt: DateTime
    updatedAt: DateTime!
    wallSeconds: Float!
    gpuSeconds: Float!
  }

  "Something that happened to a trial (submitted, retried, failed…), with its details."
  type Event {
    id: ID!
    type: String!
    data: JSON!
    time: DateTime!
  }

  "One metric reported by a trial over training steps."
  type MetricSeries {
    name: String!
    "Points stored before downsampling."
    totalPoints: Int!
    points: [MetricPoint!]!
  }

  "One metric value at one step."
  type MetricPoint { step: Int! value: Float! }

  "One trial's value of the compared metric and its curve."
  type CompareEntry {
    trial: Trial!
    "The metric in the trial's final result, when numeric."
    value: Float
    series(maxPoints: Int = 500): MetricSeries
  }

  "The sweep a launch created, with how many trials it planned and how many it reused."
  type LaunchResult {
    sweep: Sweep!
    trials: Int!
    reused: Int!
  }

  "The sweep after a cancel request."
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
  const date = typeof value === 'string' && value.length <= 64 ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw apiError('BAD_USER_INPUT', `not an ISO-8601 date-time: ${JSON.stringify(value).slice(0, 80)}`);
  // JavaScript dates reach ±275 760 years; Postgres timestamps would refuse most of that range.
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) throw apiError('BAD_USER_INPUT', `date-time out of range (years 1 to 9999): ${JSON.stringify(value)}`);
  return date;
};
const DateTime = new GraphQLScalarType({
  name: 'DateTime',
  serialize: toIso,
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : null),
});

// graphql-scalars builds literal objects on a null prototype, so a literal key `__proto__` stays
// a key (graphql-js's own default would set the prototype). DateTime stays ours: it refuses years
// Postgres cannot store and answers BAD_USER_INPUT like every other input error.
const JSONScalar = GraphQLJSON;

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

/**
 * After this request changed a sweep or one of its trials: its answer must show the change, not
 * the cached state that the change's notification will drop a moment later.
 */
function forgetSweep(ctx: GraphQLContext, sweepId: string): void {
  ctx.readState?.leaderboardCache?.sweepChanged(sweepId);
  ctx.loaders.sweep.clear(sweepId);
  ctx.loaders.leaderboard.clearAll();
}

async function visibleSweep(ctx: GraphQLContext, id: string): Promise<SweepRow | null> {
  const sweep = await ctx.loaders.sweep.load(id);
  return sweep && canSee(ctx, sweep.projectId) ? sweep : null;
}

async function visibleTrial(ctx: GraphQLContext, id: string): Promise<TrialRow | null> {
  const trial = await ctx.loaders.trial.load(id);
  return trial && canSee(ctx, trial.projectId) ? trial : null;
}

/** Trial.logs: the row is already project-checked by whichever field returned it. */
async function trialLogs(t: TrialRow, args: { attempt?: number | null; tail?: number | null }, ctx: GraphQLContext): Promise<string | null> {
  let tail: number;
  try {
    tail = clampTail(args.tail);
  } catch (err) {
    throw apiError('BAD_USER_INPUT', (err as Error).message, { argument: 'tail' });
  }
  if (args.attempt !== undefined && args.attempt !== null && (!Number.isInteger(args.attempt) || args.attempt < 1)) {
    throw apiError('BAD_USER_INPUT', `attempt must be a positive whole number, not ${args.attempt}`, { argument: 'attempt' });
  }
  if (!ctx.readLogs || t.attempts < 1 || (args.attempt ?? 0) > t.attempts) return null;
  let ref;
  try {
    ref = attemptRef(t, args.attempt ?? undefined);
  } catch (err) {
    if (err instanceof LogRequestError) return null;
    throw err;
  }
  // An executor this server is not configured for (no cluster credentials here) has no logs to give.
  return ctx.readLogs(ref, tail).catch(() => null);
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
  // Own keys only: a metric named "constructor" or "__proto__" must not reach the prototype.
  const value = metrics && typeof metrics === 'object' && Object.hasOwn(metrics, metric) ? metrics[metric] : undefined;
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
  const filter: SweepListFilter = { ...args.filter, scope: scopeProject(ctx) };
  const after = args.after ? (decodeSweepCursor(args.after) ?? badCursor()) : null;
  const rows = await sweepsPage(ctx.db, filter, after, first + 1);
  const cursors = new Map(rows.map((r) => [r.sweep, encodeCursor([r.createdAtText, r.sweep.id])]));
  for (const r of rows) ctx.loaders.sweep.prime(r.sweep.id, r.sweep);
  return connection(
    rows.map((r) => r.sweep),
    first,
    (s) => cursors.get(s)!,
    () => countSweeps(ctx.db, filter),
  );
}

interface TrialsArgs {
  first?: number | null;
  after?: string | null;
  filter?: TrialFilter | null;
}

async function trialsConnection(ctx: GraphQLContext, sweep: SweepRow, args: TrialsArgs): Promise<Connection<TrialRow>> {
  const first = pageSize(args.first);
  const after = args.after ? (decodeTrialCursor(args.after) ?? badCursor()) : null;
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

interface ProgressState {
  row: SweepRow | null;
  progress: SweepProgress | null;
}
const progressKey = (s: ProgressState) => JSON.stringify([s.row, s.progress]);
/** Final once the sweep is over and no trial still runs (a cancel reaches running trials after the sweep). */
const progressFinal = (s: ProgressState) => !s.row || (isFinishedSweep(s.row.status) && (s.progress?.counts.running ?? 0) === 0);

type StoredAnalysis = Omit<SweepAnalysis, 'fits' | 'extrapolations'> & { fits: unknown; extrapolations: unknown };

/**
 * The stored analysis JSON for the typed field, or null when it is not one (rows written before
 * a field existed get its empty value, so one old row cannot fail the whole query).
 */
function typedAnalysis(data: unknown): StoredAnalysis | null {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return null;
  const a = data as Partial<SweepAnalysis>;
  if (!Array.isArray(a.rungs) || !Array.isArray(a.variants) || !a.consistency || typeof a.consistency !== 'object') return null;
  const none = { scale: null, r2: null, interval: null, pearson: null, spearman: null, sameWinner: null, topKAgreement: null, topK: 0, reason: 'not recorded' };
  return {
    ...(a as SweepAnalysis),
    verdict: typeof a.verdict === 'string' ? a.verdict : '',
    consistency: {
      ...{ means: [], r2: [], r2Interval: [], pearson: [], spearman: [], kendall: [], topKAgreement: [], againstLargest: [], topK: 0, threshold: 0, level: 0 },
      ...a.consistency,
    },
    criticalRung: a.criticalRung ?? none,
    targetSource: a.targetSource ?? 'none',
    targetNote: a.targetNote ?? '',
    target: a.target ?? null,
    promotions: Array.isArray(a.promotions) ? a.promotions : [],
  };
}

/** A `{ [variant]: entry }` record as a list of entries with their variant (own keys only). */
function byVariant(record: unknown): Record<string, unknown>[] {
  if (!record || typeof record !== 'object' || Array.isArray(record)) return [];
  return Object.keys(record)
    .sort()
    .map((variant) => ({ ...(record as Record<string, Record<string, unknown>>)[variant], variant }));
}

export const resolvers = {
  JSON: JSONScalar,
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
      let created;
      try {
        created = await launchSweep({ ...launch, db: ctx.db }, { spec: args.spec, rerun: args.rerun ?? false, project: ctx.auth?.project });
      } catch (err) {
        if (err instanceof SpecError) throw specInputError(err);
        if (err instanceof ProjectMismatchError) throw apiError('FORBIDDEN', err.message, { path: 'project' });
        throw err;
      }
      return { sweep: await ctx.loaders.sweep.load(created.id), trials: created.trials, reused: created.reused };
    },

    cancelSweep: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const launch = requireLaunch(ctx);
      const sweep = await visibleSweep(ctx, args.id);
      if (!sweep) throw apiError('NOT_FOUND', `sweep "${args.id}" not found`);
      const outcome = await cancelSweep({ db: ctx.db, temporal: launch.temporal }, sweep.id);
      forgetSweep(ctx, sweep.id);
      return { sweep: await ctx.loaders.sweep.load(sweep.id), outcome };
    },

    retryTrial: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const launch = requireLaunch(ctx);
      const trial = await visibleTrial(ctx, args.id);
      if (!trial) throw apiError('NOT_FOUND', `trial "${args.id}" not found`);
      try {
        await retryTrial({ db: ctx.db, temporal: launch.temporal, taskQueue: launch.taskQueue }, trial, await ctx.loaders.spec.load(trial.sweepId));
      } catch (err) {
        if (err instanceof NotRetryableError) throw apiError('BAD_USER_INPUT', err.message);
        if (err instanceof RetryConflictError) throw apiError('CONFLICT', err.message);
        throw err;
      } finally {
        forgetSweep(ctx, trial.sweepId);
        ctx.loaders.trial.clear(trial.id);
      }
      return visibleTrial(ctx, trial.id);
    },
  },

  Subscription: {
    sweepProgress: {
      subscribe: async (_: unknown, args: { id: string }, ctx: Ctx) => {
        const sweep = await visibleSweep(ctx, args.id);
        if (!sweep) throw apiError('NOT_FOUND', `sweep "${args.id}" not found`);
        const load = async (): Promise<ProgressState> => {
          // Fresh loaders per event: the subscription's context outlives many changes.
          const loaders = createLoaders(ctx.db, ctx.readState);
          const row = await loaders.sweep.load(sweep.id);
          return { row, progress: row ? await loaders.progress.load(sweep.id) : null };
        };
        return distinctStates(ctx.notifier.changes(sweep.id), load, progressKey, progressFinal);
      },
      resolve: (state: ProgressState, _args: unknown, ctx: Ctx) => {
        ctx.loaders = createLoaders(ctx.db, ctx.readState);
        if (!state.row || !canSee(ctx, state.row.projectId)) return null;
        ctx.loaders.sweep.prime(state.row.id, state.row);
        if (state.progress) ctx.loaders.progress.prime(state.row.id, state.progress);
        return state.row;
      },
    },
  },

  Sweep: {
    project: (s: SweepRow) => s.projectId,
    progress: (s: SweepRow, _: unknown, ctx: Ctx): Promise<SweepProgress> => ctx.loaders.progress.load(s.id),
    trials: (s: SweepRow, args: TrialsArgs, ctx: Ctx) => trialsConnection(ctx, s, args),
    spec: (s: SweepRow, _: unknown, ctx: Ctx) => ctx.loaders.spec.load(s.id),
    leaderboard: (s: SweepRow, args: { metric: string; rung?: number | null; mode?: 'min' | 'max' | null }, ctx: Ctx): Promise<readonly LeaderboardEntry[]> => {
      const key: LeaderboardKey = { sweepId: s.id, metric: args.metric, rung: args.rung ?? null, mode: args.mode ?? 'min', finished: isFinishedSweep(s.status) };
      return ctx.loaders.leaderboard.load(JSON.stringify(key));
    },
    analysis: async (s: SweepRow, _: unknown, ctx: Ctx) => {
      const rows = await ctx.loaders.analyses.load(s.id);
      return rows.find((r) => r.kind === SCALING_ANALYSIS && r.rungIndex === -1)?.data ?? null;
    },
    scalingAnalysis: async (s: SweepRow, _: unknown, ctx: Ctx) => {
      const rows = await ctx.loaders.analyses.load(s.id);
      return typedAnalysis(rows.find((r) => r.kind === SCALING_ANALYSIS && r.rungIndex === -1)?.data);
    },
    promotions: async (s: SweepRow, _: unknown, ctx: Ctx) => {
      const rows = await ctx.loaders.analyses.load(s.id);
      return rows
        .filter((r) => r.kind === PROMOTION_ANALYSIS)
        .map((r) => {
          const data = (r.data ?? {}) as { rule?: unknown; decisions?: unknown };
          return { rungIndex: r.rungIndex, rule: data.rule ?? null, decisions: Array.isArray(data.decisions) ? data.decisions : [] };
        });
    },
  },

  ScalingAnalysis: {
    fits: (a: StoredAnalysis) => byVariant(a.fits),
    extrapolations: (a: StoredAnalysis) => byVariant(a.extrapolations),
  },

  Trial: {
    sweep: async (t: TrialRow, _: unknown, ctx: Ctx) => ctx.loaders.sweep.load(t.sweepId),
    timings: (t: TrialRow) => ({ startedAt: t.startedAt, finishedAt: t.finishedAt, updatedAt: t.updatedAt, wallSeconds: t.wallSeconds, gpuSeconds: t.gpuSeconds }),
    events: (t: TrialRow, _: unknown, ctx: Ctx) => ctx.loaders.events.load(t.id),
    metrics: (t: TrialRow, args: { names?: string[] | null; maxPoints?: number | null }, ctx: Ctx) =>
      ctx.loaders.metrics.load(metricsKey(t.id, args.names, args.maxPoints)),
    logs: (t: TrialRow, args: { attempt?: number | null; tail?: number | null }, ctx: Ctx) => trialLogs(t, args, ctx),
  },
};

export function createLadderSchema() {
  return createSchema<GraphQLContext>({ typeDefs: [typeDefs, capacityTypeDefs, scheduleTypeDefs], resolvers: [resolvers, capacityResolvers, scheduleResolvers] });
}

export type { TrialStatus };
