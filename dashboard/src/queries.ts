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

export interface SweepDetail extends SweepListItem {
  codeVersion: string;
  executor: string;
  spec: Record<string, unknown>;
  analysis: unknown;
  promotions: RungPromotion[];
  trials: { totalCount: number; edges: { node: TrialListItem }[] };
}

export const SWEEP_QUERY = `query DashboardSweep($id: ID!) {
  sweep(id: $id) {
    id project name kind createdAt codeVersion executor spec analysis
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

export interface TrialData {
  trial: TrialDetail | null;
}
