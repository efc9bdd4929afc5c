/**
 * The write path of running jobs: metric points and final results.
 * Points go in as one statement per batch (unnest of three arrays), idempotent on
 * (trial, name, step), so a job that retries a batch or resumes from a checkpoint never
 * duplicates a row.
 */
import type { Pool } from 'pg';
import { z } from 'zod';

export const MAX_POINTS_PER_BATCH = 50_000;

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

export const metricBatchSchema = z.strictObject({
  points: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(200),
        step: z.number().int().nonnegative().max(2_147_483_647),
        value: finite,
      }),
    )
    .max(MAX_POINTS_PER_BATCH, `at most ${MAX_POINTS_PER_BATCH} points per batch`),
});
export type MetricBatch = z.infer<typeof metricBatchSchema>;
export type MetricPoint = MetricBatch['points'][number];

export const trialResultSchema = z.strictObject({
  metrics: z.record(z.string().min(1).max(200), finite),
  config: z.record(z.string(), z.unknown()).default({}),
  meta: z.record(z.string(), z.unknown()).default({}),
});
export type TrialResult = z.infer<typeof trialResultSchema>;

export class IngestConflictError extends Error {}
export class UnknownTrialError extends Error {}

/** Returns how many points were new. */
export async function insertMetricPoints(pool: Pool, trialId: string, points: MetricPoint[]): Promise<number> {
  if (points.length === 0) return 0;
  try {
    const res = await pool.query(
      `insert into metric_points (trial_id, name, step, value)
       select $1, u.name, u.step, u.value
       from unnest($2::text[], $3::int[], $4::float8[]) as u(name, step, value)
       on conflict do nothing`,
      [trialId, points.map((p) => p.name), points.map((p) => p.step), points.map((p) => p.value)],
    );
    return res.rowCount ?? 0;
  } catch (err) {
    if ((err as { code?: string }).code === '23503') throw new UnknownTrialError(`trial "${trialId}" not found`);
    throw err;
  }
}

/** Records the final result; a trial already finalized as succeeded keeps the result it has. */
export async function recordTrialResult(pool: Pool, trialId: string, result: TrialResult): Promise<void> {
  const res = await pool.query(
    `update trials set result = $2, updated_at = now() where id = $1 and status <> 'succeeded' returning id`,
    [trialId, JSON.stringify(result)],
  );
  if (res.rowCount) return;
  const exists = await pool.query('select 1 from trials where id = $1', [trialId]);
  if (!exists.rowCount) throw new UnknownTrialError(`trial "${trialId}" not found`);
  throw new IngestConflictError(`trial "${trialId}" is already finalized`);
}
