/**
 * What a progress line needs beyond the counts: how long the sweep has run, a wall-clock ETA, and
 * the latest step of the trials running now.
 */
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { metricPoints, sweeps, trials } from '../db/schema';

/** Running trials whose latest step the progress line names; more are counted, not listed. */
export const RUNNING_SHOWN = 3;

export interface LiveProgress {
  elapsedSeconds: number | null;
  /** Wall seconds until every trial still planned or running has ended; null before any trial ended. */
  etaSeconds: number | null;
  running: Array<{ trialId: string; variantName: string; step: number | null }>;
  runningTotal: number;
}

/** Remaining trials run `concurrency` at a time, each as long as the mean finished one: whole waves of them. */
export function estimateEtaSeconds(remaining: number, concurrency: number, meanWallSeconds: number | null): number | null {
  if (remaining === 0) return 0;
  if (meanWallSeconds === null) return null;
  return Math.ceil(remaining / Math.max(1, concurrency)) * meanWallSeconds;
}

/**
 * The ETA assumes the remaining trials take as long as the finished ones (run here, not reused)
 * and run `concurrency` at a time; later rungs may be slower, so it is a floor more than a promise.
 */
export async function liveProgress(db: Db, sweepId: string, now = new Date()): Promise<LiveProgress> {
  const [sweep] = await db.select({ startedAt: sweeps.startedAt, finishedAt: sweeps.finishedAt, spec: sweeps.spec }).from(sweeps).where(eq(sweeps.id, sweepId));
  const [agg] = await db
    .select({
      finished: sql<number>`(count(*) filter (where ${trials.status} in ('succeeded', 'failed') and ${trials.reusedFrom} is null and ${trials.wallSeconds} > 0))::int`,
      meanWall: sql<number | null>`avg(${trials.wallSeconds}) filter (where ${trials.status} in ('succeeded', 'failed') and ${trials.reusedFrom} is null and ${trials.wallSeconds} > 0)`,
      remaining: sql<number>`(count(*) filter (where ${trials.status} in ('planned', 'running')))::int`,
      running: sql<number>`(count(*) filter (where ${trials.status} = 'running'))::int`,
    })
    .from(trials)
    .where(eq(trials.sweepId, sweepId));
  const running = await db
    .select({
      trialId: trials.id,
      variantName: trials.variantName,
      step: sql<number | null>`(select max(${metricPoints.step}) from ${metricPoints} where ${metricPoints.trialId} = ${trials.id})`,
    })
    .from(trials)
    .where(and(eq(trials.sweepId, sweepId), eq(trials.status, 'running')))
    .orderBy(trials.id)
    .limit(RUNNING_SHOWN);
  const end = sweep?.finishedAt ?? now;
  const elapsedSeconds = sweep?.startedAt ? Math.max(0, (end.getTime() - sweep.startedAt.getTime()) / 1000) : null;
  const spec = (sweep?.spec ?? {}) as { concurrency?: unknown };
  const concurrency = typeof spec.concurrency === 'number' && spec.concurrency >= 1 ? spec.concurrency : 1;
  const remaining = agg?.remaining ?? 0;
  const mean = agg?.meanWall === null || agg?.meanWall === undefined ? null : Number(agg.meanWall);
  const etaSeconds = estimateEtaSeconds(remaining, concurrency, mean);
  return {
    elapsedSeconds,
    etaSeconds,
    running: running.map((r) => ({ ...r, step: r.step === null ? null : Number(r.step) })),
    runningTotal: agg?.running ?? 0,
  };
}
