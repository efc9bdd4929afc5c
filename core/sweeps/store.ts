/**
 * Sweep storage: turning a validated spec into rows, and reading sweeps back.
 * Everything a sweep needs is written in one transaction, so an error leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { events, projects, sweeps, trials, type SweepStatus } from '../db/schema';
import { planSweep } from '../spec/planner';
import { sweepsProgress, type RungProgress } from './progress';
import type { SweepSpec } from '../spec/spec';

export interface CreateSweepOptions {
  spec: SweepSpec;
  codeVersion: string;
  /** Run every trial even when a trial with the same identity already succeeded. */
  rerun?: boolean;
  executor?: string;
}

export interface CreatedSweep {
  id: string;
  trials: number;
  reused: number;
}

export function newSweepId(name: string): string {
  // Readable ids: users type them into the CLI. 8 base-36 chars ≈ 41 bits, plenty per name.
  const suffix = BigInt(`0x${randomBytes(6).toString('hex')}`).toString(36).padStart(8, '0').slice(-8);
  return `${name}-${suffix}`;
}

export async function createSweep(db: Db, options: CreateSweepOptions): Promise<CreatedSweep> {
  const { spec, codeVersion, rerun = false, executor = 'local' } = options;
  const plan = planSweep(spec, codeVersion);
  const id = newSweepId(spec.name);
  return db.transaction(async (tx) => {
    await tx.insert(projects).values({ id: spec.project, name: spec.project }).onConflictDoNothing();
    await tx.insert(sweeps).values({
      id,
      projectId: spec.project,
      name: spec.name,
      kind: spec.kind,
      spec,
      codeVersion,
      rerun,
      executor,
    });

    const reusable = new Map<string, { id: string; result: unknown; wallSeconds: number; gpuSeconds: number }>();
    if (!rerun && plan.trials.length > 0) {
      const identities = [...new Set(plan.trials.map((t) => t.identity))];
      const rows = await tx
        .selectDistinctOn([trials.identity], {
          id: trials.id,
          identity: trials.identity,
          result: trials.result,
          wallSeconds: trials.wallSeconds,
          gpuSeconds: trials.gpuSeconds,
        })
        .from(trials)
        // A result is reused only within its own project: the identity has no project in it (so
        // it stays stable), and a project must never see another's results through reuse.
        .innerJoin(sweeps, eq(trials.sweepId, sweeps.id))
        .where(
          and(
            eq(sweeps.projectId, spec.project),
            eq(trials.status, 'succeeded'),
            isNull(trials.reusedFrom),
            // One array parameter, however many trials: a list would hit Postgres' 65,535 bind limit.
            sql`${trials.identity} = any(${sql.param(identities)}::text[])`,
          ),
        )
        .orderBy(trials.identity, desc(trials.finishedAt));
      for (const row of rows) reusable.set(row.identity, row);
    }

    const now = new Date();
    const rows = plan.trials.map((t) => {
      const source = reusable.get(t.identity);
      return {
        id: `${id}-${t.key}`,
        sweepId: id,
        rungIndex: t.rung.index,
        rungName: t.rung.name,
        scaleValue: typeof t.rung.value === 'number' ? t.rung.value : null,
        variantIndex: t.variant.index,
        variantName: t.variant.name,
        variant: t.variant.overrides,
        seed: t.seed,
        config: t.config,
        identity: t.identity,
        maxAttempts: spec.retries + 1,
        ...(source
          ? {
              status: 'succeeded' as const,
              result: source.result,
              reusedFrom: source.id,
              startedAt: now,
              finishedAt: now,
              exitReason: 'reused',
            }
          : {}),
      };
    });
    // Chunked so a large grid stays under Postgres' 65535 bind parameters per statement.
    for (let i = 0; i < rows.length; i += 1000) {
      await tx.insert(trials).values(rows.slice(i, i + 1000));
    }
    const reused = rows.filter((r) => 'reusedFrom' in r).length;
    await tx.insert(events).values({ sweepId: id, type: 'sweep.created', data: { trials: rows.length, reused, rerun } });
    return { id, trials: rows.length, reused };
  });
}

export async function getSweep(db: Db, id: string) {
  const [row] = await db.select().from(sweeps).where(eq(sweeps.id, id));
  return row ?? null;
}

export class NotFoundError extends Error {
  constructor(what: string, id: string) {
    super(`${what} "${id}" not found`);
    this.name = 'NotFoundError';
  }
}

export async function requireSweep(db: Db, id: string) {
  const sweep = await getSweep(db, id);
  if (!sweep) throw new NotFoundError('sweep', id);
  return sweep;
}

export async function listSweeps(db: Db, limit = 50) {
  return db.select().from(sweeps).orderBy(desc(sweeps.createdAt)).limit(limit);
}

export type { RungProgress } from './progress';

/** Per-rung progress of one sweep. */
export async function sweepProgress(db: Db, sweepId: string): Promise<RungProgress[]> {
  const [progress] = await sweepsProgress(db, [sweepId]);
  return progress?.rungs ?? [];
}

export async function setSweepStatus(db: Db, sweepId: string, status: SweepStatus): Promise<void> {
  const terminal = status === 'succeeded' || status === 'failed' || status === 'cancelled';
  await db
    .update(sweeps)
    .set({
      status,
      ...(status === 'running' ? { startedAt: sql`coalesce(${sweeps.startedAt}, now())` } : {}),
      ...(terminal ? { finishedAt: sql`coalesce(${sweeps.finishedAt}, now())` } : {}),
    })
    .where(eq(sweeps.id, sweepId));
}

export interface LeaderboardRow {
  variantIndex: number;
  variantName: string;
  rungIndex: number;
  rungName: string;
  mean: number | null;
  std: number | null;
  count: number;
}

/** Variants × rungs, mean ± sample std over seeds of a final-result metric, computed in SQL. */
export async function leaderboard(db: Db, sweepId: string, metric: string): Promise<LeaderboardRow[]> {
  const value = sql`(${trials.result} -> 'metrics' ->> ${metric})::float8`;
  return db
    .select({
      variantIndex: trials.variantIndex,
      variantName: trials.variantName,
      rungIndex: trials.rungIndex,
      rungName: trials.rungName,
      mean: sql<number | null>`avg(${value})`,
      std: sql<number | null>`stddev_samp(${value})`,
      count: sql<number>`count(${value})::int`,
    })
    .from(trials)
    .where(and(eq(trials.sweepId, sweepId), eq(trials.status, 'succeeded')))
    .groupBy(trials.variantIndex, trials.variantName, trials.rungIndex, trials.rungName)
    .orderBy(trials.rungIndex, trials.variantIndex);
}

/** Metric names present in the final results of a sweep (for defaults and error messages). */
export async function resultMetricNames(db: Db, sweepId: string): Promise<string[]> {
  const rows = await db.execute<{ name: string }>(
    sql`select distinct jsonb_object_keys(result -> 'metrics') as name from trials
        where sweep_id = ${sweepId} and status = 'succeeded' and jsonb_typeof(result -> 'metrics') = 'object'
        order by 1`,
  );
  return rows.rows.map((r) => r.name);
}
