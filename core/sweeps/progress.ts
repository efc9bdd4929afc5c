/**
 * Progress of sweeps, per rung: trial counts by status, GPU and wall seconds, and the estimated
 * GPU-seconds still to spend. One query for any number of sweeps (GraphQL batches them; the CLI
 * asks for one).
 */
import { inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { trials, TRIAL_STATUSES, type TrialStatus } from '../db/schema';

export type StatusCounts = Record<TrialStatus, number>;

export interface RungProgress {
  rungIndex: number;
  rungName: string;
  total: number;
  counts: StatusCounts;
  gpuSeconds: number;
  wallSeconds: number;
  /** Mean GPU-seconds of the finished (succeeded/failed, not reused) trials of this rung × planned+running; null when none finished yet. */
  estimatedGpuSecondsRemaining: number | null;
}

export interface SweepProgress {
  total: number;
  counts: StatusCounts;
  gpuSeconds: number;
  wallSeconds: number;
  estimatedGpuSecondsRemaining: number | null;
  rungs: RungProgress[];
}

export const zeroCounts = (): StatusCounts => Object.fromEntries(TRIAL_STATUSES.map((s) => [s, 0])) as StatusCounts;

export async function sweepsProgress(db: Db, sweepIds: readonly string[]): Promise<SweepProgress[]> {
  const finished = sql`${trials.reusedFrom} is null and ${trials.status} in ('succeeded', 'failed')`;
  const rows = await db
    .select({
      sweepId: trials.sweepId,
      rungIndex: trials.rungIndex,
      rungName: trials.rungName,
      status: trials.status,
      n: sql<number>`count(*)::int`,
      gpuSeconds: sql<number>`coalesce(sum(${trials.gpuSeconds}), 0)::float8`,
      wallSeconds: sql<number>`coalesce(sum(${trials.wallSeconds}), 0)::float8`,
      finishedN: sql<number>`(count(*) filter (where ${finished}))::int`,
      finishedGpu: sql<number>`coalesce(sum(${trials.gpuSeconds}) filter (where ${finished}), 0)::float8`,
    })
    .from(trials)
    .where(inArray(trials.sweepId, [...sweepIds]))
    .groupBy(trials.sweepId, trials.rungIndex, trials.rungName, trials.status)
    .orderBy(trials.sweepId, trials.rungIndex);
  const acc = new Map<string, Map<number, RungProgress & { finishedN: number; finishedGpu: number }>>();
  for (const row of rows) {
    let rungs = acc.get(row.sweepId);
    if (!rungs) acc.set(row.sweepId, (rungs = new Map()));
    let rung = rungs.get(row.rungIndex);
    if (!rung) {
      rung = {
        rungIndex: row.rungIndex,
        rungName: row.rungName,
        total: 0,
        counts: zeroCounts(),
        gpuSeconds: 0,
        wallSeconds: 0,
        estimatedGpuSecondsRemaining: null,
        finishedN: 0,
        finishedGpu: 0,
      };
      rungs.set(row.rungIndex, rung);
    }
    rung.counts[row.status] += row.n;
    rung.total += row.n;
    rung.gpuSeconds += row.gpuSeconds;
    rung.wallSeconds += row.wallSeconds;
    rung.finishedN += row.finishedN;
    rung.finishedGpu += row.finishedGpu;
  }
  return sweepIds.map((id) => {
    const progress: SweepProgress = { total: 0, counts: zeroCounts(), gpuSeconds: 0, wallSeconds: 0, estimatedGpuSecondsRemaining: 0, rungs: [] };
    for (const { finishedN, finishedGpu, ...rung } of [...(acc.get(id)?.values() ?? [])].sort((a, b) => a.rungIndex - b.rungIndex)) {
      const remaining = rung.counts.planned + rung.counts.running;
      rung.estimatedGpuSecondsRemaining = remaining === 0 ? 0 : finishedN > 0 ? (finishedGpu / finishedN) * remaining : null;
      progress.rungs.push(rung);
      progress.total += rung.total;
      progress.gpuSeconds += rung.gpuSeconds;
      progress.wallSeconds += rung.wallSeconds;
      for (const s of TRIAL_STATUSES) progress.counts[s] += rung.counts[s];
      progress.estimatedGpuSecondsRemaining =
        progress.estimatedGpuSecondsRemaining === null || rung.estimatedGpuSecondsRemaining === null
          ? null
          : progress.estimatedGpuSecondsRemaining + rung.estimatedGpuSecondsRemaining;
    }
    return progress;
  });
}
