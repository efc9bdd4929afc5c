/**
 * Capacity runs and their steps in Postgres (tables `capacity_runs`, `capacity_steps`): written
 * by the capacity workflow's activities (workers/loadgen.ts), read by the CLI and GraphQL.
 */
import { and, asc, desc, eq, lt, or } from 'drizzle-orm';
import type { Db } from '../db/client';
import { capacityRuns, capacitySteps } from '../db/schema';
import type { Scenario } from '../../loadtests/capacity/scenario';
import type { StepRecord } from '../../loadtests/capacity/step';
import type { ScalingAnswer } from './scaling';

export const CAPACITY_RUN_STATUSES = ['running', 'finished', 'cancelled', 'failed'] as const;
export type CapacityRunStatus = (typeof CAPACITY_RUN_STATUSES)[number];

const RUN_ID = /^[a-z0-9][a-z0-9._-]{0,120}$/;
/** Most runs one list call returns. */
export const MAX_RUNS_PAGE = 100;

export class UnknownCapacityRunError extends Error {
  override name = 'UnknownCapacityRunError';
}

export function assertRunId(id: string): void {
  if (typeof id !== 'string' || !RUN_ID.test(id)) throw new UnknownCapacityRunError(`"${String(id).slice(0, 140)}" is not a capacity run id (lowercase letters, digits, ".", "_" or "-")`);
}

export interface CapacityStepRow {
  idx: number;
  generators: number;
  offered: number;
  achieved: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  errorRate: number;
  passed: boolean;
  incomplete: string | null;
  /** The step record less its histogram (thresholds, counts, per-generator figures, errors, extra). */
  data: Omit<StepRecord, 'histogram'>;
  histogram: string;
}

export interface CapacityRunRecord {
  id: string;
  scenario: string;
  kind: string;
  target: string | null;
  status: CapacityRunStatus;
  mode: 'profile' | 'search' | 'scaling';
  thresholds: string[];
  knee: number | null;
  kneeIsLowerBound: boolean;
  stopReason: string | null;
  scaling: ScalingAnswer | null;
  host: { cpus: number; loadavgStart: number[]; loadavgEnd?: number[]; node: string } | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

export interface CapacityRunWithSteps extends CapacityRunRecord {
  steps: CapacityStepRow[];
}

/** NaN (no latency measured) is stored as null: JSON and GraphQL have no NaN. */
const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/**
 * The scenario as stored: an http scenario's header values (an Authorization header for the
 * user's own service) are replaced, so a stored run never holds a credential; the names stay.
 */
export function withoutSecrets(scenario: Scenario): Scenario {
  if (!scenario.http) return scenario;
  const headers = Object.fromEntries(Object.keys(scenario.http.headers).map((name) => [name, '<redacted>']));
  return { ...scenario, http: { ...scenario.http, headers } };
}

export async function createCapacityRun(
  db: Db,
  run: { id: string; scenario: Scenario; target: string | null; mode: CapacityRunRecord['mode']; host: CapacityRunRecord['host'] },
): Promise<void> {
  assertRunId(run.id);
  await db
    .insert(capacityRuns)
    .values({
      id: run.id,
      scenario: run.scenario.name,
      kind: run.scenario.scenario,
      target: run.target,
      mode: run.mode,
      spec: withoutSecrets(run.scenario),
      thresholds: run.scenario.thresholds.map((t) => t.text),
      host: run.host,
      // Set here, not by now(): a JS Date keeps ms, so the list cursor compares equal to the row.
      startedAt: new Date(),
    })
    // The prepare activity may be retried after the insert landed.
    .onConflictDoNothing();
}

export async function recordCapacityStep(db: Db, runId: string, idx: number, generators: number, step: StepRecord): Promise<void> {
  const { histogram, ...data } = step;
  const row = {
    generators,
    offered: step.offered,
    achieved: step.achieved,
    p50Ms: finite(step.p50Ms),
    p95Ms: finite(step.p95Ms),
    p99Ms: finite(step.p99Ms),
    errorRate: step.errorRate,
    passed: step.passed,
    incomplete: step.incomplete,
    data: JSON.parse(JSON.stringify(data)) as object,
    histogram,
  };
  await db
    .insert(capacitySteps)
    .values({ runId, idx, ...row })
    .onConflictDoUpdate({ target: [capacitySteps.runId, capacitySteps.idx], set: row });
}

export async function finishCapacityRun(
  db: Db,
  runId: string,
  end: { status: Exclude<CapacityRunStatus, 'running'>; knee: number | null; kneeIsLowerBound: boolean; stopReason: string | null; scaling?: ScalingAnswer | null; host?: CapacityRunRecord['host']; error?: string | null },
): Promise<void> {
  await db
    .update(capacityRuns)
    .set({
      status: end.status,
      knee: end.knee,
      kneeIsLowerBound: end.kneeIsLowerBound,
      stopReason: end.stopReason,
      scaling: end.scaling ?? null,
      ...(end.host ? { host: end.host } : {}),
      error: end.error?.slice(0, 2000) ?? null,
      finishedAt: new Date(),
    })
    .where(eq(capacityRuns.id, runId));
}

type RunRow = typeof capacityRuns.$inferSelect;

function toRecord(r: RunRow): CapacityRunRecord {
  return {
    id: r.id,
    scenario: r.scenario,
    kind: r.kind,
    target: r.target,
    status: r.status as CapacityRunStatus,
    mode: r.mode as CapacityRunRecord['mode'],
    thresholds: r.thresholds,
    knee: r.knee,
    kneeIsLowerBound: r.kneeIsLowerBound,
    stopReason: r.stopReason,
    scaling: (r.scaling as ScalingAnswer | null) ?? null,
    host: (r.host as CapacityRunRecord['host']) ?? null,
    error: r.error,
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt?.toISOString() ?? null,
  };
}

export async function getCapacityRun(db: Db, id: string): Promise<CapacityRunWithSteps> {
  assertRunId(id);
  const [run] = await db.select().from(capacityRuns).where(eq(capacityRuns.id, id));
  if (!run) throw new UnknownCapacityRunError(`no capacity run "${id}"`);
  return { ...toRecord(run), steps: await getCapacitySteps(db, id) };
}

export async function getCapacitySteps(db: Db, runId: string): Promise<CapacityStepRow[]> {
  const rows = await db.select().from(capacitySteps).where(eq(capacitySteps.runId, runId)).orderBy(asc(capacitySteps.idx));
  return rows.map((s) => ({
    idx: s.idx,
    generators: s.generators,
    offered: s.offered,
    achieved: s.achieved,
    p50Ms: s.p50Ms,
    p95Ms: s.p95Ms,
    p99Ms: s.p99Ms,
    errorRate: s.errorRate,
    passed: s.passed,
    incomplete: s.incomplete,
    data: s.data as CapacityStepRow['data'],
    histogram: s.histogram,
  }));
}

/** Keyset position of a run in the newest-first list. */
export interface RunCursor {
  startedAt: string;
  id: string;
}

/** Newest first; `after` is the cursor of the last run of the previous page. */
export async function listCapacityRuns(db: Db, options: { first?: number; after?: RunCursor | null } = {}): Promise<CapacityRunRecord[]> {
  const first = Math.max(1, Math.min(MAX_RUNS_PAGE, options.first ?? 20));
  const after = options.after;
  const where = after
    ? or(lt(capacityRuns.startedAt, new Date(after.startedAt)), and(eq(capacityRuns.startedAt, new Date(after.startedAt)), lt(capacityRuns.id, after.id)))
    : undefined;
  const rows = await db.select().from(capacityRuns).where(where).orderBy(desc(capacityRuns.startedAt), desc(capacityRuns.id)).limit(first);
  return rows.map(toRecord);
}
