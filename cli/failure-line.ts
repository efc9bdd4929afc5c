/**
 * One line in the `ladder dev` / `ladder demo` terminal when a job attempt fails: which trial,
 * which attempt, why, and the last line of its log, so a failure is seen where the stack runs
 * instead of only in the database.
 */
import { lastLines } from '../core/trials/logs';
import type { ExecutionRef, ExecutionStatus, Executor } from '../workers/executors/types';

/** Attempts already reported, bounded: a long-running stack must not grow this forever. */
const REMEMBERED = 10_000;
const LAST_LINE_BYTES = 2000;

/**
 * The executor, unchanged, except that the first terminal failed or preempted status seen for an
 * execution writes one line. The worker polls status until an attempt ends, so every failure
 * passes here exactly when it is learnt.
 */
export function reportFailedAttempts(executor: Executor, write: (line: string) => void): Executor {
  const reported = new Set<string>();
  const report = async (ref: ExecutionRef, status: ExecutionStatus) => {
    if (reported.has(ref.executionId)) return;
    if (reported.size >= REMEMBERED) reported.clear();
    reported.add(ref.executionId);
    let tail = '';
    try {
      const text = executor.logs ? await executor.logs(ref, LAST_LINE_BYTES) : '';
      tail = lastLines(text, 1)[0]?.slice(0, 200) ?? '';
    } catch {
      // The line still says that it failed and why; `ladder logs` gives the rest.
    }
    const m = /^(.*)-a(\d+)$/.exec(ref.executionId);
    const who = m ? `trial ${m[1]} attempt ${m[2]}` : ref.executionId;
    const retry = status.state === 'preempted' || status.retryable ? ' (retryable)' : '';
    write(`✗ ${who} ${status.state}: ${status.reason ?? status.state}${retry}${tail ? ` — ${tail}` : ''}  [ladder logs ${m ? m[1] : ref.executionId}]`);
  };
  const logs = executor.logs?.bind(executor);
  return {
    name: executor.name,
    submit: (launch) => executor.submit(launch),
    cancel: (ref) => executor.cancel(ref),
    ...(logs ? { logs } : {}),
    async status(ref) {
      const status = await executor.status(ref);
      if (status.state === 'failed' || status.state === 'preempted') await report(ref, status);
      return status;
    },
  };
}
