/**
 * Failed trials as the terminal shows them: reason and last log lines, read through the executor
 * from this machine. Kept apart from Temporal so `sweep status` and `logs` load quickly.
 */
import type { Db } from '../core/db/client';
import { readSettings } from '../core/settings';
import { failedTrials } from '../core/trials/failures';
import { attemptRef, FAILURE_LOG_LINES, FAILURES_SHOWN, lastLines, LOG_TAIL_DEFAULT_BYTES, type LogReader } from '../core/trials/logs';
import { createLogReader } from '../workers/executor-factory';
import { readStackFile } from './stack-file';
import { formatFailures, type FailureReport } from './format';

/** Log reader of this machine: local runs under LADDER_RUN_ROOT (else the running stack's), Kubernetes from LADDER_K8S_*. */
export function cliLogReader(): LogReader {
  const settings = readSettings();
  return createLogReader({ runRoot: settings.LADDER_RUN_ROOT ?? readStackFile()?.runRoot, python: settings.LADDER_PYTHON ?? readStackFile()?.python });
}


/** The newest failed trials of a sweep with their reason and last log lines, and how many failed. */
export async function failureReports(db: Db, sweepId: string, readLogs: LogReader): Promise<{ total: number; reports: FailureReport[] }> {
  const { total, shown } = await failedTrials(db, sweepId, FAILURES_SHOWN);
  const reports = await Promise.all(
    shown.map(async (t): Promise<FailureReport> => {
      const base = { trialId: t.id, variantName: t.variantName, rungName: t.rungName, seed: t.seed, attempts: t.attempts, maxAttempts: t.maxAttempts, reason: t.exitReason };
      try {
        const ref = attemptRef(t);
        const text = await readLogs(ref, LOG_TAIL_DEFAULT_BYTES);
        if (text === null) return { ...base, log: null, logNote: `the ${ref.executor} executor keeps no log readable from here` };
        return { ...base, log: lastLines(text, FAILURE_LOG_LINES) };
      } catch (err) {
        return { ...base, log: null, logNote: `log unavailable: ${(err as Error).message.split('\n')[0]}` };
      }
    }),
  );
  return { total, reports };
}

/** The failure section as text, or '' when nothing failed. */
export async function failureText(db: Db, sweepId: string, readLogs: LogReader): Promise<string> {
  const { total, reports } = await failureReports(db, sweepId, readLogs);
  return formatFailures(reports, total);
}
