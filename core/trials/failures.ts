/** The failed trials of a sweep, newest first, for the failure reports of the CLI. */
import { and, desc, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { trials } from '../db/schema';

export interface FailedTrial {
  id: string;
  rungName: string;
  variantName: string;
  seed: number;
  attempts: number;
  maxAttempts: number;
  exitReason: string | null;
  execution: unknown;
}

/** At most `limit` failed trials (newest first) and how many failed in all. */
export async function failedTrials(db: Db, sweepId: string, limit: number): Promise<{ total: number; shown: FailedTrial[] }> {
  const where = and(eq(trials.sweepId, sweepId), eq(trials.status, 'failed'));
  const [count] = await db.select({ n: sql<number>`count(*)::int` }).from(trials).where(where);
  const total = count?.n ?? 0;
  if (total === 0) return { total, shown: [] };
  const shown = await db
    .select({
      id: trials.id,
      rungName: trials.rungName,
      variantName: trials.variantName,
      seed: trials.seed,
      attempts: trials.attempts,
      maxAttempts: trials.maxAttempts,
      exitReason: trials.exitReason,
      execution: trials.execution,
    })
    .from(trials)
    .where(where)
    .orderBy(desc(trials.finishedAt), trials.id)
    .limit(Math.max(0, Math.min(limit, 100)));
  return { total, shown };
}
