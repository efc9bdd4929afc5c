/**
 * The API's reads: one SQL statement per batch. Every field that could fan out over a list
 * (a sweep's progress, a trial's events or metrics, the trials of many sweeps) goes through a
 * per-request DataLoader, so a page of N items costs a constant number of round trips.
 * Aggregations over seeds and the downsampling of metric series run in Postgres.
 */
import DataLoader from 'dataloader';
import { and, asc, desc, eq, getTableColumns, inArray, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../core/db/client';
import { analyses, events, PROMOTION_ANALYSIS, SCALING_ANALYSIS, sweeps, trials, type TrialStatus } from '../core/db/schema';
import type { SweepSpec } from '../core/spec/spec';
import { sweepsProgress, type SweepProgress } from '../core/sweeps/progress';
import { leaderboards, sweepSpecs, sweepSummaries, type LeaderboardEntry, type SweepSummary } from '../core/sweeps/store';
import type { LeaderboardCache } from './read-cache';

export type { RungProgress, StatusCounts, SweepProgress } from '../core/sweeps/progress';

/** A sweep without its spec (`loaders.spec` has that). */
export type SweepRow = SweepSummary;
export type TrialRow = typeof trials.$inferSelect & { projectId: string };
export type EventRow = typeof events.$inferSelect;

// ---------------------------------------------------------------------------------------------
// Cursors: opaque base64url JSON of the sort key.

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** Longer than any cursor this API hands out; a bigger one is refused before decoding. */
const MAX_CURSOR_LENGTH = 512;

export function decodeCursor(cursor: string): unknown[] | null {
  if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]*$/.test(cursor)) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

// A cursor's values go into SQL as parameters: anything Postgres would refuse (an integer out
// of int4, a NUL, a date it cannot read) must be caught here, as the client's mistake.
const isInt4 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= -2147483648 && (v as number) <= 2147483647;
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200 && !v.includes('\u0000');
/** `created_at::text` as Postgres prints it, e.g. `2025-01-01 00:10:00.123456+00`. */
const PG_TIMESTAMPTZ = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?[+-](\d{2})(:[0-5]\d){0,2}$/;

function isPgTimestamp(v: unknown): v is string {
  const m = typeof v === 'string' ? PG_TIMESTAMPTZ.exec(v) : null;
  if (!m) return false;
  const [y, mo, d, h, mi, sec, , tz] = m.slice(1).map(Number) as number[];
  const date = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, sec!));
  // Round-trips only when every field is in range (no 31 February, no hour 25).
  return y! >= 1 && date.getUTCMonth() === mo! - 1 && date.getUTCDate() === d! && date.getUTCHours() === h! && date.getUTCMinutes() === mi! && date.getUTCSeconds() === sec! && tz! <= 15;
}

/** A sweeps-page cursor: [createdAt as Postgres text, id], or null when it is not one. */
export function decodeSweepCursor(cursor: string): [string, string] | null {
  const key = decodeCursor(cursor);
  if (!key || key.length !== 2) return null;
  const [ts, id] = key;
  if (!isPgTimestamp(ts) || !isId(id)) return null;
  return [ts, id];
}

/** A trials-page cursor: [rungIndex, variantIndex, seed, id], or null when it is not one. */
export function decodeTrialCursor(cursor: string): [number, number, number, string] | null {
  const key = decodeCursor(cursor);
  if (!key || key.length !== 4) return null;
  const [rung, variant, seed, id] = key;
  if (!isInt4(rung) || !isInt4(variant) || !isInt4(seed) || !isId(id)) return null;
  return [rung, variant, seed, id];
}

// ---------------------------------------------------------------------------------------------
// Trials of sweeps (connection pages), batched over sweeps with row_number()

export interface TrialFilter {
  rung?: number | null;
  status?: TrialStatus | null;
  variant?: string | null;
}

export interface TrialPageKey {
  sweepId: string;
  first: number;
  /** Decoded cursor: [rungIndex, variantIndex, seed, id]. */
  after: [number, number, number, string] | null;
  filter: TrialFilter;
}

export const trialCursor = (t: TrialRow) => encodeCursor([t.rungIndex, t.variantIndex, t.seed, t.id]);

function trialFilterSql(filter: TrialFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.rung !== undefined && filter.rung !== null) where.push(eq(trials.rungIndex, filter.rung));
  if (filter.status) where.push(eq(trials.status, filter.status));
  if (filter.variant) where.push(eq(trials.variantName, filter.variant));
  return where;
}

async function loadTrialPages(db: Db, keys: readonly string[]): Promise<TrialRow[][]> {
  const parsed = keys.map((k) => JSON.parse(k) as TrialPageKey);
  // Keys that share first/after/filter become one statement over all their sweeps.
  const groups = new Map<string, string[]>();
  for (const k of parsed) {
    const g = JSON.stringify([k.first, k.after, k.filter]);
    groups.set(g, [...(groups.get(g) ?? []), k.sweepId]);
  }
  const bySweep = new Map<string, TrialRow[]>();
  await Promise.all(
    [...groups].map(async ([g, sweepIds]) => {
      const [first, after, filter] = JSON.parse(g) as [number, TrialPageKey['after'], TrialFilter];
      const where = [inArray(trials.sweepId, sweepIds), ...trialFilterSql(filter)];
      if (after) {
        where.push(sql`(${trials.rungIndex}, ${trials.variantIndex}, ${trials.seed}, ${trials.id}) > (${after[0]}, ${after[1]}, ${after[2]}, ${after[3]})`);
      }
      const ranked = db
        .select({
          ...getTableColumns(trials),
          projectId: sweeps.projectId,
          rn: sql<number>`row_number() over (partition by ${trials.sweepId} order by ${trials.rungIndex}, ${trials.variantIndex}, ${trials.seed}, ${trials.id})`.as('rn'),
        })
        .from(trials)
        .innerJoin(sweeps, eq(sweeps.id, trials.sweepId))
        .where(and(...where))
        .as('ranked');
      const rows = await db.select().from(ranked).where(sql`${ranked.rn} <= ${first + 1}`).orderBy(ranked.sweepId, ranked.rn);
      for (const { rn: _rn, ...row } of rows) {
        const list = bySweep.get(row.sweepId) ?? [];
        list.push(row as TrialRow);
        bySweep.set(row.sweepId, list);
      }
    }),
  );
  return parsed.map((k) => bySweep.get(k.sweepId) ?? []);
}

async function loadTrialCounts(db: Db, keys: readonly string[]): Promise<number[]> {
  const parsed = keys.map((k) => JSON.parse(k) as { sweepId: string; filter: TrialFilter });
  const groups = new Map<string, string[]>();
  for (const k of parsed) {
    const g = JSON.stringify(k.filter);
    groups.set(g, [...(groups.get(g) ?? []), k.sweepId]);
  }
  const counts = new Map<string, number>();
  await Promise.all(
    [...groups].map(async ([g, sweepIds]) => {
      const filter = JSON.parse(g) as TrialFilter;
      const rows = await db
        .select({ sweepId: trials.sweepId, n: sql<number>`count(*)::int` })
        .from(trials)
        .where(and(inArray(trials.sweepId, sweepIds), ...trialFilterSql(filter)))
        .groupBy(trials.sweepId);
      for (const r of rows) counts.set(`${g}\u0000${r.sweepId}`, r.n);
    }),
  );
  return parsed.map((k) => counts.get(`${JSON.stringify(k.filter)}\u0000${k.sweepId}`) ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Leaderboard: variants × rungs, mean / sample std / count over seeds, ranked per rung, in SQL.

export interface LeaderboardKey {
  sweepId: string;
  metric: string;
  rung: number | null;
  mode: 'min' | 'max';
  /** The sweep is finished, so its leaderboard may come from (and go to) the cache. */
  finished: boolean;
}

export type { LeaderboardEntry };

async function loadLeaderboards(db: Db, cache: LeaderboardCache | undefined, keys: readonly string[]): Promise<(readonly LeaderboardEntry[])[]> {
  const parsed = keys.map((k) => JSON.parse(k) as LeaderboardKey);
  const queryKey = (k: LeaderboardKey) => JSON.stringify([k.metric, k.rung, k.mode]);
  const out: (readonly LeaderboardEntry[] | undefined)[] = parsed.map((k) => (k.finished && cache ? cache.get(k.sweepId, queryKey(k)) : undefined));
  // The misses that share metric/rung/mode become one statement over all their sweeps.
  const groups = new Map<string, number[]>();
  parsed.forEach((k, i) => {
    if (out[i]) return;
    const g = queryKey(k);
    groups.set(g, [...(groups.get(g) ?? []), i]);
  });
  await Promise.all(
    [...groups].map(async ([g, indexes]) => {
      const [metric, rung, mode] = JSON.parse(g) as [string, number | null, 'min' | 'max'];
      const ticket = indexes.some((i) => parsed[i]!.finished) ? (cache?.begin() ?? null) : null;
      try {
        const boards = await leaderboards(db, indexes.map((i) => parsed[i]!.sweepId), { metric, rung, mode });
        for (const i of indexes) {
          const k = parsed[i]!;
          out[i] = boards.get(k.sweepId) ?? [];
          if (k.finished) cache?.store(ticket, k.sweepId, g, out[i]!);
        }
      } finally {
        cache?.end(ticket);
      }
    }),
  );
  return out.map((rows) => rows ?? []);
}

/** Sweep rows by id: finished ones from the cache when there, the rest in one statement. */
async function loadSweeps(db: Db, cache: LeaderboardCache | undefined, ids: readonly string[]): Promise<(SweepRow | null)[]> {
  if (!cache) return sweepSummaries(db, ids);
  const out: (SweepRow | null | undefined)[] = ids.map((id) => cache.getSummary(id));
  const missing = ids.filter((_, i) => out[i] === undefined);
  if (missing.length === 0) return out as SweepRow[];
  const ticket = cache.begin();
  try {
    const rows = await sweepSummaries(db, missing);
    const byId = new Map<string, SweepRow | null>(missing.map((id, i) => [id, rows[i] ?? null]));
    for (const row of rows) if (row) cache.storeSummary(ticket, row);
    return ids.map((id, i) => out[i] ?? byId.get(id) ?? null);
  } finally {
    cache.end(ticket);
  }
}

// ---------------------------------------------------------------------------------------------
// Metric series, downsampled in SQL with min/max buckets.

export interface MetricsKey {
  trialId: string;
  names: string[] | null;
  maxPoints: number;
}

export interface MetricSeries {
  trialId: string;
  name: string;
  /** Points stored for this series before downsampling. */
  totalPoints: number;
  points: { step: number; value: number }[];
}

/**
 * A series of n points with n ≤ maxPoints comes back whole. A longer one is cut into
 * floor(maxPoints / 2) buckets of equal step width (`width_bucket`), and each bucket keeps its
 * lowest and its highest point (`min`/`max` over `array[value, step]`: a hash aggregate, no sort),
 * so the result has at most maxPoints points and always holds the global minimum and maximum.
 */
export function downsampleSql(trialIds: string[], names: string[] | null, maxPoints: number): SQL {
  const buckets = Math.max(1, Math.floor(maxPoints / 2));
  const nameFilter = names ? sql`and name = any(${sql.param(names)}::text[])` : sql``;
  // Repeated on `p` so the planner scans only these trials' rows through the primary key; the
  // join with `stats` alone let it choose a sequential scan of the whole table (seconds at 20M rows).
  const pointFilter = names
    ? sql`where p.trial_id = any(${sql.param(trialIds)}::text[]) and p.name = any(${sql.param(names)}::text[])`
    : sql`where p.trial_id = any(${sql.param(trialIds)}::text[])`;
  return sql`
    with stats as (
      select trial_id, name, count(*)::int as n, min(step) as lo, max(step) as hi
      from metric_points where trial_id = any(${sql.param(trialIds)}::text[]) ${nameFilter}
      group by trial_id, name
    ), bucketed as (
      select p.trial_id, p.name, s.n,
             case when s.n <= ${maxPoints}::int then p.step
                  else width_bucket(p.step::float8, s.lo::float8, s.hi::float8 + 1, ${buckets}::int) end as bucket,
             min(array[p.value, p.step::float8]) as lo_pt,
             max(array[p.value, p.step::float8]) as hi_pt
      from metric_points p join stats s on s.trial_id = p.trial_id and s.name = p.name
      ${pointFilter}
      group by 1, 2, 3, 4
    )
    select trial_id, name, n, step::int, value from (
      select trial_id, name, n, lo_pt[2] as step, lo_pt[1] as value from bucketed
      union
      select trial_id, name, n, hi_pt[2] as step, hi_pt[1] as value from bucketed
    ) pts
    order by trial_id, name, step`;
}

async function loadMetrics(db: Db, keys: readonly string[]): Promise<MetricSeries[][]> {
  const parsed = keys.map((k) => JSON.parse(k) as MetricsKey);
  const groups = new Map<string, string[]>();
  for (const k of parsed) {
    const g = JSON.stringify([k.names, k.maxPoints]);
    groups.set(g, [...(groups.get(g) ?? []), k.trialId]);
  }
  const out = new Map<string, MetricSeries[]>();
  await Promise.all(
    [...groups].map(async ([g, trialIds]) => {
      const [names, maxPoints] = JSON.parse(g) as [string[] | null, number];
      const res = await db.execute<{ trial_id: string; name: string; n: number; step: number; value: number }>(
        downsampleSql(trialIds, names, maxPoints),
      );
      let current: MetricSeries | null = null;
      for (const r of res.rows) {
        if (!current || current.trialId !== r.trial_id || current.name !== r.name) {
          current = { trialId: r.trial_id, name: r.name, totalPoints: Number(r.n), points: [] };
          const key = `${g}\u0000${r.trial_id}`;
          out.set(key, [...(out.get(key) ?? []), current]);
        }
        current.points.push({ step: Number(r.step), value: Number(r.value) });
      }
    }),
  );
  return parsed.map((k) => out.get(`${JSON.stringify([k.names, k.maxPoints])}\u0000${k.trialId}`) ?? []);
}

// ---------------------------------------------------------------------------------------------
// The loaders of one request.

export interface PromotionRow {
  rungIndex: number;
  data: unknown;
  createdAt: Date;
}

export const EVENTS_PER_TRIAL = 200;

/** What outlives a request: the server's caches (absent in tests that build loaders alone). */
export interface SharedReadState {
  leaderboardCache?: LeaderboardCache;
}

export function createLoaders(db: Db, shared: SharedReadState = {}) {
  return {
    sweep: new DataLoader<string, SweepRow | null>((ids) => loadSweeps(db, shared.leaderboardCache, ids)),
    /** Loaded only where the spec is asked for: it can be large, and most reads do not need it. */
    spec: new DataLoader<string, SweepSpec | null>((ids) => sweepSpecs(db, ids)),
    trial: new DataLoader<string, TrialRow | null>(async (ids) => {
      const rows = await db
        .select({ ...getTableColumns(trials), projectId: sweeps.projectId })
        .from(trials)
        .innerJoin(sweeps, eq(sweeps.id, trials.sweepId))
        .where(inArray(trials.id, [...ids]));
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    progress: new DataLoader<string, SweepProgress>((ids) => sweepsProgress(db, ids)),
    trialPage: new DataLoader<string, TrialRow[]>((keys) => loadTrialPages(db, keys)),
    trialCount: new DataLoader<string, number>((keys) => loadTrialCounts(db, keys)),
    leaderboard: new DataLoader<string, readonly LeaderboardEntry[]>((keys) => loadLeaderboards(db, shared.leaderboardCache, keys)),
    metrics: new DataLoader<string, MetricSeries[]>((keys) => loadMetrics(db, keys)),
    events: new DataLoader<string, EventRow[]>(async (trialIds) => {
      const ranked = db
        .select({
          ...getTableColumns(events),
          rn: sql<number>`row_number() over (partition by ${events.trialId} order by ${events.id} desc)`.as('rn'),
        })
        .from(events)
        .where(inArray(events.trialId, [...trialIds]))
        .as('ranked');
      const rows = await db.select().from(ranked).where(sql`${ranked.rn} <= ${EVENTS_PER_TRIAL}`).orderBy(ranked.trialId, ranked.id);
      const byTrial = new Map<string, EventRow[]>();
      for (const { rn: _rn, ...row } of rows) byTrial.set(row.trialId!, [...(byTrial.get(row.trialId!) ?? []), row]);
      return trialIds.map((id) => byTrial.get(id) ?? []);
    }),
    analyses: new DataLoader<string, { kind: string; rungIndex: number; data: unknown; createdAt: Date }[]>(async (sweepIds) => {
      const rows = await db
        .select({ sweepId: analyses.sweepId, kind: analyses.kind, rungIndex: analyses.rungIndex, data: analyses.data, createdAt: analyses.createdAt })
        .from(analyses)
        .where(and(inArray(analyses.sweepId, [...sweepIds]), inArray(analyses.kind, [SCALING_ANALYSIS, PROMOTION_ANALYSIS])))
        .orderBy(asc(analyses.rungIndex), desc(analyses.createdAt));
      const bySweep = new Map<string, { kind: string; rungIndex: number; data: unknown; createdAt: Date }[]>();
      for (const { sweepId, ...row } of rows) bySweep.set(sweepId, [...(bySweep.get(sweepId) ?? []), row]);
      return sweepIds.map((id) => bySweep.get(id) ?? []);
    }),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
