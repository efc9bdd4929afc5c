/** `ladder logs TRIAL`: the job log of one attempt, once or followed until the attempt ends. */
import { eq } from 'drizzle-orm';
import type { Db } from '../core/db/client';
import { trials } from '../core/db/schema';
import { attemptOf, attemptRef, LOG_TAIL_MAX_BYTES, LogRequestError, type LogReader } from '../core/trials/logs';

/** How often `--follow` reads the log again; a person reading a log notices nothing shorter. */
const FOLLOW_POLL_MS = 1000;

export interface TrialLogsOptions {
  trialId: string;
  attempt?: number;
  /** Bytes from the end; default and cap LOG_TAIL_MAX_BYTES. */
  tail?: number;
  follow: boolean;
  write: (text: string) => void;
}

async function loadTrial(db: Db, trialId: string) {
  const [row] = await db
    .select({ id: trials.id, status: trials.status, attempts: trials.attempts, execution: trials.execution })
    .from(trials)
    .where(eq(trials.id, trialId));
  if (!row) throw new LogRequestError(`trial "${trialId}" not found`);
  return row;
}

export async function printTrialLogs(db: Db, readLogs: LogReader, opts: TrialLogsOptions): Promise<void> {
  const trial = await loadTrial(db, opts.trialId);
  const ref = attemptRef(trial, opts.attempt);
  const tail = Math.min(opts.tail ?? LOG_TAIL_MAX_BYTES, LOG_TAIL_MAX_BYTES);
  const read = async (): Promise<string> => {
    const text = await readLogs(ref, LOG_TAIL_MAX_BYTES);
    if (text === null) throw new LogRequestError(`the ${ref.executor} executor keeps no log that this machine can read (trial ${trial.id})`);
    return text;
  };
  let text = await read();
  opts.write(text.length > tail ? text.slice(text.length - tail) : text);
  if (!opts.follow) return;

  // Following: the attempt is over when the trial is no longer running it. Each poll prints what
  // was added since, found by overlap with the previous read (reads are tails, not offsets).
  const number = attemptOf(ref);
  for (;;) {
    const now = await loadTrial(db, trial.id);
    const ended = now.status !== 'running' || (number !== null && now.attempts > number);
    await new Promise((r) => setTimeout(r, ended ? 0 : FOLLOW_POLL_MS));
    const next = await read();
    opts.write(newPart(text, next));
    text = next;
    if (ended) return;
  }
}

/** The part of `next` after what `prev` already showed (both tails of one growing log). */
export function newPart(prev: string, next: string): string {
  if (next.startsWith(prev)) return next.slice(prev.length);
  // The window slid: resume after the last stretch of prev that next still holds.
  const anchor = prev.slice(-256);
  const at = anchor ? next.lastIndexOf(anchor) : -1;
  if (at >= 0) return next.slice(at + anchor.length);
  return next;
}
