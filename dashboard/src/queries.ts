/**
 * The GraphQL operations of the dashboard. Their result types are generated from the schema by
 * graphql-codegen (`npm run gen:graphql` → ./generated/graphql.ts) out of the `/* GraphQL *\/`
 * strings below, so a schema change that breaks a page breaks `npm run build:dashboard` instead.
 *
 * Fragments are separate strings appended to each operation that spreads them (GraphQL has no
 * imports; the `+` stays outside the tagged strings, where codegen's plucker would not see them); test/browser/dashboard-lib.test.ts validates every operation against the schema,
 * which catches a fragment missing or left over.
 */
import type * as G from './generated/graphql';

const STATUS_COUNTS = /* GraphQL */ `
  fragment StatusCountsFields on StatusCounts { planned running succeeded failed cancelled skipped }
`;

const PROGRESS = /* GraphQL */ `
  fragment SweepProgressFields on Sweep {
    status currentRung startedAt finishedAt
    progress {
      total counts { ...StatusCountsFields } gpuSeconds wallSeconds estimatedGpuSecondsRemaining
      rungs { rungIndex rungName total counts { ...StatusCountsFields } gpuSeconds wallSeconds estimatedGpuSecondsRemaining }
    }
  }
`;

const SWEEPS = /* GraphQL */ `query DashboardSweeps($first: Int, $after: String, $filter: SweepFilter) {
  sweeps(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id project name kind createdAt ...SweepProgressFields } }
  }
}
`;
export const SWEEPS_QUERY = SWEEPS + PROGRESS + STATUS_COUNTS;

const PROGRESS_SUB = /* GraphQL */ `subscription DashboardSweepProgress($id: ID!) {
  sweepProgress(id: $id) { id ...SweepProgressFields }
}
`;
export const PROGRESS_SUBSCRIPTION = PROGRESS_SUB + PROGRESS + STATUS_COUNTS;

/** The fields of `ScalingAnalysis` the sweep page shows (the schema's descriptions say what each means). */
const ANALYSIS = /* GraphQL */ `
  fragment ScalingAnalysisFields on ScalingAnalysis {
    verdict metric mode rungs variants target targetSource targetNote
    consistency {
      means r2 spearman threshold topK level
      againstLargest { scale shared r2 interval intervalNote pearson spearman winner largestWinner sameWinner topKAgreement consistent why }
    }
    criticalRung { scale r2 interval intervalNote pearson spearman sameWinner topKAgreement topK reason }
    fits { variant ok model params { a b c } reason }
    extrapolations { variant ok target prediction interval intervalMethod predictSeeds reason params { a b c } }
    budget { spent fullGrid savedShare unit notes }
  }
`;

const SWEEP = /* GraphQL */ `query DashboardSweep($id: ID!) {
  sweep(id: $id) {
    id project name kind createdAt codeVersion executor spec
    scalingAnalysis { ...ScalingAnalysisFields }
    ...SweepProgressFields
    promotions { rungIndex rule decisions { variantIndex variantName mean rank promoted reason } }
    trials(first: 100) {
      totalCount
      edges { node { id rungIndex rungName scaleValue variantIndex variantName seed status attempts result } }
    }
  }
}
`;
export const SWEEP_QUERY = SWEEP + ANALYSIS + PROGRESS + STATUS_COUNTS;

export const LEADERBOARD_QUERY = /* GraphQL */ `query DashboardLeaderboard($id: ID!, $metric: String!, $mode: MetricMode) {
  sweep(id: $id) { id leaderboard(metric: $metric, mode: $mode) { variantIndex variantName rungIndex rungName scaleValue mean std count rank } }
}
`;

export const SERIES_NAMES_QUERY = /* GraphQL */ `query DashboardSeriesNames($id: ID!) {
  trial(id: $id) { id metrics(maxPoints: 2) { name totalPoints } }
}
`;

const CURVE_TRIAL = /* GraphQL */ `
  fragment CurveTrialFields on Trial {
    id variantName seed rungName
    metrics(names: $names, maxPoints: $maxPoints) { name totalPoints points { step value } }
  }
`;

/** One aliased `trial(id)` per selected trial, so the curves of many trials are one request. */
export function curvesQuery(count: number): string {
  const vars = Array.from({ length: count }, (_, i) => `$t${i}: ID!`).join(', ');
  const fields = Array.from({ length: count }, (_, i) => `t${i}: trial(id: $t${i}) { ...CurveTrialFields }`).join('\n');
  return `query DashboardCurves(${vars}${count ? ', ' : ''}$names: [String!], $maxPoints: Int) {\n${fields}\n}\n${count ? CURVE_TRIAL : ''}`;
}

export const TRIAL_QUERY = /* GraphQL */ `query DashboardTrial($id: ID!) {
  trial(id: $id) {
    id rungIndex rungName scaleValue variantIndex variantName variant seed config identity status
    attempts maxAttempts exitReason result reusedFrom
    timings { startedAt finishedAt updatedAt wallSeconds gpuSeconds }
    sweep { id name }
    events { id type data time }
    metrics(maxPoints: 500) { name totalPoints points { step value } }
  }
}
`;

export const TRIAL_LOGS_QUERY = /* GraphQL */ `query DashboardTrialLogs($id: ID!, $tail: Int) {
  trial(id: $id) { id logs(tail: $tail) }
}
`;

// Capacity runs (graphql/capacity.ts)
export const CAPACITY_RUNS_QUERY = /* GraphQL */ `query DashboardCapacityRuns($first: Int, $after: String) {
  capacityRuns(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { id scenario kind status mode knee kneeIsLowerBound stopReason startedAt host } }
  }
}
`;

export const CAPACITY_RUN_QUERY = /* GraphQL */ `query DashboardCapacityRun($id: ID!) {
  capacityRun(id: $id) {
    id scenario kind status mode target thresholds knee kneeIsLowerBound stopReason error startedAt finishedAt host scaling
    steps { index generators offered achieved p50Ms p95Ms p99Ms errorRate droppedRate passed incomplete thresholds { threshold actual limit passed } }
  }
}
`;

// The pages' names for the generated shapes (one place to see which operation each comes from).
type Item<T> = T extends readonly (infer U)[] ? U : never;

export type StatusCounts = G.StatusCountsFieldsFragment;
export type SweepProgressFields = G.SweepProgressFieldsFragment;
export type RungProgress = Item<SweepProgressFields['progress']['rungs']>;
export type SweepsData = G.DashboardSweepsQuery;
export type SweepListItem = Item<SweepsData['sweeps']['edges']>['node'];
export type ProgressEvent = G.DashboardSweepProgressSubscription;
export type SweepData = G.DashboardSweepQuery;
export type SweepDetail = NonNullable<SweepData['sweep']>;
export type ScalingAnalysis = G.ScalingAnalysisFieldsFragment;
export type RungPromotion = Item<SweepDetail['promotions']>;
export type TrialListItem = Item<SweepDetail['trials']['edges']>['node'];
export type LeaderboardData = G.DashboardLeaderboardQuery;
export type LeaderboardRow = Item<NonNullable<LeaderboardData['sweep']>['leaderboard']>;
export type SeriesNamesData = G.DashboardSeriesNamesQuery;
export type CurveTrial = G.CurveTrialFieldsFragment;
export type Series = Item<CurveTrial['metrics']>;
export type TrialData = G.DashboardTrialQuery;
export type TrialDetail = NonNullable<TrialData['trial']>;
export type TrialLogsData = G.DashboardTrialLogsQuery;
export type CapacityRunsData = G.DashboardCapacityRunsQuery;
export type CapacityRunData = G.DashboardCapacityRunQuery;
export type CapacityStep = Item<NonNullable<CapacityRunData['capacityRun']>['steps']>;
export type MetricMode = G.MetricMode;
