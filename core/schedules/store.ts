/**
 * Schedule rows and their runs in Postgres: the one home of every read and write of the
 * `schedules`, `schedule_runs` and `schedule_findings` tables (the workflow's activities, the
 * service, GraphQL and the CLI all come through here).
 */
import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { scheduleFindings, scheduleRuns, schedules, trials, type ScheduleRunStatus, type SweepStatus } from '../db/schema';
import { parseSweepSpec, type SweepSpec } from '../spec/spec';
import type { ScheduleBlock } from '../spec/schedule';
import { metricValue } from '../sweeps/metric';
import { createSweep } from '../sweeps/store';
import { compareRun, type Finding, type PastRun, type RunResult } from './compare';

export type ScheduleRow = typeof schedules.$inferSelect;
export type ScheduleRunRow = typeof scheduleRuns.$inferSelect;
export type ScheduleFindingRow = typeof scheduleFindings.$inferSelect;

export class ScheduleNotFoundError extends Error {
  constructor(readonly scheduleId: string) {
    super(`schedule "${scheduleId}" not found`);
    this.name = 'ScheduleNotFoundError';
  }
}

export class ScheduleConflictError extends Error {
  constructor(readonly scheduleId: string) {
    super(`a schedule named "${scheduleId}" already exists`);
    this.name = 'ScheduleConflictError';
  }
}

/** Most runs or findings one read returns. */
export const MAX_SCHEDULE_PAGE = 200;

export async function insertSchedule(db: Db, row: Pick<ScheduleRow, 'id' | 'spec' | 'cron' | 'every' | 'paused'> & { projectId: string }): Promise<ScheduleRow> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`insert into projects (id, name) values (${row.projectId}, ${row.projectId}) on conflict do nothing`);
    const [created] = await tx.insert(schedules).values(row).onConflictDoNothing().returning();
    if (!created) throw new ScheduleConflictError(row.id);
    return created;
  });
}

export async function getSchedule(db: Db, id: string): Promise<ScheduleRow | null> {
  const [row] = await db.select().from(schedules).where(eq(schedules.id, id));
  return row ?? null;
}

export async function requireSchedule(db: Db, id: string): Promise<ScheduleRow> {
  const row = await getSchedule(db, id);
  if (!row) throw new ScheduleNotFoundError(id);
  return row;
}

/** Schedules by name; `project` null lists every project's. */
export async function listSchedules(db: Db, options: { project: string | null; first?: number; after?: string | null }): Promise<ScheduleRow[]> {
  const first = Math.min(Math.max(options.first ?? 50, 1), MAX_SCHEDULE_PAGE);
  const where = and(options.project === null ? undefined : eq(schedules.projectId, options.project), options.after ? sql`${schedules.id} > ${options.after}` : undefined);
  return db.select().from(schedules).where(where).orderBy(asc(schedules.id)).limit(first);
}

export async function setSchedulePaused(db: Db, id: string, paused: boolean): Promise<void> {
  await db.update(schedules).set({ paused }).where(eq(schedules.id, id));
}

export async function deleteScheduleRow(db: Db, id: string): Promise<void> {
  await db.delete(schedules).where(eq(schedules.id, id));
}

/** The stored spec, re-validated: a schedule made before a validation rule changed must still be valid to run. */
export function scheduleSpec(row: Pick<ScheduleRow, 'spec'>): SweepSpec & { schedule: ScheduleBlock } {
  const spec = parseSweepSpec(row.spec);
  if (!spec.schedule) throw new Error('the stored spec has no schedule block');
  return spec as SweepSpec & { schedule: ScheduleBlock };
}

export interface BegunRun {
  runId: number;
  sweepId: string;
  codeVersion: string;
}

/**
 * Starts one run of a schedule: its sweep (rerunning unless `schedule.rerun` is false) and the run
 * row, in one transaction. Keyed by the workflow execution, so a retried activity gets the same run.
 */
export async function beginScheduledRun(
  db: Db,
  input: { scheduleId: string; workflowId: string; workflowRunId: string; codeVersion: string; executor?: string },
): Promise<BegunRun> {
  const existing = await runByExecution(db, input.workflowRunId);
  if (existing?.sweepId) return { runId: existing.id, sweepId: existing.sweepId, codeVersion: existing.codeVersion };
  const schedule = await requireSchedule(db, input.scheduleId);
  const spec = scheduleSpec(schedule);
  return db.transaction(async (tx) => {
    // Savepoint inside ours: the sweep and the run row land together or not at all.
    // The webhook URL may itself be a secret (many receivers put their token in the path): the
    // sweep, which every reader of the project sees, keeps the rest of the block only.
    const { webhook: _webhook, ...block } = spec.schedule;
    const sweepSpec = { ...spec, schedule: block } as SweepSpec;
    const created = await createSweep(tx as unknown as Db, { spec: sweepSpec, codeVersion: input.codeVersion, rerun: spec.schedule.rerun, executor: input.executor });
    const [run] = await tx
      .insert(scheduleRuns)
      .values({ scheduleId: schedule.id, workflowId: input.workflowId, workflowRunId: input.workflowRunId, sweepId: created.id, codeVersion: input.codeVersion })
      .returning({ id: scheduleRuns.id });
    return { runId: run!.id, sweepId: created.id, codeVersion: input.codeVersion };
  });
}

async function runByExecution(db: Db, workflowRunId: string): Promise<ScheduleRunRow | null> {
  const [row] = await db.select().from(scheduleRuns).where(eq(scheduleRuns.workflowRunId, workflowRunId));
  return row ?? null;
}

export async function getScheduleRun(db: Db, runId: number): Promise<ScheduleRunRow | null> {
  const [row] = await db.select().from(scheduleRuns).where(eq(scheduleRuns.id, runId));
  return row ?? null;
}

/** Per (variant, rung, metric) of the sweep's succeeded trials: the seeds' values and their mean. */
export async function sweepResults(db: Db, sweepId: string, metrics: readonly string[]): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (const metric of metrics) {
    const rows = await db
      .select({ variant: trials.variantName, rung: trials.rungName, value: metricValue(metric) })
      .from(trials)
      .where(and(eq(trials.sweepId, sweepId), eq(trials.status, 'succeeded')))
      .orderBy(asc(trials.variantIndex), asc(trials.rungIndex), asc(trials.seed));
    const groups = new Map<string, RunResult>();
    for (const row of rows) {
      if (row.value === null || !Number.isFinite(row.value)) continue;
      const k = JSON.stringify([row.variant, row.rung]);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { variant: row.variant, rung: row.rung, metric, mean: 0, values: [] }));
      g.values.push(row.value);
    }
    for (const g of groups.values()) {
      g.mean = g.values.reduce((s, x) => s + x, 0) / g.values.length;
      out.push(g);
    }
  }
  return out;
}

export interface FinishedRun {
  runId: number;
  status: ScheduleRunStatus;
  regressions: number;
  improvements: number;
  /** Whether the spec names a webhook (its URL stays out of workflow history). */
  webhook: boolean;
}

/**
 * Closes a run once its sweep is over: collects its results, compares them with the schedule's
 * earlier compared runs and stores the findings. Idempotent: a closed run is returned as stored.
 */
export async function finishScheduledRun(db: Db, runId: number, sweepStatus: SweepStatus | 'cancelled'): Promise<FinishedRun> {
  const run = await getScheduleRun(db, runId);
  if (!run) throw new Error(`schedule run ${runId} not found`);
  const schedule = await requireSchedule(db, run.scheduleId);
  const spec = scheduleSpec(schedule);
  const summary = (r: ScheduleRunRow): FinishedRun => ({ runId: r.id, status: r.status, regressions: r.regressions, improvements: r.improvements, webhook: !!spec.schedule.webhook });
  if (run.status !== 'running') return summary(run);
  if (sweepStatus === 'cancelled' || !run.sweepId) {
    const [closed] = await db.update(scheduleRuns).set({ status: 'cancelled', finishedAt: new Date() }).where(and(eq(scheduleRuns.id, runId), eq(scheduleRuns.status, 'running'))).returning();
    return summary(closed ?? (await getScheduleRun(db, runId))!);
  }
  const results = await sweepResults(db, run.sweepId, spec.schedule.metrics.map((m) => m.metric));
  const past = await pastRuns(db, run.scheduleId, runId, spec.schedule.baselineRuns);
  const findings = results.length ? compareRun(spec.schedule, results, past) : [];
  // A sweep that produced nothing to compare is no baseline for later runs.
  const status: ScheduleRunStatus = results.length ? 'compared' : 'failed';
  return db.transaction(async (tx) => {
    const [closed] = await tx
      .update(scheduleRuns)
      .set({
        status,
        results,
        regressions: findings.filter((f) => f.kind === 'regression').length,
        improvements: findings.filter((f) => f.kind === 'improvement').length,
        finishedAt: new Date(),
      })
      .where(and(eq(scheduleRuns.id, runId), eq(scheduleRuns.status, 'running')))
      .returning();
    if (!closed) return summary((await getScheduleRun(tx as unknown as Db, runId))!);
    if (findings.length) await tx.insert(scheduleFindings).values(findings.map((f) => ({ ...f, runId, scheduleId: run.scheduleId })));
    return summary(closed);
  });
}

/** The latest compared runs before `runId`, newest first, per result entry up to `perEntry` (compareRun takes the newest). */
async function pastRuns(db: Db, scheduleId: string, runId: number, perEntry: number): Promise<PastRun[]> {
  // Entries can be missing from a run (a variant failed), so read a few more runs than the window.
  const rows = await db
    .select({ id: scheduleRuns.id, results: scheduleRuns.results })
    .from(scheduleRuns)
    .where(and(eq(scheduleRuns.scheduleId, scheduleId), eq(scheduleRuns.status, 'compared'), lt(scheduleRuns.id, runId)))
    .orderBy(desc(scheduleRuns.id))
    .limit(Math.min(perEntry * 4, MAX_SCHEDULE_PAGE));
  return rows.map((r) => ({ runId: r.id, results: r.results as RunResult[] }));
}

export async function markRunNotified(db: Db, runId: number): Promise<void> {
  await db.update(scheduleRuns).set({ notifiedAt: new Date() }).where(eq(scheduleRuns.id, runId));
}

/** A schedule's runs, newest first. */
export async function scheduleRunsOf(db: Db, scheduleId: string, first = 50): Promise<ScheduleRunRow[]> {
  return db
    .select()
    .from(scheduleRuns)
    .where(eq(scheduleRuns.scheduleId, scheduleId))
    .orderBy(desc(scheduleRuns.id))
    .limit(Math.min(Math.max(first, 1), MAX_SCHEDULE_PAGE));
}

/** Findings newest first, of one schedule or run, optionally of one kind. */
export async function findingsOf(
  db: Db,
  filter: { scheduleIds?: readonly string[]; runId?: number; kind?: Finding['kind']; first?: number },
): Promise<ScheduleFindingRow[]> {
  return db
    .select()
    .from(scheduleFindings)
    .where(
      and(
        filter.scheduleIds ? inArray(scheduleFindings.scheduleId, [...filter.scheduleIds]) : undefined,
        filter.runId !== undefined ? eq(scheduleFindings.runId, filter.runId) : undefined,
        filter.kind ? eq(scheduleFindings.kind, filter.kind) : undefined,
      ),
    )
    .orderBy(desc(scheduleFindings.id))
    .limit(Math.min(Math.max(filter.first ?? 100, 1), MAX_SCHEDULE_PAGE));
}
