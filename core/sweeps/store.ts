/**
 * Sweep storage: turning a validated spec into rows, and reading sweeps back.
 * Everything a sweep needs is written in one transaction, so an error leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { and, desc, eq, getTableColumns, ilike, isNull, lt, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client';
import { events, isFinishedSweep, projects, sweeps, trials, type SweepStatus } from '../db/schema';
import { metricValue } from './metric';
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

/** A sweep's columns without its spec: what lists and lookups need (the spec can be large). */
const { spec: _spec, ...sweepSummaryColumns } = getTableColumns(sweeps);
export type SweepSummary = Omit<typeof sweeps.$inferSelect, 'spec'>;

const preparedSweepReads = new WeakMap<Db, ReturnType<typeof prepareSweepReads>>();

function prepareSweepReads(db: Db) {
  const ids = sql`any(${sql.placeholder('ids')}::text[])`;
  return {
    summaries: db.select(sweepSummaryColumns).from(sweeps).where(sql`${sweeps.id} = ${ids}`).prepare('ladder_sweep_summaries'),
    specs: db.select({ id: sweeps.id, spec: sweeps.spec }).from(sweeps).where(sql`${sweeps.id} = ${ids}`).prepare('ladder_sweep_specs'),
  };
}

function sweepReads(db: Db) {
  let prepared = preparedSweepReads.get(db);
  if (!prepared) preparedSweepReads.set(db, (prepared = prepareSweepReads(db)));
  return prepared;
}

/** Sweeps by id, without their specs, in one prepared statement; null for an unknown id. */
export async function sweepSummaries(db: Db, ids: readonly string[]): Promise<(SweepSummary | null)[]> {
  if (ids.length === 0) return [];
  const rows = await sweepReads(db).summaries.execute({ ids: [...new Set(ids)] });
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => byId.get(id) ?? null);
}

/** The validated specs of sweeps by id; null for an unknown id. */
export async function sweepSpecs(db: Db, ids: readonly string[]): Promise<(SweepSpec | null)[]> {
  if (ids.length === 0) return [];
  const rows = await sweepReads(db).specs.execute({ ids: [...new Set(ids)] });
  const byId = new Map(rows.map((r) => [r.id, r.spec as SweepSpec]));
  return ids.map((id) => byId.get(id) ?? null);
}

export interface SweepListFilter {
  /** Only this project (a token's scope); null: every project. */
  scope?: string | null;
  project?: string | null;
  status?: SweepStatus | null;
  kind?: string | null;
  /** Substring of the name, case-insensitive (LIKE wildcards in it are literal). */
  name?: string | null;
  createdAfter?: Date | null;
  createdBefore?: Date | null;
}

function sweepListWhere(f: SweepListFilter): SQL[] {
  const where: SQL[] = [];
  if (f.scope !== undefined && f.scope !== null) where.push(eq(sweeps.projectId, f.scope));
  if (f.project) where.push(eq(sweeps.projectId, f.project));
  if (f.status) where.push(eq(sweeps.status, f.status));
  if (f.kind) where.push(eq(sweeps.kind, f.kind));
  if (f.name) where.push(ilike(sweeps.name, `%${f.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
  if (f.createdAfter) where.push(sql`${sweeps.createdAt} > ${f.createdAfter.toISOString()}::timestamptz`);
  if (f.createdBefore) where.push(lt(sweeps.createdAt, f.createdBefore));
  return where;
}

/**
 * A page of sweeps (without specs), newest first, after the keyset `after` = [created_at as
 * Postgres prints it, id]. Returns up to `limit` rows, each with its created_at text for cursors.
 */
export async function sweepsPage(
  db: Db,
  filter: SweepListFilter,
  after: readonly [string, string] | null,
  limit: number,
): Promise<{ sweep: SweepSummary; createdAtText: string }[]> {
  const where = sweepListWhere(filter);
  // Postgres' own text of created_at, so the cursor keeps its microseconds (a JS Date has ms).
  if (after) where.push(sql`(${sweeps.createdAt}, ${sweeps.id}) < (${after[0]}::timestamptz, ${after[1]})`);
  return db
    .select({ sweep: sweepSummaryColumns, createdAtText: sql<string>`${sweeps.createdAt}::text` })
    .from(sweeps)
    .where(and(...where))
    .orderBy(desc(sweeps.createdAt), desc(sweeps.id))
    .limit(limit);
}

export async function countSweeps(db: Db, filter: SweepListFilter): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(sweeps).where(and(...sweepListWhere(filter)));
  return row?.n ?? 0;
}

export type { RungProgress } from './progress';

/** Per-rung progress of one sweep. */
export async function sweepProgress(db: Db, sweepId: string): Promise<RungProgress[]> {
  const [progress] = await sweepsProgress(db, [sweepId]);
  return progress?.rungs ?? [];
}

export async function setSweepStatus(db: Db, sweepId: string, status: SweepStatus): Promise<void> {
  const terminal = isFinishedSweep(status);
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

export interface LeaderboardEntry extends LeaderboardRow {
  scaleValue: number | null;
  /** 1 = best within the rung for the mode; null without a value. */
  rank: number | null;
}

export interface LeaderboardQuery {
  metric: string;
  /** One rung, or every rung (null). */
  rung: number | null;
  mode: 'min' | 'max';
}

/**
 * Prepared once per database handle: the API runs this on every leaderboard read. Postgres keeps
 * the plan per connection, so only the first run on each pooled connection pays for planning.
 */
const preparedLeaderboards = new WeakMap<Db, ReturnType<typeof prepareLeaderboards>>();

function prepareLeaderboards(db: Db) {
  // The metric value is computed once per trial in the inner select (its placeholder appears in
  // one place), then aggregated; rank orders by mean × sign so one plan serves both modes.
  const metric = sql.placeholder('metric');
  const scored = db
    .select({
      sweepId: trials.sweepId,
      variantIndex: trials.variantIndex,
      variantName: trials.variantName,
      rungIndex: trials.rungIndex,
      rungName: trials.rungName,
      scaleValue: trials.scaleValue,
      value: metricValue(metric).as('value'),
    })
    .from(trials)
    .where(
      and(
        sql`${trials.sweepId} = any(${sql.placeholder('sweepIds')}::text[])`,
        eq(trials.status, 'succeeded'),
        sql`(${sql.placeholder('rung')}::int is null or ${trials.rungIndex} = ${sql.placeholder('rung')}::int)`,
      ),
    )
    .as('scored');
  const mean = sql<number | null>`avg(${scored.value})`;
  const signed = sql`avg(${scored.value}) * ${sql.placeholder('sign')}::float8`;
  return db
    .select({
      sweepId: scored.sweepId,
      variantIndex: scored.variantIndex,
      variantName: scored.variantName,
      rungIndex: scored.rungIndex,
      rungName: scored.rungName,
      scaleValue: sql<number | null>`max(${scored.scaleValue})`,
      mean,
      std: sql<number | null>`stddev_samp(${scored.value})`,
      count: sql<number>`count(${scored.value})::int`,
      rank: sql<number | null>`case when ${mean} is null then null else (rank() over (partition by ${scored.sweepId}, ${scored.rungIndex} order by ${signed} nulls last))::int end`,
    })
    .from(scored)
    .groupBy(scored.sweepId, scored.variantIndex, scored.variantName, scored.rungIndex, scored.rungName)
    .orderBy(scored.sweepId, scored.rungIndex, sql`${signed} nulls last`, scored.variantIndex)
    .prepare('ladder_leaderboards');
}

/**
 * The leaderboard of several sweeps in one statement: variants × rungs, mean ± sample std over
 * seeds of a final-result metric (`metricValue`: non-numeric values count as missing), ranked
 * per rung for the mode; rows ordered by rung, then best first. Every sweep id gets an entry.
 */
export async function leaderboards(db: Db, sweepIds: readonly string[], query: LeaderboardQuery): Promise<Map<string, LeaderboardEntry[]>> {
  const out = new Map<string, LeaderboardEntry[]>(sweepIds.map((id) => [id, []]));
  if (sweepIds.length === 0) return out;
  let prepared = preparedLeaderboards.get(db);
  if (!prepared) preparedLeaderboards.set(db, (prepared = prepareLeaderboards(db)));
  const rows = await prepared.execute({ sweepIds: [...new Set(sweepIds)], metric: query.metric, rung: query.rung, sign: query.mode === 'max' ? -1 : 1 });
  for (const { sweepId, ...row } of rows) out.get(sweepId)?.push(row);
  return out;
}

/** One sweep's leaderboard over every rung, ordered by rung then variant (the CLI's table). */
export async function leaderboard(db: Db, sweepId: string, metric: string): Promise<LeaderboardRow[]> {
  const rows = (await leaderboards(db, [sweepId], { metric, rung: null, mode: 'min' })).get(sweepId) ?? [];
  return rows
    .sort((a, b) => a.rungIndex - b.rungIndex || a.variantIndex - b.variantIndex)
    .map(({ variantIndex, variantName, rungIndex, rungName, mean, std, count }) => ({ variantIndex, variantName, rungIndex, rungName, mean, std, count }));
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
