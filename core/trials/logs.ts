/**
 * Job logs of trial attempts: which execution an attempt was, how much of its log may be read,
 * and the reader that the CLI and the API share. The executors themselves live in workers/;
 * this module knows only the shape of their execution references.
 */

/** Bytes of log tail shown when nobody asks for a size (dashboard, `Trial.logs`). */
export const LOG_TAIL_DEFAULT_BYTES = 4000;
/** Upper bound on one read: a log can be gigabytes and a request must stay cheap. */
export const LOG_TAIL_MAX_BYTES = 64 * 1024;
/** Failed trials whose reason and log lines `sweep status` and `--wait` show; the rest are counted. */
export const FAILURES_SHOWN = 3;
/** Log lines shown under each failed trial. */
export const FAILURE_LOG_LINES = 5;

/** The executor's reference to one attempt (workers/executors/types.ts ExecutionRef). */
export interface AttemptRef {
  executor: string;
  executionId: string;
  handle: Record<string, unknown>;
}

/** Reads up to `tailBytes` of an attempt's log; null when its executor cannot give logs. */
export type LogReader = (ref: AttemptRef, tailBytes: number) => Promise<string | null>;

export class LogRequestError extends Error {}

/** The tail size to read: the default when absent, refused when not a positive integer, capped. */
export function clampTail(tail: number | null | undefined, field = 'tail'): number {
  if (tail === undefined || tail === null) return LOG_TAIL_DEFAULT_BYTES;
  if (!Number.isInteger(tail) || tail < 1) throw new LogRequestError(`${field} must be a positive whole number of bytes, not ${String(tail)}`);
  return Math.min(tail, LOG_TAIL_MAX_BYTES);
}

interface TrialExecution {
  id: string;
  attempts: number;
  execution: unknown;
}

function isRef(value: unknown): value is AttemptRef {
  const v = value as Partial<AttemptRef> | null;
  return !!v && typeof v.executor === 'string' && typeof v.executionId === 'string' && typeof v.handle === 'object' && v.handle !== null;
}

/**
 * The reference of attempt `attempt` (default: the latest) of a trial. The trial row keeps only
 * the latest attempt's reference; an earlier attempt's is rebuilt from its execution id
 * (`<trialId>-a<attempt>`), which is all the local and Kubernetes executors need to find its log.
 */
export function attemptRef(trial: TrialExecution, attempt?: number): AttemptRef {
  const latest = isRef(trial.execution) ? trial.execution : null;
  if (trial.attempts < 1 || !latest) throw new LogRequestError(`trial ${trial.id} has not started an attempt yet`);
  if (attempt === undefined) return latest;
  if (!Number.isInteger(attempt) || attempt < 1 || attempt > trial.attempts) {
    throw new LogRequestError(`attempt must be between 1 and ${trial.attempts} for trial ${trial.id}, not ${String(attempt)}`);
  }
  const executionId = `${trial.id}-a${attempt}`;
  if (executionId === latest.executionId) return latest;
  return { executor: latest.executor, executionId, handle: {} };
}

/** The attempt number a reference belongs to, from its execution id. */
export function attemptOf(ref: AttemptRef): number | null {
  const m = /-a(\d+)$/.exec(ref.executionId);
  return m ? Number(m[1]) : null;
}

/** The last `n` non-empty lines of a log. */
export function lastLines(text: string, n: number): string[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines.slice(Math.max(0, lines.length - n));
}
