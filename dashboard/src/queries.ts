/** The GraphQL operations of the dashboard and the shapes they return. */
import type { LeaderboardRow, StatusCounts } from './lib';

const COUNTS = 'counts { planned running succeeded failed cancelled skipped }';

export const PROGRESS_FIELDS = `
  status currentRung startedAt finishedAt
  progress {
    total ${COUNTS} gpuSeconds wallSeconds estimatedGpuSecondsRemaining
    rungs { rungIndex rungName total ${COUNTS} gpuSeconds wallSeconds estimatedGpuSecondsRemaining }
  }`;

export interface RungProgress {
  rungIndex: number;
  rungName: string;
  total: number;
  counts: StatusCounts;
  gpuSeconds: number;
  wallSeconds: number;
  estimatedGpuSecondsRemaining: number | null;
}

export interface SweepProgressFields {
  status: string;
  currentRung: number;
  startedAt: string | null;
  finishedAt: string | null;
  progress: {
    total: number;
    counts: StatusCounts;
    gpuSeconds: number;
    wallSeconds: number;
    estimatedGpuSecondsRemaining: number | null;
    rungs: RungProgress[];
  };
}

export interface SweepListItem extends SweepProgressFields {
  id: string;
  project: string;
  name: string;
  kind: string;
  createdAt: string;
}

export const SWEEPS_QUERY = `query DashboardSweeps($first: Int, $after: String, $filter: SweepFilter) {
  sweeps(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id project name kind createdAt ${PROGRESS_FIELDS} } }
  }
}`;

export interface SweepsData {
  sweeps: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; edges: { node: SweepListItem }[] };
}

export const PROGRESS_SUBSCRIPTION = `subscription DashboardSweepProgress($id: ID!) {
  sweepProgress(id: $id) { id ${PROGRESS_FIELDS} }
}`;

export interface ProgressEvent {
  sweepProgress: (SweepProgressFields & { id: string }) | null;
}

export interface PromotionDecision {
  variantIndex: number;
  variantName: string;
  mean: number | null;
  rank: number | null;
  promoted: boolean;
  reason: string;
}

export interface RungPromotion {
  rungIndex: number;
  rule: unknown;
  decisions: PromotionDecision[];
}

export interface TrialListItem {
  id: string;
  rungIndex: number;
  rungName: string;
  scaleValue: number | null;
  variantIndex: number;
  variantName: string;
  seed: number;
  status: string;
  attempts: number;
  result: Record<string, unknown> | null;
}

/** The fields of `ScalingAnalysis` the sweep page shows (the schema's descriptions say what each means). */
export const ANALYSIS_FIELDS = `
  verdict metric mode rungs variants target targetSource targetNote
  consistency {
    means r2 spearman threshold topK level
    againstLargest { scale shared r2 interval intervalNote pearson spearman winner largestWinner sameWinner topKAgreement consistent why }
  }
  criticalRung { scale r2 interval intervalNote pearson spearman sameWinner topKAgreement topK reason }
  fits { variant ok model params { a b c } reason }
  extrapolations { variant ok target prediction interval intervalMethod predictSeeds reason params { a b c } }
  budget { spent fullGrid savedShare unit notes }`;

export type Interval = [number, number];

export interface RungComparison {
  scale: number;
  shared: number;
  r2: number | null;
  interval: Interval | null;
  intervalNote: string | null;
  pearson: number | null;
  spearman: number | null;
  winner: string | null;
  largestWinner: string | null;
  sameWinner: boolean | null;
  topKAgreement: number | null;
  consistent: boolean;
  why: string;
}

export interface CriticalRung {
  scale: number | null;
  r2: number | null;
  interval: Interval | null;
  intervalNote: string | null;
  pearson: number | null;
  spearman: number | null;
  sameWinner: boolean | null;
  topKAgreement: number | null;
  topK: number;
  reason: string;
}

export interface ScalingParams {
  a: number;
  b: number;
  c: number;
}

export interface ScalingAnalysis {
  verdict: string;
  metric: string;
  mode: 'min' | 'max';
  rungs: number[];
  variants: string[];
  target: number | null;
  targetSource: string;
  targetNote: string;
  consistency: {
    means: (number | null)[][];
    r2: (number | null)[][];
    spearman: (number | null)[][];
    threshold: number;
    topK: number;
    level: number;
    againstLargest: RungComparison[];
  };
  criticalRung: CriticalRung;
  fits: { variant: string; ok: boolean; model: string | null; params: ScalingParams | null; reason: string | null }[];
  extrapolations: {
    variant: string;
    ok: boolean;
    target: number | null;
    prediction: number | null;
    interval: Interval | null;
    intervalMethod: string | null;
    predictSeeds: number | null;
    reason: string | null;
    params: ScalingParams | null;
  }[];
  budget: { spent: number; fullGrid: number | null; savedShare: number | null; unit: string; notes: string[] } | null;
}

export interface SweepDetail extends SweepListItem {
  codeVersion: string;
  executor: string;
  spec: Record<string, unknown>;
  scalingAnalysis: ScalingAnalysis | null;
  promotions: RungPromotion[];
  trials: { totalCount: number; edges: { node: TrialListItem }[] };
}

export const SWEEP_QUERY = `query DashboardSweep($id: ID!) {
  sweep(id: $id) {
    id project name kind createdAt codeVersion executor spec
    scalingAnalysis { ${ANALYSIS_FIELDS} }
    ${PROGRESS_FIELDS}
    promotions { rungIndex rule decisions { variantIndex variantName mean rank promoted reason } }
    trials(first: 100) {
      totalCount
      edges { node { id rungIndex rungName scaleValue variantIndex variantName seed status attempts result } }
    }
  }
}`;

export interface SweepData {
  sweep: SweepDetail | null;
}

export const LEADERBOARD_QUERY = `query DashboardLeaderboard($id: ID!, $metric: String!, $mode: MetricMode) {
  sweep(id: $id) { id leaderboard(metric: $metric, mode: $mode) { variantIndex variantName rungIndex rungName scaleValue mean std count rank } }
}`;

export interface LeaderboardData {
  sweep: { id: string; leaderboard: LeaderboardRow[] } | null;
}

export interface Series {
  name: string;
  totalPoints: number;
  points: { step: number; value: number }[];
}

export const SERIES_NAMES_QUERY = `query DashboardSeriesNames($id: ID!) {
  trial(id: $id) { id metrics(maxPoints: 2) { name totalPoints } }
}`;

export interface SeriesNamesData {
  trial: { id: string; metrics: { name: string; totalPoints: number }[] } | null;
}

/** One aliased `trial(id)` per selected trial, so the curves of many trials are one request. */
export function curvesQuery(count: number): string {
  const vars = Array.from({ length: count }, (_, i) => `$t${i}: ID!`).join(', ');
  const fields = Array.from(
    { length: count },
    (_, i) => `t${i}: trial(id: $t${i}) { id variantName seed rungName metrics(names: $names, maxPoints: $maxPoints) { name totalPoints points { step value } } }`,
  ).join('\n');
  return `query DashboardCurves(${vars}${count ? ', ' : ''}$names: [String!], $maxPoints: Int) {\n${fields}\n}`;
}

export interface CurveTrial {
  id: string;
  variantName: string;
  seed: number;
  rungName: string;
  metrics: Series[];
}

export const TRIAL_QUERY = `query DashboardTrial($id: ID!) {
  trial(id: $id) {
    id rungIndex rungName scaleValue variantIndex variantName variant seed config identity status
    attempts maxAttempts exitReason result reusedFrom
    timings { startedAt finishedAt updatedAt wallSeconds gpuSeconds }
    sweep { id name }
    events { id type data time }
    metrics(maxPoints: 500) { name totalPoints points { step value } }
  }
}`;

export interface TrialDetail {
  id: string;
  rungIndex: number;
  rungName: string;
  scaleValue: number | null;
  variantIndex: number;
  variantName: string;
  variant: unknown;
  seed: number;
  config: unknown;
  identity: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  exitReason: string | null;
  result: unknown;
  reusedFrom: string | null;
  timings: { startedAt: string | null; finishedAt: string | null; updatedAt: string; wallSeconds: number; gpuSeconds: number };
  sweep: { id: string; name: string };
  events: { id: string; type: string; data: unknown; time: string }[];
  metrics: Series[];
}

export const TRIAL_LOGS_QUERY = `query DashboardTrialLogs($id: ID!, $tail: Int) {
  trial(id: $id) { id logs(tail: $tail) }
}`;

export interface TrialLogsData {
  trial: { id: string; logs: string | null } | null;
}

export interface TrialData {
  trial: TrialDetail | null;
}

// Capacity runs (graphql/capacity.ts)
export const CAPACITY_RUNS_QUERY = `query DashboardCapacityRuns($first: Int, $after: String) {
  capacityRuns(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { id scenario kind status mode knee kneeIsLowerBound stopReason startedAt host } }
  }
}`;

export const CAPACITY_RUN_QUERY = `query DashboardCapacityRun($id: ID!) {
  capacityRun(id: $id) {
    id scenario kind status mode target thresholds knee kneeIsLowerBound stopReason error startedAt finishedAt host scaling
    steps { index generators offered achieved p50Ms p95Ms p99Ms errorRate droppedRate passed incomplete thresholds { threshold actual limit passed } }
  }
}`;

export interface CapacityRunListItem {
  id: string;
  scenario: string;
  kind: string;
  status: string;
  mode: string;
  knee: number | null;
  kneeIsLowerBound: boolean;
  stopReason: string | null;
  startedAt: string;
  host: { loadavgStart?: number[] } | null;
}
export interface CapacityRunsData {
  capacityRuns: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; edges: { node: CapacityRunListItem }[] };
}
export interface CapacityRunData {
  capacityRun:
    | (CapacityRunListItem & {
        target: string | null;
        thresholds: string[];
        error: string | null;
        finishedAt: string | null;
        scaling: { forRate: number; replicas: number | null; replicasInterval: [number | null, number | null]; level: number; notes: string[] } | null;
        steps: Array<import('./capacity-lib').CapacityStepView & { droppedRate: number; thresholds: { threshold: string; actual: number | null; limit: number; passed: boolean }[] }>;
      })
    | null;
}
