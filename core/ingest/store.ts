/**
 * The write path of running jobs: metric points and final results.
 *
 * Writes are accepted only from the attempt that is running: the trial's status is `running`
 * and its current attempt is the one the token names. The check and the write are one
 * statement, so an attempt that ends (or a trial that is finalized) between the two cannot let
 * a late write through.
 *
 * Points go in as one statement per batch (unnest of three arrays), idempotent on
 * (trial, name, step), so a job that retries a batch or resumes from a checkpoint never
 * duplicates a row.
 *
 * The result is write-once per attempt: the first one is kept; the same result sent again (a
 * client retrying after a lost response) is answered as success without a write; a different
 * one is a conflict. `markAttemptStarted` clears the result when a new attempt begins, so the
 * stored result is always the current attempt's.
 */
import type { Pool } from 'pg';
import { z } from 'zod';

export const MAX_POINTS_PER_BATCH = 50_000;
export const MAX_METRIC_NAME_LENGTH = 200;
/** Body limits per route: a full batch of points is about 3 MiB; a result is a few KiB. */
export const MAX_METRICS_BODY_BYTES = 16 * 1024 * 1024;
export const MAX_RESULT_BODY_BYTES = 1024 * 1024;
/** Bounds on the free-form parts of a body (result config and meta). */
export const MAX_JSON_DEPTH = 32;
export const MAX_JSON_STRING_LENGTH = 64 * 1024;
export const MAX_JSON_KEY_LENGTH = 200;
export const MAX_RESULT_METRICS = 10_000;

/** Keys that would reach an object's prototype if a body were ever merged into an object. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

export class IngestConflictError extends Error {}
export class UnknownTrialError extends Error {}

/** A problem with a request body, with the path of the field in question. */
export class IngestBodyError extends Error {
  constructor(
    readonly path: ReadonlyArray<string | number>,
    readonly problem: string,
  ) {
    super(`${formatIngestPath(path) || 'body'}: ${problem}`);
  }
}

/** `points[3].name`; keys that are not plain identifiers are quoted (`config["a b"]`), and cut short. */
export function formatIngestPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = String(part);
      if (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(key)) out += out ? `.${key}` : key;
      else out += `[${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)}]`;
    }
  }
  return out;
}

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string cannot be stored as it is, or undefined. Postgres refuses NUL in text and jsonb, and jsonb an unpaired surrogate. */
function stringProblem(s: string, maxLength: number): string | undefined {
  if (s.length > maxLength) return `is longer than ${maxLength} characters`;
  if (s.includes('\u0000')) return 'must not contain a NUL character';
  if (UNPAIRED_SURROGATE.test(s)) return 'must be valid Unicode (it has an unpaired surrogate)';
  return undefined;
}

/**
 * Checks a parsed JSON body before any schema runs: depth, string and key sizes, NUL, unpaired
 * surrogates, non-finite numbers (JSON.parse turns 1e400 into Infinity) and prototype keys.
 * Throws IngestBodyError naming the first offending field. Bounded: the body's size is capped
 * before parsing, and depth here.
 */
export function checkIngestJson(value: unknown): void {
  const path: Array<string | number> = [];
  const fail = (problem: string): never => {
    throw new IngestBodyError([...path], problem);
  };
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      const problem = stringProblem(v, MAX_JSON_STRING_LENGTH);
      if (problem) fail(problem);
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) fail('must be a finite number');
    } else if (v !== null && typeof v === 'object') {
      if (path.length >= MAX_JSON_DEPTH) fail(`nests deeper than ${MAX_JSON_DEPTH} levels`);
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          path.push(i);
          walk(v[i]);
          path.pop();
        }
      } else {
        // JSON.parse defines keys as own properties (also "__proto__"), so this sees them all.
        for (const key of Object.keys(v)) {
          path.push(key);
          if (FORBIDDEN_KEYS.has(key)) fail(`key "${key}" is not allowed`);
          const problem = stringProblem(key, MAX_JSON_KEY_LENGTH);
          if (problem) fail(`key ${problem}`);
          walk((v as Record<string, unknown>)[key]);
          path.pop();
        }
      }
    }
  };
  walk(value);
}

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
// NUL, surrogates and prototype keys are checkIngestJson's; parse* below run it first.
const metricName = z.string().min(1).max(MAX_METRIC_NAME_LENGTH);

export const metricBatchSchema = z.strictObject({
  points: z
    .array(
      z.strictObject({
        name: metricName,
        step: z.number().int().nonnegative().max(2_147_483_647),
        value: finite,
      }),
    )
    .max(MAX_POINTS_PER_BATCH, `at most ${MAX_POINTS_PER_BATCH} points per batch`),
});
export type MetricBatch = z.infer<typeof metricBatchSchema>;
export type MetricPoint = MetricBatch['points'][number];

/** A JSON object; checkIngestJson has already vetted what is inside. */
const jsonObject = z.custom<Record<string, unknown>>(
  (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  'must be an object',
);

export const trialResultSchema = z.strictObject({
  metrics: z
    .record(metricName, finite)
    .refine((m) => Object.keys(m).length <= MAX_RESULT_METRICS, `at most ${MAX_RESULT_METRICS} metrics`),
  config: jsonObject.default({}),
  meta: jsonObject.default({}),
});
export type TrialResult = z.infer<typeof trialResultSchema>;

function parseWith<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  checkIngestJson(body);
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : '';
  if (issue.code === 'unrecognized_keys') throw new IngestBodyError([...issue.path.map(pathPart), issue.keys[0]!], `unknown key${more}`);
  throw new IngestBodyError(issue.path.map(pathPart), `${issue.message}${more}`);
}

const pathPart = (p: PropertyKey): string | number => (typeof p === 'number' ? p : String(p));

/** Validates a metrics body. Throws IngestBodyError naming the field. */
export const parseMetricBatch = (body: unknown): MetricBatch => parseWith(metricBatchSchema, body);
/** Validates a result body. Throws IngestBodyError naming the field. */
export const parseTrialResult = (body: unknown): TrialResult => parseWith(trialResultSchema, body);

/** Describes why an attempt may not write, for the 409 message. */
async function conflictFor(pool: Pool, trialId: string, attempt: number): Promise<Error> {
  const { rows } = await pool.query<{ status: string; attempts: number }>('select status, attempts from trials where id = $1', [trialId]);
  const row = rows[0];
  if (!row) return new UnknownTrialError(`trial "${trialId}" not found`);
  if (row.status !== 'running') {
    return new IngestConflictError(`trial "${trialId}" is ${row.status}; writes are accepted only while it runs`);
  }
  return new IngestConflictError(
    `attempt ${attempt} of trial "${trialId}" is not the running attempt (the trial is on attempt ${row.attempts}); nothing was stored`,
  );
}

/** Returns how many points were new. Throws UnknownTrialError or IngestConflictError. */
export async function insertMetricPoints(pool: Pool, trialId: string, attempt: number, points: MetricPoint[]): Promise<number> {
  // `for share` holds the trial row until the insert commits: a concurrent finalize waits for
  // it, and an insert that waited on a finalize re-checks the status it committed.
  const { rows } = await pool.query<{ open: number; inserted: number }>(
    `with t as (
       select id from trials where id = $1 and status = 'running' and attempts = $5 for share
     ), ins as (
       insert into metric_points (trial_id, name, step, value)
       select t.id, u.name, u.step, u.value
       from t, unnest($2::text[], $3::int[], $4::float8[]) as u(name, step, value)
       on conflict do nothing
       returning 1
     )
     select (select count(*) from t)::int as open, (select count(*) from ins)::int as inserted`,
    [trialId, points.map((p) => p.name), points.map((p) => p.step), points.map((p) => p.value), attempt],
  );
  if (rows[0]!.open === 1) return rows[0]!.inserted;
  throw await conflictFor(pool, trialId, attempt);
}

/**
 * Records the attempt's final result. Returns 'recorded', or 'unchanged' when this attempt
 * already recorded exactly this result. Throws UnknownTrialError or IngestConflictError.
 */
export async function recordTrialResult(pool: Pool, trialId: string, attempt: number, result: TrialResult): Promise<'recorded' | 'unchanged'> {
  const json = JSON.stringify(result);
  const res = await pool.query(
    `update trials set result = $2::jsonb, updated_at = now()
     where id = $1 and status = 'running' and attempts = $3 and result is null
     returning id`,
    [trialId, json, attempt],
  );
  if (res.rowCount) return 'recorded';
  const { rows } = await pool.query<{ open: boolean; same: boolean | null }>(
    `select status = 'running' and attempts = $3 as open, result = $2::jsonb as same from trials where id = $1`,
    [trialId, json, attempt],
  );
  const row = rows[0];
  if (row?.open && row.same) return 'unchanged';
  if (row?.open) {
    throw new IngestConflictError(`attempt ${attempt} of trial "${trialId}" already recorded a different result; it is kept, nothing was stored`);
  }
  throw await conflictFor(pool, trialId, attempt);
}
